//! Batch normalization: `y = γ ⊙ x̂ + β` with `x̂ = (x − μ) / √(σ² + ε)`.
//!
//! # Modes
//! - **Training** (the default): `μ`, `σ²` are the mean and the biased
//!   variance (divided by `M`) of the current batch, per feature, over the
//!   `M` rows of the batch. The running statistics are updated as
//!   `running = momentum · running + (1 − momentum) · batch` (the biased
//!   variance, as the tutorial's book does; momentum 0.9 by default).
//! - **Evaluation** ([`Layer::set_training`]`(false)`): `μ`, `σ²` are the
//!   running statistics, constants; the layer is then affine per feature.
//!
//! # Backward (training mode)
//! Every output depends on **every** input of the batch through `μ` and
//! `σ²`. With `g = γ ⊙ dout` (the gradient with respect to `x̂`), per feature:
//! ```text
//! dβ = Σ_rows dout        dγ = Σ_rows dout ⊙ x̂
//! dx = (1 / (M √(σ² + ε))) · (M g − Σ_rows g − x̂ ⊙ Σ_rows (g ⊙ x̂))
//! ```
//! The last two terms are the paths through `μ` and `σ²`. Dropping them
//! (`dx = g / √(σ² + ε)`, the classic bug of treating the batch statistics as
//! constants) is the evaluation-mode backward, and wrong in training mode:
//! a test-only version with that bug is kept in this module to prove that
//! the gradient checks catch it.
//!
//! # Shapes
//! `D = num_features`; `γ`, `β` and the running statistics are `(D,)`.
//! - `(N, D)`: statistics over the `N` rows (`M = N`).
//! - `(N, C, H, W)` with `C = D`: per channel, statistics over `N`, `H`, `W`
//!   (`M = N·H·W`), as after a convolution.
//!
//! `forward` validates everything before touching the running statistics, so
//! a failed forward changes nothing but clearing the cache.

use super::{expect_dout_shape, expect_inputs};
use crate::error::{Error, Result, Shape};
use crate::float::Float;
use crate::layer::{Layer, Param};
use ndarray::{Array1, Array2, ArrayD, ArrayViewD, Axis, Ix4, IxDyn};

/// What forward keeps for backward.
#[derive(Debug, Clone)]
struct Cache<F> {
    /// The normalised input `x̂`, as `(M, D)`.
    xn: Array2<F>,
    /// `1 / √(σ² + ε)` per feature.
    inv_std: Array1<F>,
    /// Whether the statistics were the batch's (training) or the running ones.
    batch_stats: bool,
    /// The input's (and output's) shape.
    shape: Vec<usize>,
}

/// Batch normalization with learnable scale `gamma` and shift `beta`.
#[derive(Debug, Clone)]
pub struct BatchNormalization<F> {
    gamma: Array1<F>,
    beta: Array1<F>,
    running_mean: Array1<F>,
    running_var: Array1<F>,
    momentum: F,
    eps: F,
    training: bool,
    dgamma: Option<Array1<F>>,
    dbeta: Option<Array1<F>>,
    cache: Option<Cache<F>>,
}

impl<F: Float> BatchNormalization<F> {
    /// A layer for `num_features` features (or channels) with `γ = 1`,
    /// `β = 0`, running mean 0, running variance 1, momentum 0.9, `ε = 1e-5`,
    /// in training mode.
    ///
    /// **Errors** with [`Error::Config`] if `num_features` is 0.
    pub fn new(num_features: usize) -> Result<Self> {
        if num_features == 0 {
            return Err(Error::Config(
                "BatchNormalization: num_features must be at least 1".into(),
            ));
        }
        Ok(BatchNormalization {
            gamma: Array1::ones(num_features),
            beta: Array1::zeros(num_features),
            running_mean: Array1::zeros(num_features),
            running_var: Array1::ones(num_features),
            momentum: F::of(0.9),
            eps: F::of(1e-5),
            training: true,
            dgamma: None,
            dbeta: None,
            cache: None,
        })
    }

