//! The gradient checker: every element of every differentiable input and
//! parameter of any [`Layer`] against Richardson-extrapolated central
//! differences, plus contract checks, with a report that names the likely bug.
//!
//! # Method
//! - Everything numeric runs in f64.
//! - The output `y` is reduced to a scalar by a fixed seeded projection
//!   `L = Σ r ⊙ y` with `|r| ∈ [0.5, 1.5)` and random signs, so every output
//!   element matters (summing would hide bugs: `Σ softmax = 1`).
//! - `backward(r)` gives the analytic gradient; each element is compared with
//!   the numeric one, whose own error estimate widens its tolerance
//!   ([`numeric`]); kinks are detected and checked as subgradients.
//! - Contract checks ([`contract`]), a fast directional mode for large
//!   tensors ([`fast`]), an f32-vs-f64 mode ([`check_f32`]) and a diagnosis of
//!   failures ([`Diagnosis`]).
//!
//! # Example: your own layer
//! ```
//! use gradverify::check::{CheckConfig, assert_gradients};
//! use gradverify::{Layer, Result};
//! use ndarray::{ArrayD, ArrayViewD};
//!
//! /// y = x³ element-wise.
//! struct Cube { x: Option<ArrayD<f64>> }
//!
//! impl Layer<f64> for Cube {
//!     fn name(&self) -> String { "Cube".into() }
//!     fn num_inputs(&self) -> usize { 1 }
//!     fn forward(&mut self, inputs: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
//!         self.x = Some(inputs[0].to_owned());
//!         Ok(inputs[0].mapv(|v| v * v * v))
//!     }
//!     fn backward(&mut self, dout: ArrayViewD<'_, f64>) -> Result<Vec<ArrayD<f64>>> {
//!         let x = self.x.as_ref().expect("forward first");
//!         Ok(vec![&dout * &x.mapv(|v| 3.0 * v * v)])
//!     }
//! }
//!
//! let x = ndarray::array![[0.5, -1.0, 2.0], [1.5, 0.1, -0.7]].into_dyn();
//! let report = assert_gradients(&mut Cube { x: None }, &[x], &CheckConfig::default());
//! assert!(report.passed);
//! println!("{report}");
//! ```

pub mod config;
pub mod contract;
pub mod diagnose;
mod engine;
pub mod f32;
pub mod fast;
pub mod numeric;
pub mod report;
pub mod suite;

pub use config::{CheckConfig, Invariant, KinkHandling, Mode, Richardson};
pub use diagnose::Diagnosis;
pub use f32::{check_f32, check_f32_parallel};
pub use report::{CheckedMode, ContractResult, ElementReport, Report, TensorKind, TensorReport};

use crate::error::Result;
use crate::layer::Layer;
use engine::{Parallel, Serial, TolModel, analytic_phase, numeric_phase};
use ndarray::ArrayD;

/// Checks `layer`'s gradients at `inputs` (all of them, labels included, in
/// `forward`'s order), serially on the layer itself.
///
/// The layer's parameters are restored exactly afterwards; its cache and
/// gradients are those of the last evaluation.
///
/// **Errors** on an invalid `config`, a wrong input count, non-finite inputs,
/// or any error the layer returns. A wrong gradient is not an error: it is a
/// failing [`Report`].
pub fn check<L: Layer<f64> + ?Sized>(
    layer: &mut L,
    inputs: &[ArrayD<f64>],
    config: &CheckConfig,
) -> Result<Report> {
    let phase = analytic_phase(layer, inputs, config)?;
    numeric_phase(
        layer,
        &mut Serial,
        inputs.to_vec(),
        phase,
        config,
        TolModel::F64,
        "f64",
    )
}

/// [`check`] with the numeric evaluations split over rayon's threads, each
/// with its own clone of the layer (if [`CheckConfig::parallel`]). The report
/// is identical to [`check`]'s.
///
/// **Errors** as [`check`].
pub fn check_parallel<L: Layer<f64> + Clone + Send>(
    layer: &mut L,
    inputs: &[ArrayD<f64>],
    config: &CheckConfig,
) -> Result<Report> {
    if !config.parallel {
        return check(layer, inputs, config);
    }
    let phase = analytic_phase(layer, inputs, config)?;
    numeric_phase(
        layer,
        &mut Parallel,
        inputs.to_vec(),
        phase,
        config,
        TolModel::F64,
        "f64",
    )
}

/// Runs [`check`] and returns the passing report.
///
/// **Panics** with the report's table if the check fails, or with the error
/// if it could not run. For tests.
pub fn assert_gradients<L: Layer<f64> + ?Sized>(
    layer: &mut L,
    inputs: &[ArrayD<f64>],
    config: &CheckConfig,
) -> Report {
    expect_pass(check(layer, inputs, config), "gradient check")
}

/// [`check_parallel`], asserting like [`assert_gradients`].
///
/// **Panics** as [`assert_gradients`].
pub fn assert_gradients_parallel<L: Layer<f64> + Clone + Send>(
    layer: &mut L,
    inputs: &[ArrayD<f64>],
    config: &CheckConfig,
) -> Report {
    expect_pass(check_parallel(layer, inputs, config), "gradient check")
}

fn expect_pass(result: Result<Report>, what: &str) -> Report {
    match result {
        Ok(report) if report.passed => report,
        Ok(report) => panic!("{what} failed:\n{report}"),
        Err(e) => panic!("{what} could not run: {e}"),
    }
}
