//! Sigmoid: `y = 1 / (1 + exp(-x))`, backward `dx = dout * (1 - y) * y`.
//!
//! Forward stores its **output** `y`, which is all backward needs. (The
//! tutorial's forward never stored it and its backward read an undefined
//! `self.dout`.) The forward is evaluated in a form that cannot overflow:
//! for `x >= 0` as `1 / (1 + exp(-x))`, for `x < 0` as `exp(x) / (1 + exp(x))`,
//! so `x = ±1000` gives exactly 1 and 0, never NaN or an infinity.

use super::{expect_dout_shape, expect_inputs};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::layer::Layer;
use ndarray::{ArrayD, ArrayViewD, Zip};

/// The logistic sigmoid, element-wise. One input, any shape.
#[derive(Debug, Clone, Default)]
pub struct Sigmoid<F> {
    out: Option<ArrayD<F>>,
}

impl<F: Float> Sigmoid<F> {
    /// A new layer with an empty cache.
    pub fn new() -> Self {
        Sigmoid { out: None }
    }
}

/// The numerically stable logistic function.
pub fn sigmoid<F: Float>(x: F) -> F {
    if x >= F::zero() {
        F::one() / (F::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (F::one() + e)
    }
}

impl<F: Float> Layer<F> for Sigmoid<F> {
    fn name(&self) -> String {
        "Sigmoid".into()
    }

    fn num_inputs(&self) -> usize {
        1
    }

    fn forward(&mut self, inputs: &[ArrayViewD<'_, F>]) -> Result<ArrayD<F>> {
        self.out = None;
        expect_inputs("Sigmoid.forward", inputs, 1)?;
        let out = inputs[0].mapv(sigmoid);
        self.out = Some(out.clone());
        Ok(out)
    }

    fn backward(&mut self, dout: ArrayViewD<'_, F>) -> Result<Vec<ArrayD<F>>> {
        let out = self
            .out
            .as_ref()
            .ok_or_else(|| Error::BackwardBeforeForward {
                op: "Sigmoid.backward".into(),
            })?;
        expect_dout_shape("Sigmoid.backward", out.shape(), dout.shape())?;
        let dx = Zip::from(&dout)
            .and(out)
            .map_collect(|&d, &y| d * (F::one() - y) * y);
        Ok(vec![dx])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use ndarray::{ArrayD, arr1};

    #[test]
    fn forward_values_and_no_overflow() {
        let mut s = Sigmoid::<f64>::new();
        let x = arr1(&[0.0, 2.0, -1000.0, 1000.0]).into_dyn();
        let y = s.forward(&[x.view()]).unwrap();
        assert_abs_diff_eq!(y[0], 0.5);
        assert_abs_diff_eq!(y[1], 1.0 / (1.0 + (-2.0f64).exp()), epsilon = 1e-15);
        assert_eq!(y[2], 0.0);
        assert_eq!(y[3], 1.0);
        assert!(y.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn f32_extremes_are_finite() {
        let mut s = Sigmoid::<f32>::new();
        let x = arr1(&[-1000.0f32, 1000.0, -88.8, 88.8]).into_dyn();
        let y = s.forward(&[x.view()]).unwrap();
        assert!(y.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
    }

    #[test]
    fn backward_uses_stored_output() {
        let mut s = Sigmoid::<f64>::new();
        let x = arr1(&[0.0, 1.0]).into_dyn();
        let y = s.forward(&[x.view()]).unwrap();
        let dout = arr1(&[2.0, 3.0]).into_dyn();
        let dx = s.backward(dout.view()).unwrap();
        assert_abs_diff_eq!(dx[0][0], 2.0 * 0.25, epsilon = 1e-15);
        assert_abs_diff_eq!(dx[0][1], 3.0 * (1.0 - y[1]) * y[1], epsilon = 1e-15);
    }

    #[test]
    fn backward_before_forward_is_an_error() {
        let mut s = Sigmoid::<f64>::new();
        let dout: ArrayD<f64> = ArrayD::zeros(vec![2]);
        let err = s.backward(dout.view()).unwrap_err();
        assert!(matches!(err, Error::BackwardBeforeForward { .. }), "{err}");
    }

    #[test]
    fn dout_of_wrong_shape_is_an_error() {
        let mut s = Sigmoid::<f64>::new();
        s.forward(&[arr1(&[1.0, 2.0]).into_dyn().view()]).unwrap();
        let err = s.backward(arr1(&[1.0]).into_dyn().view()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Sigmoid.backward: dout has shape (1,), expected (2,) (the shape of the last forward output)"
        );
    }
}
