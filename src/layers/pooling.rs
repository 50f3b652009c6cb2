//! Max and average pooling over `(PH, PW)` windows of each channel, with a
//! stride and a padding.
//!
//! # Max pooling
//! `y[n, c, i, j] = max` over the window's **in-bounds** elements: padded
//! positions never win (they are not zeros, which would beat an all-negative
//! window). Backward routes `dout` to the element that won; an input element
//! that wins several overlapping windows receives the sum.
//!
//! **Ties are kinks.** When several elements of a window share the maximum,
//! the gradient goes entirely to the **first** of them in row-major order
//! within the window (lowest row, then lowest column), as numpy's `argmax`
//! does. That is one valid subgradient; the function is not differentiable
//! there, and a gradient checker must treat such elements as kinks.
//!
//! # Average pooling
//! `y = (1 / (PH·PW)) Σ window`, padded positions counting as **zeros** in
//! the sum and in the divisor (PyTorch's `count_include_pad = true`), so the
//! layer is linear with constant weights: backward adds `dout / (PH·PW)` to
//! every in-bounds element of the window.
//!
//! # Shapes
//! `x (N, C, H, W)` to `y (N, C, OH, OW)`, `OH = ⌊(H + 2P − PH) / S⌋ + 1`.
//! The padding must be smaller than the window in each direction (so every
//! window holds at least one real element); errors for a stride of 0, an
//! empty window, a rank other than 4, or a window larger than the padded input.

use super::im2col::{Window, expect_nchw};
use super::{expect_dout_shape, expect_inputs};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::layer::Layer;
use ndarray::{Array4, ArrayD, ArrayViewD, Ix4, IxDyn};

/// Validates a pooling window.
fn pool_window(op: &str, ph: usize, pw: usize, stride: usize, pad: usize) -> Result<Window> {
    let win = Window::new(op, ph, pw, stride, pad)?;
    if pad >= ph || pad >= pw {
        return Err(Error::Config(format!(
            "{op}: padding {pad} must be smaller than the window {ph} x {pw}"
        )));
    }
    Ok(win)
}

/// Checks the input and returns it as 4-D with the output size.
fn pool_input<'a, F: Float>(
    op: &str,
    inputs: &'a [ArrayViewD<'_, F>],
    win: &Window,
) -> Result<(ndarray::ArrayView4<'a, F>, usize, usize)> {
    expect_inputs(op, inputs, 1)?;
    let [_, _, h, w] = expect_nchw(op, inputs[0].shape())?;
    let (oh, ow) = win.output_size(op, inputs[0].shape(), h, w)?;
    let x = inputs[0]
        .view()
        .into_dimensionality::<Ix4>()
        .expect("rank 4");
    Ok((x, oh, ow))
}

/// Max pooling; ties go to the first maximum in row-major window order.
#[derive(Debug, Clone)]
pub struct MaxPooling<F> {
    win: Window,
    /// Per output element (row-major), the flat index into the input of
    /// the element that won; `None` before a forward and after a failed one.
    argmax: Option<Vec<usize>>,
    /// The last input's and output's shapes.
    shapes: Option<([usize; 4], [usize; 4])>,
    _f: std::marker::PhantomData<F>,
}

impl<F: Float> MaxPooling<F> {
    /// Max pooling over `(ph, pw)` windows with the given stride and padding.
    ///
    /// **Errors** with [`Error::Config`] if the window is empty, the stride
    /// is 0, or `pad >= ph` or `pad >= pw`.
    pub fn new(ph: usize, pw: usize, stride: usize, pad: usize) -> Result<Self> {
        Ok(MaxPooling {
            win: pool_window("MaxPooling", ph, pw, stride, pad)?,
            argmax: None,
            shapes: None,
            _f: std::marker::PhantomData,
        })
    }

    /// The window geometry.
    pub fn window(&self) -> Window {
        self.win
    }
}

impl<F: Float> Layer<F> for MaxPooling<F> {
    fn name(&self) -> String {
        "MaxPooling".into()
    }

    fn num_inputs(&self) -> usize {
        1
    }

