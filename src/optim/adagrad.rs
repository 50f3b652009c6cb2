//! AdaGrad: `h += g²; w −= lr · g / (√h + ε)`, with `h` starting at 0.
//!
//! Each element gets its own step size, shrinking as its squared gradients
//! accumulate: rarely-updated weights keep large steps. `h` only grows, so
//! the steps decay for good (see [`super::RmsProp`] for the fix). `ε`
//! (default `1e-7`, as in the tutorial's book) is added **after** the square
//! root and only guards against dividing by zero.

use super::{Optimizer, check_lr, update_all};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::layer::Layer;
use ndarray::{ArrayD, Zip};
use std::collections::HashMap;

/// AdaGrad; the sum of squared gradients kept per parameter name.
#[derive(Debug, Clone)]
pub struct AdaGrad<F> {
    lr: F,
    eps: F,
    h: HashMap<String, Vec<ArrayD<F>>>,
}

impl<F: Float> AdaGrad<F> {
    /// AdaGrad with learning rate `lr` and `ε = 1e-7`.
    ///
    /// **Errors** with [`Error::Config`] unless `lr` is finite and positive.
    pub fn new(lr: F) -> Result<Self> {
        check_lr("AdaGrad", lr)?;
        Ok(AdaGrad {
            lr,
            eps: F::of(1e-7),
            h: HashMap::new(),
        })
    }

    /// Sets `ε`.
    ///
    /// **Errors** with [`Error::Config`] unless `ε` is finite and positive.
    pub fn with_eps(mut self, eps: F) -> Result<Self> {
        if !(eps.is_finite() && eps > F::zero()) {
            return Err(Error::Config(format!(
                "AdaGrad: eps must be finite and positive, got {eps}"
            )));
        }
        self.eps = eps;
        Ok(self)
    }

    /// The accumulated squared gradients of a parameter, `None` before its
    /// first step.
    pub fn sum_of_squares(&self, name: &str) -> Option<&ArrayD<F>> {
        self.h.get(name).map(|s| &s[0])
    }

    /// One update of every parameter of `layer` (see [`Optimizer::step`]).
    ///
    /// **Errors** as [`Optimizer::step`].
    pub fn step<L: Layer<F> + ?Sized>(&mut self, layer: &mut L) -> Result<()> {
        let (lr, eps) = (self.lr, self.eps);
        update_all("AdaGrad.step", layer, 1, &mut self.h, |w, g, s| {
            Zip::from(w).and(g).and(&mut s[0]).for_each(|w, &g, h| {
                *h += g * g;
                *w -= lr * g / (h.sqrt() + eps);
            });
        })
    }
}

impl<F: Float> Optimizer<F> for AdaGrad<F> {
    fn name(&self) -> String {
        "AdaGrad".into()
    }
    fn lr(&self) -> F {
        self.lr
    }
    fn set_lr(&mut self, lr: F) -> Result<()> {
        check_lr("AdaGrad", lr)?;
        self.lr = lr;
        Ok(())
    }
    fn step(&mut self, layer: &mut dyn Layer<F>) -> Result<()> {
        AdaGrad::step(self, layer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::testing::{assert_steps, snapshot_steps, steps_to_converge, trajectory};

    #[test]
    fn hand_computed_steps_on_the_quadratic() {
        // lr 0.5, w₀ = (3, −2), w* = (1, −1) (ε = 1e-7 is below the tolerance):
        // g₀ = (2, −1):     h = (4, 1);  w₁ = w₀ − 0.5 (2/2, −1/1) = (2.5, −1.5)
        //   (every element moves by lr on the first step, whatever its scale)
        // g₁ = (1.5, −0.5): h = (6.25, 1.25);
        //   w₂ = (2.5 − 0.5·1.5/2.5, −1.5 + 0.5·0.5/√1.25) = (2.2, −1.2763932)
        // g₂ = (1.2, −0.2763932): h = (7.69, 1.25 + 0.0763932) = (7.69, 1.3263932);
        //   w₃ = (2.2 − 0.6/√7.69, −1.2763932 + 0.1381966/√1.3263932)
        //      = (2.2 − 0.2163655, −1.2763932 + 0.1199945) = (1.9836345, −1.1563988)
        let mut opt = AdaGrad::new(0.5).unwrap();
        let steps = trajectory(&mut opt, 3);
        assert_steps(
            &steps,
            &[[2.5, -1.5], [2.2, -1.2763932], [1.9836345, -1.1563988]],
        );
        crate::test_util::assert_close(
            opt.sum_of_squares("w").unwrap(),
            &ndarray::arr1(&[7.69, 1.3263932]),
            1e-6,
        );
        snapshot_steps("optim_adagrad_first_steps", &steps);
    }

    #[test]
    fn converges_on_the_quadratic() {
        steps_to_converge(&mut AdaGrad::new(0.5).unwrap(), 1e-6, 5000);
    }

    #[test]
    fn config_is_validated() {
        assert!(matches!(AdaGrad::new(0.0), Err(Error::Config(_))));
        assert!(matches!(
            AdaGrad::new(0.1).unwrap().with_eps(0.0),
            Err(Error::Config(_))
        ));
    }
}
