//! Softmax followed by cross-entropy: the classifier's loss layer.
//!
//! Inputs `(x, t)`: logits `x` and labels `t`; only `x` is differentiable.
//! Output: the 0-d loss `L = (1/N) Σ_n (lse(x_n) - x[n, t_n])`, where
//! `lse(x_n) = m + ln Σ_j exp(x[n, j] - m)` with `m` the row max, evaluated
//! as `(m - x[n, t_n]) + ln Σ_j exp(x[n, j] - m)` so huge logits lose nothing.
//! Backward: `dx = dout * (y - t) / N`, `y = softmax(x)`, `t` one-hot.
//!
//! # Why log-sum-exp instead of the tutorial's `+1e-7`
//! The tutorial computes `-Σ ln(softmax(x) + 1e-7)`. That guard keeps
//! `ln 0` away but changes the function: its exact derivative is no longer
//! `(y - t)/N`. Log-sum-exp computes `-ln softmax(x)[t]` itself, exactly and
//! stably (no `exp` overflows, no `ln 0`: logits of `±1e4` give a finite
//! loss), so the analytic gradient `(y - t)/N` is the exact derivative of the
//! loss we report, and a gradient checker comparing the two tests the
//! backward pass rather than the guard. (The guarded formula remains
//! available as [`crate::loss::cross_entropy_error`].)
//!
//! # Shapes
//! - `x (N, C)` with labels as class indices `(N,)` or one-hot `(N, C)`;
//! - `x (C,)`, a single sample promoted to a batch of 1, with a 0-d index,
//!   an index `(1,)` or a one-hot vector `(C,)`.
//!
//! `dx` has the shape of `x`; `dout` must be 0-d.

use super::{expect_dout_shape, expect_inputs};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::layer::Layer;
use crate::loss::{labelled_batch, softmax_rows};
use ndarray::{ArrayD, ArrayViewD, IxDyn};

/// What forward keeps for backward.
#[derive(Debug, Clone)]
struct Cache<F> {
    /// `softmax(x)`, in the shape of `x`.
    y: ArrayD<F>,
    /// The class index of each sample.
    labels: Vec<usize>,
}

/// Softmax + cross-entropy loss over logits `x` and labels `t`.
#[derive(Debug, Clone, Default)]
pub struct SoftmaxWithLoss<F> {
    cache: Option<Cache<F>>,
}

impl<F: Float> SoftmaxWithLoss<F> {
    /// A new layer with an empty cache.
    pub fn new() -> Self {
        SoftmaxWithLoss { cache: None }
    }

    /// The softmax probabilities `y` of the last successful forward, in the
    /// shape of its `x`; `None` before any.
    pub fn y(&self) -> Option<&ArrayD<F>> {
        self.cache.as_ref().map(|c| &c.y)
    }

    /// The class indices of the last successful forward's labels.
    pub fn labels(&self) -> Option<&[usize]> {
        self.cache.as_ref().map(|c| c.labels.as_slice())
    }
}

impl<F: Float> Layer<F> for SoftmaxWithLoss<F> {
    fn name(&self) -> String {
        "SoftmaxWithLoss".into()
    }

    fn num_inputs(&self) -> usize {
        2
    }

    fn num_differentiable(&self) -> usize {
        1
    }

