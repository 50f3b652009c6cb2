//! Adam: moving averages of the gradient and its square, bias-corrected.
//!
//! ```text
//! t += 1                                  (once per step, for all parameters)
//! m = β₁·m + (1 − β₁)·g                   v = β₂·v + (1 − β₂)·g²
//! m̂ = m / (1 − β₁ᵗ)                       v̂ = v / (1 − β₂ᵗ)
//! w −= lr · m̂ / (√v̂ + ε)
//! ```
//! Defaults `β₁ = 0.9`, `β₂ = 0.999`, `ε = 1e-8` (Kingma & Ba). The bias
//! correction undoes the zero start of `m` and `v`, so the first step moves
//! every element by about `lr`, whatever its gradient's scale. (The tutorial's
//! book folds the correction into the rate, `lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ)`, which
//! only differs in where `ε` enters.)

use super::{Optimizer, check_lr, check_range, update_all};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::layer::Layer;
use ndarray::{ArrayD, Zip};
use std::collections::HashMap;

/// Adam; `m` and `v` kept per parameter name, one step counter `t`.
#[derive(Debug, Clone)]
pub struct Adam<F> {
    lr: F,
    beta1: F,
    beta2: F,
    eps: F,
    t: i32,
    state: HashMap<String, Vec<ArrayD<F>>>,
}

impl<F: Float> Adam<F> {
    /// Adam with learning rate `lr` and the default `β₁ = 0.9`,
    /// `β₂ = 0.999`, `ε = 1e-8`.
    ///
    /// **Errors** with [`Error::Config`] unless `lr` is finite and positive.
    pub fn new(lr: F) -> Result<Self> {
        Self::with_betas(lr, F::of(0.9), F::of(0.999))
    }

    /// Adam with the given `β₁`, `β₂`.
    ///
    /// **Errors** with [`Error::Config`] unless `lr` is finite and positive
    /// and both betas are in `[0, 1)`.
    pub fn with_betas(lr: F, beta1: F, beta2: F) -> Result<Self> {
        check_lr("Adam", lr)?;
        check_range("Adam", "beta1", beta1, 0.0, 1.0, false)?;
        check_range("Adam", "beta2", beta2, 0.0, 1.0, false)?;
        Ok(Adam {
            lr,
            beta1,
            beta2,
            eps: F::of(1e-8),
            t: 0,
            state: HashMap::new(),
        })
    }

    /// Sets `ε`.
    ///
    /// **Errors** with [`Error::Config`] unless `ε` is finite and positive.
    pub fn with_eps(mut self, eps: F) -> Result<Self> {
        if !(eps.is_finite() && eps > F::zero()) {
            return Err(Error::Config(format!(
                "Adam: eps must be finite and positive, got {eps}"
            )));
        }
        self.eps = eps;
        Ok(self)
    }

    /// The number of steps taken (`t`).
    pub fn steps(&self) -> i32 {
        self.t
    }

    /// `(m, v)` of a parameter, `None` before its first step.
    pub fn moments(&self, name: &str) -> Option<(&ArrayD<F>, &ArrayD<F>)> {
        self.state.get(name).map(|s| (&s[0], &s[1]))
    }

    /// One update of every parameter of `layer` (see [`Optimizer::step`]).
    ///
    /// **Errors** as [`Optimizer::step`]; `t` is not advanced then.
    pub fn step<L: Layer<F> + ?Sized>(&mut self, layer: &mut L) -> Result<()> {
        let (lr, b1, b2, eps) = (self.lr, self.beta1, self.beta2, self.eps);
        let t = self.t.saturating_add(1);
        let c1 = F::one() - b1.powi(t);
        let c2 = F::one() - b2.powi(t);
        update_all("Adam.step", layer, 2, &mut self.state, |w, g, s| {
            let (m, v) = s.split_at_mut(1);
            Zip::from(w)
                .and(g)
                .and(&mut m[0])
                .and(&mut v[0])
                .for_each(|w, &g, m, v| {
                    *m = b1 * *m + (F::one() - b1) * g;
                    *v = b2 * *v + (F::one() - b2) * g * g;
                    *w -= lr * (*m / c1) / ((*v / c2).sqrt() + eps);
                });
        })?;
        self.t = t;
        Ok(())
    }
}

impl<F: Float> Optimizer<F> for Adam<F> {
    fn name(&self) -> String {
        "Adam".into()
    }
    fn lr(&self) -> F {
        self.lr
    }
    fn set_lr(&mut self, lr: F) -> Result<()> {
        check_lr("Adam", lr)?;
        self.lr = lr;
        Ok(())
    }
    fn step(&mut self, layer: &mut dyn Layer<F>) -> Result<()> {
        Adam::step(self, layer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::testing::{Quadratic, assert_steps, snapshot_steps, trajectory};

    #[test]
    fn hand_computed_steps_on_the_quadratic() {
        // lr 0.1, β₁ 0.9, β₂ 0.999, w₀ = (3, −2), w* = (1, −1):
        // t = 1, g₀ = (2, −1): m = (0.2, −0.1), v = (0.004, 0.001);
        //   m̂ = g₀, v̂ = g₀², so w₁ = w₀ − 0.1·sign(g₀) = (2.9, −1.9)
        // t = 2, g₁ = (1.9, −0.9): m = (0.18 + 0.19, −0.09 − 0.09) = (0.37, −0.18);
        //   v = (0.003996 + 0.00361, 0.000999 + 0.00081) = (0.007606, 0.001809);
        //   m̂ = m / 0.19 = (1.9473684, −0.9473684);
        //   v̂ = v / 0.001999 = (3.8049025, 0.9049525);
        //   w₂ = (2.9 − 0.1·1.9473684/1.9506159, −1.9 + 0.1·0.9473684/0.9512900)
        //      = (2.8001665, −1.8004122)
        let mut opt = Adam::new(0.1).unwrap();
        let steps = trajectory(&mut opt, 2);
        assert_steps(&steps, &[[2.9, -1.9], [2.8001665, -1.8004122]]);
        assert_eq!(opt.steps(), 2);
        let (m, v) = opt.moments("w").unwrap();
        // (ε makes w₁ differ from 2.9 by 5e-10, hence the tolerance.)
        crate::test_util::assert_close(m, &ndarray::arr1(&[0.37, -0.18]), 1e-8);
        crate::test_util::assert_close(v, &ndarray::arr1(&[0.007606, 0.001809]), 1e-8);
        let steps = trajectory(&mut Adam::new(0.1).unwrap(), 3);
        snapshot_steps("optim_adam_first_steps", &steps);
    }

    #[test]
    fn converges_on_the_quadratic() {
        let mut opt = Adam::new(0.01).unwrap();
        let mut q = Quadratic::standard();
        for _ in 0..3000 {
            q.compute_gradient();
            opt.step(&mut q).unwrap();
        }
        assert!(q.distance() < 1e-3, "{}", q.distance());
    }

    #[test]
    fn a_failed_step_does_not_advance_t() {
        let mut opt = Adam::new(0.1).unwrap();
        let mut q = Quadratic::standard();
        assert!(opt.step(&mut q).is_err());
        assert_eq!(opt.steps(), 0);
    }

    #[test]
    fn config_is_validated() {
        assert!(matches!(
            Adam::with_betas(0.1, 1.0, 0.9),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            Adam::with_betas(0.1, 0.9, -0.1),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            Adam::new(0.1).unwrap().with_eps(-1.0),
            Err(Error::Config(_))
        ));
    }
}
