//! Convolution (cross-correlation, as in every deep-learning library):
//! `y[n, f, i, j] = b[f] + Σ_{c, u, v} W[f, c, u, v] · x_pad[n, c, i·S + u, j·S + v]`.
//!
//! Computed through [`im2col`](super::im2col): with `col = im2col(x)
//! (N·OH·OW, C·FH·FW)` and `W` flattened to `Wc (FN, C·FH·FW)`, the output is
//! `col · Wcᵀ + b`, reshaped to `(N, FN, OH, OW)`. Backward, with `dout`
//! rearranged to `D (N·OH·OW, FN)`:
//! `db = Σ_rows D`, `dW = Dᵀ · col` (reshaped to `W`'s shape),
//! `dx = col2im(D · Wc)`.
//!
//! # Shapes
//! `x (N, C, H, W)`, `W (FN, C, FH, FW)`, `b (FN,)`, stride `S >= 1`, zero
//! padding `P`; `y (N, FN, OH, OW)` with `OH = ⌊(H + 2P − FH) / S⌋ + 1` (and
//! likewise `OW`). Errors: a rank other than 4, `C` differing from `W`'s, a
//! kernel larger than the padded input, an empty input.

use super::im2col::{Window, col2im, expect_nchw, im2col};
use super::{expect_dout_shape, expect_inputs};
use crate::error::{Error, Result, Shape};
use crate::float::Float;
use crate::layer::{Layer, Param};
use ndarray::{Array1, Array2, Array4, ArrayD, ArrayViewD, Axis, Ix4, Order};

/// What forward keeps for backward.
#[derive(Debug, Clone)]
struct Cache<F> {
    col: Array2<F>,
    x_shape: [usize; 4],
    out_shape: Vec<usize>,
}

/// A 2-D convolution layer with filters `W (FN, C, FH, FW)` and bias `b (FN,)`.
#[derive(Debug, Clone)]
pub struct Convolution<F> {
    w: Array4<F>,
    b: Array1<F>,
    win: Window,
    dw: Option<Array4<F>>,
    db: Option<Array1<F>>,
    cache: Option<Cache<F>>,
}

impl<F: Float> Convolution<F> {
    /// A layer with the given filters, bias, stride and padding.
    ///
    /// **Errors** with [`Error::ShapeMismatch`] if `b.len() != FN`, and
    /// [`Error::Config`] if `W` has a zero dimension or `stride` is 0.
    pub fn new(w: Array4<F>, b: Array1<F>, stride: usize, pad: usize) -> Result<Self> {
        let (fnum, c, fh, fw) = w.dim();
        if b.len() != fnum {
            return Err(Error::ShapeMismatch {
                op: "Convolution.new".into(),
                lhs: Shape::of(w.shape()),
                rhs: Shape::of(b.shape()),
                detail: format!("b must have one element per filter (FN = {fnum})"),
            });
        }
        if fnum == 0 || c == 0 {
            return Err(Error::Config(format!(
                "Convolution: W must have at least one filter and one channel, got shape {}",
                Shape::of(w.shape())
            )));
        }
        let win = Window::new("Convolution", fh, fw, stride, pad)?;
        Ok(Convolution {
            w,
            b,
            win,
            dw: None,
            db: None,
            cache: None,
        })
    }

    /// The filters `W (FN, C, FH, FW)`.
    pub fn w(&self) -> &Array4<F> {
        &self.w
    }

    /// The bias `b (FN,)`.
    pub fn b(&self) -> &Array1<F> {
        &self.b
    }

    /// `dW` from the last backward.
    pub fn dw(&self) -> Option<&Array4<F>> {
        self.dw.as_ref()
    }

    /// `db` from the last backward.
    pub fn db(&self) -> Option<&Array1<F>> {
        self.db.as_ref()
    }

    /// The stride.
    pub fn stride(&self) -> usize {
        self.win.stride
    }

    /// The zero padding on every side.
    pub fn pad(&self) -> usize {
        self.win.pad
    }

