//! The single integration-test binary: one module per area.

mod check_common;
mod check_detection;
mod check_f32;
mod check_modes;
mod check_props;
mod check_user_layer;
mod data;
mod fuzz_regressions;
mod train;
mod tutorial_snapshots;
