//! A small local gradient check: central differences of a random projection
//! of a layer's output, compared with what its `backward` returns.
//!
//! It answers "does this layer's backward agree with its forward?" for the
//! fixed layers and the tutorial replicas, tensor by tensor, with a
//! machine-stable verdict for snapshots. The loss is `L = Σ out ⊙ R` with a
//! seeded standard-normal `R` (never all ones: a plain sum hides bugs such
//! as Σ softmax = 1), so `dout = R`.
//!
//! Per tensor the error is `‖analytic − numeric‖∞ / max(‖analytic‖∞,
//! ‖numeric‖∞)`; a tensor passes at `<= TOLERANCE`. With `h = 1e-6` in f64
//! a correct gradient is off by about `1e-9`; every bug here is off by 0.1
//! or more, so the verdict is far from the threshold either way.

use gradverify::Layer;
use gradverify::numpy_rng::RandomState;
use ndarray::{ArrayD, ArrayViewD};
use std::fmt::Write;

/// Step of the central difference.
pub const H: f64 = 1e-6;

/// Largest relative error that passes.
pub const TOLERANCE: f64 = 1e-6;

/// The verdict on one tensor (a differentiable input or a parameter).
#[derive(Debug, Clone)]
pub struct TensorVerdict {
    /// `"input 0"`, or `"param W"`.
    pub tensor: String,
    /// Whether the analytic gradient matched.
    pub passed: bool,
    /// The relative error, when both gradients exist and have one shape.
    pub max_rel_err: Option<f64>,
    /// Why it failed when there is no error to report (no gradient, wrong shape).
    pub detail: Option<String>,
}

/// The outcome of checking one layer.
#[derive(Debug, Clone)]
pub struct CheckOutcome {
    /// The layer's name.
    pub layer: String,
    /// An error from `forward` or `backward` that stopped the check.
    pub error: Option<String>,
    /// One verdict per tensor, inputs first, then parameters in order.
    pub tensors: Vec<TensorVerdict>,
}

impl CheckOutcome {
    /// True if nothing errored and every tensor passed.
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.tensors.iter().all(|t| t.passed)
    }

    /// The verdict on the tensor named `name` (`"input 0"`, `"param b"`).
    pub fn tensor(&self, name: &str) -> Option<&TensorVerdict> {
        self.tensors.iter().find(|t| t.tensor == name)
    }

    /// A machine-stable text rendering for snapshots.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let verdict = if self.passed() { "PASS" } else { "FAIL" };
        writeln!(s, "gradient check of {}: {verdict}", self.layer).unwrap();
        if let Some(e) = &self.error {
            writeln!(s, "  error: {e}").unwrap();
        }
        for t in &self.tensors {
            let v = if t.passed { "pass" } else { "FAIL" };
            write!(s, "  {}: {v}", t.tensor).unwrap();
            if let Some(r) = t.max_rel_err {
                write!(s, ", max rel err {}", super::rel_err(r)).unwrap();
            }
            if let Some(d) = &t.detail {
                write!(s, " ({d})").unwrap();
            }
            s.push('\n');
        }
        s
    }
}

/// `Σ forward(inputs) ⊙ r`.
fn projected(
    layer: &mut dyn Layer<f64>,
    inputs: &[ArrayD<f64>],
    r: &ArrayD<f64>,
) -> Result<f64, String> {
    let views: Vec<ArrayViewD<'_, f64>> = inputs.iter().map(|a| a.view()).collect();
    let out = layer.forward(&views).map_err(|e| e.to_string())?;
    if out.shape() != r.shape() {
        return Err(format!(
            "forward output changed shape from {:?} to {:?}",
            r.shape(),
            out.shape()
        ));
    }
    Ok((&out * r).sum())
}

/// Relative error of `analytic` against `numeric`, or why they cannot be compared.
fn compare(analytic: &ArrayD<f64>, numeric: &ArrayD<f64>) -> Result<f64, String> {
    if analytic.shape() != numeric.shape() {
        return Err(format!(
            "gradient has shape {}, expected {}",
            gradverify::Shape::of(analytic.shape()),
            gradverify::Shape::of(numeric.shape())
        ));
    }
    let inf = |a: &ArrayD<f64>| a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let diff = inf(&(analytic - numeric));
    let scale = inf(analytic).max(inf(numeric));
    Ok(if scale == 0.0 { 0.0 } else { diff / scale })
}