    /// A layer with the given `γ` and `β` (otherwise as [`Self::new`]).
    ///
    /// **Errors** with [`Error::ShapeMismatch`] if their lengths differ and
    /// [`Error::Config`] if they are empty.
    pub fn with_params(gamma: Array1<F>, beta: Array1<F>) -> Result<Self> {
        if gamma.len() != beta.len() {
            return Err(Error::ShapeMismatch {
                op: "BatchNormalization.with_params".into(),
                lhs: Shape::of(gamma.shape()),
                rhs: Shape::of(beta.shape()),
                detail: "gamma and beta must have one element per feature".into(),
            });
        }
        let mut bn = Self::new(gamma.len())?;
        bn.gamma = gamma;
        bn.beta = beta;
        Ok(bn)
    }

    /// Sets the running-statistics momentum.
    ///
    /// **Errors** with [`Error::Config`] unless `0 <= momentum <= 1`.
    pub fn with_momentum(mut self, momentum: F) -> Result<Self> {
        if !(momentum >= F::zero() && momentum <= F::one()) {
            return Err(Error::Config(format!(
                "BatchNormalization: momentum must be in [0, 1], got {momentum}"
            )));
        }
        self.momentum = momentum;
        Ok(self)
    }

    /// Sets `ε`, added to the variance before the square root.
    ///
    /// **Errors** with [`Error::Config`] unless `ε` is finite and positive.
    pub fn with_eps(mut self, eps: F) -> Result<Self> {
        if !(eps.is_finite() && eps > F::zero()) {
            return Err(Error::Config(format!(
                "BatchNormalization: eps must be finite and positive, got {eps}"
            )));
        }
        self.eps = eps;
        Ok(self)
    }

    /// The number of features `D`.
    pub fn num_features(&self) -> usize {
        self.gamma.len()
    }

    /// The scale `γ (D,)`.
    pub fn gamma(&self) -> &Array1<F> {
        &self.gamma
    }

    /// The shift `β (D,)`.
    pub fn beta(&self) -> &Array1<F> {
        &self.beta
    }

    /// The running mean `(D,)`, used in evaluation mode.
    pub fn running_mean(&self) -> &Array1<F> {
        &self.running_mean
    }

    /// The running (biased) variance `(D,)`, used in evaluation mode.
    pub fn running_var(&self) -> &Array1<F> {
        &self.running_var
    }

    /// The momentum of the running statistics.
    pub fn momentum(&self) -> F {
        self.momentum
    }

    /// `ε`.
    pub fn eps(&self) -> F {
        self.eps
    }

    /// Whether the layer is in training mode.
    pub fn is_training(&self) -> bool {
        self.training
    }

    /// `dγ` from the last backward.
    pub fn dgamma(&self) -> Option<&Array1<F>> {
        self.dgamma.as_ref()
    }

    /// `dβ` from the last backward.
    pub fn dbeta(&self) -> Option<&Array1<F>> {
        self.dbeta.as_ref()
    }

    /// The input as `(M, D)`, checking its shape.
    fn to_rows(&self, op: &str, x: &ArrayViewD<'_, F>) -> Result<Array2<F>> {
        let d = self.num_features();
        let bad = |expected: String| Error::BadShape {
            op: op.into(),
            input: 0,
            got: Shape::of(x.shape()),
            expected,
        };
        match *x.shape() {
            [n, f] => {
                if f != d {
                    return Err(bad(format!("(N, {d}): {d} features")));
                }
                if n == 0 {
                    return Err(Error::EmptyBatch {
                        op: op.into(),
                        shape: Shape::of(x.shape()),
                    });
                }
                Ok(x.to_shape((n, f)).expect("rank 2").into_owned())
            }
            [n, c, h, w] => {
                if c != d {
                    return Err(bad(format!("(N, {d}, H, W): {d} channels")));
                }
                if n * h * w == 0 {
                    return Err(Error::EmptyBatch {
                        op: op.into(),
                        shape: Shape::of(x.shape()),
                    });
                }
                let x4 = x.view().into_dimensionality::<Ix4>().expect("rank 4");
                let nhwc = x4.permuted_axes([0, 2, 3, 1]);
                Ok(nhwc
                    .to_shape(((n * h * w, c), ndarray::Order::RowMajor))
                    .expect("element count")
                    .into_owned())
            }
            _ => Err(bad(format!("(N, {d}) or (N, {d}, H, W)"))),
        }
    }

