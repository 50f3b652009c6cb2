//! Affine (fully connected): `Y = X · W + b`, the tutorial's `Layer`.
//!
//! Backward: `dX = dY · Wᵀ` (in the input's original shape),
//! `dW = Xᵀ · dY`, `db = Σ_batch dY`.
//!
//! # Shapes
//! `W` is `(in, out)`, `b` is `(out,)`.
//! - A single sample `X (in,)` gives `Y (out,)`; then `dW = outer(X, dY)`
//!   and `dX` is `(in,)`.
//! - A batch `X (N, ...)` of rank `>= 2` is flattened to `(N, in)` (so a
//!   `(N, 1, 28, 28)` image batch works with `in = 784`) and gives
//!   `Y (N, out)`; `dX` comes back in the original shape `(N, ...)`.
//!
//! Forward in f64 on at most 8 rows (the gradient checker's batches) runs a
//! small-batch kernel that reads `W` in place (module `small_gemm`); otherwise
//! `dot` (matrixmultiply).
//!
//! Fixes over the tutorial: the constructor takes `b` (the tutorial's
//! `self.b = B` read a global), `dX` is reshaped back (the tutorial's
//! `dx.reshpae(...)` was a typo), and `db` is stored (the tutorial set
//! `self.sb`, leaving `db` unset).
//!
//! ```
//! use gradverify::{Affine, Layer};
//! use ndarray::{arr1, arr2};
//! let mut fc = Affine::new(arr2(&[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), arr1(&[0.5, -0.5]))?;
//! let y = fc.forward(&[arr1(&[1.0, 0.0, -1.0]).into_dyn().view()])?;
//! assert_eq!(y, arr1(&[-3.5, -4.5]).into_dyn());
//! # Ok::<(), gradverify::Error>(())
//! ```

use super::{expect_dout_shape, expect_inputs, small_gemm};
use crate::error::{Error, Result, Shape};
use crate::float::Float;
use crate::layer::{Layer, Param};
use ndarray::{Array1, Array2, ArrayD, ArrayView2, ArrayViewD, Axis, IxDyn};

/// What forward keeps for backward.
#[derive(Debug, Clone)]
struct Cache<F> {
    /// The input flattened to `(N, in)` (`N = 1` for a single sample).
    x: Array2<F>,
    /// The input's original shape, for `dX`.
    x_shape: Vec<usize>,
    /// The output's shape, to check `dout` against.
    out_shape: Vec<usize>,
}

/// A fully connected layer with weights `W (in, out)` and bias `b (out,)`.
#[derive(Debug, Clone)]
pub struct Affine<F> {
    w: Array2<F>,
    b: Array1<F>,
    dw: Option<Array2<F>>,
    db: Option<Array1<F>>,
    cache: Option<Cache<F>>,
    /// The column order of the next small-batch forward, flipped on every
    /// one (see `small_gemm::affine_small`: the same results, fewer L3
    /// reads of a `W` larger than L2).
    reverse: bool,
}

impl<F: Float> Affine<F> {
    /// A layer with the given weights and bias.
    ///
    /// **Errors** with [`Error::ShapeMismatch`] if `b.len() != w.ncols()`, and
    /// [`Error::Config`] if `W` has no rows or no columns.
    pub fn new(w: Array2<F>, b: Array1<F>) -> Result<Self> {
        if b.len() != w.ncols() {
            return Err(Error::ShapeMismatch {
                op: "Affine.new".into(),
                lhs: Shape::of(w.shape()),
                rhs: Shape::of(b.shape()),
                detail: format!(
                    "b has {} element(s) but W has {} column(s) (dim 1)",
                    b.len(),
                    w.ncols()
                ),
            });
        }
        if w.is_empty() {
            return Err(Error::Config(format!(
                "Affine: W must have at least one row and one column, got shape {}",
                Shape::of(w.shape())
            )));
        }
        Ok(Affine {
            w,
            b,
            dw: None,
            db: None,
            cache: None,
            reverse: false,
        })
    }

    /// The weights `W (in, out)`.
    pub fn w(&self) -> &Array2<F> {
        &self.w
    }

    /// The bias `b (out,)`.
    pub fn b(&self) -> &Array1<F> {
        &self.b
    }

    /// `W` and `b`, mutably, for in-place updates by the training engine
    /// (the only copy of each parameter stays here).
    pub(crate) fn w_b_mut(&mut self) -> (&mut Array2<F>, &mut Array1<F>) {
        (&mut self.w, &mut self.b)
    }

    /// `dW` from the last backward, `None` before any.
    pub fn dw(&self) -> Option<&Array2<F>> {
        self.dw.as_ref()
    }

