//! Momentum SGD: `v = μ·v − lr·g; w += v`, with `v` starting at 0.
//!
//! `v` is a running, decaying sum of past steps: along a direction where the
//! gradient keeps its sign the step grows towards `lr / (1 − μ)`, across a
//! ravine the alternating gradients cancel. `μ = 0` is plain SGD.

use super::{Optimizer, check_lr, check_range, update_all};
use crate::error::Result;
use crate::float::Float;
use crate::layer::Layer;
use ndarray::{ArrayD, Zip};
use std::collections::HashMap;

/// SGD with (heavy-ball) momentum; velocity kept per parameter name.
#[derive(Debug, Clone)]
pub struct Momentum<F> {
    lr: F,
    momentum: F,
    velocity: HashMap<String, Vec<ArrayD<F>>>,
}

impl<F: Float> Momentum<F> {
    /// Momentum SGD with learning rate `lr` and momentum `μ` (0.9 is usual).
    ///
    /// **Errors** with [`Error::Config`](crate::Error::Config) unless `lr` is
    /// finite and positive and `0 <= μ < 1`.
    pub fn new(lr: F, momentum: F) -> Result<Self> {
        check_lr("Momentum", lr)?;
        check_range("Momentum", "momentum", momentum, 0.0, 1.0, false)?;
        Ok(Momentum {
            lr,
            momentum,
            velocity: HashMap::new(),
        })
    }

    /// The momentum `μ`.
    pub fn momentum(&self) -> F {
        self.momentum
    }

    /// The velocity of a parameter, `None` before its first step.
    pub fn velocity(&self, name: &str) -> Option<&ArrayD<F>> {
        self.velocity.get(name).map(|s| &s[0])
    }

    /// One update of every parameter of `layer` (see [`Optimizer::step`]).
    ///
    /// **Errors** as [`Optimizer::step`].
    pub fn step<L: Layer<F> + ?Sized>(&mut self, layer: &mut L) -> Result<()> {
        let (lr, mu) = (self.lr, self.momentum);
        update_all("Momentum.step", layer, 1, &mut self.velocity, |w, g, s| {
            Zip::from(w).and(g).and(&mut s[0]).for_each(|w, &g, v| {
                *v = mu * *v - lr * g;
                *w += *v;
            });
        })
    }
}

impl<F: Float> Optimizer<F> for Momentum<F> {
    fn name(&self) -> String {
        "Momentum".into()
    }
    fn lr(&self) -> F {
        self.lr
    }
    fn set_lr(&mut self, lr: F) -> Result<()> {
        check_lr("Momentum", lr)?;
        self.lr = lr;
        Ok(())
    }
    fn step(&mut self, layer: &mut dyn Layer<F>) -> Result<()> {
        Momentum::step(self, layer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::optim::testing::{assert_steps, snapshot_steps, steps_to_converge, trajectory};

    #[test]
    fn hand_computed_steps_on_the_quadratic() {
        // lr 0.1, μ 0.9, w₀ = (3, −2), w* = (1, −1):
        // g₀ = (2, −1):     v₁ = (−0.2, 0.1),                    w₁ = (2.8, −1.9)
        // g₁ = (1.8, −0.9): v₂ = 0.9 v₁ − 0.1 g₁ = (−0.36, 0.18),  w₂ = (2.44, −1.72)
        // g₂ = (1.44, −0.72): v₃ = (−0.324 − 0.144, 0.162 + 0.072) = (−0.468, 0.234),
        //                   w₃ = (1.972, −1.486)
        let mut opt = Momentum::new(0.1, 0.9).unwrap();
        let steps = trajectory(&mut opt, 3);
        assert_steps(&steps, &[[2.8, -1.9], [2.44, -1.72], [1.972, -1.486]]);
        crate::test_util::assert_close(
            opt.velocity("w").unwrap(),
            &ndarray::arr1(&[-0.468, 0.234]),
            1e-12,
        );
        snapshot_steps("optim_momentum_first_steps", &steps);
    }

    #[test]
    fn converges_on_the_quadratic_and_mu_zero_is_sgd() {
        let k = steps_to_converge(&mut Momentum::new(0.1, 0.5).unwrap(), 1e-6, 1000);
        let k_sgd = steps_to_converge(&mut crate::optim::Sgd::new(0.1).unwrap(), 1e-6, 1000);
        assert!(k < k_sgd, "momentum {k} vs sgd {k_sgd}");
        steps_to_converge(&mut Momentum::new(0.1, 0.9).unwrap(), 1e-6, 1000);
        let a = trajectory(&mut Momentum::new(0.1, 0.0).unwrap(), 5);
        let b = trajectory(&mut crate::optim::Sgd::new(0.1).unwrap(), 5);
        for (x, y) in a.iter().zip(&b) {
            crate::test_util::assert_close(x, y, 1e-15);
        }
    }

    #[test]
    fn config_is_validated() {
        assert!(matches!(Momentum::new(0.1, 1.0), Err(Error::Config(_))));
        assert!(matches!(Momentum::new(0.1, -0.1), Err(Error::Config(_))));
        assert!(matches!(Momentum::new(0.0, 0.9), Err(Error::Config(_))));
    }
}
