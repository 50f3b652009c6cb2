//! Property tests for the layers beyond the tutorial (Tanh, LeakyRelu,
//! Softplus, Dropout, BatchNormalization, Convolution, Max/AveragePooling)
//! and the reference models: on every generated case the backward agrees
//! with central differences.
//!
//! Shapes are small, as the issue fixes them: `N <= 2` images with
//! `C <= 3`, `H, W <= 8`, kernels `<= 3`; element-wise layers get any shape
//! of rank 1..=4 with at most 64 elements. Values are in `[-2, 2]`; all
//! randomness comes from the strategies, so failures shrink. The number of
//! cases is 24 per property unless `PROPTEST_CASES` says otherwise.

use super::numeric::assert_gradients_ok;
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

/// An image batch and a window for it.
fn image_and_window(
    pad_below_kernel: bool,
) -> impl Strategy<Value = (ArrayD<f64>, (usize, usize, usize, usize))> {
    image_shape().prop_flat_map(move |s| {
        (
            array_of(s.to_vec()),
            window_for(s[2], s[3], pad_below_kernel),
        )
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn tanh_agrees_with_central_differences(x in any_shape().prop_flat_map(array_of)) {
        assert_gradients_ok(&mut Tanh::new(), &[x], 1e-7);
    }

    #[test]
    fn softplus_agrees_with_central_differences(x in any_shape().prop_flat_map(array_of)) {
        assert_gradients_ok(&mut Softplus::new(), &[x], 1e-7);
    }

    #[test]
    fn leaky_relu_agrees_with_central_differences(
        x in any_shape().prop_flat_map(array_of),
        alpha in -0.5f64..0.5,
    ) {
        // Values within 1e-4 of the kink are moved off it (the checker
        // proper handles kinks; this helper does not).
        let x = x.mapv(|v| if v.abs() < 1e-4 { 0.5 } else { v });
        assert_gradients_ok(&mut LeakyRelu::new(alpha).unwrap(), &[x], 1e-7);
    }

    #[test]
    fn dropout_with_a_frozen_mask_agrees_with_central_differences(
        x in any_shape().prop_flat_map(array_of),
        p in 0.0f64..0.9,
        seed in any::<u64>(),
        training in any::<bool>(),
    ) {
        let mut d = Dropout::new(p, seed).unwrap();
        d.set_training(training);
        d.forward(&[x.view()]).unwrap();
        d.freeze_mask(true);
        assert_gradients_ok(&mut d, &[x], 1e-8);
    }

    #[test]
    fn batch_norm_agrees_with_central_differences(
        (x, gamma, beta) in (1usize..=6, 1usize..=4)
            .prop_flat_map(|(n, d)| (array_of(vec![n, d]), array_of(vec![d]), array_of(vec![d])))
            .prop_filter("well-conditioned batch statistics", |(x, _, _)| well_conditioned(x)),
        training in any::<bool>(),
    ) {
        let gamma: Array1<f64> = gamma.into_dimensionality().unwrap();
        let beta: Array1<f64> = beta.into_dimensionality().unwrap();
        let mut bn = BatchNormalization::with_params(gamma, beta).unwrap();
        if !training {
            bn.forward(&[x.view()]).unwrap();
            bn.set_training(false);
        }
        assert_gradients_ok(&mut bn, &[x], 1e-6);
    }

    #[test]
    fn per_channel_batch_norm_agrees_with_central_differences(
        x in image_shape()
            .prop_flat_map(|s| array_of(s.to_vec()))
            .prop_filter("well-conditioned batch statistics", well_conditioned),
    ) {
        let c = x.shape()[1];
        let gamma = Array1::from_shape_fn(c, |i| 0.5 + 0.4 * i as f64);
        let mut bn = BatchNormalization::with_params(gamma, Array1::zeros(c)).unwrap();
        assert_gradients_ok(&mut bn, &[x], 1e-6);
    }

    #[test]
    fn convolution_agrees_with_central_differences(
        ((x, (fh, fw, s, p)), fnum, seed) in (image_and_window(false), 1usize..=3, 0u64..1000),
    ) {
        let c = x.shape()[1];
        let w = numeric::spread(&[fnum, c, fh, fw], seed);
        let b = numeric::spread(&[fnum], seed + 1);
        let mut conv = Convolution::new(
            w.into_dimensionality().unwrap(),
            b.into_dimensionality().unwrap(),
            s,
            p,
        )
        .unwrap();
        assert_gradients_ok(&mut conv, &[x], 1e-7);
    }

    #[test]
    fn max_pooling_agrees_with_central_differences(
        (x, (ph, pw, s, p)) in image_and_window(true),
    ) {
        assert_gradients_ok(&mut MaxPooling::new(ph, pw, s, p).unwrap(), &[x], 1e-7);
    }

    #[test]
    fn average_pooling_agrees_with_central_differences(
        (x, (ph, pw, s, p)) in image_and_window(true),
    ) {
        assert_gradients_ok(&mut AveragePooling::new(ph, pw, s, p).unwrap(), &[x], 1e-8);
    }
}

/// Column-major inputs and `dout`s (a transposed view) give the same results
/// as their row-major copies, for every layer, and never panic. (Found by
/// the property tests: ndarray's `dot` and `to_owned` keep column-major
/// layouts, which a row-major `into_shape_with_order` then refused.)
#[test]
fn column_major_inputs_and_douts_match_row_major_copies() {
    let f_order = |shape: &[usize], seed| {
        // The transpose of a row-major array is column-major.
        let rev: Vec<usize> = shape.iter().rev().copied().collect();
        numeric::spread(&rev, seed).reversed_axes()
    };
    let mut layers: Vec<(Box<dyn Layer<f64>>, Vec<usize>)> = vec![
        (
            Box::new(
                Affine::new(
                    ndarray::arr2(&[[1.0, 2.0, 0.5], [3.0, 4.0, -1.0]]),
                    ndarray::arr1(&[0.1, 0.2, 0.3]),
                )
                .unwrap(),
            ),
            vec![4, 2],
        ),
        (Box::new(Tanh::new()), vec![3, 4]),
        (Box::new(LeakyRelu::new(0.1).unwrap()), vec![3, 4]),
        (Box::new(Softplus::new()), vec![3, 4]),
        (Box::new(BatchNormalization::new(4).unwrap()), vec![3, 4]),
        (
            Box::new(BatchNormalization::new(2).unwrap()),
            vec![2, 2, 3, 2],
        ),
        (
            Box::new(
                Convolution::new(
                    numeric::spread(&[2, 2, 2, 2], 3)
                        .into_dimensionality()
                        .unwrap(),
                    ndarray::arr1(&[0.0, 1.0]),
                    1,
                    1,
                )
                .unwrap(),
            ),
            vec![2, 2, 3, 2],
        ),
        (
            Box::new(MaxPooling::new(2, 2, 1, 1).unwrap()),
            vec![2, 2, 3, 2],
        ),
        (
            Box::new(AveragePooling::new(2, 2, 1, 1).unwrap()),
            vec![2, 2, 3, 2],
        ),
    ];
    for (layer, shape) in &mut layers {
        let xf = f_order(shape, 1);
        let xc = xf.as_standard_layout().into_owned();
        let yc = layer.forward(&[xc.view()]).unwrap();
        let dc = numeric::spread(yc.shape(), 2);
        let gc = layer.backward(dc.view()).unwrap();
        let yf = layer.forward(&[xf.view()]).unwrap();
        // The same values as dc, column-major.
        let df = dc.t().as_standard_layout().into_owned().reversed_axes();
        assert!(df.ndim() < 2 || !df.is_standard_layout());
        let gf = layer.backward(df.view()).unwrap();
        crate::test_util::assert_close(&yf, &yc, 1e-12);
        crate::test_util::assert_close(&gf[0], &gc[0], 1e-12);
    }
}

/// SoftmaxWithLoss on column-major logits agrees with a row-major copy.
#[test]
fn softmax_with_loss_on_column_major_logits() {
    let xf = numeric::spread(&[4, 3], 1).reversed_axes();
    let xc = xf.as_standard_layout().into_owned();
    let t = ndarray::arr1(&[0.0, 2.0, 1.0]).into_dyn();
    let one = ArrayD::from_elem(IxDyn(&[]), 1.0);
    let mut l = SoftmaxWithLoss::new();
    let lc = l.forward(&[xc.view(), t.view()]).unwrap();
    let gc = l.backward(one.view()).unwrap();
    let lf = l.forward(&[xf.view(), t.view()]).unwrap();
    let gf = l.backward(one.view()).unwrap();
    crate::test_util::assert_close(&lf, &lc, 1e-12);
    crate::test_util::assert_close(&gf[0], &gc[0], 1e-12);
}
