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
use ndarray::{ArrayD, ArrayViewD, Axis, Zip};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A parameter's shape and gradient after one backward.
#[derive(Debug, Clone)]
pub(crate) struct ParamGrad<F> {
    pub name: String,
    /// The value's shape.
    pub shape: Vec<usize>,
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

/// Reads the parameters' shapes and gradients.
pub(crate) fn read_params<F: Float, L: Layer<F> + ?Sized>(layer: &mut L) -> Vec<ParamGrad<F>> {
    layer
        .params()
        .into_iter()
        .map(|p| ParamGrad {
            name: p.name,
            shape: p.value.shape().to_vec(),
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

/// Backward with `dout` after the caller's forward.
pub(crate) fn backward<F: Float, L: Layer<F> + ?Sized>(
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
fn max_abs<F: Float>(a: ArrayViewD<'_, F>) -> f64 {
    a.fold(0.0f64, |m, v| m.max(v.f64().abs()))
}

/// `a ≈ k·b` elementwise within `16 eps` of the scale; `None` if equal,
/// else the first differing position. One pass unless they differ.
fn differs<F: Float>(a: ArrayViewD<'_, F>, b: ArrayViewD<'_, F>, k: f64) -> Option<String> {
    if a.shape() != b.shape() {
        return Some(format!("shape {:?} vs {:?}", a.shape(), b.shape()));
    }
    let (ma, mb, gap, sum) = gaps(a.view(), b.view(), k);
    // The sum of the gaps is NaN if any gap is.
    let nan = sum.is_nan();
    let tol = 16.0 * F::EPSILON.f64() * ma.max(k.abs() * mb);
    if !nan && gap <= tol {
        return None;
    }
    let (i, (x, y)) = a
        .iter()
        .zip(b.iter())
        .map(|(x, y)| (x.f64(), k * y.f64()))
        .enumerate()
        .find(|(_, (x, y))| {
            let close = (x - y).abs() <= tol; // false for NaN
            !close
        })?;
    Some(format!("element {i}: {x:e} vs expected {y:e}"))
}

/// `(max|a|, max|b|, max|a − k·b|, Σ|a − k·b|)`. The maxima skip NaN; the
/// sum does not.
fn gaps<F: Float>(a: ArrayViewD<'_, F>, b: ArrayViewD<'_, F>, k: f64) -> (f64, f64, f64, f64) {
    let max = |m: f64, v: f64| if v > m { v } else { m };
    let step = |acc: &mut [f64; 4], x: F, y: F| {
        let (x, y) = (x.f64(), y.f64());
        let d = (x - k * y).abs();
        *acc = [
            max(acc[0], x.abs()),
            max(acc[1], y.abs()),
            max(acc[2], d),
            acc[3] + d,
        ];
    };
    let mut acc = [0.0f64; 4];
    match (a.as_slice(), b.as_slice()) {
        (Some(xs), Some(ys)) => {
            // Four independent accumulators, which the compiler vectorises.
            const LANES: usize = 4;
            let mut lanes = [[0.0f64; 4]; LANES];
            let (xc, yc) = (xs.chunks_exact(LANES), ys.chunks_exact(LANES));
            let (xt, yt) = (xc.remainder(), yc.remainder());
            for (xl, yl) in xc.zip(yc) {
                for l in 0..LANES {
                    step(&mut lanes[l], xl[l], yl[l]);
                }
            }
            for (&x, &y) in xt.iter().zip(yt) {
                step(&mut acc, x, y);
            }
            for l in lanes {
                acc = [
                    max(acc[0], l[0]),
                    max(acc[1], l[1]),
                    max(acc[2], l[2]),
                    acc[3] + l[3],
                ];
            }
        }
        _ => Zip::from(&a)
            .and(&b)
            .for_each(|&x, &y| step(&mut acc, x, y)),
    }
    (acc[0], acc[1], acc[2], acc[3])
}

/// A fingerprint of a tensor's exact bits: tells a modified tensor from an
/// unmodified one without keeping a copy. Each element's bits, rotated by
/// an amount that depends on its position, are XORed into one of eight
/// lanes: a change to any one element always changes it, and a change to
/// several goes unnoticed only if their bit differences cancel exactly.
fn fingerprint<F: Float>(a: ArrayViewD<'_, F>) -> [u64; 8] {
    let mut h = [a.len() as u64; 8];
    let mut mix = |i: usize, v: F| {
        h[i % 8] ^= v.f64().to_bits().rotate_left((i / 8 % 64) as u32);
    };
    match a.as_slice() {
        Some(s) => s.iter().enumerate().for_each(|(i, &v)| mix(i, v)),
        None => a.iter().enumerate().for_each(|(i, &v)| mix(i, v)),
    }
    h
}

/// Compares the input gradients `grads` and the parameter gradients the
/// layer holds now with `k ×` the reference, without copying them.
fn compare_held<F: Float, L: Layer<F> + ?Sized>(
    grads: &[ArrayD<F>],
    layer: &mut L,
    reference: &Analytic<F>,
    k: f64,
) -> Option<String> {
    if grads.len() != reference.grads.len() {
        return Some(format!(
            "{} input gradient(s) instead of {}",
            grads.len(),
            reference.grads.len()
        ));
    }
    for (i, (g, r)) in grads.iter().zip(&reference.grads).enumerate() {
        if let Some(d) = differs(g.view(), r.view(), k) {
            return Some(format!("input {i}: {d}"));
        }
    }
    for (p, r) in layer.params().iter().zip(&reference.params) {
        match (&p.grad, &r.grad) {
            (Some(g), Some(rg)) => {
                if let Some(d) = differs(g.view(), rg.view(), k) {
                    return Some(format!("{}: {d}", p.name));
                }
            }
            (None, None) => {}
            _ => return Some(format!("{}: gradient present in one call only", p.name)),
        }
    }
    None
}

/// Forward on `inputs`, backward with `dout`, then [`compare_held`].
fn forward_backward_compare<F: Float, L: Layer<F> + ?Sized>(
    layer: &mut L,
    inputs: &[ArrayD<F>],
    dout: &ArrayD<F>,
    reference: &Analytic<F>,
    k: f64,
) -> Result<Option<String>> {
    layer.forward(&views(inputs))?;
    let grads = layer.backward(dout.view())?;
    Ok(compare_held(&grads, layer, reference, k))
}

/// Whether some parameter's gradient, as the layer holds it after a second
/// backward, grew by the fresh gradient from the reference call
/// (`held − reference ≈ reference`), the signature of `grad += ...` instead
/// of `grad = ...`.
fn accumulates<F: Float, L: Layer<F> + ?Sized>(layer: &mut L, reference: &Analytic<F>) -> bool {
    let mut any = false;
    for (p, r) in layer.params().iter().zip(&reference.params) {
        if let (Some(b), Some(r)) = (&p.grad, &r.grad) {
            if b.shape() != r.shape() || max_abs(r.view()) == 0.0 {
                continue;
            }
            if differs(b.view(), r.view(), 1.0).is_none() {
                continue;
            }
            // Allow for round-off growing with the accumulated size.
            let tol = 64.0 * F::EPSILON.f64() * max_abs(b.view());
            let grown = Zip::from(b)
                .and(r)
                .all(|b, r| ((b.f64() - r.f64()) - r.f64()).abs() <= tol);
            if !grown {
                return false;
            }
            any = true;
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
            Some(g) if g.shape() != p.shape.as_slice() => problems.push(format!(
                "{}: gradient shape {:?}, value shape {:?}",
                p.name,
                g.shape(),
                p.shape
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

/// Runs the behavioural contracts. `reference` must be what the layer's
/// latest calls produced: a forward on `inputs`, then backward with `dout`.
/// Leaves the layer's parameters as they were and its cache and gradients as
/// after a fresh forward + backward(`dout`).
pub(crate) fn behaviour<F: Float, L: Layer<F> + ?Sized>(
    layer: &mut L,
    inputs: &[ArrayD<F>],
    dout: &ArrayD<F>,
    reference: &Analytic<F>,
    seed: u64,
) -> Result<Vec<ContractResult>> {
    let inputs_before: Vec<ArrayD<F>> = inputs.to_vec();
    let dout_before = dout.clone();
    let params_before: Vec<[u64; 8]> = layer
        .params()
        .iter()
        .map(|p| fingerprint(p.value.view()))
        .collect();
    let mut out = Vec::new();

    // Repeatable: a second backward after the reference's forward + backward.
    let grads = layer.backward(dout.view())?;
    let mut failure = compare_held(&grads, layer, reference, 1.0);
    if let Some(m) = &failure
        && accumulates(layer, reference)
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
    layer.forward(&views(inputs))?;
    let grads = layer.backward(zero.view())?;
    let nonzero = |g: ArrayViewD<'_, F>| !g.fold(true, |zero, v| zero && *v == F::zero());
    let mut zfail = grads.iter().enumerate().find(|(_, g)| nonzero(g.view())).map(|(k, g)| {
        format!(
            "dout = 0 gave a nonzero gradient for input {k} (max |g| = {:e}): backward ignores dout",
            max_abs(g.view())
        )
    });
    if zfail.is_none() {
        zfail = layer.params().iter().find_map(|p| {
            let g = p.grad.as_ref().filter(|g| nonzero(g.view()))?;
            Some(format!(
                "dout = 0 gave a nonzero gradient for {} (max |g| = {:e}): backward ignores dout",
                p.name,
                max_abs(g.view())
            ))
        });
    }
    out.push(result(
        "zero dout gives zero gradients",
        zfail,
        "all gradients exactly 0",
    ));
    let two = dout.mapv(|v| v + v);
    let dfail = forward_backward_compare(layer, inputs, &two, reference, 2.0)?
        .map(|m| format!("2·dout did not double the gradients: {m}"));
    out.push(result(
        "linear in dout",
        dfail,
        "2·dout gives 2× the gradients",
    ));

    // Latest forward: forward(A), forward(B), backward == fresh backward on B.
    // It ends with forward(inputs) + backward(dout), the state to leave.
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_1a7e_57f0_4a4d);
    let num_diff = reference.grads.len().min(inputs.len());
    let lfail = if num_diff == 0 {
        forward_backward(layer, inputs, dout)?;
        None
    } else {
        let other: Vec<ArrayD<F>> = inputs
            .iter()
            .enumerate()
            .map(|(k, x)| {
                if k < num_diff {
                    x.mapv(|v| {
                        let s = v.f64().abs().max(1.0);
                        let shift: f64 = rng.random_range(0.5..1.0)
                            * if rng.random_bool(0.5) { 1.0 } else { -1.0 };
                        F::of(v.f64() + shift * s)
                    })
                } else {
                    x.clone()
                }
            })
            .collect();
        layer.forward(&views(&other))?;
        forward_backward_compare(layer, inputs, dout, reference, 1.0)?.map(|m| {
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
    for (p, before) in layer.params().iter().zip(&params_before) {
        if fingerprint(p.value.view()) != *before {
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
        assert!(differs(a.view(), b.view(), 1.0).is_none());
        let c = arr1(&[1.0f64 + 1e-9, 2.0]).into_dyn();
        assert!(differs(a.view(), c.view(), 1.0).is_some());
        let half = a.mapv(|v| v / 2.0);
        assert!(differs(a.view(), half.view(), 2.0).is_none());
    }

    #[test]
    fn nan_always_differs() {
        let a = arr1(&[f64::NAN]).into_dyn();
        assert!(differs(a.view(), a.view(), 1.0).is_some());
    }
}
