//! ReLU: `y = max(0, x)`, backward `dx = dout` where `x > 0`, else `0`.
//!
//! Forward caches the mask `x <= 0`. **Convention at 0:** `x = 0` is in the
//! mask, so its output is 0 and its gradient is 0 (the subgradient of
//! `max(0, x)` at 0 taken from the left). NaN is not `<= 0`, so it passes
//! through as NaN with gradient `dout`.
//!
//! Backward returns a **new** array; it never writes into `dout` (the
//! tutorial's `dout[mask] = 0` zeroed the caller's array in place).
//!
//! # Shapes
//! One input, any shape; output and gradient have that shape.

use super::{expect_dout_shape, expect_inputs};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::layer::Layer;
use ndarray::{ArrayD, ArrayViewD, Zip};
use std::marker::PhantomData;

/// The rectified linear unit, element-wise.
#[derive(Debug, Clone, Default)]
pub struct Relu<F> {
    /// `true` where the input was `<= 0`.
    mask: Option<ArrayD<bool>>,
    _f: PhantomData<F>,
}

impl<F: Float> Relu<F> {
    /// A new layer with an empty cache.
    pub fn new() -> Self {
        Relu {
            mask: None,
            _f: PhantomData,
        }
    }
}

impl<F: Float> Layer<F> for Relu<F> {
    fn name(&self) -> String {
        "Relu".into()
    }

    fn num_inputs(&self) -> usize {
        1
    }

    fn forward(&mut self, inputs: &[ArrayViewD<'_, F>]) -> Result<ArrayD<F>> {
        self.mask = None;
        expect_inputs("Relu.forward", inputs, 1)?;
        let mask = inputs[0].mapv(|v| v <= F::zero());
        let out = Zip::from(&inputs[0])
            .and(&mask)
            .map_collect(|&v, &m| if m { F::zero() } else { v });
        self.mask = Some(mask);
        Ok(out)
    }

    fn backward(&mut self, dout: ArrayViewD<'_, F>) -> Result<Vec<ArrayD<F>>> {
        let mask = self
            .mask
            .as_ref()
            .ok_or_else(|| Error::BackwardBeforeForward {
                op: "Relu.backward".into(),
            })?;
        expect_dout_shape("Relu.backward", mask.shape(), dout.shape())?;
        let dx = Zip::from(&dout)
            .and(mask)
            .map_collect(|&d, &m| if m { F::zero() } else { d });
        Ok(vec![dx])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{arr0, arr1, arr2};

    #[test]
    fn forward_values_and_zero_convention() {
        let mut r = Relu::<f64>::new();
        let x = arr2(&[[1.0, -0.5], [0.0, 3.0]]).into_dyn();
        let y = r.forward(&[x.view()]).unwrap();
        assert_eq!(y, arr2(&[[1.0, 0.0], [0.0, 3.0]]).into_dyn());
        let dx = r
            .backward(arr2(&[[2.0, 2.0], [2.0, 2.0]]).into_dyn().view())
            .unwrap();
        // Gradient 0 at x = 0 and x < 0, dout where x > 0.
        assert_eq!(dx[0], arr2(&[[2.0, 0.0], [0.0, 2.0]]).into_dyn());
    }

    #[test]
    fn backward_does_not_mutate_dout() {
        let mut r = Relu::<f32>::new();
        r.forward(&[arr1(&[-1.0f32, 1.0]).into_dyn().view()])
            .unwrap();
        let dout = arr1(&[5.0f32, 7.0]).into_dyn();
        let dx = r.backward(dout.view()).unwrap();
        assert_eq!(dx[0], arr1(&[0.0f32, 7.0]).into_dyn());
        assert_eq!(dout, arr1(&[5.0f32, 7.0]).into_dyn());
    }

    #[test]
    fn errors() {
        let mut r = Relu::<f64>::new();
        let e = r.backward(arr0(1.0).into_dyn().view()).unwrap_err();
        assert!(matches!(e, Error::BackwardBeforeForward { .. }), "{e}");
        let e = r.forward(&[]).unwrap_err();
        assert!(matches!(e, Error::InputCount { got: 0, .. }), "{e}");
        r.forward(&[arr1(&[1.0, 2.0]).into_dyn().view()]).unwrap();
        let e = r.backward(arr1(&[1.0]).into_dyn().view()).unwrap_err();
        assert!(matches!(e, Error::DoutShape { .. }), "{e}");
    }
}
