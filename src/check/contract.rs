//! Contract checks beside the numeric one: gradient shapes, repeatable
//! backward (no accumulation), linearity in `dout`, use of the latest forward,
//! arguments left unmodified, and layer invariants.
//!
//! Generic over the float type, so the f32 check runs them on the f32 layer.
//! Gradients that should be identical are compared with a tolerance of
//! `16 · eps` of the tensor's scale rather than bit for bit, so a backward that
//! legitimately reorders a reduction (a parallel sum) is not flagged.

use super::config::Invariant;
use super::report::ContractResult;
use crate::error::Result;
use crate::float::Float;
use crate::layer::Layer;
use ndarray::{ArrayD, ArrayViewD, Axis};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A parameter's value and gradient after one backward.
#[derive(Debug, Clone)]
pub(crate) struct ParamGrad<F> {
    pub name: String,
    pub value: ArrayD<F>,
    pub grad: Option<ArrayD<F>>,
}

/// What one forward + backward produced.
#[derive(Debug, Clone)]
pub(crate) struct Analytic<F> {
    pub grads: Vec<ArrayD<F>>,
    pub params: Vec<ParamGrad<F>>,
}

pub(crate) fn views<F>(inputs: &[ArrayD<F>]) -> Vec<ArrayViewD<'_, F>> {
    inputs.iter().map(|a| a.view()).collect()
}

/// Reads the parameters' values and gradients.
pub(crate) fn read_params<F: Float, L: Layer<F> + ?Sized>(layer: &mut L) -> Vec<ParamGrad<F>> {
    layer
        .params()
        .into_iter()
        .map(|p| ParamGrad {
            name: p.name,
            value: p.value.to_owned(),
            grad: p.grad.map(|g| g.to_owned()),
        })
        .collect()
}

/// Forward on `inputs`, backward with `dout`.
pub(crate) fn forward_backward<F: Float, L: Layer<F> + ?Sized>(
    layer: &mut L,
    inputs: &[ArrayD<F>],
    dout: &ArrayD<F>,
) -> Result<Analytic<F>> {
    layer.forward(&views(inputs))?;
    backward(layer, dout)
}

fn backward<F: Float, L: Layer<F> + ?Sized>(
    layer: &mut L,
    dout: &ArrayD<F>,
) -> Result<Analytic<F>> {
    let grads = layer.backward(dout.view())?;
    Ok(Analytic {
        grads,
        params: read_params(layer),
    })
}

/// Largest |v| of a tensor (0 for none), ignoring NaN.
fn max_abs<F: Float>(a: &ArrayD<F>) -> f64 {
    a.iter().fold(0.0f64, |m, v| m.max(v.f64().abs()))
}

/// `a ≈ k·b` elementwise within `16 eps` of the scale; `None` if equal,
/// else the first differing position.
fn differs<F: Float>(a: &ArrayD<F>, b: &ArrayD<F>, k: f64) -> Option<String> {
    if a.shape() != b.shape() {
        return Some(format!("shape {:?} vs {:?}", a.shape(), b.shape()));
    }
    let scale = max_abs(a).max(k.abs() * max_abs(b));
    let tol = 16.0 * F::EPSILON.f64() * scale;
    for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
        let (x, y) = (x.f64(), k * y.f64());
        let close = (x - y).abs() <= tol; // false for NaN
        if !close {
            return Some(format!("element {i}: {x:e} vs expected {y:e}"));
        }
    }
    None
}

/// Compares every gradient of `got` with `k ×` the reference.
fn compare_all<F: Float>(got: &Analytic<F>, reference: &Analytic<F>, k: f64) -> Option<String> {
    if got.grads.len() != reference.grads.len() {
        return Some(format!(
            "{} input gradient(s) instead of {}",
            got.grads.len(),
            reference.grads.len()
        ));
    }
    for (i, (g, r)) in got.grads.iter().zip(&reference.grads).enumerate() {
        if let Some(d) = differs(g, r, k) {
            return Some(format!("input {i}: {d}"));
        }
    }
    for (p, r) in got.params.iter().zip(&reference.params) {
        match (&p.grad, &r.grad) {
            (Some(g), Some(rg)) => {
                if let Some(d) = differs(g, rg, k) {
                    return Some(format!("{}: {d}", p.name));
                }
            }
            (None, None) => {}
            _ => return Some(format!("{}: gradient present in one call only", p.name)),
        }
    }
    None
}

/// Whether some parameter's gradient grew by the fresh gradient from the
/// first call to the second (`second − first ≈ reference`), the signature
/// of `grad += ...` instead of `grad = ...`.
fn accumulates<F: Float>(
    first: &Analytic<F>,
    second: &Analytic<F>,
    reference: &Analytic<F>,
) -> bool {
    let mut any = false;
    for ((a, b), r) in first
        .params
        .iter()
        .zip(&second.params)
        .zip(&reference.params)
    {
        if let (Some(a), Some(b), Some(r)) = (&a.grad, &b.grad, &r.grad) {
            if a.shape() != b.shape() || a.shape() != r.shape() || max_abs(r) == 0.0 {
                continue;
            }
            let grown = b - a;
            if differs(&grown, r, 1.0).is_some() && differs(a, b, 1.0).is_some() {
                // Allow for round-off growing with the accumulated size.
                let scale = max_abs(b);
                let tol = 64.0 * F::EPSILON.f64() * scale;
                if !grown
                    .iter()
                    .zip(r.iter())
                    .all(|(g, r)| (g.f64() - r.f64()).abs() <= tol)
                {
                    return false;
                }
            }
            if differs(a, b, 1.0).is_some() {
                any = true;
            }
        }
    }
    any
}

