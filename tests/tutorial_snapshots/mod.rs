//! Snapshot tests that lock in the tutorial's printed numbers and the fix
//! of every documented bug in its code (issue 4). Snapshots live in the
//! top-level `snapshots/` folder; see [`support::snap`].

mod bugs;
mod printed;
mod replicas;
pub mod support;