    fn forward(&mut self, inputs: &[ArrayViewD<'_, F>]) -> Result<ArrayD<F>> {
        const OP: &str = "MaxPooling.forward";
        self.argmax = None;
        let (x, oh, ow) = pool_input(OP, inputs, &self.win)?;
        let (n, c, h, w) = x.dim();
        let x = x.as_standard_layout();
        let xs = x.as_slice().expect("standard layout");
        let win = self.win;
        let (rows, cols) = (win.spans(oh, win.fh, h), win.spans(ow, win.fw, w));
        let mut y = Vec::with_capacity(n * c * oh * ow);
        let mut arg = Vec::with_capacity(n * c * oh * ow);
        for (p, plane) in xs.chunks_exact(h * w).enumerate() {
            for &(r0, r1) in &rows {
                for &(c0, c1) in &cols {
                    // Row-major over the window's in-bounds elements;
                    // strictly greater, so the first maximum keeps the
                    // gradient, and a NaN wins only as the first value.
                    let mut best = (plane[r0 * w + c0], r0 * w + c0);
                    for r in r0..r1 {
                        for (s, &val) in plane[r * w + c0..r * w + c1].iter().enumerate() {
                            if val > best.0 {
                                best = (val, r * w + c0 + s);
                            }
                        }
                    }
                    y.push(best.0);
                    arg.push(p * h * w + best.1);
                }
            }
        }
        self.argmax = Some(arg);
        self.shapes = Some(([n, c, h, w], [n, c, oh, ow]));
        Ok(ArrayD::from_shape_vec(IxDyn(&[n, c, oh, ow]), y).expect("n·c·oh·ow outputs"))
    }

    fn backward(&mut self, dout: ArrayViewD<'_, F>) -> Result<Vec<ArrayD<F>>> {
        const OP: &str = "MaxPooling.backward";
        let (Some(arg), Some((x_shape, out_shape))) = (self.argmax.as_ref(), self.shapes.as_ref())
        else {
            return Err(Error::BackwardBeforeForward { op: OP.into() });
        };
        expect_dout_shape(OP, out_shape, dout.shape())?;
        let d = dout.as_standard_layout();
        let mut dx = vec![F::zero(); x_shape.iter().product()];
        for (&i, &g) in arg.iter().zip(d.iter()) {
            dx[i] += g;
        }
        Ok(vec![
            ArrayD::from_shape_vec(IxDyn(x_shape), dx).expect("the input's element count"),
        ])
    }
}

/// Average pooling; padding counts as zeros in the sum and the divisor.
#[derive(Debug, Clone)]
pub struct AveragePooling<F> {
    win: Window,
    /// The last input's shape and the output's, `None` before a forward.
    shapes: Option<(Vec<usize>, Vec<usize>)>,
    _f: std::marker::PhantomData<F>,
}

impl<F: Float> AveragePooling<F> {
    /// Average pooling over `(ph, pw)` windows with the given stride and padding.
    ///
    /// **Errors** as [`MaxPooling::new`].
    pub fn new(ph: usize, pw: usize, stride: usize, pad: usize) -> Result<Self> {
        Ok(AveragePooling {
            win: pool_window("AveragePooling", ph, pw, stride, pad)?,
            shapes: None,
            _f: std::marker::PhantomData,
        })
    }

    /// The window geometry.
    pub fn window(&self) -> Window {
        self.win
    }

    fn inv_area(&self) -> F {
        F::one() / F::from_usize(self.win.fh * self.win.fw).expect("window size fits")
    }
}

impl<F: Float> Layer<F> for AveragePooling<F> {
    fn name(&self) -> String {
        "AveragePooling".into()
    }

    fn num_inputs(&self) -> usize {
        1
    }