fn result(name: &str, failure: Option<String>, ok_detail: &str) -> ContractResult {
    ContractResult {
        name: name.to_string(),
        passed: failure.is_none(),
        detail: failure.unwrap_or_else(|| ok_detail.to_string()),
    }
}

/// The shapes contract: one gradient per differentiable input, each in its
/// input's shape, and a gradient of the value's shape for every parameter.
pub(crate) fn shapes<F: Float>(
    reference: &Analytic<F>,
    inputs: &[ArrayD<F>],
    num_differentiable: usize,
) -> ContractResult {
    let mut problems = Vec::new();
    if reference.grads.len() != num_differentiable {
        problems.push(format!(
            "backward returned {} gradient(s) for {} differentiable input(s)",
            reference.grads.len(),
            num_differentiable
        ));
    }
    for (k, (g, x)) in reference.grads.iter().zip(inputs).enumerate() {
        if g.shape() != x.shape() {
            problems.push(format!(
                "input {k}: gradient shape {:?}, input shape {:?}",
                g.shape(),
                x.shape()
            ));
        }
    }
    for p in &reference.params {
        match &p.grad {
            None => problems.push(format!("{}: no gradient after backward", p.name)),
            Some(g) if g.shape() != p.value.shape() => problems.push(format!(
                "{}: gradient shape {:?}, value shape {:?}",
                p.name,
                g.shape(),
                p.value.shape()
            )),
            _ => {}
        }
    }
    let failure = (!problems.is_empty()).then(|| problems.join("; "));
    result(
        "gradient shapes",
        failure,
        "one gradient per tensor, shapes match",
    )
}

/// Runs the behavioural contracts. `reference` is a fresh forward + backward
/// with `dout` on `inputs`. Leaves the layer's parameters as they were and
/// its cache and gradients as after a fresh forward + backward(`dout`).
pub(crate) fn behaviour<F: Float, L: Layer<F> + ?Sized>(
    layer: &mut L,
    inputs: &[ArrayD<F>],
    dout: &ArrayD<F>,
    reference: &Analytic<F>,
    seed: u64,
) -> Result<Vec<ContractResult>> {
    let inputs_before: Vec<ArrayD<F>> = inputs.to_vec();
    let dout_before = dout.clone();
    let params_before: Vec<ArrayD<F>> = reference.params.iter().map(|p| p.value.clone()).collect();
    let mut out = Vec::new();

    // Repeatable: two backward calls after one forward.
    layer.forward(&views(inputs))?;
    let first = backward(layer, dout)?;
    let second = backward(layer, dout)?;
    let mut failure = compare_all(&second, &first, 1.0);
    if let Some(m) = &failure
        && accumulates(&first, &second, reference)
    {
        failure = Some(format!(
            "each backward adds the fresh gradient to the stored one: parameter gradients accumulate across calls ({m})"
        ));
    }
    out.push(result(
        "backward repeatable",
        failure,
        "two backward calls after one forward agree (no accumulation)",
    ));

    // Linear in dout: zero gives zero, 2·dout gives twice.
    let zero = ArrayD::<F>::zeros(dout.raw_dim());
    let z = forward_backward(layer, inputs, &zero)?;
    let mut zfail = None;
    for (k, g) in z.grads.iter().enumerate() {
        if g.iter().any(|v| *v != F::zero()) {
            zfail = Some(format!(
                "dout = 0 gave a nonzero gradient for input {k} (max |g| = {:e}): backward ignores dout",
                max_abs(g)
            ));
            break;
        }
    }
    if zfail.is_none() {
        for p in &z.params {
            if let Some(g) = &p.grad
                && g.iter().any(|v| *v != F::zero())
            {
                zfail = Some(format!(
                    "dout = 0 gave a nonzero gradient for {} (max |g| = {:e}): backward ignores dout",
                    p.name,
                    max_abs(g)
                ));
                break;
            }
        }
    }
    out.push(result(
        "zero dout gives zero gradients",
        zfail,
        "all gradients exactly 0",
    ));
    let two = dout.mapv(|v| v + v);
    let d = forward_backward(layer, inputs, &two)?;
    let dfail = compare_all(&d, reference, 2.0)
        .map(|m| format!("2·dout did not double the gradients: {m}"));
    out.push(result(
        "linear in dout",
        dfail,
        "2·dout gives 2× the gradients",
    ));

    // Latest forward: forward(A), forward(B), backward == fresh backward on B.
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_1a7e_57f0_4a4d);
    let num_diff = reference.grads.len().min(inputs.len());
    let other: Vec<ArrayD<F>> = inputs
        .iter()
        .enumerate()
        .map(|(k, x)| {
            if k < num_diff {
                x.mapv(|v| {
                    let s = v.f64().abs().max(1.0);
                    let shift: f64 =
                        rng.random_range(0.5..1.0) * if rng.random_bool(0.5) { 1.0 } else { -1.0 };
                    F::of(v.f64() + shift * s)
                })
            } else {
                x.clone()
            }
        })
        .collect();
    let lfail = if num_diff == 0 {
        None
    } else {
        layer.forward(&views(&other))?;
        let l = forward_backward(layer, inputs, dout)?;
        compare_all(&l, reference, 1.0).map(|m| {
            format!("after forward(A), forward(B), backward differs from a fresh forward(B) + backward: stale cache ({m})")
        })
    };
    out.push(result(
        "backward uses the latest forward",
        lfail,
        if num_diff == 0 {
            "not applicable (no differentiable inputs)"
        } else {
            "forward(A), forward(B), backward equals fresh forward(B), backward"
        },
    ));

    // Leave the layer as after a fresh forward + backward.
    forward_backward(layer, inputs, dout)?;

    // Arguments unmodified.
    let mut mods = Vec::new();
    for (k, (a, b)) in inputs.iter().zip(&inputs_before).enumerate() {
        if a != b {
            mods.push(format!("input {k}"));
        }
    }
    if *dout != dout_before {
        mods.push("dout".into());
    }
    let now = read_params(layer);
    for (p, before) in now.iter().zip(&params_before) {
        if p.value != *before {
            mods.push(format!("parameter {}", p.name));
        }
    }
    let mfail =
        (!mods.is_empty()).then(|| format!("modified by forward/backward: {}", mods.join(", ")));
    out.push(result(
        "arguments unmodified",
        mfail,
        "inputs, dout and parameters unchanged by forward/backward",
    ));
    Ok(out)
}