    /// The inverse of [`Self::to_rows`].
    fn from_rows(rows: Array2<F>, shape: &[usize]) -> ArrayD<F> {
        match *shape {
            [n, c, h, w] => {
                let nhwc = super::reshape_c(rows, (n, h, w, c));
                nhwc.permuted_axes([0, 3, 1, 2])
                    .as_standard_layout()
                    .into_owned()
                    .into_dyn()
            }
            _ => super::reshape_c(rows, IxDyn(shape)),
        }
    }

    /// The dx of the last backward's `g = γ ⊙ dout` as `(M, D)`, through the
    /// batch statistics or (evaluation mode) not.
    fn dx_rows(cache: &Cache<F>, g: &Array2<F>, through_stats: bool) -> Array2<F> {
        if !through_stats {
            return g * &cache.inv_std;
        }
        let m = F::from_usize(cache.xn.nrows()).expect("batch size fits");
        let sum_g = g.sum_axis(Axis(0));
        let sum_gx = (g * &cache.xn).sum_axis(Axis(0));
        let scale = cache.inv_std.mapv(|s| s / m);
        ((g * m) - &sum_g - &(&cache.xn * &sum_gx)) * &scale
    }

    /// Backward with or without the terms through the batch statistics.
    fn backward_impl(
        &mut self,
        dout: ArrayViewD<'_, F>,
        through_stats: bool,
    ) -> Result<Vec<ArrayD<F>>> {
        const OP: &str = "BatchNormalization.backward";
        let cache = self
            .cache
            .as_ref()
            .ok_or_else(|| Error::BackwardBeforeForward { op: OP.into() })?;
        expect_dout_shape(OP, &cache.shape, dout.shape())?;
        let d_rows = self.to_rows(OP, &dout)?;
        let dbeta = d_rows.sum_axis(Axis(0));
        let dgamma = (&d_rows * &cache.xn).sum_axis(Axis(0));
        let g = &d_rows * &self.gamma;
        let dx = Self::dx_rows(cache, &g, through_stats && cache.batch_stats);
        let dx = Self::from_rows(dx, &cache.shape);
        self.dgamma = Some(dgamma);
        self.dbeta = Some(dbeta);
        Ok(vec![dx])
    }
}

impl<F: Float> Layer<F> for BatchNormalization<F> {
    fn name(&self) -> String {
        "BatchNormalization".into()
    }

    fn num_inputs(&self) -> usize {
        1
    }

    fn forward(&mut self, inputs: &[ArrayViewD<'_, F>]) -> Result<ArrayD<F>> {
        const OP: &str = "BatchNormalization.forward";
        self.cache = None;
        expect_inputs(OP, inputs, 1)?;
        let x = self.to_rows(OP, &inputs[0])?;
        let (mean, var) = if self.training {
            let mean = x.mean_axis(Axis(0)).expect("non-empty batch");
            let xc = &x - &mean;
            let var = (&xc * &xc).mean_axis(Axis(0)).expect("non-empty batch");
            let mo = self.momentum;
            self.running_mean = &self.running_mean * mo + &mean * (F::one() - mo);
            self.running_var = &self.running_var * mo + &var * (F::one() - mo);
            (mean, var)
        } else {
            (self.running_mean.clone(), self.running_var.clone())
        };
        let eps = self.eps;
        let inv_std = var.mapv(|v| F::one() / (v + eps).sqrt());
        let xn = (&x - &mean) * &inv_std;
        let y = &xn * &self.gamma + &self.beta;
        let shape = inputs[0].shape().to_vec();
        let out = Self::from_rows(y, &shape);
        self.cache = Some(Cache {
            xn,
            inv_std,
            batch_stats: self.training,
            shape,
        });
        Ok(out)
    }

    fn backward(&mut self, dout: ArrayViewD<'_, F>) -> Result<Vec<ArrayD<F>>> {
        self.backward_impl(dout, true)
    }

    fn params(&mut self) -> Vec<Param<'_, F>> {
        vec![
            super::param("gamma", &mut self.gamma, self.dgamma.as_ref()),
            super::param("beta", &mut self.beta, self.dbeta.as_ref()),
        ]
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
}

/// Deliberately wrong versions, for proving that gradient checks catch them.
#[cfg(test)]
pub(crate) mod buggy {
    use super::*;

