//! Nesterov accelerated gradient: `v = μ·v − lr·g; w += μ·v − lr·g`.
//!
//! This is Sutskever et al.'s look-ahead update ("take the momentum step,
//! then correct with the gradient there") rewritten in the variable
//! `w + μ·v`, so the gradient is needed only at the current parameters — the
//! form PyTorch's `SGD(nesterov=True)` uses (with its `v` scaled by `−lr`).
//! Compared with [`super::Momentum`], the step adds `μ` times the *new*
//! velocity instead of the velocity itself, damping overshoot.

use super::{Optimizer, check_lr, check_range, update_all};
use crate::error::Result;
use crate::float::Float;
use crate::layer::Layer;
use ndarray::{ArrayD, Zip};
use std::collections::HashMap;

/// Nesterov momentum; velocity kept per parameter name.
#[derive(Debug, Clone)]
pub struct Nesterov<F> {
    lr: F,
    momentum: F,
    velocity: HashMap<String, Vec<ArrayD<F>>>,
}

impl<F: Float> Nesterov<F> {
    /// Nesterov momentum with learning rate `lr` and momentum `μ`.
    ///
    /// **Errors** with [`Error::Config`](crate::Error::Config) unless `lr` is
    /// finite and positive and `0 <= μ < 1`.
    pub fn new(lr: F, momentum: F) -> Result<Self> {
        check_lr("Nesterov", lr)?;
        check_range("Nesterov", "momentum", momentum, 0.0, 1.0, false)?;
        Ok(Nesterov {
            lr,
            momentum,
            velocity: HashMap::new(),
        })
    }

    /// The momentum `μ`.
    pub fn momentum(&self) -> F {
        self.momentum
    }

    /// One update of every parameter of `layer` (see [`Optimizer::step`]).
    ///
    /// **Errors** as [`Optimizer::step`].
    pub fn step<L: Layer<F> + ?Sized>(&mut self, layer: &mut L) -> Result<()> {
        let (lr, mu) = (self.lr, self.momentum);
        update_all("Nesterov.step", layer, 1, &mut self.velocity, |w, g, s| {
            Zip::from(w).and(g).and(&mut s[0]).for_each(|w, &g, v| {
                *v = mu * *v - lr * g;
                *w += mu * *v - lr * g;
            });
        })
    }
}

impl<F: Float> Optimizer<F> for Nesterov<F> {
    fn name(&self) -> String {
        "Nesterov".into()
    }
    fn lr(&self) -> F {
        self.lr
    }
    fn set_lr(&mut self, lr: F) -> Result<()> {
        check_lr("Nesterov", lr)?;
        self.lr = lr;
        Ok(())
    }
    fn step(&mut self, layer: &mut dyn Layer<F>) -> Result<()> {
        Nesterov::step(self, layer)
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
        // g₀ = (2, −1):       v₁ = (−0.2, 0.1);
        //   w₁ = w₀ + 0.9 v₁ − 0.1 g₀ = (3 − 0.18 − 0.2, −2 + 0.09 + 0.1) = (2.62, −1.81)
        // g₁ = (1.62, −0.81): v₂ = (−0.18 − 0.162, 0.09 + 0.081) = (−0.342, 0.171);
        //   w₂ = (2.62 − 0.3078 − 0.162, −1.81 + 0.1539 + 0.081) = (2.1502, −1.5751)
        // g₂ = (1.1502, −0.5751): v₃ = (−0.3078 − 0.11502, 0.1539 + 0.05751)
        //   = (−0.42282, 0.21141);
        //   w₃ = (2.1502 − 0.380538 − 0.11502, −1.5751 + 0.190269 + 0.05751)
        //   = (1.654642, −1.327321)
        let steps = trajectory(&mut Nesterov::new(0.1, 0.9).unwrap(), 3);
        assert_steps(
            &steps,
            &[[2.62, -1.81], [2.1502, -1.5751], [1.654642, -1.327321]],
        );
        snapshot_steps("optim_nesterov_first_steps", &steps);
    }

    #[test]
    fn converges_faster_than_heavy_ball_on_the_quadratic() {
        let k = steps_to_converge(&mut Nesterov::new(0.1, 0.9).unwrap(), 1e-6, 1000);
        let k_hb = steps_to_converge(
            &mut crate::optim::Momentum::new(0.1, 0.9).unwrap(),
            1e-6,
            1000,
        );
        assert!(k < k_hb, "nesterov {k} vs momentum {k_hb}");
    }

    #[test]
    fn config_is_validated() {
        assert!(matches!(Nesterov::new(0.1, 1.0), Err(Error::Config(_))));
        assert!(matches!(Nesterov::new(-0.1, 0.5), Err(Error::Config(_))));
    }
}