/// Checks the configured invariants on the reference gradients.
pub(crate) fn invariants<F: Float>(
    reference: &Analytic<F>,
    invariants: &[Invariant],
    atol: f64,
) -> Vec<ContractResult> {
    invariants
        .iter()
        .map(|inv| match *inv {
            Invariant::RowsSumToZero { input } => {
                let name = format!("rows of input {input}'s gradient sum to 0");
                let Some(g) = reference.grads.get(input) else {
                    return result(&name, Some(format!("no gradient for input {input}")), "");
                };
                if g.ndim() == 0 {
                    return result(&name, Some("gradient is 0-d".into()), "");
                }
                let rows = if g.ndim() == 1 {
                    g.view().insert_axis(Axis(0)).into_owned()
                } else {
                    g.clone()
                };
                let mut failure = None;
                for (i, row) in rows.axis_iter(Axis(0)).enumerate() {
                    let sum: f64 = row.iter().map(|v| v.f64()).sum();
                    let abs: f64 = row.iter().map(|v| v.f64().abs()).sum();
                    let tol = 64.0 * F::EPSILON.f64() * abs + atol;
                    let zero = sum.abs() <= tol; // false for NaN
                    if !zero {
                        failure = Some(format!("row {i} sums to {sum:e}"));
                        break;
                    }
                }
                result(&name, failure, "every row sums to 0")
            }
            Invariant::FeaturesSumToZero { input } => {
                let name =
                    format!("each feature of input {input}'s gradient sums to 0 over the batch");
                let Some(g) = reference.grads.get(input) else {
                    return result(&name, Some(format!("no gradient for input {input}")), "");
                };
                if g.ndim() < 2 {
                    return result(
                        &name,
                        Some(format!("gradient is {}-d; (N, D, ...) needed", g.ndim())),
                        "",
                    );
                }
                let mut failure = None;
                for (j, feature) in g.axis_iter(Axis(1)).enumerate() {
                    let sum: f64 = feature.iter().map(|v| v.f64()).sum();
                    let abs: f64 = feature.iter().map(|v| v.f64().abs()).sum();
                    let tol = 64.0 * F::EPSILON.f64() * abs + atol;
                    let zero = sum.abs() <= tol; // false for NaN
                    if !zero {
                        failure = Some(format!(
                            "feature {j} sums to {sum:e}: dx does not sum to zero over the batch \
                             per feature: the terms through the batch mean/variance are missing"
                        ));
                        break;
                    }
                }
                result(&name, failure, "every feature sums to 0 over the batch")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::arr1;

    #[test]
    fn differs_tolerates_rounding_but_not_more() {
        let a = arr1(&[1.0f64, 2.0]).into_dyn();
        let b = arr1(&[1.0f64 + 1e-15, 2.0]).into_dyn();
        assert!(differs(&a, &b, 1.0).is_none());
        let c = arr1(&[1.0f64 + 1e-9, 2.0]).into_dyn();
        assert!(differs(&a, &c, 1.0).is_some());
        let half = a.mapv(|v| v / 2.0);
        assert!(differs(&a, &half, 2.0).is_none());
    }

    #[test]
    fn nan_always_differs() {
        let a = arr1(&[f64::NAN]).into_dyn();
        assert!(differs(&a, &a.clone(), 1.0).is_some());
    }
}