    /// `db` from the last backward, `None` before any.
    pub fn db(&self) -> Option<&Array1<F>> {
        self.db.as_ref()
    }

    /// The input size `in` (rows of `W`).
    pub fn input_size(&self) -> usize {
        self.w.nrows()
    }

    /// The output size `out` (columns of `W`).
    pub fn output_size(&self) -> usize {
        self.w.ncols()
    }

    /// Flattens `x` to `(N, in)`, checking it against `W` with numpy-like errors.
    fn flatten(&self, op: &str, x: &ArrayViewD<'_, F>) -> Result<Array2<F>> {
        let in_size = self.w.nrows();
        let mismatch = |detail: String| Error::ShapeMismatch {
            op: op.into(),
            lhs: Shape::of(x.shape()),
            rhs: Shape::of(self.w.shape()),
            detail,
        };
        let (n, d) = match x.shape() {
            [] => {
                return Err(Error::BadShape {
                    op: op.into(),
                    input: 0,
                    got: Shape::of(x.shape()),
                    expected: format!("(in,) = ({in_size},) or a batch (N, ...)"),
                });
            }
            &[d] => {
                if d != in_size {
                    return Err(mismatch(format!("{d} (dim 0) != {in_size} (dim 0)")));
                }
                (1, d)
            }
            &[n, ..] => {
                let d: usize = x.shape()[1..].iter().product();
                if n == 0 {
                    return Err(Error::EmptyBatch {
                        op: op.into(),
                        shape: Shape::of(x.shape()),
                    });
                }
                if d != in_size {
                    return Err(mismatch(if x.ndim() == 2 {
                        format!("{d} (dim 1) != {in_size} (dim 0)")
                    } else {
                        format!("input flattened to ({n}, {d}): {d} (dim 1) != {in_size} (dim 0)")
                    }));
                }
                (n, d)
            }
        };
        let x2 = x.to_shape((n, d)).expect("element count checked");
        Ok(x2.into_owned())
    }
}

/// Reshapes a product to `shape` in logical (row-major) order. `dot` returns
/// a column-major result for column-major operands (a column-major `W` and
/// `x`), which `into_shape_with_order` rejects; copy only then.
fn reshape<F: Float>(a: Array2<F>, shape: &[usize]) -> ArrayD<F> {
    let a = if a.is_standard_layout() {
        a
    } else {
        a.as_standard_layout().into_owned()
    };
    a.into_shape_with_order(IxDyn(shape))
        .expect("same element count, standard layout")
}

/// `x · w + b` by the float type's small-batch kernel ([`Float::small_affine`]:
/// f64 has one, [`small_gemm`]) when `x` has at most
/// [`small_gemm::MAX_ROWS`] rows, all three are contiguous and the CPU has
/// the kernel's instructions; `None` otherwise. `reverse` is the kernel's
/// column order, which never changes the result.
fn small_batch<F: Float>(
    x: &Array2<F>,
    w: &Array2<F>,
    b: &Array1<F>,
    reverse: bool,
) -> Option<Array2<F>> {
    // Ask the type first: without a kernel (f32, or a CPU without the
    // instructions) no output is allocated and zeroed for nothing.
    if x.nrows() > small_gemm::MAX_ROWS || !F::has_small_affine() {
        return None;
    }
    let (n, k, m) = (x.nrows(), w.nrows(), w.ncols());
    let (xs, ws, bs) = (x.as_slice()?, w.as_slice()?, b.as_slice()?);
    let mut y = Array2::<F>::zeros((n, m));
    let ys = y.as_slice_mut().expect("a fresh array is contiguous");
    F::small_affine(xs, ws, bs, (n, k, m), ys, reverse).then_some(y)
}

/// `(dout · wᵀ, xᵀ · dout)` by the small-batch kernel
/// ([`small_gemm::affine_backward_small`]) when `x` has at most
/// [`small_gemm::MAX_ROWS`] rows and all three are contiguous; `None`
/// otherwise. `reuse` (the previous `dW`) is overwritten when its shape
/// fits, which saves allocating and zeroing `W`'s size on every call.
fn small_batch_backward<F: Float>(
    x: &Array2<F>,
    w: &Array2<F>,
    d: &ArrayView2<'_, F>,
    reuse: Option<Array2<F>>,
) -> Option<(Array2<F>, Array2<F>)> {
    if x.nrows() > small_gemm::MAX_ROWS {
        return None;
    }
    let (n, k, m) = (x.nrows(), w.nrows(), w.ncols());
    let (xs, ws, ds) = (x.as_slice()?, w.as_slice()?, d.as_slice()?);
    let mut dx = Array2::<F>::zeros((n, k));
    let mut dw = reuse
        .filter(|g| g.dim() == (k, m) && g.is_standard_layout())
        .unwrap_or_else(|| Array2::zeros((k, m)));
    small_gemm::affine_backward_small(
        xs,
        ws,
        ds,
        (n, k, m),
        dx.as_slice_mut().expect("a fresh array is contiguous"),
        dw.as_slice_mut().expect("a fresh array is contiguous"),
    );
    Some((dx, dw))
}

