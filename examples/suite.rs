//! Prints the standard verification table (what `cargo run --release` shows
//! first) and its run time.
//!
//! `cargo run --release --example suite`
use std::time::Instant;

fn main() -> gradverify::Result<()> {
    let start = Instant::now();
    let suite = gradverify::check::suite::run()?;
    let secs = start.elapsed().as_secs_f64();
    print!("{suite}");
    println!("({secs:.3} s)");
    if !suite.passed() {
        std::process::exit(1);
    }
    Ok(())
}
