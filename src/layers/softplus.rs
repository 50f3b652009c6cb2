//! Softplus: `y = ln(1 + eˣ)`, backward `dx = dout · σ(x)` (the logistic sigmoid).
//!
//! The forward is evaluated as `log1p(exp(-|x|)) + max(x, 0)`, which equals
//! `ln(1 + eˣ)` and never overflows: `x = 1000` gives 1000, `x = -1000`
//! gives 0 (the naive form gives `inf` and loses all precision for `x < -37`).
//! Forward caches the **input**, since `σ(x)` needs it; the sigmoid is the
//! stable one of [`super::sigmoid::sigmoid`].
//!
//! # Shapes
//! One input, any shape; output and gradient have that shape.

use super::sigmoid::sigmoid;
use super::{expect_dout_shape, expect_inputs};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::layer::Layer;
use ndarray::{ArrayD, ArrayViewD, Zip};

/// The softplus function, element-wise: a smooth ReLU.
#[derive(Debug, Clone, Default)]
pub struct Softplus<F> {
    /// The last input.
    x: Option<ArrayD<F>>,
}

impl<F: Float> Softplus<F> {
    /// A new layer with an empty cache.
    pub fn new() -> Self {
        Softplus { x: None }
    }
}

/// `ln(1 + eˣ)` without overflow: `log1p(exp(-|x|)) + max(x, 0)`.
pub fn softplus<F: Float>(x: F) -> F {
    (-x.abs()).exp().ln_1p() + x.max(F::zero())
}

impl<F: Float> Layer<F> for Softplus<F> {
    fn name(&self) -> String {
        "Softplus".into()
    }

    fn num_inputs(&self) -> usize {
        1
    }

    fn forward(&mut self, inputs: &[ArrayViewD<'_, F>]) -> Result<ArrayD<F>> {
        self.x = None;
        expect_inputs("Softplus.forward", inputs, 1)?;
        let out = inputs[0].mapv(softplus);
        self.x = Some(inputs[0].to_owned());
        Ok(out)
    }

    fn backward(&mut self, dout: ArrayViewD<'_, F>) -> Result<Vec<ArrayD<F>>> {
        const OP: &str = "Softplus.backward";
        let x = self
            .x
            .as_ref()
            .ok_or_else(|| Error::BackwardBeforeForward { op: OP.into() })?;
        expect_dout_shape(OP, x.shape(), dout.shape())?;
        let dx = Zip::from(&dout).and(x).map_collect(|&d, &x| d * sigmoid(x));
        Ok(vec![dx])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::numeric::{assert_gradients_ok, spread, worst_error};
    use approx::assert_abs_diff_eq;
    use ndarray::{arr0, arr1};

    #[test]
    fn forward_values_are_stable() {
        let mut s = Softplus::<f64>::new();
        let x = arr1(&[0.0, 1.0, -1.0, 1000.0, -1000.0, -40.0]).into_dyn();
        let y = s.forward(&[x.view()]).unwrap();
        assert_abs_diff_eq!(y[0], std::f64::consts::LN_2, epsilon = 1e-15);
        assert_abs_diff_eq!(y[1], 1.3132616875182228, epsilon = 1e-15);
        assert_abs_diff_eq!(y[2], 0.31326168751822286, epsilon = 1e-15);
        assert_eq!(y[3], 1000.0);
        assert_eq!(y[4], 0.0);
        // ln(1 + e^-40) = e^-40 to double precision; the naive form gives 0.
        assert_abs_diff_eq!(y[5] / (-40.0f64).exp(), 1.0, epsilon = 1e-12);
        let mut s32 = Softplus::<f32>::new();
        let y = s32
            .forward(&[arr1(&[100.0f32, -100.0]).into_dyn().view()])
            .unwrap();
        assert_eq!(y[0], 100.0f32);
        // e^-100 is a subnormal f32 (about 3.7e-44), not inf or NaN.
        assert!(y[1] > 0.0 && y[1] < 1e-40, "{}", y[1]);
    }

    #[test]
    fn backward_is_dout_times_sigmoid() {
        let mut s = Softplus::<f64>::new();
        s.forward(&[arr1(&[0.0, 2.0]).into_dyn().view()]).unwrap();
        let dx = s.backward(arr1(&[4.0, -1.0]).into_dyn().view()).unwrap();
        assert_abs_diff_eq!(dx[0][0], 2.0, epsilon = 1e-15);
        assert_abs_diff_eq!(dx[0][1], -0.8807970779778823, epsilon = 1e-15);
    }

    #[test]
    fn backward_agrees_with_central_differences() {
        for shape in [vec![4], vec![3, 5], vec![1, 2, 3, 2]] {
            assert_gradients_ok(&mut Softplus::new(), &[spread(&shape, 4)], 1e-8);
        }
    }

    /// Using `σ(y)` (the output) instead of `σ(x)` is caught.
    #[test]
    fn wrong_backward_using_the_output_is_caught() {
        struct Wrong(Option<ArrayD<f64>>);
        impl Layer<f64> for Wrong {
            fn name(&self) -> String {
                "WrongSoftplus".into()
            }
            fn num_inputs(&self) -> usize {
                1
            }
            fn forward(&mut self, inputs: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
                let y = inputs[0].mapv(softplus);
                self.0 = Some(y.clone());
                Ok(y)
            }
            fn backward(&mut self, dout: ArrayViewD<'_, f64>) -> Result<Vec<ArrayD<f64>>> {
                let y = self.0.as_ref().unwrap();
                Ok(vec![
                    Zip::from(&dout).and(y).map_collect(|&d, &y| d * sigmoid(y)),
                ])
            }
        }
        assert!(worst_error(&mut Wrong(None), &[spread(&[2, 4], 1)]) > 0.05);
    }

    #[test]
    fn errors() {
        let mut s = Softplus::<f64>::new();
        let e = s.backward(arr0(1.0).into_dyn().view()).unwrap_err();
        assert!(matches!(e, Error::BackwardBeforeForward { .. }), "{e}");
        s.forward(&[arr1(&[1.0, 2.0]).into_dyn().view()]).unwrap();
        let e = s.backward(arr1(&[1.0]).into_dyn().view()).unwrap_err();
        assert!(matches!(e, Error::DoutShape { .. }), "{e}");
        let e = s.forward(&[]).unwrap_err();
        assert!(matches!(e, Error::InputCount { got: 0, .. }), "{e}");
        let e = s.backward(arr1(&[1.0, 2.0]).into_dyn().view()).unwrap_err();
        assert!(matches!(e, Error::BackwardBeforeForward { .. }), "{e}");
    }
}
