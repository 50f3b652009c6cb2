//! The single integration-test binary: one module per area.

mod data;
mod fuzz_regressions;
mod train;
mod tutorial_snapshots;
