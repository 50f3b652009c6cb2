//! Strategies and layer set-ups shared by the layers' property tests
//! ([`super::props`], against central differences) and checker tests
//! ([`super::checked`], through [`crate::check`]).

use super::*;
use crate::layer::Layer;
use ndarray::{Array1, ArrayD, IxDyn};
use proptest::prelude::*;

/// The proptest config: `PROPTEST_CASES` cases, 24 by default.
pub(crate) fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    ProptestConfig::with_cases(cases)
}

/// An array of the given shape with values in `[-2, 2]`.
pub(crate) fn array_of(shape: Vec<usize>) -> impl Strategy<Value = ArrayD<f64>> {
    let n: usize = shape.iter().product();
    proptest::collection::vec(-2.0f64..2.0, n)
        .prop_map(move |v| ArrayD::from_shape_vec(IxDyn(&shape), v).expect("length matches"))
}

/// Any shape of rank 1..=4 with 1..=64 elements.
pub(crate) fn any_shape() -> impl Strategy<Value = Vec<usize>> {
    (1usize..=4)
        .prop_flat_map(|rank| proptest::collection::vec(1usize..=5, rank))
        .prop_filter("at most 64 elements", |s| s.iter().product::<usize>() <= 64)
}

/// An image batch shape `(N, C, H, W)`: `N <= 2`, `C <= 3`, `H, W <= 8`.
pub(crate) fn image_shape() -> impl Strategy<Value = [usize; 4]> {
    (1usize..=2, 1usize..=3, 1usize..=8, 1usize..=8).prop_map(|(n, c, h, w)| [n, c, h, w])
}

/// A window `(FH, FW, stride, pad)` that fits an `(H, W)` image: kernel
/// `<= 3` (and `<= ` the padded size), stride `1..=3`, pad `0..=2` (and
/// `< FH, FW` when `pad_below_kernel`, as pooling requires).
pub(crate) fn window_for(
    h: usize,
    w: usize,
    pad_below_kernel: bool,
) -> impl Strategy<Value = (usize, usize, usize, usize)> {
    (0usize..=2).prop_flat_map(move |pad| {
        let lo = if pad_below_kernel { pad + 1 } else { 1 };
        let fh_max = 3.min(h + 2 * pad);
        let fw_max = 3.min(w + 2 * pad);
        if lo > fh_max || lo > fw_max {
            // No window with this padding fits: fall back to 1x1, pad 0.
            Just((1, 1, 1, 0)).boxed()
        } else {
            (lo..=fh_max, lo..=fw_max, 1usize..=3)
                .prop_map(move |(fh, fw, s)| (fh, fw, s, pad))
                .boxed()
        }
    })
}

/// Whether every feature (column of `(N, D)`, channel of `(N, C, H, W)`)
/// either has a single sample or a batch variance of at least 0.05. With a
/// variance near 0, `x̂ = (x − μ)/√(σ² + ε)` has derivatives of order
/// `ε^{-3/2}` that central differences at `h = 1e-5` cannot follow; the
/// checker proper estimates that error, this helper does not.
pub(crate) fn well_conditioned(x: &ArrayD<f64>) -> bool {
    let d = x.shape()[1];
    (0..d).all(|j| {
        let col = x.index_axis(ndarray::Axis(1), j);
        let m = col.len() as f64;
        let mean = col.sum() / m;
        col.len() == 1 || col.mapv(|v| (v - mean) * (v - mean)).sum() / m >= 0.05
    })
}

/// An image batch of [`image_shape`] whose channels are
/// [`well_conditioned`], for per-channel BatchNormalization.
pub(crate) fn well_conditioned_images() -> impl Strategy<Value = ArrayD<f64>> {
    image_shape()
        .prop_flat_map(|s| array_of(s.to_vec()))
        .prop_filter("well-conditioned batch statistics", well_conditioned)
}

/// An image batch and a window for it (see [`window_for`]).
pub(crate) fn image_and_window(
    pad_below_kernel: bool,
) -> impl Strategy<Value = (ArrayD<f64>, (usize, usize, usize, usize))> {
    image_shape().prop_flat_map(move |s| {
        (
            array_of(s.to_vec()),
            window_for(s[2], s[3], pad_below_kernel),
        )
    })
}

/// `x` with its values moved apart, order kept, so that no two are within
/// `gap` of each other: each value, in sorted order, is raised to at least
/// the previous one plus `gap`. For MaxPooling, whose gradient jumps where
/// two elements of a window tie: with random values in `[-2, 2]`, a window's
/// top two come within `h = 1e-5` of each other in about 1 case in 10,000
/// (one 24-case run in ~400; it happened in CI, and shrank to all zeros,
/// the tie itself). The checker proper handles
/// ties; this helper's central differences do not.
pub(crate) fn separated(x: &ArrayD<f64>, gap: f64) -> ArrayD<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    let flat: Vec<f64> = x.iter().copied().collect();
    order.sort_by(|&a, &b| flat[a].total_cmp(&flat[b]));
    let mut out = flat.clone();
    let mut prev = f64::NEG_INFINITY;
    for i in order {
        out[i] = flat[i].max(prev + gap);
        prev = out[i];
    }
    ArrayD::from_shape_vec(x.raw_dim(), out).expect("length matches")
}

/// A BatchNormalization case `(x (N, D), γ (D,), β (D,))`: `N` in
/// `min_batch..=6`, `D <= 4`, values in `[-2, 2]`, batch statistics
/// [`well_conditioned`].
pub(crate) fn batch_norm_case(
    min_batch: usize,
) -> impl Strategy<Value = (ArrayD<f64>, Array1<f64>, Array1<f64>)> {
    (min_batch..=6, 1usize..=4)
        .prop_flat_map(|(n, d)| (array_of(vec![n, d]), array_of(vec![d]), array_of(vec![d])))
        .prop_filter("well-conditioned batch statistics", |(x, _, _)| {
            well_conditioned(x)
        })
        .prop_map(|(x, gamma, beta)| {
            let gamma = gamma.into_dimensionality().expect("rank 1");
            let beta = beta.into_dimensionality().expect("rank 1");
            (x, gamma, beta)
        })
}

/// A BatchNormalization with `gamma` and `beta`, in training mode, or in
/// evaluation mode with running statistics from one forward of `x`.
pub(crate) fn batch_norm_in_mode(
    gamma: Array1<f64>,
    beta: Array1<f64>,
    x: &ArrayD<f64>,
    training: bool,
) -> BatchNormalization<f64> {
    let mut bn = BatchNormalization::with_params(gamma, beta).expect("matching γ and β");
    if !training {
        bn.forward(&[x.view()]).expect("forward succeeds");
        bn.set_training(false);
    }
    bn
}

/// A per-channel BatchNormalization for the image batch `x`: `γ_c = 0.5 +
/// 0.4 c`, `β = 0`.
pub(crate) fn channel_batch_norm(x: &ArrayD<f64>) -> BatchNormalization<f64> {
    let c = x.shape()[1];
    let gamma = Array1::from_shape_fn(c, |i| 0.5 + 0.4 * i as f64);
    BatchNormalization::with_params(gamma, Array1::zeros(c)).expect("matching γ and β")
}

/// A Dropout of probability `p` from `seed`, in the given mode, with the
/// mask of one forward of `x` frozen.
pub(crate) fn frozen_dropout(x: &ArrayD<f64>, p: f64, seed: u64, training: bool) -> Dropout<f64> {
    let mut d = Dropout::new(p, seed).expect("p in [0, 1)");
    d.set_training(training);
    d.forward(&[x.view()]).expect("forward succeeds");
    d.freeze_mask(true);
    d
}
