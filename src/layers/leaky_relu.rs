//! Leaky ReLU: `y = x` for `x > 0`, `y = α·x` otherwise; backward
//! `dx = dout` where `x > 0`, `dx = α·dout` otherwise.
//!
//! Forward caches the mask `x <= 0`. **Convention at 0:** like
//! [`super::Relu`], `x = 0` is in the mask, so its output is 0 and its
//! gradient is `α·dout`, the left derivative. Any value in `[α, 1]` (for
//! `α <= 1`) is a valid subgradient there; the checker treats `x = 0` as a kink.
//! NaN is not `<= 0`, so it passes through as NaN with gradient `dout`.
//!
//! `α` must be finite; `α = 0` is ReLU, `α = 1` the identity. Backward returns
//! a **new** array and never writes into `dout`.
//!
//! # Shapes
//! One input, any shape; output and gradient have that shape.

use super::{expect_dout_shape, expect_inputs};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::layer::Layer;
use ndarray::{ArrayD, ArrayViewD, Zip};

/// Leaky rectified linear unit with negative slope `alpha`, element-wise.
#[derive(Debug, Clone)]
pub struct LeakyRelu<F> {
    alpha: F,
    /// `true` where the input was `<= 0`.
    mask: Option<ArrayD<bool>>,
}

impl<F: Float> LeakyRelu<F> {
    /// A layer with negative slope `alpha` (0.01 is common).
    ///
    /// **Errors** with [`Error::Config`] unless `alpha` is finite.
    pub fn new(alpha: F) -> Result<Self> {
        if !alpha.is_finite() {
            return Err(Error::Config(format!(
                "LeakyRelu: alpha must be finite, got {alpha}"
            )));
        }
        Ok(LeakyRelu { alpha, mask: None })
    }

    /// The negative slope α.
    pub fn alpha(&self) -> F {
        self.alpha
    }
}

impl<F: Float> Layer<F> for LeakyRelu<F> {
    fn name(&self) -> String {
        format!("LeakyRelu({})", self.alpha)
    }

    fn num_inputs(&self) -> usize {
        1
    }

    fn forward(&mut self, inputs: &[ArrayViewD<'_, F>]) -> Result<ArrayD<F>> {
        self.mask = None;
        expect_inputs("LeakyRelu.forward", inputs, 1)?;
        let mask = inputs[0].mapv(|v| v <= F::zero());
        let a = self.alpha;
        let out = Zip::from(&inputs[0])
            .and(&mask)
            .map_collect(|&v, &m| if m { a * v } else { v });
        self.mask = Some(mask);
        Ok(out)
    }

    fn backward(&mut self, dout: ArrayViewD<'_, F>) -> Result<Vec<ArrayD<F>>> {
        const OP: &str = "LeakyRelu.backward";
        let mask = self
            .mask
            .as_ref()
            .ok_or_else(|| Error::BackwardBeforeForward { op: OP.into() })?;
        expect_dout_shape(OP, mask.shape(), dout.shape())?;
        let a = self.alpha;
        let dx = Zip::from(&dout)
            .and(mask)
            .map_collect(|&d, &m| if m { a * d } else { d });
        Ok(vec![dx])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::numeric::{assert_gradients_ok, spread, worst_error};
    use ndarray::{arr0, arr1, arr2};

    #[test]
    fn forward_backward_and_zero_convention() {
        let mut r = LeakyRelu::new(0.1).unwrap();
        let x = arr2(&[[2.0, -3.0], [0.0, 0.5]]).into_dyn();
        let y = r.forward(&[x.view()]).unwrap();
        crate::test_util::assert_close(&y, &arr2(&[[2.0, -0.3], [0.0, 0.5]]), 1e-15);
        let dout = arr2(&[[1.0, 2.0], [3.0, -4.0]]).into_dyn();
        let dx = r.backward(dout.view()).unwrap();
        // At x = 0 the gradient is α·dout (left derivative).
        crate::test_util::assert_close(&dx[0], &arr2(&[[1.0, 0.2], [0.3, -4.0]]), 1e-15);
        assert_eq!(dout, arr2(&[[1.0, 2.0], [3.0, -4.0]]).into_dyn());
    }

    #[test]
    fn backward_agrees_with_central_differences() {
        for alpha in [0.01, 0.3, -0.2] {
            for shape in [vec![5], vec![3, 4], vec![2, 2, 3]] {
                let mut l = LeakyRelu::new(alpha).unwrap();
                assert_gradients_ok(&mut l, &[spread(&shape, 3)], 1e-8);
            }
        }
    }

    /// Ignoring α on the negative side (ReLU's backward) is caught.
    #[test]
    fn wrong_backward_without_alpha_is_caught() {
        struct Wrong(LeakyRelu<f64>);
        impl Layer<f64> for Wrong {
            fn name(&self) -> String {
                "WrongLeakyRelu".into()
            }
            fn num_inputs(&self) -> usize {
                1
            }
            fn forward(&mut self, inputs: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
                self.0.forward(inputs)
            }
            fn backward(&mut self, dout: ArrayViewD<'_, f64>) -> Result<Vec<ArrayD<f64>>> {
                let mask = self.0.mask.as_ref().unwrap();
                Ok(vec![
                    Zip::from(&dout)
                        .and(mask)
                        .map_collect(|&d, &m| if m { 0.0 } else { d }),
                ])
            }
        }
        let mut w = Wrong(LeakyRelu::new(0.2).unwrap());
        assert!(worst_error(&mut w, &[spread(&[3, 3], 1)]) > 0.05);
    }

    #[test]
    fn errors() {
        assert!(matches!(LeakyRelu::new(f64::NAN), Err(Error::Config(_))));
        let mut r = LeakyRelu::<f64>::new(0.01).unwrap();
        let e = r.backward(arr0(1.0).into_dyn().view()).unwrap_err();
        assert!(matches!(e, Error::BackwardBeforeForward { .. }), "{e}");
        r.forward(&[arr1(&[1.0, 2.0]).into_dyn().view()]).unwrap();
        let e = r.backward(arr1(&[1.0]).into_dyn().view()).unwrap_err();
        assert!(matches!(e, Error::DoutShape { .. }), "{e}");
        let e = r.forward(&[]).unwrap_err();
        assert!(matches!(e, Error::InputCount { got: 0, .. }), "{e}");
        let e = r.backward(arr1(&[1.0, 2.0]).into_dyn().view()).unwrap_err();
        assert!(matches!(e, Error::BackwardBeforeForward { .. }), "{e}");
    }
}
