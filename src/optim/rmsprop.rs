//! RMSProp: `h = ρ·h + (1 − ρ)·g²; w −= lr · g / (√h + ε)`, `h` starting at 0.
//!
//! AdaGrad with a forgetting factor `ρ` (decay rate, default 0.99 as in the
//! tutorial's book): `h` is an exponential moving average of the squared
//! gradients, so old gradients stop shrinking the step. `ε = 1e-7` is added
//! after the square root. There is no bias correction: the first steps are
//! large (`h` starts at 0), about `lr / √(1 − ρ)` per element.

use super::{Optimizer, check_lr, check_range, update_all};
use crate::error::Result;
use crate::float::Float;
use crate::layer::Layer;
use ndarray::{ArrayD, Zip};
use std::collections::HashMap;

/// RMSProp; the moving average of squared gradients kept per parameter name.
#[derive(Debug, Clone)]
pub struct RmsProp<F> {
    lr: F,
    decay: F,
    eps: F,
    h: HashMap<String, Vec<ArrayD<F>>>,
}

impl<F: Float> RmsProp<F> {
    /// RMSProp with learning rate `lr`, decay rate `ρ` and `ε = 1e-7`.
    ///
    /// **Errors** with [`Error::Config`](crate::Error::Config) unless `lr` is
    /// finite and positive and `0 <= ρ < 1`.
    pub fn new(lr: F, decay: F) -> Result<Self> {
        check_lr("RmsProp", lr)?;
        check_range("RmsProp", "decay rate", decay, 0.0, 1.0, false)?;
        Ok(RmsProp {
            lr,
            decay,
            eps: F::of(1e-7),
            h: HashMap::new(),
        })
    }

    /// The decay rate `ρ`.
    pub fn decay(&self) -> F {
        self.decay
    }

    /// One update of every parameter of `layer` (see [`Optimizer::step`]).
    ///
    /// **Errors** as [`Optimizer::step`].
    pub fn step<L: Layer<F> + ?Sized>(&mut self, layer: &mut L) -> Result<()> {
        let (lr, rho, eps) = (self.lr, self.decay, self.eps);
        update_all("RmsProp.step", layer, 1, &mut self.h, |w, g, s| {
            Zip::from(w).and(g).and(&mut s[0]).for_each(|w, &g, h| {
                *h = rho * *h + (F::one() - rho) * g * g;
                *w -= lr * g / (h.sqrt() + eps);
            });
        })
    }
}

impl<F: Float> Optimizer<F> for RmsProp<F> {
    fn name(&self) -> String {
        "RmsProp".into()
    }
    fn lr(&self) -> F {
        self.lr
    }
    fn set_lr(&mut self, lr: F) -> Result<()> {
        check_lr("RmsProp", lr)?;
        self.lr = lr;
        Ok(())
    }
    fn step(&mut self, layer: &mut dyn Layer<F>) -> Result<()> {
        RmsProp::step(self, layer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::optim::testing::{Quadratic, assert_steps, snapshot_steps, trajectory};

    #[test]
    fn hand_computed_steps_on_the_quadratic() {
        // lr 0.05, ρ 0.99, w₀ = (3, −2), w* = (1, −1):
        // g₀ = (2, −1):     h = 0.01 g₀² = (0.04, 0.01);
        //   w₁ = w₀ − 0.05 (2/0.2, −1/0.1) = (2.5, −1.5)
        // g₁ = (1.5, −0.5): h = (0.0396 + 0.0225, 0.0099 + 0.0025) = (0.0621, 0.0124);
        //   w₂ = (2.5 − 0.075/√0.0621, −1.5 + 0.025/√0.0124)
        //      = (2.5 − 0.3009646, −1.5 + 0.2245066) = (2.1990354, −1.2754934)
        let steps = trajectory(&mut RmsProp::new(0.05, 0.99).unwrap(), 2);
        assert_steps(&steps, &[[2.5, -1.5], [2.1990354, -1.2754934]]);
        let steps = trajectory(&mut RmsProp::new(0.05, 0.99).unwrap(), 3);
        snapshot_steps("optim_rmsprop_first_steps", &steps);
    }

    /// With a constant rate RMSProp ends up hopping around the minimum with
    /// steps of about `lr` (g / rms(g) stays of order 1), so it converges
    /// to within a few `lr`, not to zero.
    #[test]
    fn converges_to_within_the_learning_rate() {
        let lr = 0.01;
        let mut opt = RmsProp::new(lr, 0.99).unwrap();
        let mut q = Quadratic::standard();
        for _ in 0..2000 {
            q.compute_gradient();
            opt.step(&mut q).unwrap();
        }
        assert!(q.distance() < 3.0 * lr, "{}", q.distance());
    }

    #[test]
    fn config_is_validated() {
        assert!(matches!(RmsProp::new(0.1, 1.0), Err(Error::Config(_))));
        assert!(matches!(
            RmsProp::new(f64::INFINITY, 0.9),
            Err(Error::Config(_))
        ));
    }
}
