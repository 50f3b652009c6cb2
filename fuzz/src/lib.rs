//! Fuzz cases for gradverify. Each module defines an `Arbitrary` case with
//! capped sizes, a `Debug` that prints a reproducer, and `run()`, which
//! panics when a property fails. The fuzz targets in `fuzz_targets/` are thin
//! wrappers; the main crate's `tests/fuzz_regressions.rs` includes the same
//! files to replay committed inputs.

pub mod check;
pub mod common;
pub mod extra_layers;
pub mod idx;
pub mod layers;
pub mod model;
