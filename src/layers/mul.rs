//! Mul node: `z = x * y`, backward `dx = dout * y`, `dy = dout * x`.
//!
//! Each input's gradient is the upstream gradient times the **other** input
//! (the tutorial's "swapped" rule), so forward caches both `x` and `y`.
//!
//! # Shapes
//! Two inputs of the **same** shape (any rank, including 0-d scalars); no
//! broadcasting. The output has that shape.

use super::{expect_dout_shape, expect_inputs, expect_same_shape};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::layer::Layer;
use ndarray::{ArrayD, ArrayViewD};

/// Element-wise multiplication of two same-shape inputs.
#[derive(Debug, Clone, Default)]
pub struct Mul<F> {
    xy: Option<(ArrayD<F>, ArrayD<F>)>,
}

impl<F: Float> Mul<F> {
    /// A new node with an empty cache.
    pub fn new() -> Self {
        Mul { xy: None }
    }
}

impl<F: Float> Layer<F> for Mul<F> {
    fn name(&self) -> String {
        "Mul".into()
    }

    fn num_inputs(&self) -> usize {
        2
    }

    fn forward(&mut self, inputs: &[ArrayViewD<'_, F>]) -> Result<ArrayD<F>> {
        self.xy = None;
        expect_inputs("Mul.forward", inputs, 2)?;
        expect_same_shape("Mul.forward", &inputs[0], &inputs[1])?;
        let out = &inputs[0] * &inputs[1];
        self.xy = Some((inputs[0].to_owned(), inputs[1].to_owned()));
        Ok(out)
    }

    fn backward(&mut self, dout: ArrayViewD<'_, F>) -> Result<Vec<ArrayD<F>>> {
        let (x, y) = self
            .xy
            .as_ref()
            .ok_or_else(|| Error::BackwardBeforeForward {
                op: "Mul.backward".into(),
            })?;
        expect_dout_shape("Mul.backward", x.shape(), dout.shape())?;
        Ok(vec![&dout * y, &dout * x])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{arr0, arr1};

    #[test]
    fn gradients_are_swapped_inputs() {
        let mut m = Mul::<f64>::new();
        let z = m
            .forward(&[
                arr1(&[2.0, -3.0]).into_dyn().view(),
                arr1(&[5.0, 4.0]).into_dyn().view(),
            ])
            .unwrap();
        assert_eq!(z, arr1(&[10.0, -12.0]).into_dyn());
        let g = m.backward(arr1(&[1.0, 0.5]).into_dyn().view()).unwrap();
        assert_eq!(g[0], arr1(&[5.0, 2.0]).into_dyn());
        assert_eq!(g[1], arr1(&[2.0, -1.5]).into_dyn());
    }

    #[test]
    fn errors() {
        let mut m = Mul::<f64>::new();
        let e = m.backward(arr0(1.0).into_dyn().view()).unwrap_err();
        assert!(matches!(e, Error::BackwardBeforeForward { .. }), "{e}");
        let x = arr0(2.0).into_dyn();
        let e = m.forward(&[x.view(), x.view(), x.view()]).unwrap_err();
        assert!(matches!(e, Error::InputCount { got: 3, .. }), "{e}");
        let e = m
            .forward(&[x.view(), arr1(&[1.0]).into_dyn().view()])
            .unwrap_err();
        assert!(matches!(e, Error::ShapeMismatch { .. }), "{e}");
        m.forward(&[x.view(), x.view()]).unwrap();
        let e = m.backward(arr1(&[1.0]).into_dyn().view()).unwrap_err();
        assert!(matches!(e, Error::DoutShape { .. }), "{e}");
        // A failed forward clears the cache of the good one before it.
        let _ = m.forward(&[x.view()]);
        let e = m.backward(arr0(1.0).into_dyn().view()).unwrap_err();
        assert!(matches!(e, Error::BackwardBeforeForward { .. }), "{e}");
    }
}