    /// **Wrong on purpose.** BatchNormalization whose training-mode backward
    /// treats the batch mean and variance as constants:
    /// `dx = γ ⊙ dout / √(σ² + ε)`, dropping the paths through `μ` and `σ²`.
    /// `dγ`, `dβ` and the forward are right.
    #[derive(Debug, Clone)]
    pub(crate) struct BatchNormConstantStats(pub(crate) BatchNormalization<f64>);

    impl Layer<f64> for BatchNormConstantStats {
        fn name(&self) -> String {
            "BatchNormConstantStats (buggy)".into()
        }
        fn num_inputs(&self) -> usize {
            1
        }
        fn forward(&mut self, inputs: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
            self.0.forward(inputs)
        }
        fn backward(&mut self, dout: ArrayViewD<'_, f64>) -> Result<Vec<ArrayD<f64>>> {
            self.0.backward_impl(dout, false)
        }
        fn params(&mut self) -> Vec<Param<'_, f64>> {
            self.0.params()
        }
        fn set_training(&mut self, training: bool) {
            self.0.set_training(training)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::buggy::BatchNormConstantStats;
    use super::*;
    use crate::layers::numeric::{assert_gradients_ok, gradient_errors, spread};
    use crate::test_util::assert_close;
    use ndarray::{Array4, arr1, arr2};

    #[test]
    fn forward_normalises_each_feature_hand_values() {
        let mut bn = BatchNormalization::with_params(arr1(&[2.0, 1.0]), arr1(&[0.5, -1.0]))
            .unwrap()
            .with_eps(1e-12)
            .unwrap();
        // Feature 0: values 1, 3 (mean 2, var 1); feature 1: 10, 10 (var 0).
        let x = arr2(&[[1.0, 10.0], [3.0, 10.0]]).into_dyn();
        let y = bn.forward(&[x.view()]).unwrap();
        // x̂ = [-1, 1] and [0, 0]; y = 2 x̂ + 0.5 and 1 · 0 − 1.
        assert_close(&y, &arr2(&[[-1.5, -1.0], [2.5, -1.0]]), 1e-9);
        // running = 0.9 · (0, 1) + 0.1 · batch: mean (0.2, 1.0), var (1.0, 0.9).
        assert_close(bn.running_mean(), &arr1(&[0.2, 1.0]), 1e-12);
        assert_close(bn.running_var(), &arr1(&[1.0, 0.9]), 1e-12);
    }

    #[test]
    fn backward_hand_values_for_two_rows() {
        // One feature, x = (0, 1, 5): μ = 2, σ² = 14/3, γ = 1, dout = (1, 0, 0),
        // so g = dout, Σg = 1 and Σ g x̂ = x̂₀. (Two rows would give dx = 0 for
        // every dout: x̂ = ±1 whatever x is.)
        let mut bn = BatchNormalization::<f64>::new(1)
            .unwrap()
            .with_eps(1e-300)
            .unwrap();
        let x = arr2(&[[0.0], [1.0], [5.0]]).into_dyn();
        bn.forward(&[x.view()]).unwrap();
        let dout = arr2(&[[1.0], [0.0], [0.0]]).into_dyn();
        let dx = bn.backward(dout.view()).unwrap();
        let s = (14.0f64 / 3.0).sqrt();
        let xn = [-2.0 / s, -1.0 / s, 3.0 / s];
        // Σg = 1, Σ g x̂ = x̂₀.
        let want: Vec<f64> = (0..3)
            .map(|i| (3.0 * [1.0, 0.0, 0.0][i] - 1.0 - xn[i] * xn[0]) / (3.0 * s))
            .collect();
        assert_close(
            &dx[0],
            &ndarray::Array::from_shape_vec((3, 1), want).unwrap(),
            1e-12,
        );
        assert_close(bn.dbeta().unwrap(), &arr1(&[1.0]), 1e-15);
        assert_close(bn.dgamma().unwrap(), &arr1(&[xn[0]]), 1e-12);
        // The input gradient of a batch-normalised feature sums to 0.
        assert!(dx[0].sum().abs() < 1e-12);
    }

    #[test]
    fn train_backward_agrees_with_central_differences() {
        let gamma = arr1(&[1.5, -0.7, 0.3]);
        let beta = arr1(&[0.1, 0.2, -0.3]);
        for shape in [vec![4, 3], vec![2, 3], vec![7, 3]] {
            let mut bn = BatchNormalization::with_params(gamma.clone(), beta.clone()).unwrap();
            assert_gradients_ok(&mut bn, &[spread(&shape, 1)], 1e-7);
        }
    }

    #[test]
    fn per_channel_backward_agrees_with_central_differences() {
        let mut bn = BatchNormalization::with_params(arr1(&[1.2, 0.8]), arr1(&[0.0, 0.5])).unwrap();
        assert_gradients_ok(&mut bn, &[spread(&[2, 2, 3, 2], 2)], 1e-7);
    }

    /// Regression (found by the property tests): for `(1, C, 1, W)` the
    /// NHWC rows are a column-major view, and reshaping them back panicked.
    #[test]
    fn per_channel_input_whose_rows_are_column_major() {
        let mut bn = BatchNormalization::<f64>::new(2).unwrap();
        let x = spread(&[1, 2, 1, 3], 1);
        let y = bn.forward(&[x.view()]).unwrap();
        assert_eq!(y.shape(), &[1, 2, 1, 3]);
        assert_gradients_ok(&mut bn, &[x], 1e-7);
    }

    #[test]
    fn per_channel_statistics_are_over_n_h_w() {
        let mut bn = BatchNormalization::<f64>::new(2).unwrap();
        let x = Array4::from_shape_fn((2, 2, 2, 3), |(n, c, h, w)| {
            (n * 7 + h * 3 + w) as f64 * if c == 0 { 1.0 } else { 10.0 } + c as f64
        })
        .into_dyn();
        let y = bn.forward(&[x.view()]).unwrap();
        assert_eq!(y.shape(), &[2, 2, 2, 3]);
        for c in 0..2 {
            let ch = y.index_axis(Axis(1), c);
            assert!(ch.mean().unwrap().abs() < 1e-12);
            let var = ch.mapv(|v| v * v).mean().unwrap();
            assert!((var - 1.0).abs() < 1e-5, "{var}");
        }
    }

    #[test]
    fn eval_mode_uses_running_statistics_and_its_backward_checks() {
        let mut bn = BatchNormalization::with_params(arr1(&[2.0, 1.0]), arr1(&[0.0, 1.0]))
            .unwrap()
            .with_momentum(0.0)
            .unwrap();
        let x = arr2(&[[1.0, 4.0], [3.0, 8.0]]).into_dyn();
        bn.forward(&[x.view()]).unwrap();
        // Momentum 0: the running statistics are the last batch's.
        assert_close(bn.running_mean(), &arr1(&[2.0, 6.0]), 1e-15);
        assert_close(bn.running_var(), &arr1(&[1.0, 4.0]), 1e-15);
        bn.set_training(false);
        assert!(!bn.is_training());
        let y = bn
            .forward(&[arr2(&[[2.0, 10.0]]).into_dyn().view()])
            .unwrap();
        let s = |v: f64| (v + 1e-5f64).sqrt();
        assert_close(&y, &arr2(&[[0.0, 4.0 / s(4.0) + 1.0]]), 1e-12);
        let before = bn.running_mean().clone();
        assert_gradients_ok(&mut bn, &[spread(&[3, 2], 1)], 1e-8);
        assert_eq!(bn.running_mean(), &before, "eval mode leaves them alone");
    }

    /// The classic bug, backward as if μ and σ² were constants, is caught in
    /// training mode on every shape, while its dγ and dβ are right.
    #[test]
    fn constant_statistics_bug_is_caught() {
        for shape in [vec![4, 3], vec![2, 3], vec![8, 3]] {
            let bn =
                BatchNormalization::with_params(arr1(&[1.5, -0.7, 0.3]), arr1(&[0.0; 3])).unwrap();
            let mut wrong = BatchNormConstantStats(bn);
            let errs = gradient_errors(&mut wrong, &[spread(&shape, 1)], 1e-5);
            assert!(errs[0].1 > 1e-2, "{shape:?}: dx error {}", errs[0].1);
            assert!(errs[1].1 < 1e-7 && errs[2].1 < 1e-7, "{errs:?}");
        }
        // In evaluation mode the statistics are constants, so it is right there.
        let mut wrong = BatchNormConstantStats(BatchNormalization::new(3).unwrap());
        wrong.set_training(false);
        let errs = gradient_errors(&mut wrong, &[spread(&[4, 3], 1)], 1e-5);
        assert!(errs.iter().all(|(_, e)| *e < 1e-7), "{errs:?}");
    }

    #[test]
    fn backward_overwrites_parameter_gradients() {
        let mut bn = BatchNormalization::<f64>::new(2).unwrap();
        let x = spread(&[3, 2], 1);
        bn.forward(&[x.view()]).unwrap();
        let dout = spread(&[3, 2], 2);
        bn.backward(dout.view()).unwrap();
        let g1 = bn.dgamma().unwrap().clone();
        bn.backward(dout.view()).unwrap();
        assert_eq!(bn.dgamma().unwrap(), &g1);
        let names: Vec<String> = bn.params().into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["gamma", "beta"]);
    }

