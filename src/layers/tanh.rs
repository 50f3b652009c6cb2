//! Tanh: `y = tanh(x)`, backward `dx = dout * (1 - y²)`.
//!
//! Forward stores its **output** `y`, which is all backward needs (as
//! [`super::Sigmoid`] does). `tanh` itself saturates to exactly `±1` for
//! large `|x|` and never overflows, so `x = ±1000` gives `±1` and gradient 0.
//!
//! # Shapes
//! One input, any shape; output and gradient have that shape.
//!
//! ```
//! use gradverify::{Layer, Tanh};
//! use ndarray::arr1;
//! let mut t = Tanh::<f64>::new();
//! let y = t.forward(&[arr1(&[0.0, 1000.0]).into_dyn().view()])?;
//! assert_eq!(y, arr1(&[0.0, 1.0]).into_dyn());
//! let dx = t.backward(arr1(&[3.0, 3.0]).into_dyn().view())?;
//! assert_eq!(dx[0], arr1(&[3.0, 0.0]).into_dyn());
//! # Ok::<(), gradverify::Error>(())
//! ```

use super::{expect_dout_shape, expect_inputs};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::layer::Layer;
use ndarray::{ArrayD, ArrayViewD, Zip};

/// The hyperbolic tangent, element-wise.
#[derive(Debug, Clone, Default)]
pub struct Tanh<F> {
    /// The last output `y = tanh(x)`.
    out: Option<ArrayD<F>>,
}

impl<F: Float> Tanh<F> {
    /// A new layer with an empty cache.
    pub fn new() -> Self {
        Tanh { out: None }
    }
}

impl<F: Float> Layer<F> for Tanh<F> {
    fn name(&self) -> String {
        "Tanh".into()
    }

    fn num_inputs(&self) -> usize {
        1
    }

    fn forward(&mut self, inputs: &[ArrayViewD<'_, F>]) -> Result<ArrayD<F>> {
        self.out = None;
        expect_inputs("Tanh.forward", inputs, 1)?;
        let out = inputs[0].mapv(F::tanh);
        self.out = Some(out.clone());
        Ok(out)
    }

    fn backward(&mut self, dout: ArrayViewD<'_, F>) -> Result<Vec<ArrayD<F>>> {
        const OP: &str = "Tanh.backward";
        let out = self
            .out
            .as_ref()
            .ok_or_else(|| Error::BackwardBeforeForward { op: OP.into() })?;
        expect_dout_shape(OP, out.shape(), dout.shape())?;
        let dx = Zip::from(&dout)
            .and(out)
            .map_collect(|&d, &y| d * (F::one() - y * y));
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
    fn forward_and_backward_hand_values() {
        let mut t = Tanh::<f64>::new();
        let x = arr1(&[0.5, -2.0]).into_dyn();
        let y = t.forward(&[x.view()]).unwrap();
        assert_abs_diff_eq!(y[0], 0.46211715726000974, epsilon = 1e-15);
        assert_abs_diff_eq!(y[1], -0.9640275800758169, epsilon = 1e-15);
        let dx = t.backward(arr1(&[2.0, -1.0]).into_dyn().view()).unwrap();
        // 1 - tanh²(0.5) = 0.7864477329659274, 1 - tanh²(2) = 0.07065082485316443.
        assert_abs_diff_eq!(dx[0][0], 2.0 * 0.7864477329659274, epsilon = 1e-14);
        assert_abs_diff_eq!(dx[0][1], -0.07065082485316443, epsilon = 1e-14);
    }

    #[test]
    fn extremes_are_finite_f32() {
        let mut t = Tanh::<f32>::new();
        let y = t
            .forward(&[arr1(&[-1e4f32, 1e4, 0.0]).into_dyn().view()])
            .unwrap();
        assert_eq!(y, arr1(&[-1.0f32, 1.0, 0.0]).into_dyn());
        let dx = t.backward(arr1(&[1.0f32; 3]).into_dyn().view()).unwrap();
        assert_eq!(dx[0], arr1(&[0.0f32, 0.0, 1.0]).into_dyn());
    }

    #[test]
    fn backward_agrees_with_central_differences() {
        for shape in [vec![3], vec![2, 5], vec![2, 3, 2, 2]] {
            assert_gradients_ok(&mut Tanh::new(), &[spread(&shape, 1)], 1e-8);
        }
    }

    /// `dout * (1 - x²)` (using the input instead of the output) is caught.
    #[test]
    fn wrong_backward_using_the_input_is_caught() {
        struct Wrong(Option<ArrayD<f64>>);
        impl Layer<f64> for Wrong {
            fn name(&self) -> String {
                "WrongTanh".into()
            }
            fn num_inputs(&self) -> usize {
                1
            }
            fn forward(&mut self, inputs: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
                self.0 = Some(inputs[0].to_owned());
                Ok(inputs[0].mapv(f64::tanh))
            }
            fn backward(&mut self, dout: ArrayViewD<'_, f64>) -> Result<Vec<ArrayD<f64>>> {
                let x = self.0.as_ref().unwrap();
                Ok(vec![
                    Zip::from(&dout)
                        .and(x)
                        .map_collect(|&d, &x| d * (1.0 - x * x)),
                ])
            }
        }
        assert!(worst_error(&mut Wrong(None), &[spread(&[2, 4], 2)]) > 0.1);
    }

    #[test]
    fn errors() {
        let mut t = Tanh::<f64>::new();
        let e = t.backward(arr0(1.0).into_dyn().view()).unwrap_err();
        assert!(matches!(e, Error::BackwardBeforeForward { .. }), "{e}");
        t.forward(&[arr1(&[1.0, 2.0]).into_dyn().view()]).unwrap();
        let e = t.backward(arr1(&[1.0]).into_dyn().view()).unwrap_err();
        assert!(matches!(e, Error::DoutShape { .. }), "{e}");
        let x = arr1(&[1.0]).into_dyn();
        let e = t.forward(&[x.view(), x.view()]).unwrap_err();
        assert!(matches!(e, Error::InputCount { got: 2, .. }), "{e}");
        // The failed forward cleared the cache.
        let e = t.backward(arr1(&[1.0, 2.0]).into_dyn().view()).unwrap_err();
        assert!(matches!(e, Error::BackwardBeforeForward { .. }), "{e}");
    }
}
