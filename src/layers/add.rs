//! Add node: `z = x + y`, backward `dx = dout`, `dy = dout`.
//!
//! Addition passes the upstream gradient through unchanged to both inputs.
//! Forward keeps only the output shape, to check `dout` against.
//!
//! # Shapes
//! Two inputs of the **same** shape (any rank, including 0-d scalars); no
//! broadcasting. The output has that shape.

use super::{expect_dout_shape, expect_inputs, expect_same_shape};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::layer::Layer;
use ndarray::{ArrayD, ArrayViewD};
use std::marker::PhantomData;

/// Element-wise addition of two same-shape inputs.
#[derive(Debug, Clone, Default)]
pub struct Add<F> {
    shape: Option<Vec<usize>>,
    _f: PhantomData<F>,
}

impl<F: Float> Add<F> {
    /// A new node with an empty cache.
    pub fn new() -> Self {
        Add {
            shape: None,
            _f: PhantomData,
        }
    }
}

impl<F: Float> Layer<F> for Add<F> {
    fn name(&self) -> String {
        "Add".into()
    }

    fn num_inputs(&self) -> usize {
        2
    }

    fn forward(&mut self, inputs: &[ArrayViewD<'_, F>]) -> Result<ArrayD<F>> {
        self.shape = None;
        expect_inputs("Add.forward", inputs, 2)?;
        expect_same_shape("Add.forward", &inputs[0], &inputs[1])?;
        let out = &inputs[0] + &inputs[1];
        self.shape = Some(out.shape().to_vec());
        Ok(out)
    }

    fn backward(&mut self, dout: ArrayViewD<'_, F>) -> Result<Vec<ArrayD<F>>> {
        let shape = self
            .shape
            .as_ref()
            .ok_or_else(|| Error::BackwardBeforeForward {
                op: "Add.backward".into(),
            })?;
        expect_dout_shape("Add.backward", shape, dout.shape())?;
        Ok(vec![dout.to_owned(), dout.to_owned()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{arr0, arr1};

    #[test]
    fn forward_and_backward_pass_through() {
        let mut a = Add::<f64>::new();
        let z = a
            .forward(&[
                arr1(&[1.0, 2.0]).into_dyn().view(),
                arr1(&[10.0, -5.0]).into_dyn().view(),
            ])
            .unwrap();
        assert_eq!(z, arr1(&[11.0, -3.0]).into_dyn());
        let g = a.backward(arr1(&[0.5, 2.0]).into_dyn().view()).unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0], arr1(&[0.5, 2.0]).into_dyn());
        assert_eq!(g[1], arr1(&[0.5, 2.0]).into_dyn());
    }

    #[test]
    fn errors() {
        let mut a = Add::<f64>::new();
        let e = a.backward(arr0(1.0).into_dyn().view()).unwrap_err();
        assert!(matches!(e, Error::BackwardBeforeForward { .. }), "{e}");
        let x = arr1(&[1.0, 2.0]).into_dyn();
        let e = a.forward(&[x.view()]).unwrap_err();
        assert_eq!(e.to_string(), "Add.forward: expected 2 input(s), got 1");
        let e = a
            .forward(&[x.view(), arr1(&[1.0, 2.0, 3.0]).into_dyn().view()])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Add.forward: shapes (2,) and (3,) not aligned: element-wise operands must have the same shape (no broadcasting)"
        );
        a.forward(&[x.view(), x.view()]).unwrap();
        let e = a.backward(arr0(1.0).into_dyn().view()).unwrap_err();
        assert!(matches!(e, Error::DoutShape { .. }), "{e}");
    }
}