    #[test]
    fn errors() {
        assert!(matches!(
            BatchNormalization::<f64>::new(0),
            Err(Error::Config(_))
        ));
        let e = BatchNormalization::with_params(arr1(&[1.0]), arr1(&[1.0, 2.0])).unwrap_err();
        assert!(matches!(e, Error::ShapeMismatch { .. }), "{e}");
        let bn = BatchNormalization::<f64>::new(2).unwrap();
        assert!(bn.clone().with_momentum(1.5).is_err());
        assert!(bn.clone().with_eps(0.0).is_err());
        let mut bn = bn;
        let e = bn
            .backward(arr2(&[[1.0, 2.0]]).into_dyn().view())
            .unwrap_err();
        assert!(matches!(e, Error::BackwardBeforeForward { .. }), "{e}");
        let e = bn
            .forward(&[arr2(&[[1.0, 2.0, 3.0]]).into_dyn().view()])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "BatchNormalization.forward: input 0 has shape (1, 3), expected (N, 2): 2 features"
        );
        let e = bn
            .forward(&[arr1(&[1.0, 2.0]).into_dyn().view()])
            .unwrap_err();
        assert!(matches!(e, Error::BadShape { .. }), "{e}");
        let e = bn
            .forward(&[ArrayD::zeros(IxDyn(&[0, 2])).view()])
            .unwrap_err();
        assert!(matches!(e, Error::EmptyBatch { .. }), "{e}");
        assert_eq!(
            bn.running_mean(),
            &arr1(&[0.0, 0.0]),
            "failed forwards change nothing"
        );
        bn.forward(&[arr2(&[[1.0, 2.0], [3.0, 5.0]]).into_dyn().view()])
            .unwrap();
        let e = bn
            .backward(arr2(&[[1.0, 2.0]]).into_dyn().view())
            .unwrap_err();
        assert!(matches!(e, Error::DoutShape { .. }), "{e}");
        let e = bn.forward(&[]).unwrap_err();
        assert!(matches!(e, Error::InputCount { .. }), "{e}");
        let e = bn
            .backward(arr2(&[[1.0, 2.0], [3.0, 5.0]]).into_dyn().view())
            .unwrap_err();
        assert!(matches!(e, Error::BackwardBeforeForward { .. }), "{e}");
    }
}