    /// `(OH, OW)` for an input of spatial size `(h, w)`.
    ///
    /// **Errors** if the kernel is larger than the padded input.
    pub fn output_size(&self, h: usize, w: usize) -> Result<(usize, usize)> {
        self.win
            .output_size("Convolution.output_size", &[h, w], h, w)
    }

    /// Replaces `dW` (test-only: for deliberately wrong backwards).
    #[cfg(test)]
    pub(crate) fn replace_dw(&mut self, f: impl FnOnce(Array4<F>) -> Array4<F>) {
        self.dw = self.dw.take().map(f);
    }

    /// `W` flattened to `(FN, C·FH·FW)`.
    fn w_col(&self) -> Array2<F> {
        let fnum = self.w.dim().0;
        let k = self.w.len() / fnum;
        self.w
            .to_shape(((fnum, k), Order::RowMajor))
            .expect("element count")
            .into_owned()
    }
}

impl<F: Float> Layer<F> for Convolution<F> {
    fn name(&self) -> String {
        "Convolution".into()
    }

    fn num_inputs(&self) -> usize {
        1
    }

    fn forward(&mut self, inputs: &[ArrayViewD<'_, F>]) -> Result<ArrayD<F>> {
        const OP: &str = "Convolution.forward";
        self.cache = None;
        expect_inputs(OP, inputs, 1)?;
        let [n, c, h, w] = expect_nchw(OP, inputs[0].shape())?;
        let (fnum, wc, _, _) = self.w.dim();
        if c != wc {
            return Err(Error::ShapeMismatch {
                op: OP.into(),
                lhs: Shape::of(inputs[0].shape()),
                rhs: Shape::of(self.w.shape()),
                detail: format!("{c} channel(s) (dim 1) != {wc} (W dim 1)"),
            });
        }
        let (oh, ow) = self.win.output_size(OP, inputs[0].shape(), h, w)?;
        let x = inputs[0]
            .view()
            .into_dimensionality::<Ix4>()
            .expect("rank 4");
        let col = im2col(x, &self.win)?;
        let y = col.dot(&self.w_col().t()) + &self.b; // (N·OH·OW, FN)
        let y = super::reshape_c(y, (n, oh, ow, fnum))
            .permuted_axes([0, 3, 1, 2])
            .as_standard_layout()
            .into_owned()
            .into_dyn();
        self.cache = Some(Cache {
            col,
            x_shape: [n, c, h, w],
            out_shape: y.shape().to_vec(),
        });
        Ok(y)
    }

    fn backward(&mut self, dout: ArrayViewD<'_, F>) -> Result<Vec<ArrayD<F>>> {
        const OP: &str = "Convolution.backward";
        let cache = self
            .cache
            .as_ref()
            .ok_or_else(|| Error::BackwardBeforeForward { op: OP.into() })?;
        expect_dout_shape(OP, &cache.out_shape, dout.shape())?;
        let fnum = self.w.dim().0;
        let d4 = dout.view().into_dimensionality::<Ix4>().expect("rank 4");
        let rows = cache.col.nrows();
        let d = d4
            .permuted_axes([0, 2, 3, 1])
            .to_shape(((rows, fnum), Order::RowMajor))
            .expect("element count")
            .into_owned();
        let db = d.sum_axis(Axis(0));
        let dw = super::reshape_c(d.t().dot(&cache.col), self.w.raw_dim());
        let dcol = d.dot(&self.w_col());
        let dx = col2im(dcol.view(), cache.x_shape, &self.win)?;
        self.dw = Some(dw);
        self.db = Some(db);
        Ok(vec![dx.into_dyn()])
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
    use crate::layers::numeric::{assert_gradients_ok, spread, worst_error};
    use crate::test_util::assert_close;
    use ndarray::{Array, arr1};

    /// The definition, summed directly, for comparison.
    fn direct(
        x: &Array4<f64>,
        w: &Array4<f64>,
        b: &Array1<f64>,
        s: usize,
        p: usize,
    ) -> Array4<f64> {
        let (n, c, h, wd) = x.dim();
        let (fnum, _, fh, fw) = w.dim();
        let oh = (h + 2 * p - fh) / s + 1;
        let ow = (wd + 2 * p - fw) / s + 1;
        Array4::from_shape_fn((n, fnum, oh, ow), |(ni, f, i, j)| {
            let mut acc = b[f];
            for ci in 0..c {
                for u in 0..fh {
                    for v in 0..fw {
                        let (y, xx) = (
                            (i * s + u) as isize - p as isize,
                            (j * s + v) as isize - p as isize,
                        );
                        if y >= 0 && xx >= 0 && (y as usize) < h && (xx as usize) < wd {
                            acc += w[[f, ci, u, v]] * x[[ni, ci, y as usize, xx as usize]];
                        }
                    }
                }
            }
            acc
        })
    }

    #[test]
    fn hand_example_3x3_input_2x2_kernel() {
        let x = Array::from_shape_vec((1, 1, 3, 3), (1..=9).map(f64::from).collect()).unwrap();
        let w = Array::from_shape_vec((1, 1, 2, 2), vec![1.0, 0.0, 0.0, -1.0]).unwrap();
        let mut conv = Convolution::new(w, arr1(&[0.5]), 1, 0).unwrap();
        let y = conv.forward(&[x.view().into_dyn()]).unwrap();
        // y[i, j] = x[i, j] − x[i + 1, j + 1] + 0.5 = −4 + 0.5 everywhere.
        assert_close(&y, &Array4::from_elem((1, 1, 2, 2), -3.5), 1e-15);
        let dout = Array::from_shape_vec((1, 1, 2, 2), vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let dx = conv.backward(dout.view().into_dyn()).unwrap();
        // dx[a, b] = Σ dout[i, j] W[a − i, b − j].
        let want = Array::from_shape_vec(
            (1, 1, 3, 3),
            vec![1.0, 2.0, 0.0, 3.0, 4.0 - 1.0, -2.0, 0.0, -3.0, -4.0],
        )
        .unwrap();
        assert_close(&dx[0], &want, 1e-15);
        assert_close(conv.db().unwrap(), &arr1(&[10.0]), 1e-15);
        // dW[u, v] = Σ dout[i, j] x[i + u, j + v].
        let dw = Array::from_shape_vec((1, 1, 2, 2), vec![37.0, 47.0, 67.0, 77.0]).unwrap();
        assert_close(conv.dw().unwrap(), &dw, 1e-12);
    }

    /// Regression (found by the property tests): with one kernel element
    /// `col` is `(rows, 1)` and `col · Wcᵀ` comes out column-major, which
    /// the reshape to `(N, OH, OW, FN)` refused.
    #[test]
    fn single_element_kernel_with_several_filters() {
        let w = spread(&[3, 1, 1, 1], 1).into_dimensionality().unwrap();
        let mut conv = Convolution::new(w, arr1(&[0.0, 1.0, 2.0]), 1, 0).unwrap();
        let x = spread(&[1, 1, 1, 2], 2);
        let y = conv.forward(&[x.view()]).unwrap();
        assert_eq!(y.shape(), &[1, 3, 1, 2]);
        assert_gradients_ok(&mut conv, &[x], 1e-8);
    }

    #[test]
    fn forward_agrees_with_the_definition() {
        for (s, p) in [(1, 0), (1, 1), (2, 1), (3, 2)] {
            let x = spread(&[2, 3, 7, 6], 1).into_dimensionality().unwrap();
            let w: Array4<f64> = spread(&[4, 3, 3, 2], 2).into_dimensionality().unwrap();
            let b = arr1(&[0.1, -0.2, 0.3, 0.0]);
            let mut conv = Convolution::new(w.clone(), b.clone(), s, p).unwrap();
            let y = conv.forward(&[x.view().into_dyn()]).unwrap();
            assert_close(&y, &direct(&x, &w, &b, s, p), 1e-12);
        }
    }

    #[test]
    fn backward_agrees_with_central_differences() {
        for (xs, ws, s, p) in [
            ([1, 1, 4, 4], [2, 1, 3, 3], 1, 0),
            ([2, 3, 5, 4], [2, 3, 3, 2], 1, 1),
            ([2, 2, 6, 7], [3, 2, 2, 3], 2, 1),
            ([1, 2, 3, 3], [1, 2, 3, 3], 2, 2),
        ] {
            let w = spread(&ws, 3).into_dimensionality().unwrap();
            let b = spread(&[ws[0]], 4).into_dimensionality().unwrap();
            let mut conv = Convolution::new(w, b, s, p).unwrap();
            assert_gradients_ok(&mut conv, &[spread(&xs, 1)], 1e-8);
        }
    }

    /// Forgetting to flip back: dW taken as the transpose-by-kernel (`dW[u, v]`
    /// from `dW[v, u]`, square kernel so shapes do not give it away) is caught.
    #[test]
    fn wrong_backward_with_transposed_kernel_gradient_is_caught() {
        struct Wrong(Convolution<f64>);
        impl Layer<f64> for Wrong {
            fn name(&self) -> String {
                "WrongConvolution".into()
            }
            fn num_inputs(&self) -> usize {
                1
            }
            fn forward(&mut self, inputs: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
                self.0.forward(inputs)
            }
            fn backward(&mut self, dout: ArrayViewD<'_, f64>) -> Result<Vec<ArrayD<f64>>> {
                let dx = self.0.backward(dout)?;
                self.0.replace_dw(|dw| {
                    dw.permuted_axes([0, 1, 3, 2])
                        .as_standard_layout()
                        .into_owned()
                });
                Ok(dx)
            }
            fn params(&mut self) -> Vec<Param<'_, f64>> {
                self.0.params()
            }
        }
        let w = spread(&[2, 2, 3, 3], 3).into_dimensionality().unwrap();
        let mut wrong = Wrong(Convolution::new(w, arr1(&[0.0, 0.1]), 1, 1).unwrap());
        assert!(worst_error(&mut wrong, &[spread(&[2, 2, 4, 4], 1)]) > 0.01);
    }

    #[test]
    fn errors() {
        let w = Array4::<f64>::zeros((2, 3, 3, 3));
        let e = Convolution::new(w.clone(), arr1(&[0.0]), 1, 0).unwrap_err();
        assert!(matches!(e, Error::ShapeMismatch { .. }), "{e}");
        let e = Convolution::new(w.clone(), arr1(&[0.0, 0.0]), 0, 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid configuration: Convolution: stride must be at least 1, got 0"
        );
        let mut conv = Convolution::new(w, arr1(&[0.0, 0.0]), 1, 0).unwrap();
        let e = conv
            .backward(Array4::<f64>::zeros((1, 2, 1, 1)).view().into_dyn())
            .unwrap_err();
        assert!(matches!(e, Error::BackwardBeforeForward { .. }), "{e}");
        let e = conv
            .forward(&[ArrayD::zeros(ndarray::IxDyn(&[3, 3, 3])).view()])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Convolution.forward: input 0 has shape (3, 3, 3), expected rank 4 (N, C, H, W)"
        );
        let e = conv
            .forward(&[Array4::zeros((1, 2, 5, 5)).view().into_dyn()])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Convolution.forward: shapes (1, 2, 5, 5) and (2, 3, 3, 3) not aligned: 2 channel(s) (dim 1) != 3 (W dim 1)"
        );
        let e = conv
            .forward(&[Array4::zeros((1, 3, 2, 5)).view().into_dyn()])
            .unwrap_err();
        assert!(matches!(e, Error::BadShape { .. }), "{e}");
        let e = conv
            .forward(&[Array4::zeros((0, 3, 5, 5)).view().into_dyn()])
            .unwrap_err();
        assert!(matches!(e, Error::EmptyBatch { .. }), "{e}");
        conv.forward(&[Array4::zeros((1, 3, 4, 4)).view().into_dyn()])
            .unwrap();
        let e = conv
            .backward(Array4::<f64>::zeros((1, 2, 1, 1)).view().into_dyn())
            .unwrap_err();
        assert!(matches!(e, Error::DoutShape { .. }), "{e}");
        assert_eq!(conv.output_size(4, 4).unwrap(), (2, 2));
    }
}
