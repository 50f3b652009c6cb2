//! Optimizers: update every parameter a [`Layer`] exposes, from the
//! gradients of its last `backward`.
//!
//! | optimizer | update (per element, `g` the gradient) | state per parameter |
//! |---|---|---|
//! | [`Sgd`] (default) | `w −= lr·g` | none |
//! | [`Momentum`] | `v = μv − lr·g; w += v` | `v` |
//! | [`Nesterov`] | `v = μv − lr·g; w += μv − lr·g` | `v` |
//! | [`AdaGrad`] | `h += g²; w −= lr·g / (√h + ε)` | `h` |
//! | [`RmsProp`] | `h = ρh + (1 − ρ)g²; w −= lr·g / (√h + ε)` | `h` |
//! | [`Adam`] | `m = β₁m + (1 − β₁)g; v = β₂v + (1 − β₂)g²;`<br>`w −= lr·m̂ / (√v̂ + ε)`, `m̂ = m / (1 − β₁ᵗ)`, `v̂ = v / (1 − β₂ᵗ)` | `m`, `v`, step count `t` |
//!
//! State is kept **per parameter name** (`"W1"`, `"gamma"`, …) and created
//! as zeros on a parameter's first step, so one optimizer serves one model
//! (or layer) for its whole training. Every step is validated before anything
//! changes: each parameter must have a gradient of its own shape, names must
//! be unique, and a parameter must keep the shape its state was created with.
//!
//! All of them implement [`Optimizer`], which is object-safe, so a trainer
//! can hold a `Box<dyn Optimizer<F>>` chosen at run time; each also has an
//! inherent generic `step` so `opt.step(&mut model)` needs no trait import.

use crate::error::{Error, Result, Shape};
use crate::float::Float;
use crate::layer::{Layer, Param};
use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn};
use std::collections::{HashMap, HashSet};

pub mod adagrad;
pub mod adam;
pub mod momentum;
pub mod nesterov;
pub mod rmsprop;
pub mod sgd;

pub use adagrad::AdaGrad;
pub use adam::Adam;
pub use momentum::Momentum;
pub use nesterov::Nesterov;
pub use rmsprop::RmsProp;
pub use sgd::Sgd;

/// Something that updates a layer's parameters from their gradients.
pub trait Optimizer<F: Float> {
    /// A short name, e.g. `"Adam"`.
    fn name(&self) -> String;

    /// The learning rate.
    fn lr(&self) -> F;

    /// Changes the learning rate (for a schedule).
    ///
    /// **Errors** with [`Error::Config`] unless `lr` is finite and positive;
    /// the rate is unchanged then.
    fn set_lr(&mut self, lr: F) -> Result<()>;

    /// One update of every parameter of `layer`, from the gradients of its
    /// last `backward`.
    ///
    /// **Errors** with [`Error::MissingGradient`] if a parameter has no
    /// gradient, [`Error::ShapeMismatch`] if a gradient's shape (or a
    /// parameter's, against its state) is wrong, [`Error::Config`] on
    /// duplicate parameter names. On an error nothing changes.
    fn step(&mut self, layer: &mut dyn Layer<F>) -> Result<()>;
}

/// Which optimizer to build, as named on a command line
/// (`--optimizer sgd|momentum|nesterov|adagrad|rmsprop|adam`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum OptimizerKind {
    /// [`Sgd`] (`"sgd"`), the default.
    Sgd,
    /// [`Momentum`] with `μ = 0.9` (`"momentum"`).
    Momentum,
    /// [`Nesterov`] with `μ = 0.9` (`"nesterov"`).
    Nesterov,
    /// [`AdaGrad`] (`"adagrad"`).
    AdaGrad,
    /// [`RmsProp`] with `ρ = 0.99` (`"rmsprop"`).
    RmsProp,
    /// [`Adam`] with `β₁ = 0.9`, `β₂ = 0.999` (`"adam"`).
    Adam,
}

impl OptimizerKind {
    /// All kinds, in CLI order.
    pub const ALL: [OptimizerKind; 6] = [
        OptimizerKind::Sgd,
        OptimizerKind::Momentum,
        OptimizerKind::Nesterov,
        OptimizerKind::AdaGrad,
        OptimizerKind::RmsProp,
        OptimizerKind::Adam,
    ];

