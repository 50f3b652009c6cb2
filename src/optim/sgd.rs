//! Stochastic gradient descent: `value -= lr * grad` for every parameter.
//!
//! Works on anything implementing [`Layer`] (a single layer, an [`crate::Mlp`]
//! or a user's own): it updates the arrays [`Layer::params`] exposes, which
//! are the layer's own (there is exactly one copy of each parameter), so the
//! next forward sees the update.

use super::{Optimizer, check_lr, validate};
use crate::error::Result;
use crate::float::Float;
use crate::layer::Layer;
use ndarray::Zip;
use std::collections::HashMap;

/// Plain SGD with a fixed learning rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sgd<F> {
    lr: F,
}

impl<F: Float> Sgd<F> {
    /// SGD with learning rate `lr`.
    ///
    /// **Errors** with [`Error::Config`](crate::Error::Config) unless `lr` is finite and positive.
    pub fn new(lr: F) -> Result<Self> {
        Self::check_lr(lr)?;
        Ok(Sgd { lr })
    }

    fn check_lr(lr: F) -> Result<()> {
        check_lr("Sgd", lr)
    }

    /// The learning rate.
    pub fn lr(&self) -> F {
        self.lr
    }

    /// Changes the learning rate (for a schedule).
    ///
    /// **Errors** as [`Sgd::new`]; the rate is unchanged then.
    pub fn set_lr(&mut self, lr: F) -> Result<()> {
        Self::check_lr(lr)?;
        self.lr = lr;
        Ok(())
    }

    /// One update `value -= lr * grad` of every parameter of `layer`, using
    /// the gradients of its last `backward`.
    ///
    /// **Errors** with [`Error::MissingGradient`](crate::Error::MissingGradient) if a parameter has no
    /// gradient yet, or [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) if a gradient's shape differs
    /// from its parameter's. Everything is checked first: on an error no
    /// parameter is changed.
    pub fn step<L: Layer<F> + ?Sized>(&mut self, layer: &mut L) -> Result<()> {
        let mut params = layer.params();
        validate("Sgd.step", &params, &HashMap::new())?;
        let lr = self.lr;
        for p in &mut params {
            if let Some(g) = &p.grad {
                Zip::from(&mut p.value)
                    .and(g)
                    .for_each(|v, &d| *v -= lr * d);
            }
        }
        Ok(())
    }
}

impl<F: Float> Optimizer<F> for Sgd<F> {
    fn name(&self) -> String {
        "Sgd".into()
    }

    fn lr(&self) -> F {
        self.lr
    }

    fn set_lr(&mut self, lr: F) -> Result<()> {
        Sgd::set_lr(self, lr)
    }