impl<F: Float> Layer<F> for Affine<F> {
    fn name(&self) -> String {
        "Affine".into()
    }

    fn num_inputs(&self) -> usize {
        1
    }

    fn forward(&mut self, inputs: &[ArrayViewD<'_, F>]) -> Result<ArrayD<F>> {
        const OP: &str = "Affine.forward";
        self.cache = None;
        expect_inputs(OP, inputs, 1)?;
        let x = self.flatten(OP, &inputs[0])?;
        self.reverse = !self.reverse;
        let y = match small_batch(&x, &self.w, &self.b, self.reverse) {
            Some(y) => y,
            None => x.dot(&self.w) + &self.b,
        };
        let out_shape = if inputs[0].ndim() == 1 {
            vec![self.w.ncols()]
        } else {
            vec![x.nrows(), self.w.ncols()]
        };
        let y = reshape(y, &out_shape);
        self.cache = Some(Cache {
            x,
            x_shape: inputs[0].shape().to_vec(),
            out_shape,
        });
        Ok(y)
    }

    fn backward(&mut self, dout: ArrayViewD<'_, F>) -> Result<Vec<ArrayD<F>>> {
        const OP: &str = "Affine.backward";
        let cache = self
            .cache
            .as_ref()
            .ok_or_else(|| Error::BackwardBeforeForward { op: OP.into() })?;
        expect_dout_shape(OP, &cache.out_shape, dout.shape())?;
        let d2 = dout
            .to_shape((cache.x.nrows(), self.w.ncols()))
            .expect("dout shape checked");
        // `dot` with a transposed operand may return a column-major array,
        // which `into_shape_with_order` cannot reshape to rank 3+ without a
        // copy (it panicked for `(N, C, H, W)` inputs); `to_shape` copies
        // when the layout needs it.
        let reuse = self.dw.take();
        let (dx, dw) = match small_batch_backward(&cache.x, &self.w, &d2.view(), reuse) {
            Some(both) => both,
            None => (d2.dot(&self.w.t()), cache.x.t().dot(&d2)),
        };
        let dx = dx
            .to_shape(IxDyn(&cache.x_shape))
            .expect("same element count")
            .into_owned();
        self.dw = Some(dw);
        self.db = Some(d2.sum_axis(Axis(0)));
        Ok(vec![dx])
    }

    fn params(&mut self) -> Vec<Param<'_, F>> {
        vec![
            super::param("W", &mut self.w, self.dw.as_ref()),
            super::param("b", &mut self.b, self.db.as_ref()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use ndarray::{Array, arr1, arr2};

    #[test]
    fn one_d_input_gives_outer_product_dw() {
        // The tutorial's X (2,) · W (2, 3).
        let w = arr2(&[[1.0, 3.0, 5.0], [2.0, 4.0, 6.0]]);
        let mut fc = Affine::new(w, Array1::zeros(3)).unwrap();
        let x = arr1(&[1.0, 2.0]).into_dyn();
        let y = fc.forward(&[x.view()]).unwrap();
        assert_eq!(y, arr1(&[5.0, 11.0, 17.0]).into_dyn());
        let dout = arr1(&[1.0, -1.0, 2.0]).into_dyn();
        let dx = fc.backward(dout.view()).unwrap();
        assert_eq!(dx[0].shape(), &[2]);
        assert_eq!(
            dx[0],
            arr1(&[1.0 - 3.0 + 10.0, 2.0 - 4.0 + 12.0]).into_dyn()
        );
        assert_eq!(
            fc.dw().unwrap(),
            arr2(&[[1.0, -1.0, 2.0], [2.0, -2.0, 4.0]])
        );
        assert_eq!(fc.db().unwrap(), arr1(&[1.0, -1.0, 2.0]));
    }

    #[test]
    fn one_d_with_bias() {
        // X (3,) · W (3, 2) + B (2,) -> Y (2,).
        let w = arr2(&[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]);
        let mut fc = Affine::new(w, arr1(&[0.5, -0.5])).unwrap();
        let y = fc
            .forward(&[arr1(&[1.0, 0.0, -1.0]).into_dyn().view()])
            .unwrap();
        assert_eq!(y.shape(), &[2]);
        assert_abs_diff_eq!(y[0], -3.5);
        assert_abs_diff_eq!(y[1], -4.5);
    }

    #[test]
    fn batched_forward_backward_hand_values() {
        let w = arr2(&[[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]]);
        let mut fc = Affine::new(w, arr1(&[1.0, 2.0])).unwrap();
        let x = arr2(&[
            [1.0, 2.0, 3.0],
            [0.0, 0.0, 0.0],
            [-1.0, 1.0, 0.0],
            [2.0, 0.0, 1.0],
        ])
        .into_dyn();
        let y = fc.forward(&[x.view()]).unwrap();
        assert_eq!(y.shape(), &[4, 2]);
        assert_eq!(
            y,
            arr2(&[[5.0, 1.0], [1.0, 2.0], [0.0, 3.0], [4.0, 1.0]]).into_dyn()
        );
        let dout = arr2(&[[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [1.0, -1.0]]).into_dyn();
        let dx = fc.backward(dout.view()).unwrap();
        assert_eq!(dx[0].shape(), &[4, 3]);
        assert_eq!(
            dx[0],
            arr2(&[
                [1.0, 0.0, 1.0],
                [0.0, 1.0, -1.0],
                [2.0, 1.0, 1.0],
                [1.0, -1.0, 2.0]
            ])
            .into_dyn()
        );
        // dW = Xᵀ · dY, (3, 2).
        let dw = fc.dw().unwrap();
        assert_eq!(dw.shape(), &[3, 2]);
        assert_eq!(
            dw,
            arr2(&[
                [1.0 - 2.0 + 2.0, -1.0 - 2.0],
                [2.0 + 2.0, 1.0],
                [3.0 + 1.0, -1.0]
            ])
        );
        assert_eq!(fc.db().unwrap(), arr1(&[4.0, 1.0]));
    }

    #[test]
    fn repeated_small_batch_forwards_agree_bit_for_bit() {
        // Successive f64 forwards on a few rows alternate the kernel's column
        // order; the outputs must not depend on it. 13 columns: blocks of 8
        // and 4 and a single column.
        let w = Array::from_shape_fn((50, 13), |(i, j)| ((i * 13 + j) as f64 * 0.37).sin());
        let b = Array1::from_shape_fn(13, |j| j as f64 * 0.1 - 0.5);
        let mut fc = Affine::new(w, b).unwrap();
        let x =
            Array::from_shape_fn((3, 50), |(i, j)| ((i * 50 + j) as f64 * 0.11).cos()).into_dyn();
        let bits = |y: ArrayD<f64>| y.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        let first = bits(fc.forward(&[x.view()]).unwrap());
        for _ in 0..3 {
            assert_eq!(bits(fc.forward(&[x.view()]).unwrap()), first);
        }
        let want = x
            .clone()
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap()
            .dot(fc.w())
            + fc.b();
        for (got, want) in fc.forward(&[x.view()]).unwrap().iter().zip(want.iter()) {
            assert_abs_diff_eq!(*got, *want, epsilon = 1e-12);
        }
    }

    #[test]
    fn rank_four_input_gets_dx_in_its_own_shape() {
        let w = Array::from_shape_fn((16, 3), |(i, j)| (i * 3 + j) as f64 * 0.1);
        let mut fc = Affine::new(w.clone(), arr1(&[0.0, 1.0, 2.0])).unwrap();
        let x = Array::from_shape_fn((2, 1, 4, 4), |(n, _, i, j)| (n * 16 + i * 4 + j) as f64)
            .into_dyn();
        let y = fc.forward(&[x.view()]).unwrap();
        assert_eq!(y.shape(), &[2, 3]);
        let x2 = x.to_shape((2, 16)).unwrap();
        let want = x2.dot(&w) + arr1(&[0.0, 1.0, 2.0]);
        for (a, b) in y.iter().zip(want.iter()) {
            assert_abs_diff_eq!(a, b, epsilon = 1e-12);
        }
        let dout = arr2(&[[1.0, 2.0, 3.0], [-1.0, 0.0, 1.0]]).into_dyn();
        let dx = fc.backward(dout.view()).unwrap();
        assert_eq!(dx[0].shape(), &[2, 1, 4, 4]);
        // dX[0, 0, 0, 1] = Σ_j dY[0, j] · W[1, j].
        let want = 1.0 * w[[1, 0]] + 2.0 * w[[1, 1]] + 3.0 * w[[1, 2]];
        assert_abs_diff_eq!(dx[0][[0, 0, 0, 1]], want, epsilon = 1e-12);
        assert_eq!(fc.dw().unwrap().shape(), &[16, 3]);
    }

    #[test]
    fn non_contiguous_input_is_flattened_in_logical_order() {
        let w = arr2(&[[1.0], [10.0]]);
        let mut fc = Affine::new(w, arr1(&[0.0])).unwrap();
        let xt = arr2(&[[1.0, 3.0], [2.0, 4.0]]);
        // The transposed view is [[1, 2], [3, 4]].
        let y = fc.forward(&[xt.t().into_dyn()]).unwrap();
        assert_eq!(y, arr2(&[[21.0], [43.0]]).into_dyn());
    }

    #[test]
    fn params_are_named_and_carry_gradients() {
        let mut fc = Affine::new(arr2(&[[1.0, 2.0]]), arr1(&[0.0, 0.0])).unwrap();
        {
            let ps = fc.params();
            assert_eq!(
                ps.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
                ["W", "b"]
            );
            assert!(ps.iter().all(|p| p.grad.is_none()));
        }
        fc.forward(&[arr1(&[3.0]).into_dyn().view()]).unwrap();
        fc.backward(arr1(&[1.0, 2.0]).into_dyn().view()).unwrap();
        let mut ps = fc.params();
        assert_eq!(
            ps[0].grad.as_ref().unwrap(),
            &arr2(&[[3.0, 6.0]]).into_dyn().view()
        );
        ps[1].value[[1]] = 7.0;
        drop(ps);
        assert_eq!(fc.b(), arr1(&[0.0, 7.0]));
    }

    #[test]
    fn shape_mismatch_reads_like_numpy() {
        let mut fc = Affine::new(arr2(&[[1.0, 2.0], [3.0, 4.0]]), arr1(&[0.0, 0.0])).unwrap();
        let e = fc
            .forward(&[arr1(&[1.0, 2.0, 3.0]).into_dyn().view()])
            .unwrap_err();
        assert!(matches!(e, Error::ShapeMismatch { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            "Affine.forward: shapes (3,) and (2, 2) not aligned: 3 (dim 0) != 2 (dim 0)"
        );
        let x = ArrayD::<f64>::zeros(IxDyn(&[4, 3]));
        let e = fc.forward(&[x.view()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Affine.forward: shapes (4, 3) and (2, 2) not aligned: 3 (dim 1) != 2 (dim 0)"
        );
        let x = ArrayD::<f64>::zeros(IxDyn(&[2, 1, 3]));
        let e = fc.forward(&[x.view()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Affine.forward: shapes (2, 1, 3) and (2, 2) not aligned: input flattened to (2, 3): 3 (dim 1) != 2 (dim 0)"
        );
    }

    #[test]
    fn other_errors() {
        let e = Affine::new(arr2(&[[1.0, 2.0]]), arr1(&[0.0])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Affine.new: shapes (1, 2) and (1,) not aligned: b has 1 element(s) but W has 2 column(s) (dim 1)"
        );
        let e = Affine::<f64>::new(Array2::zeros((0, 2)), Array1::zeros(2)).unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e}");

        let mut fc = Affine::new(arr2(&[[1.0, 2.0]]), arr1(&[0.0, 0.0])).unwrap();
        let e = fc
            .backward(arr1(&[1.0, 2.0]).into_dyn().view())
            .unwrap_err();
        assert!(matches!(e, Error::BackwardBeforeForward { .. }), "{e}");
        let x = arr2(&[[1.0]]).into_dyn();
        let e = fc.forward(&[x.view(), x.view()]).unwrap_err();
        assert!(matches!(e, Error::InputCount { got: 2, .. }), "{e}");
        let e = fc
            .forward(&[ndarray::arr0(1.0).into_dyn().view()])
            .unwrap_err();
        assert!(matches!(e, Error::BadShape { .. }), "{e}");
        let e = fc
            .forward(&[ArrayD::zeros(IxDyn(&[0, 1])).view()])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Affine.forward: empty batch (input shape (0, 1))"
        );
        fc.forward(&[x.view()]).unwrap();
        let e = fc
            .backward(arr1(&[1.0, 2.0]).into_dyn().view())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Affine.backward: dout has shape (2,), expected (1, 2) (the shape of the last forward output)"
        );
        // A failed forward clears the cache.
        let _ = fc.forward(&[arr1(&[1.0, 2.0]).into_dyn().view()]);
        let e = fc
            .backward(arr2(&[[1.0, 2.0]]).into_dyn().view())
            .unwrap_err();
        assert!(matches!(e, Error::BackwardBeforeForward { .. }), "{e}");
    }
}