    /// The CLI name, e.g. `"adam"`.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Momentum => "momentum",
            OptimizerKind::Nesterov => "nesterov",
            OptimizerKind::AdaGrad => "adagrad",
            OptimizerKind::RmsProp => "rmsprop",
            OptimizerKind::Adam => "adam",
        }
    }

    /// The tutorial book's default learning rate for this optimizer: 0.01,
    /// except Adam's 0.001.
    pub fn default_lr(self) -> f64 {
        match self {
            OptimizerKind::Adam => 0.001,
            _ => 0.01,
        }
    }

    /// The optimizer with learning rate `lr` and default hyperparameters.
    ///
    /// **Errors** with [`Error::Config`] unless `lr` is finite and positive.
    pub fn build<F: Float>(self, lr: F) -> Result<Box<dyn Optimizer<F> + Send>> {
        let mu = F::of(0.9);
        Ok(match self {
            OptimizerKind::Sgd => Box::new(Sgd::new(lr)?),
            OptimizerKind::Momentum => Box::new(Momentum::new(lr, mu)?),
            OptimizerKind::Nesterov => Box::new(Nesterov::new(lr, mu)?),
            OptimizerKind::AdaGrad => Box::new(AdaGrad::new(lr)?),
            OptimizerKind::RmsProp => Box::new(RmsProp::new(lr, F::of(0.99))?),
            OptimizerKind::Adam => Box::new(Adam::new(lr)?),
        })
    }
}

impl std::fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for OptimizerKind {
    type Err = Error;

    /// Parses a CLI name (see [`OptimizerKind::name`]).
    fn from_str(s: &str) -> Result<Self> {
        OptimizerKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                Error::Config(format!(
                    "unknown optimizer {s:?}; expected one of sgd, momentum, nesterov, adagrad, rmsprop, adam"
                ))
            })
    }
}

/// **Errors** with [`Error::Config`] unless `lr` is finite and positive.
pub(crate) fn check_lr<F: Float>(name: &str, lr: F) -> Result<()> {
    if lr.is_finite() && lr > F::zero() {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "{name}: learning rate must be finite and positive, got {lr}"
        )))
    }
}

/// **Errors** with [`Error::Config`] unless `lo <= v < hi` (or `<= hi` if
/// `hi_inclusive`).
pub(crate) fn check_range<F: Float>(
    name: &str,
    what: &str,
    v: F,
    lo: f64,
    hi: f64,
    hi_inclusive: bool,
) -> Result<()> {
    let x = v.f64();
    let ok = x >= lo && if hi_inclusive { x <= hi } else { x < hi };
    if ok {
        Ok(())
    } else {
        let close = if hi_inclusive { ']' } else { ')' };
        Err(Error::Config(format!(
            "{name}: {what} must be in [{lo}, {hi}{close}, got {v}"
        )))
    }
}