    fn step(&mut self, layer: &mut dyn Layer<F>) -> Result<()> {
        Sgd::step(self, layer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::layer::Param;
    use crate::layers::Affine;
    use crate::model::{Activation, Mlp};
    use crate::optim::testing::{
        Quadratic, assert_steps, snapshot_steps, steps_to_converge, trajectory,
    };
    use crate::test_util::assert_close;
    use ndarray::{Array1, ArrayD, ArrayViewD, IxDyn, arr0, arr1, arr2};

    #[test]
    fn step_reaches_the_affine_layer_and_the_next_forward() {
        let mut fc = Affine::new(arr2(&[[1.0, 2.0], [3.0, 4.0]]), arr1(&[0.5, -0.5])).unwrap();
        let x = arr1(&[1.0, -1.0]).into_dyn();
        fc.forward(&[x.view()]).unwrap();
        fc.backward(arr1(&[2.0, 1.0]).into_dyn().view()).unwrap();
        // dW = outer(x, dout) = [[2, 1], [-2, -1]], db = [2, 1].
        let mut sgd = Sgd::new(0.5).unwrap();
        sgd.step(&mut fc).unwrap();
        assert_eq!(fc.w(), arr2(&[[0.0, 1.5], [4.0, 4.5]]));
        assert_eq!(fc.b(), arr1(&[-0.5, -1.0]));
        let y = fc.forward(&[x.view()]).unwrap();
        // [1, -1] · W' + b' = [0 - 4, 1.5 - 4.5] + [-0.5, -1].
        assert_eq!(y, arr1(&[-4.5, -4.0]).into_dyn());
    }

    #[test]
    fn step_on_a_model_changes_the_next_loss_as_computed_by_hand() {
        let mut m = Mlp::<f64>::new(3, &[4], 2, Activation::Sigmoid, 5).unwrap();
        let x = arr2(&[[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]]).into_dyn();
        let t = arr1(&[1.0, 0.0]).into_dyn();
        let grads = m.gradient(x.view(), t.view()).unwrap();
        let before: Vec<ArrayD<f64>> = m.params().iter().map(|p| p.value.to_owned()).collect();
        let loss0 = m.loss(x.view(), t.view()).unwrap();
        // What the model should become, computed on copies.
        let mut expected = Vec::new();
        for (w, (_, g)) in before.iter().zip(&grads) {
            expected.push(w - &(g * 0.1));
        }
        let reference = Mlp::from_affines(
            vec![
                Affine::new(
                    expected[0].clone().into_dimensionality().unwrap(),
                    expected[1].clone().into_dimensionality().unwrap(),
                )
                .unwrap(),
                Affine::new(
                    expected[2].clone().into_dimensionality().unwrap(),
                    expected[3].clone().into_dimensionality().unwrap(),
                )
                .unwrap(),
            ],
            Activation::Sigmoid,
        )
        .unwrap();
        let mut reference = reference;
        let mut sgd = Sgd::new(0.1).unwrap();
        sgd.step(&mut m).unwrap();
        for (p, want) in m.params().iter().zip(&expected) {
            assert_close(&p.value, want, 1e-15);
        }
        let y = m.predict(x.view()).unwrap();
        let y_ref = reference.predict(x.view()).unwrap();
        assert_close(&y, &y_ref, 1e-15);
        let loss1 = m.loss(x.view(), t.view()).unwrap();
        assert!(loss1 < loss0, "a small step downhill lowers the loss");
    }

    #[test]
    fn missing_gradient_is_an_error_and_changes_nothing() {
        let mut fc = Affine::new(arr2(&[[1.0]]), arr1(&[0.0])).unwrap();
        let mut sgd = Sgd::new(0.1).unwrap();
        let e = sgd.step(&mut fc).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Sgd.step: parameter \"W\" has no gradient (run backward first)"
        );
        assert_eq!(fc.w(), arr2(&[[1.0]]));
    }

    /// A layer whose gradient has the wrong shape.
    struct Bad {
        v: ArrayD<f64>,
        g: ArrayD<f64>,
    }

    impl Layer<f64> for Bad {
        fn name(&self) -> String {
            "Bad".into()
        }
        fn num_inputs(&self) -> usize {
            1
        }
        fn forward(&mut self, _: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
            Ok(arr0(0.0).into_dyn())
        }
        fn backward(&mut self, _: ArrayViewD<'_, f64>) -> Result<Vec<ArrayD<f64>>> {
            Ok(vec![])
        }
        fn params(&mut self) -> Vec<Param<'_, f64>> {
            vec![Param {
                name: "v".into(),
                value: self.v.view_mut(),
                grad: Some(self.g.view()),
            }]
        }
    }

    #[test]
    fn gradient_of_the_wrong_shape_is_an_error() {
        let mut bad = Bad {
            v: ArrayD::zeros(IxDyn(&[2])),
            g: ArrayD::zeros(IxDyn(&[3])),
        };
        let e = Sgd::new(0.1).unwrap().step(&mut bad).unwrap_err();
        assert!(matches!(e, Error::ShapeMismatch { .. }), "{e}");
    }

    #[test]
    fn hand_computed_steps_on_the_quadratic() {
        // g = w − w* = (2, −1) at w₀ = (3, −2); w₁ = w₀ − 0.1 g = (2.8, −1.9);
        // g₁ = (1.8, −0.9), w₂ = (2.62, −1.81); g₂ = (1.62, −0.81), w₃ = (2.458, −1.729).
        let steps = trajectory(&mut Sgd::new(0.1).unwrap(), 3);
        assert_steps(&steps, &[[2.8, -1.9], [2.62, -1.81], [2.458, -1.729]]);
        snapshot_steps("optim_sgd_first_steps", &steps);
    }

    #[test]
    fn converges_on_the_quadratic() {
        // The error shrinks by 0.9 per step: 0.9^k · √5 < 1e-6 at k = 139.
        let k = steps_to_converge(&mut Sgd::new(0.1).unwrap(), 1e-6, 1000);
        assert_eq!(k, 139);
        let _ = Quadratic::standard();
    }

    #[test]
    fn learning_rate_is_validated() {
        for lr in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(Sgd::new(lr), Err(Error::Config(_))), "{lr}");
        }
        let mut s = Sgd::new(0.1f32).unwrap();
        assert!(s.set_lr(-0.1).is_err());
        assert_eq!(s.lr(), 0.1);
        s.set_lr(0.01).unwrap();
        assert_eq!(s.lr(), 0.01);
        let _ = Array1::<f32>::zeros(1);
    }
}