fn verdict(tensor: String, analytic: Option<&ArrayD<f64>>, numeric: &ArrayD<f64>) -> TensorVerdict {
    match analytic.map(|a| compare(a, numeric)) {
        None => TensorVerdict {
            tensor,
            passed: false,
            max_rel_err: None,
            detail: Some("no gradient after backward".into()),
        },
        Some(Err(d)) => TensorVerdict {
            tensor,
            passed: false,
            max_rel_err: None,
            detail: Some(d),
        },
        Some(Ok(r)) => TensorVerdict {
            tensor,
            passed: r <= TOLERANCE,
            max_rel_err: Some(r),
            detail: None,
        },
    }
}

/// Checks `layer` at `inputs` with the projection drawn from
/// `RandomState::new(seed)`. Every differentiable input and every parameter
/// is checked element by element.
pub fn check(layer: &mut dyn Layer<f64>, inputs: &[ArrayD<f64>], seed: u32) -> CheckOutcome {
    let mut outcome = CheckOutcome {
        layer: layer.name(),
        error: None,
        tensors: Vec::new(),
    };
    let views: Vec<ArrayViewD<'_, f64>> = inputs.iter().map(|a| a.view()).collect();
    let out = match layer.forward(&views) {
        Ok(o) => o,
        Err(e) => {
            outcome.error = Some(format!("forward: {e}"));
            return outcome;
        }
    };
    let r = RandomState::new(seed).randn(out.shape());
    let grads = match layer.backward(r.view()) {
        Ok(g) => g,
        Err(e) => {
            outcome.error = Some(format!("backward: {e}"));
            return outcome;
        }
    };
    let param_grads: Vec<(String, Option<ArrayD<f64>>)> = layer
        .params()
        .iter()
        .map(|p| (p.name.clone(), p.grad.as_ref().map(|g| g.to_owned())))
        .collect();

    let run = |layer: &mut dyn Layer<f64>, inputs: &[ArrayD<f64>]| projected(layer, inputs, &r);
    for i in 0..layer.num_differentiable().min(inputs.len()) {
        let mut numeric = ArrayD::zeros(inputs[i].raw_dim());
        let mut xs = inputs.to_vec();
        for (k, g) in numeric.iter_mut().enumerate() {
            let orig = inputs[i].iter().nth(k).copied().expect("k < len");
            let mut at = |v: f64, xs: &mut Vec<ArrayD<f64>>| {
                *xs[i].iter_mut().nth(k).expect("k < len") = v;
                run(layer, xs)
            };
            match (at(orig + H, &mut xs), at(orig - H, &mut xs)) {
                (Ok(lp), Ok(lm)) => *g = (lp - lm) / (2.0 * H),
                (Err(e), _) | (_, Err(e)) => {
                    outcome.error = Some(format!("forward while perturbing input {i}: {e}"));
                    return outcome;
                }
            }
            *xs[i].iter_mut().nth(k).expect("k < len") = orig;
        }
        outcome
            .tensors
            .push(verdict(format!("input {i}"), grads.get(i), &numeric));
    }
    for (p, (name, analytic)) in param_grads.iter().enumerate() {
        let shape = layer.params()[p].value.raw_dim();
        let mut numeric = ArrayD::zeros(shape);
        for (k, g) in numeric.iter_mut().enumerate() {
            let orig = *layer.params()[p].value.iter().nth(k).expect("k < len");
            let at = |v: f64, layer: &mut dyn Layer<f64>| {
                *layer.params()[p].value.iter_mut().nth(k).expect("k < len") = v;
                run(layer, inputs)
            };
            let (lp, lm) = (at(orig + H, layer), at(orig - H, layer));
            *layer.params()[p].value.iter_mut().nth(k).expect("k < len") = orig;
            match (lp, lm) {
                (Ok(lp), Ok(lm)) => *g = (lp - lm) / (2.0 * H),
                (Err(e), _) | (_, Err(e)) => {
                    outcome.error = Some(format!("forward while perturbing {name}: {e}"));
                    return outcome;
                }
            }
        }
        outcome.tensors.push(verdict(
            format!("param {name}"),
            analytic.as_ref(),
            &numeric,
        ));
    }
    outcome
}