    fn forward(&mut self, inputs: &[ArrayViewD<'_, F>]) -> Result<ArrayD<F>> {
        const OP: &str = "AveragePooling.forward";
        self.shapes = None;
        let (x, oh, ow) = pool_input(OP, inputs, &self.win)?;
        let (n, c, h, w) = x.dim();
        let (win, k) = (self.win, self.inv_area());
        let y = Array4::from_shape_fn((n, c, oh, ow), |(ni, ci, i, j)| {
            let mut acc = F::zero();
            for u in 0..win.fh {
                let Some(r) = win.source(i, u, h) else {
                    continue;
                };
                for v in 0..win.fw {
                    if let Some(s) = win.source(j, v, w) {
                        acc += x[[ni, ci, r, s]];
                    }
                }
            }
            acc * k
        });
        self.shapes = Some((x.shape().to_vec(), y.shape().to_vec()));
        Ok(y.into_dyn())
    }

    fn backward(&mut self, dout: ArrayViewD<'_, F>) -> Result<Vec<ArrayD<F>>> {
        const OP: &str = "AveragePooling.backward";
        let (x_shape, out_shape) = self
            .shapes
            .as_ref()
            .ok_or_else(|| Error::BackwardBeforeForward { op: OP.into() })?;
        expect_dout_shape(OP, out_shape, dout.shape())?;
        let d = dout.view().into_dimensionality::<Ix4>().expect("rank 4");
        let (h, w) = (x_shape[2], x_shape[3]);
        let (win, k) = (self.win, self.inv_area());
        let mut dx = ArrayD::zeros(x_shape.as_slice());
        for ((ni, ci, i, j), &g) in d.indexed_iter() {
            for u in 0..win.fh {
                let Some(r) = win.source(i, u, h) else {
                    continue;
                };
                for v in 0..win.fw {
                    if let Some(s) = win.source(j, v, w) {
                        dx[[ni, ci, r, s]] += g * k;
                    }
                }
            }
        }
        Ok(vec![dx])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::numeric::{assert_gradients_ok, spread, worst_error};
    use crate::test_util::assert_close;
    use ndarray::Array;

    fn grid(v: &[f64], h: usize, w: usize) -> ArrayD<f64> {
        Array::from_shape_vec((1, 1, h, w), v.to_vec())
            .unwrap()
            .into_dyn()
    }

    #[test]
    fn max_pooling_hand_example() {
        let mut p = MaxPooling::new(2, 2, 2, 0).unwrap();
        let x = grid(
            &[
                1.0, 3.0, -1.0, 0.0, 2.0, 0.5, -2.0, -0.5, 4.0, 4.0, 1.0, 1.0, 0.0, 4.0, 1.0, 1.0,
            ],
            4,
            4,
        );
        let y = p.forward(&[x.view()]).unwrap();
        assert_eq!(y, grid(&[3.0, 0.0, 4.0, 1.0], 2, 2));
        let dx = p
            .backward(grid(&[10.0, 20.0, 30.0, 40.0], 2, 2).view())
            .unwrap();
        // Ties (three 4s; four 1s) go to the first in row-major window order.
        let want = grid(
            &[
                0.0, 10.0, 0.0, 20.0, 0.0, 0.0, 0.0, 0.0, 30.0, 0.0, 40.0, 0.0, 0.0, 0.0, 0.0, 0.0,
            ],
            4,
            4,
        );
        assert_eq!(dx[0], want);
    }

    /// Max pooling straight from its definition (every window position
    /// through `Window::source`, the first strict maximum in row-major
    /// order): the outputs and the flat indices of the winners.
    fn max_pool_by_definition(x: &Array4<f64>, win: Window) -> (Vec<f64>, Vec<usize>) {
        let (n, c, h, w) = x.dim();
        let (oh, ow) = win.output_size("t", x.shape(), h, w).unwrap();
        let (mut y, mut arg) = (vec![], vec![]);
        for (ni, ci, i, j) in ndarray::indices((n, c, oh, ow)) {
            let mut best: Option<(f64, usize)> = None;
            for u in 0..win.fh {
                for v in 0..win.fw {
                    if let (Some(r), Some(s)) = (win.source(i, u, h), win.source(j, v, w)) {
                        let val = x[[ni, ci, r, s]];
                        if best.is_none_or(|(b, _)| val > b) {
                            best = Some((val, ((ni * c + ci) * h + r) * w + s));
                        }
                    }
                }
            }
            let (val, at) = best.unwrap();
            y.push(val);
            arg.push(at);
        }
        (y, arg)
    }

    /// The plane-slice implementation gives the definition's outputs and
    /// routes each `dout` to the definition's winner, bit for bit, on inputs
    /// full of ties (small integers), infinities and NaNs, including inputs
    /// in a non-standard memory order.
    #[test]
    fn max_pooling_matches_its_definition() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        let mut rng = StdRng::seed_from_u64(7);
        for case in 0..300 {
            let (fh, fw): (usize, usize) = (rng.random_range(1..=3), rng.random_range(1..=3));
            let (stride, pad): (usize, usize) =
                (rng.random_range(1..=3), rng.random_range(0..fh.min(fw)));
            let (n, c): (usize, usize) = (rng.random_range(1..=2), rng.random_range(1..=3));
            let h = rng.random_range(fh.saturating_sub(2 * pad).max(1)..=7);
            let w = rng.random_range(fw.saturating_sub(2 * pad).max(1)..=7);
            let x = Array4::from_shape_simple_fn((n, c, h, w), || match rng.random_range(0..20) {
                0 => f64::NAN,
                1 => f64::INFINITY,
                2 => f64::NEG_INFINITY,
                _ => f64::from(rng.random_range(-3i32..=3)),
            });
            // Every other case reads the same values from a permuted layout.
            let x_in = if case % 2 == 0 {
                x.clone().into_dyn()
            } else {
                let mut t = Array4::zeros((w, h, c, n));
                t.assign(&x.view().permuted_axes([3, 2, 1, 0]));
                t.permuted_axes([3, 2, 1, 0]).into_dyn()
            };
            let win = Window::new("t", fh, fw, stride, pad).unwrap();
            let (want_y, want_arg) = max_pool_by_definition(&x, win);
            let mut p = MaxPooling::new(fh, fw, stride, pad).unwrap();
            let y = p.forward(&[x_in.view()]).unwrap();
            let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&y.iter().copied().collect::<Vec<_>>()),
                bits(&want_y),
                "case {case}"
            );
            let d = y.mapv(|_| f64::from(rng.random_range(1..1000)));
            let dx = p.backward(d.view()).unwrap();
            let mut want_dx = vec![0.0; x.len()];
            for (&at, &g) in want_arg.iter().zip(d.iter()) {
                want_dx[at] += g;
            }
            assert_eq!(dx[0].shape(), x.shape());
            assert_eq!(
                dx[0].iter().copied().collect::<Vec<_>>(),
                want_dx,
                "case {case}"
            );
        }
    }