    fn forward(&mut self, inputs: &[ArrayViewD<'_, F>]) -> Result<ArrayD<F>> {
        const OP: &str = "SoftmaxWithLoss.forward";
        self.cache = None;
        expect_inputs(OP, inputs, 2)?;
        let (x2, labels) = labelled_batch(OP, inputs[0].view(), inputs[1].view())?;
        let n = x2.nrows();
        let (y, max, log_sum) = softmax_rows(x2);
        // `(m - x_k) + ln s` rather than `(m + ln s) - x_k`: with huge equal
        // logits (f32 [1e30, 1e30]) the latter rounds `m + ln 2` to `m` and
        // gives 0 instead of ln 2.
        let total: F = labels
            .iter()
            .enumerate()
            .map(|(i, &k)| (max[i] - x2[[i, k]]) + log_sum[i])
            .sum();
        let loss = total / F::of(n as f64);
        // Column-major logits give a column-major y: reshape in row-major order.
        let y = super::reshape_c(y, inputs[0].raw_dim());
        self.cache = Some(Cache { y, labels });
        Ok(ArrayD::from_elem(IxDyn(&[]), loss))
    }

    fn backward(&mut self, dout: ArrayViewD<'_, F>) -> Result<Vec<ArrayD<F>>> {
        const OP: &str = "SoftmaxWithLoss.backward";
        let cache = self
            .cache
            .as_ref()
            .ok_or_else(|| Error::BackwardBeforeForward { op: OP.into() })?;
        expect_dout_shape(OP, &[], dout.shape())?;
        let d = dout.iter().next().copied().expect("0-d has one element");
        let n = cache.labels.len();
        let scale = d / F::of(n as f64);
        let mut dx = cache.y.clone();
        {
            let c = dx.len() / n;
            let mut dx2 = dx
                .view_mut()
                .into_shape_with_order((n, c))
                .expect("y is (N, C) or (C,)");
            for (mut row, &k) in dx2.outer_iter_mut().zip(&cache.labels) {
                row[k] -= F::one();
                row.mapv_inplace(|v| v * scale);
            }
        }
        Ok(vec![dx])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::softmax;
    use crate::test_util::assert_close;
    use approx::assert_abs_diff_eq;
    use ndarray::{Array2, arr0, arr1, arr2};

    fn logits() -> ArrayD<f64> {
        arr2(&[[0.3, 2.9, 4.0], [1.0, -1.0, 0.5]]).into_dyn()
    }

    #[test]
    fn loss_hand_value() {
        let mut l = SoftmaxWithLoss::<f64>::new();
        let x = logits();
        let out = l
            .forward(&[x.view(), arr1(&[2.0, 0.0]).into_dyn().view()])
            .unwrap();
        assert_eq!(out.shape(), &[] as &[usize]);
        let lse = |r: &[f64]| r.iter().map(|v| v.exp()).sum::<f64>().ln();
        let want = ((lse(&[0.3, 2.9, 4.0]) - 4.0) + (lse(&[1.0, -1.0, 0.5]) - 1.0)) / 2.0;
        assert_abs_diff_eq!(out[[]], want, epsilon = 1e-14);
        let y = softmax(x.view()).unwrap();
        assert_close(l.y().unwrap(), &y, 1e-15);
    }

    #[test]
    fn backward_is_y_minus_t_over_n_for_both_label_forms() {
        let x = logits();
        let idx = arr1(&[2.0, 0.0]).into_dyn();
        let oh = arr2(&[[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]).into_dyn();
        let y = softmax(x.view()).unwrap();
        let want = (&y - &oh) / 2.0;
        let mut results = Vec::new();
        for t in [&idx, &oh] {
            let mut l = SoftmaxWithLoss::<f64>::new();
            let loss = l.forward(&[x.view(), t.view()]).unwrap();
            let g = l.backward(arr0(1.0).into_dyn().view()).unwrap();
            assert_eq!(g.len(), 1);
            assert_eq!(g[0].shape(), &[2, 3]);
            assert_close(&g[0], &want, 1e-15);
            // Linear in dout.
            let g3 = l.backward(arr0(-3.0).into_dyn().view()).unwrap();
            assert_close(&g3[0], &(&want * -3.0), 1e-15);
            results.push((loss[[]], g[0].clone()));
        }
        assert_eq!(results[0].0, results[1].0);
        assert_eq!(results[0].1, results[1].1);
    }

    #[test]
    fn huge_equal_f32_logits_give_ln_2() {
        // (m + ln 2) - x_k rounds to 0 in f32 for m = 1e30; the loss is ln 2.
        let mut l = SoftmaxWithLoss::<f32>::new();
        let x = ndarray::arr2(&[[1e30f32, 1e30]]).into_dyn();
        let t = ndarray::arr1(&[0.0f32]).into_dyn();
        let out = l.forward(&[x.view(), t.view()]).unwrap();
        assert_abs_diff_eq!(out[[]], 2f32.ln(), epsilon = 1e-6);
    }

    #[test]
    fn huge_logits_give_finite_loss_and_gradient() {
        let mut l = SoftmaxWithLoss::<f32>::new();
        let x = arr2(&[[1e4f32, -1e4, 0.0], [-1e4, 1e4, 1e4]]).into_dyn();
        let out = l
            .forward(&[x.view(), arr1(&[1.0f32, 0.0]).into_dyn().view()])
            .unwrap();
        // Row 0: -ln softmax = 2e4; row 1: 2e4 + ln 2.
        assert!(out[[]].is_finite());
        assert_abs_diff_eq!(out[[]], (2e4 + 2e4 + 2f32.ln()) / 2.0, epsilon = 1e-2);
        let g = l.backward(arr0(1.0f32).into_dyn().view()).unwrap();
        assert!(g[0].iter().all(|v| v.is_finite()));
    }

    #[test]
    fn single_sample_is_promoted() {
        let x = arr1(&[1.0, 2.0, 0.5]).into_dyn();
        let y = softmax(x.view()).unwrap();
        for t in [
            arr0(1.0).into_dyn(),
            arr1(&[1.0]).into_dyn(),
            arr1(&[0.0, 1.0, 0.0]).into_dyn(),
        ] {
            let mut l = SoftmaxWithLoss::<f64>::new();
            let out = l.forward(&[x.view(), t.view()]).unwrap();
            assert_abs_diff_eq!(out[[]], -y[1].ln(), epsilon = 1e-14);
            let g = l.backward(arr0(2.0).into_dyn().view()).unwrap();
            assert_eq!(g[0].shape(), &[3]);
            let want = arr1(&[2.0 * y[0], 2.0 * (y[1] - 1.0), 2.0 * y[2]]).into_dyn();
            assert_close(&g[0], &want, 1e-15);
        }
    }

    #[test]
    fn errors() {
        let mut l = SoftmaxWithLoss::<f64>::new();
        let e = l.backward(arr0(1.0).into_dyn().view()).unwrap_err();
        assert!(matches!(e, Error::BackwardBeforeForward { .. }), "{e}");
        let x = logits();
        let e = l.forward(&[x.view()]).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InputCount {
                    expected: 2,
                    got: 1,
                    ..
                }
            ),
            "{e}"
        );
        let e = l
            .forward(&[x.view(), arr1(&[0.0, 3.0]).into_dyn().view()])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "SoftmaxWithLoss.forward: label 3 at position 1 is out of range 0..3"
        );
        let e = l
            .forward(&[x.view(), arr1(&[0.0]).into_dyn().view()])
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::LabelCount {
                    expected: 2,
                    got: 1,
                    ..
                }
            ),
            "{e}"
        );
        let bad = arr2(&[[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]).into_dyn();
        let e = l.forward(&[x.view(), bad.view()]).unwrap_err();
        assert!(matches!(e, Error::InvalidLabels { .. }), "{e}");
        let empty = Array2::<f64>::zeros((0, 3)).into_dyn();
        let e = l
            .forward(&[empty.view(), ArrayD::zeros(IxDyn(&[0])).view()])
            .unwrap_err();
        assert!(matches!(e, Error::EmptyBatch { .. }), "{e}");
        let e = l
            .forward(&[
                ArrayD::zeros(IxDyn(&[1, 1, 3])).view(),
                arr1(&[0.0]).into_dyn().view(),
            ])
            .unwrap_err();
        assert!(matches!(e, Error::BadShape { input: 0, .. }), "{e}");
        l.forward(&[x.view(), arr1(&[0.0, 1.0]).into_dyn().view()])
            .unwrap();
        let e = l.backward(arr1(&[1.0]).into_dyn().view()).unwrap_err();
        assert!(matches!(e, Error::DoutShape { .. }), "{e}");
    }
}