/// Checks every parameter (gradient present and of its shape, unique names,
/// state of its shape) before anything is changed.
pub(crate) fn validate<F: Float>(
    op: &str,
    params: &[Param<'_, F>],
    state: &HashMap<String, Vec<ArrayD<F>>>,
) -> Result<()> {
    let mut seen = HashSet::new();
    for p in params {
        if !seen.insert(p.name.as_str()) {
            return Err(Error::Config(format!(
                "{op}: two parameters are named {:?}; optimizer state is kept per name",
                p.name
            )));
        }
        match &p.grad {
            None => {
                return Err(Error::MissingGradient {
                    op: op.into(),
                    name: p.name.clone(),
                });
            }
            Some(g) if g.shape() != p.value.shape() => {
                return Err(Error::ShapeMismatch {
                    op: op.into(),
                    lhs: Shape::of(p.value.shape()),
                    rhs: Shape::of(g.shape()),
                    detail: format!(
                        "the gradient of {:?} must have the parameter's shape",
                        p.name
                    ),
                });
            }
            Some(_) => {}
        }
        if let Some(s) = state.get(&p.name).and_then(|s| s.first())
            && s.shape() != p.value.shape()
        {
            return Err(Error::ShapeMismatch {
                op: op.into(),
                lhs: Shape::of(p.value.shape()),
                rhs: Shape::of(s.shape()),
                detail: format!(
                    "parameter {:?} changed shape since the optimizer's state for it was created",
                    p.name
                ),
            });
        }
    }
    Ok(())
}

/// Validates, then calls `update(value, grad, state)` for every parameter,
/// with `slots` state arrays per parameter (zeros on its first step).
pub(crate) fn update_all<F, L>(
    op: &str,
    layer: &mut L,
    slots: usize,
    state: &mut HashMap<String, Vec<ArrayD<F>>>,
    mut update: impl FnMut(&mut ArrayViewMutD<'_, F>, &ArrayViewD<'_, F>, &mut [ArrayD<F>]),
) -> Result<()>
where
    F: Float,
    L: Layer<F> + ?Sized,
{
    let mut params = layer.params();
    validate(op, &params, state)?;
    for p in &mut params {
        let g = p.grad.as_ref().expect("validated");
        let s = state.entry(p.name.clone()).or_insert_with(|| {
            (0..slots)
                .map(|_| ArrayD::zeros(IxDyn(p.value.shape())))
                .collect()
        });
        update(&mut p.value, g, s);
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod testing {
    //! The quadratic `f(w) = ½‖w − w*‖²` as a layer, for optimizer tests.
    use crate::error::Result;
    use crate::layer::{Layer, Param};
    use ndarray::{ArrayD, ArrayViewD, IxDyn, arr1};

    /// No inputs; output the 0-d `½‖w − w*‖²`; one parameter `"w"` with
    /// gradient `dout · (w − w*)`.
    #[derive(Debug, Clone)]
    pub(crate) struct Quadratic {
        pub(crate) w: ArrayD<f64>,
        pub(crate) target: ArrayD<f64>,
        pub(crate) grad: Option<ArrayD<f64>>,
    }

    impl Quadratic {
        /// `w₀ = (3, −2)`, `w* = (1, −1)`, so the first gradient is `(2, −1)`.
        pub(crate) fn standard() -> Self {
            Quadratic {
                w: arr1(&[3.0, -2.0]).into_dyn(),
                target: arr1(&[1.0, -1.0]).into_dyn(),
                grad: None,
            }
        }

        /// Forward and backward: sets the gradient `w − w*`.
        pub(crate) fn compute_gradient(&mut self) {
            self.forward(&[]).unwrap();
            self.backward(ArrayD::from_elem(IxDyn(&[]), 1.0).view())
                .unwrap();
        }

        /// `‖w − w*‖`.
        pub(crate) fn distance(&self) -> f64 {
            (&self.w - &self.target).mapv(|v| v * v).sum().sqrt()
        }
    }

    impl Layer<f64> for Quadratic {
        fn name(&self) -> String {
            "Quadratic".into()
        }
        fn num_inputs(&self) -> usize {
            0
        }
        fn forward(&mut self, _: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
            let d = &self.w - &self.target;
            Ok(ArrayD::from_elem(IxDyn(&[]), 0.5 * (&d * &d).sum()))
        }
        fn backward(&mut self, dout: ArrayViewD<'_, f64>) -> Result<Vec<ArrayD<f64>>> {
            self.grad = Some((&self.w - &self.target) * dout[[]]);
            Ok(vec![])
        }
        fn params(&mut self) -> Vec<Param<'_, f64>> {
            vec![Param {
                name: "w".into(),
                value: self.w.view_mut(),
                grad: self.grad.as_ref().map(|g| g.view()),
            }]
        }
    }

    /// The iterates `w₁, …, w_steps` of `opt` on [`Quadratic::standard`].
    pub(crate) fn trajectory(
        opt: &mut dyn super::Optimizer<f64>,
        steps: usize,
    ) -> Vec<ArrayD<f64>> {
        let mut q = Quadratic::standard();
        (0..steps)
            .map(|_| {
                q.compute_gradient();
                opt.step(&mut q).unwrap();
                q.w.clone()
            })
            .collect()
    }

    /// Steps until `‖w − w*‖ < tol` and returns how many it took (panics
    /// after `max_steps`).
    #[track_caller]
    pub(crate) fn steps_to_converge(
        opt: &mut dyn super::Optimizer<f64>,
        tol: f64,
        max_steps: usize,
    ) -> usize {
        let mut q = Quadratic::standard();
        for k in 1..=max_steps {
            q.compute_gradient();
            opt.step(&mut q).unwrap();
            if q.distance() < tol {
                return k;
            }
        }
        panic!(
            "{} did not reach {tol} in {max_steps} steps (distance {})",
            opt.name(),
            q.distance()
        );
    }

    /// Asserts the iterates match hand-computed ones to `1e-6`.
    #[track_caller]
    pub(crate) fn assert_steps(got: &[ArrayD<f64>], want: &[[f64; 2]]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            crate::test_util::assert_close(g, &arr1(w), 1e-6);
        }
    }

    /// Snapshots the first iterates, rounded, to the top-level `snapshots/`.
    pub(crate) fn snapshot_steps(name: &str, steps: &[ArrayD<f64>]) {
        let rows: Vec<Vec<String>> = steps
            .iter()
            .map(|w| w.iter().map(|v| format!("{v:.6}")).collect())
            .collect();
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"));
        settings.set_prepend_module_to_snapshot(false);
        settings.set_description("w after each step on f(w) = ½‖w − (1, −1)‖², w₀ = (3, −2)");
        settings.bind(|| insta::assert_json_snapshot!(name, rows));
    }
}

#[cfg(test)]
mod tests {
    use super::testing::Quadratic;
    use super::*;
    use ndarray::arr1;

    /// Each optimizer boxed as `dyn Optimizer`, as a trainer would hold it.
    fn all() -> Vec<Box<dyn Optimizer<f64>>> {
        vec![
            Box::new(Sgd::new(0.1).unwrap()),
            Box::new(Momentum::new(0.1, 0.9).unwrap()),
            Box::new(Nesterov::new(0.1, 0.9).unwrap()),
            Box::new(AdaGrad::new(0.5).unwrap()),
            Box::new(RmsProp::new(0.05, 0.99).unwrap()),
            Box::new(Adam::new(0.1).unwrap()),
        ]
    }

    #[test]
    fn every_optimizer_lowers_the_loss_and_validates_first() {
        for mut opt in all() {
            let mut q = Quadratic::standard();
            let e = opt.step(&mut q).unwrap_err();
            assert!(
                matches!(e, Error::MissingGradient { .. }),
                "{}: {e}",
                opt.name()
            );
            assert_eq!(q.w, arr1(&[3.0, -2.0]).into_dyn(), "nothing changed");
            let l0 = q.forward(&[]).unwrap()[[]];
            q.compute_gradient();
            opt.step(&mut q).unwrap();
            let l1 = q.forward(&[]).unwrap()[[]];
            assert!(l1 < l0, "{}: {l1} !< {l0}", opt.name());
            // A stateful optimizer refuses a parameter that changed shape.
            q.w = arr1(&[1.0, 2.0, 3.0]).into_dyn();
            q.target = arr1(&[0.0, 0.0, 0.0]).into_dyn();
            q.compute_gradient();
            let r = opt.step(&mut q);
            if opt.name() == "Sgd" {
                assert!(r.is_ok(), "{r:?}");
            } else {
                assert!(
                    matches!(r, Err(Error::ShapeMismatch { .. })),
                    "{}: {r:?}",
                    opt.name()
                );
                assert_eq!(q.w, arr1(&[1.0, 2.0, 3.0]).into_dyn());
            }
        }
    }

    #[test]
    fn kinds_parse_and_build_the_named_optimizer() {
        for k in OptimizerKind::ALL {
            assert_eq!(k.name().parse::<OptimizerKind>().unwrap(), k);
            let opt = k.build(k.default_lr()).unwrap();
            assert_eq!(opt.name().to_lowercase(), k.name());
            assert_eq!(opt.lr(), k.default_lr());
        }
        assert!(OptimizerKind::Adam.build(0.0f32).is_err());
        let e = "lbfgs".parse::<OptimizerKind>().unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e}");
    }

    #[test]
    fn learning_rates_are_validated_through_the_trait() {
        for mut opt in all() {
            let lr = opt.lr();
            assert!(opt.set_lr(0.0).is_err());
            assert!(opt.set_lr(f64::NAN).is_err());
            assert_eq!(opt.lr(), lr);
            opt.set_lr(0.02).unwrap();
            assert_eq!(opt.lr(), 0.02);
        }
    }

    /// Two parameters sharing a name would share state: refused.
    #[test]
    fn duplicate_names_are_refused() {
        struct Twice(ArrayD<f64>, ArrayD<f64>, ArrayD<f64>);
        impl Layer<f64> for Twice {
            fn name(&self) -> String {
                "Twice".into()
            }
            fn num_inputs(&self) -> usize {
                0
            }
            fn forward(&mut self, _: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
                Ok(ArrayD::zeros(IxDyn(&[])))
            }
            fn backward(&mut self, _: ArrayViewD<'_, f64>) -> Result<Vec<ArrayD<f64>>> {
                Ok(vec![])
            }
            fn params(&mut self) -> Vec<Param<'_, f64>> {
                let g = self.2.view();
                vec![
                    Param {
                        name: "W".into(),
                        value: self.0.view_mut(),
                        grad: Some(g.clone()),
                    },
                    Param {
                        name: "W".into(),
                        value: self.1.view_mut(),
                        grad: Some(g),
                    },
                ]
            }
        }
        let z = || ArrayD::<f64>::zeros(IxDyn(&[2]));
        let mut t = Twice(z(), z(), z());
        let e = Adam::new(0.1).unwrap().step(&mut t).unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e}");
    }
}
