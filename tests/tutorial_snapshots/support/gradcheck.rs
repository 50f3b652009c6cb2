//! What the crate's gradient checker, [`gradverify::check::check`], says
//! about a layer (fixed or tutorial replica), rendered machine-stably for
//! snapshots. This is only an adapter: the checking itself is the crate's,
//! with its default configuration and a per-test projection seed.
//!
//! Per tensor the rendering gives its name and shape, pass/FAIL, the largest
//! relative error as a stable bucket ([`super::rel_err`]: `< 1e-6` for a
//! correct gradient, whose exact digits are rounding noise, two significant
//! digits otherwise), the number of elements at kinks if any, and the
//! checker's diagnosis of a failure; then the contract checks, naming the
//! failed ones. A check that could not run (a replica whose backward raises)
//! renders as its error.

use gradverify::check::{CheckConfig, Report, TensorReport, check};
use gradverify::{Layer, Shape};
use ndarray::ArrayD;
use std::fmt::Write;

/// The checker's verdict on one layer at one point.
#[derive(Debug)]
pub struct Verdict {
    /// The layer's name.
    pub layer: String,
    /// The report, or the error that stopped the check.
    pub report: Result<Report, String>,
}

impl Verdict {
    /// True if the check ran and every tensor and contract passed.
    pub fn passed(&self) -> bool {
        matches!(&self.report, Ok(r) if r.passed)
    }

    /// The report of the tensor `name` (`"input 0"`, `"W"`); `None` if the
    /// check did not run or has no such tensor.
    pub fn tensor(&self, name: &str) -> Option<&TensorReport> {
        self.report.as_ref().ok()?.tensor(name)
    }

    /// The error that stopped the check, if any.
    pub fn error(&self) -> Option<&str> {
        self.report.as_ref().err().map(String::as_str)
    }

    /// A machine-stable rendering for snapshots.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let v = if self.passed() { "PASS" } else { "FAIL" };
        writeln!(s, "gradient check of {}: {v}", self.layer).unwrap();
        match &self.report {
            Err(e) => writeln!(s, "  error: {e}").unwrap(),
            Ok(r) => {
                for t in &r.tensors {
                    let v = if t.passed { "pass" } else { "FAIL" };
                    write!(s, "  {} {}: {v}", t.name, Shape::of(&t.shape)).unwrap();
                    // NaN when nothing could be compared (no gradient, wrong shape).
                    if !t.max_rel_err.is_nan() {
                        write!(s, ", max rel err {}", super::rel_err(t.max_rel_err)).unwrap();
                    }
                    if t.at_kink > 0 {
                        write!(s, ", {} at kinks", t.at_kink).unwrap();
                    }
                    if let Some(d) = &t.diagnosis {
                        write!(s, "; diagnosis: {d}").unwrap();
                    }
                    s.push('\n');
                }
                let failed: Vec<_> = r.failed_contracts().collect();
                writeln!(
                    s,
                    "  contracts: {} of {} passed",
                    r.contracts.len() - failed.len(),
                    r.contracts.len()
                )
                .unwrap();
                for c in failed {
                    writeln!(s, "  contract FAIL: {}", c.name).unwrap();
                }
            }
        }
        s
    }
}

/// Runs the crate's checker with its default configuration and projection
/// seed `seed`.
pub fn verdict<L: Layer<f64> + ?Sized>(
    layer: &mut L,
    inputs: &[ArrayD<f64>],
    seed: u64,
) -> Verdict {
    let config = CheckConfig::default().with_seed(seed);
    Verdict {
        layer: layer.name(),
        report: check(layer, inputs, &config).map_err(|e| e.to_string()),
    }
}