    #[test]
    fn max_pooling_padding_never_wins() {
        let mut p = MaxPooling::new(2, 2, 1, 1).unwrap();
        let x = grid(&[-1.0, -2.0, -3.0, -4.0], 2, 2);
        let y = p.forward(&[x.view()]).unwrap();
        assert_eq!(
            y,
            grid(
                &[-1.0, -1.0, -2.0, -1.0, -1.0, -2.0, -3.0, -3.0, -4.0],
                3,
                3
            )
        );
        // Overlapping windows sum: x[0,0] wins four windows.
        let dx = p.backward(ArrayD::ones(vec![1, 1, 3, 3]).view()).unwrap();
        assert_eq!(dx[0], grid(&[4.0, 2.0, 2.0, 1.0], 2, 2));
    }

    #[test]
    fn average_pooling_hand_example_with_padding() {
        let mut p = AveragePooling::new(2, 2, 2, 1).unwrap();
        let x = grid(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], 3, 3);
        let y = p.forward(&[x.view()]).unwrap();
        // Windows over the zero-padded 5x5: padding counts in the divisor 4.
        assert_close(&y, &grid(&[0.25, 1.25, 2.75, 7.0], 2, 2), 1e-15);
        let dx = p
            .backward(grid(&[4.0, 8.0, 12.0, 16.0], 2, 2).view())
            .unwrap();
        assert_close(
            &dx[0],
            &grid(&[1.0, 2.0, 2.0, 3.0, 4.0, 4.0, 3.0, 4.0, 4.0], 3, 3),
            1e-15,
        );
    }

    #[test]
    fn backward_agrees_with_central_differences() {
        for (shape, (ph, pw, s, pad)) in [
            ([1, 1, 4, 4], (2, 2, 2, 0)),
            ([2, 3, 5, 6], (3, 2, 1, 1)),
            ([2, 2, 7, 5], (3, 3, 2, 2)),
            ([1, 3, 8, 8], (2, 3, 3, 1)),
        ] {
            let x = spread(&shape, 5);
            assert_gradients_ok(
                &mut MaxPooling::new(ph, pw, s, pad).unwrap(),
                std::slice::from_ref(&x),
                1e-8,
            );
            assert_gradients_ok(
                &mut AveragePooling::new(ph, pw, s, pad).unwrap(),
                &[x],
                1e-8,
            );
        }
    }

    /// The tutorial-style bug of spreading max-pooling's gradient over the
    /// whole window (average pooling's backward) is caught, and so is
    /// forgetting to divide by the window size in average pooling.
    #[test]
    fn wrong_backwards_are_caught() {
        struct MaxAsAverage(MaxPooling<f64>, AveragePooling<f64>);
        impl Layer<f64> for MaxAsAverage {
            fn name(&self) -> String {
                "MaxAsAverage".into()
            }
            fn num_inputs(&self) -> usize {
                1
            }
            fn forward(&mut self, inputs: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
                self.1.forward(inputs)?;
                self.0.forward(inputs)
            }
            fn backward(&mut self, dout: ArrayViewD<'_, f64>) -> Result<Vec<ArrayD<f64>>> {
                let dx = self.1.backward(dout)?;
                Ok(vec![&dx[0] * 4.0])
            }
        }
        let mut wrong = MaxAsAverage(
            MaxPooling::new(2, 2, 2, 0).unwrap(),
            AveragePooling::new(2, 2, 2, 0).unwrap(),
        );
        assert!(worst_error(&mut wrong, &[spread(&[2, 2, 4, 4], 1)]) > 0.1);

        struct AverageUndivided(AveragePooling<f64>);
        impl Layer<f64> for AverageUndivided {
            fn name(&self) -> String {
                "AverageUndivided".into()
            }
            fn num_inputs(&self) -> usize {
                1
            }
            fn forward(&mut self, inputs: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
                self.0.forward(inputs)
            }
            fn backward(&mut self, dout: ArrayViewD<'_, f64>) -> Result<Vec<ArrayD<f64>>> {
                let dx = self.0.backward(dout)?;
                Ok(vec![&dx[0] * 9.0])
            }
        }
        let mut wrong = AverageUndivided(AveragePooling::new(3, 3, 1, 1).unwrap());
        assert!(worst_error(&mut wrong, &[spread(&[1, 2, 4, 4], 1)]) > 0.1);
    }

    #[test]
    fn errors() {
        let e = MaxPooling::<f64>::new(2, 2, 0, 0).unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e}");
        let e = AveragePooling::<f64>::new(2, 2, 1, 2).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid configuration: AveragePooling: padding 2 must be smaller than the window 2 x 2"
        );
        let mut p = MaxPooling::<f64>::new(3, 3, 1, 0).unwrap();
        let e = p
            .backward(ArrayD::zeros(vec![1, 1, 1, 1]).view())
            .unwrap_err();
        assert!(matches!(e, Error::BackwardBeforeForward { .. }), "{e}");
        let e = p.forward(&[ArrayD::zeros(vec![2, 2]).view()]).unwrap_err();
        assert!(matches!(e, Error::BadShape { .. }), "{e}");
        let e = p
            .forward(&[ArrayD::zeros(vec![1, 1, 2, 4]).view()])
            .unwrap_err();
        assert!(matches!(e, Error::BadShape { .. }), "{e}");
        p.forward(&[ArrayD::zeros(vec![1, 1, 3, 4]).view()])
            .unwrap();
        let e = p
            .backward(ArrayD::zeros(vec![1, 1, 1, 1]).view())
            .unwrap_err();
        assert!(matches!(e, Error::DoutShape { .. }), "{e}");
        let e = p.forward(&[]).unwrap_err();
        assert!(matches!(e, Error::InputCount { .. }), "{e}");
        let e = p
            .backward(ArrayD::zeros(vec![1, 1, 1, 2]).view())
            .unwrap_err();
        assert!(matches!(e, Error::BackwardBeforeForward { .. }), "{e}");
        let mut a = AveragePooling::<f32>::new(2, 2, 1, 0).unwrap();
        let e = a
            .backward(ArrayD::zeros(vec![1, 1, 1, 1]).view())
            .unwrap_err();
        assert!(matches!(e, Error::BackwardBeforeForward { .. }), "{e}");
        let e = a
            .forward(&[ArrayD::zeros(vec![1, 0, 3, 3]).view()])
            .unwrap_err();
        assert!(matches!(e, Error::EmptyBatch { .. }), "{e}");
    }
}
