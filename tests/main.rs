//! The single integration-test binary: one module per area.

mod data;
mod train;
mod tutorial_snapshots;
