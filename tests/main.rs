//! The crate's one integration-test binary; each module is one area.

mod tutorial_snapshots;
