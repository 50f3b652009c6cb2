//! Test-only central differences for any [`Layer<f64>`], so each new layer's
//! backward is verified in its own unit tests without waiting for the crate's
//! full gradient checker (`crate::check`).
//!
//! The output is reduced to a scalar by a fixed pseudo-random projection
//! `L = Σ r ⊙ y` (never a plain sum, which hides bugs such as Σ softmax = 1),
//! and every element of every differentiable input and every parameter is
//! perturbed by `±h`.

use crate::layer::Layer;
use ndarray::{ArrayD, ArrayViewD, IxDyn};

/// A deterministic projection of the given shape with entries in about
/// `[-1, 1]`, none of them close to 0.
pub(crate) fn projection(shape: &[usize]) -> ArrayD<f64> {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n)
        .map(|i| {
            let s = ((i as f64 + 1.0) * 12.9898).sin() * 43758.5453;
            let u = s - s.floor(); // in [0, 1)
            let m = 0.3 + 0.7 * u;
            if i % 3 == 1 { -m } else { m }
        })
        .collect();
    ArrayD::from_shape_vec(IxDyn(shape), v).expect("length matches")
}

/// The projected loss `Σ r ⊙ y` at the given inputs.
fn loss(layer: &mut dyn Layer<f64>, inputs: &[ArrayD<f64>], r: &ArrayD<f64>) -> f64 {
    let views: Vec<ArrayViewD<'_, f64>> = inputs.iter().map(|a| a.view()).collect();
    let y = layer.forward(&views).expect("forward succeeds");
    (&y * r).sum()
}

/// For each differentiable input (named `"input k"`) and each parameter, the
/// largest error `|analytic − numeric| / max(1, |numeric|)` over its elements.
pub(crate) fn gradient_errors(
    layer: &mut dyn Layer<f64>,
    inputs: &[ArrayD<f64>],
    h: f64,
) -> Vec<(String, f64)> {
    let views: Vec<ArrayViewD<'_, f64>> = inputs.iter().map(|a| a.view()).collect();
    let y = layer.forward(&views).expect("forward succeeds");
    let r = projection(y.shape());
    let dx = layer.backward(r.view()).expect("backward succeeds");
    let pgrads: Vec<(String, ArrayD<f64>)> = layer
        .params()
        .into_iter()
        .map(|p| {
            (
                p.name,
                p.grad.expect("backward sets every gradient").to_owned(),
            )
        })
        .collect();
    let err = |a: f64, n: f64| (a - n).abs() / n.abs().max(1.0);
    let mut out = Vec::new();
    let mut xs: Vec<ArrayD<f64>> = inputs.to_vec();
    for (k, g) in dx.iter().enumerate() {
        assert_eq!(g.shape(), inputs[k].shape(), "dx{k} has its input's shape");
        let mut worst = 0.0f64;
        for i in 0..g.len() {
            let orig = xs[k].as_slice_memory_order().unwrap()[i];
            xs[k].as_slice_memory_order_mut().unwrap()[i] = orig + h;
            let lp = loss(layer, &xs, &r);
            xs[k].as_slice_memory_order_mut().unwrap()[i] = orig - h;
            let lm = loss(layer, &xs, &r);
            xs[k].as_slice_memory_order_mut().unwrap()[i] = orig;
            let num = (lp - lm) / (2.0 * h);
            worst = worst.max(err(g.as_slice_memory_order().unwrap()[i], num));
        }
        out.push((format!("input {k}"), worst));
    }
    for (p, (name, g)) in pgrads.iter().enumerate() {
        let mut worst = 0.0f64;
        for i in 0..g.len() {
            let set = |layer: &mut dyn Layer<f64>, v: f64| {
                layer.params()[p].value.as_slice_memory_order_mut().unwrap()[i] = v;
            };
            let orig = layer.params()[p].value.as_slice_memory_order().unwrap()[i];
            set(layer, orig + h);
            let lp = loss(layer, &xs, &r);
            set(layer, orig - h);
            let lm = loss(layer, &xs, &r);
            set(layer, orig);
            let num = (lp - lm) / (2.0 * h);
            worst = worst.max(err(g.as_slice_memory_order().unwrap()[i], num));
        }
        out.push((name.clone(), worst));
    }
    out
}

/// Panics unless every gradient of `layer` at `inputs` agrees with central
/// differences to within `tol`.
#[track_caller]
pub(crate) fn assert_gradients_ok(layer: &mut dyn Layer<f64>, inputs: &[ArrayD<f64>], tol: f64) {
    for (name, e) in gradient_errors(layer, inputs, 1e-5) {
        assert!(e <= tol, "{}: {name} error {e:e} > {tol:e}", layer.name());
    }
}

/// The largest error over all tensors.
pub(crate) fn worst_error(layer: &mut dyn Layer<f64>, inputs: &[ArrayD<f64>]) -> f64 {
    gradient_errors(layer, inputs, 1e-5)
        .into_iter()
        .map(|(_, e)| e)
        .fold(0.0, f64::max)
}

/// A deterministic array of the given shape with well-separated values in
/// about `[-2, 2]` (no two within `4/n` of each other, none within `1/n` of 0), for inputs that
/// keep ReLU-like kinks and max-pooling ties out of reach of `h`.
pub(crate) fn spread(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let n: usize = shape.iter().product();
    // A permutation of 0..n (multiplier coprime with n), scaled.
    let mult = (0..)
        .map(|k| 7 + 2 * k + seed as usize * 6)
        .find(|m| gcd(*m, n.max(1)) == 1)
        .unwrap();
    let v: Vec<f64> = (0..n)
        .map(|i| {
            let j = (i * mult + seed as usize) % n.max(1);
            // (j + 1/4) / n is never 1/2, so |x| >= 1/n.
            let t = (j as f64 + 0.25) / n as f64;
            4.0 * t - 2.0
        })
        .collect();
    ArrayD::from_shape_vec(IxDyn(shape), v).expect("length matches")
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}
