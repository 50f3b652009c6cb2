//! Placeholder replaced once the MLP exists.
fn main() {}
