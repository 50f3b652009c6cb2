//! [`CheckConfig`]: step size, tolerances, seed, kink policy, mode, contracts.
//!
//! # Why these defaults
//! - **`h = 1e-4`** (relative: the step for an element `x` is `h · max(1, |x|)`).
//!   Every element is evaluated at `x ± h` and `x ± h/2`, and the two central
//!   differences are combined by Richardson extrapolation, whose truncation
//!   error is `O(h⁴)` ≈ 1e-16 for well-scaled functions. What is left is
//!   round-off, `≈ eps · |L| / h` ≈ 1e-12. A smaller `h` (the usual 1e-5 or
//!   1e-6 of plain central differences) would only raise round-off, and the
//!   Richardson error estimate `|D(h) − D(h/2)|` would drown in it; a larger
//!   `h` would put more ReLU elements within a step of their kink.
//! - **`rtol = 1e-6`, `atol = 1e-9`**: the extrapolated numeric value is good
//!   to about 1e-10 relative, so 1e-6 leaves four orders of margin against
//!   false alarms while an element off by 0.01 % still fails. `atol` only
//!   matters for gradients that are (nearly) zero; the projection weights `r`
//!   have magnitude 0.5..1.5, so real gradients are rarely below 1e-6.
//! - **Relative error near zero**: `|a − n| / max(|a|, |n|, atol/rtol)`. The
//!   floor `atol/rtol` (1e-3 by default) keeps round-off on a gradient that is
//!   exactly zero from showing as "relative error 1", and makes "passed"
//!   equivalent to "relative error ≤ rtol" up to the per-element widening.
//! - Per element the tolerance is widened by the numeric value's own error
//!   estimate (Richardson, `|D(h) − D(h/2)|`) and by a round-off bound
//!   `64 · eps · Σ|r ⊙ y| / h`; see [`numeric`](super::numeric).
//! - **`richardson = OnDemand`**: the second stencil is evaluated for every
//!   element the first one does not settle beyond doubt (see [`Richardson`]);
//!   on the tutorial's MLP that halves the evaluations of the full check.
//!   [`Richardson::Always`] evaluates it everywhere.
//! - **`max_kink_share = 0.2`**: random well-scaled inputs put far fewer than
//!   1 % of elements within a step of a kink; a tensor where a fifth or more of
//!   the elements could only be checked as subgradients has not really been
//!   checked, so it fails.
//! - **`fast_threshold = 4096`**: in [`Mode::Auto`] a tensor with more elements
//!   is checked along random directions; below it the full check costs at
//!   most ~16k evaluations, well under a second for small layers.

use crate::error::{Error, Result};
use serde::Serialize;

/// How tensors are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Mode {
    /// Full check for tensors up to [`CheckConfig::fast_threshold`] elements,
    /// fast check (localised with the full check on a mismatch) above it.
    Auto,
    /// Central differences for every element of every tensor.
    Full,
    /// Directional derivatives along `directions` seeded random unit vectors
    /// per tensor (4 evaluations each); a mismatching tensor is then checked
    /// in full to find the wrong elements.
    Fast {
        /// Number of random directions per tensor (at least 1).
        directions: usize,
    },
}

/// What to do with elements where the function has a kink within a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum KinkHandling {
    /// Accept the analytic value there if it lies between the one-sided
    /// derivatives (a valid subgradient) and count the element "at a kink".
    Subgradient,
    /// Compare with the central difference like any other element.
    Strict,
}

/// When the second stencil `x ± h/2` (Richardson extrapolation and the error
/// estimate) is evaluated in the full check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Richardson {
    /// For every element: five points each, always.
    Always,
    /// For every element the outer pair `x ± h` does not settle: an element
    /// is settled (two evaluations instead of four) only if its one-sided
    /// slopes show no kink and `D(h)` agrees with the analytic value to half
    /// the tolerance (base plus round-off bound), when the Richardson value
    /// would agree too (`D(h)`'s
    /// truncation error is `O(h²)`, ≈ 1e-9 relative at the default `h`). Every
    /// other element (any disagreement, kink, non-finite value or noisy
    /// loss) gets the full five-point analysis, so verdicts, kink counts and
    /// diagnoses are those of [`Richardson::Always`] except for a kink whose
    /// slope jump is under 1 % of the slope, where `D(h)` already matches
    /// the analytic value.
    OnDemand,
}

/// A property of a gradient that holds for a particular layer, checked on
/// the analytic gradient besides the numeric comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Invariant {
    /// Every row (first axis = batch) of the gradient of differentiable input
    /// `input` sums to zero, as for softmax-with-cross-entropy with one-hot or
    /// index labels.
    RowsSumToZero {
        /// Which differentiable input.
        input: usize,
    },
    /// For every feature (index along axis 1: a column of `(N, D)`, a
    /// channel of `(N, C, H, W)`), the gradient of differentiable input
    /// `input` summed over every other axis (the batch, and positions) is
    /// zero, as for BatchNormalization's training-mode `dx`: its output does
    /// not change when a feature is shifted by a constant over the batch.
    /// (The true `dx` is also orthogonal to `x̂` per feature; that needs the
    /// input, which an invariant does not see.) A violation means the terms
    /// through the batch mean and variance are missing.
    FeaturesSumToZero {
        /// Which differentiable input.
        input: usize,
    },
}

/// Settings of a gradient check. Build with [`Default`] and the `with_*`
/// methods, or a struct literal with `..Default::default()`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckConfig {
    /// Relative finite-difference step (default `1e-4`): an element `x` moves
    /// by `h · max(1, |x|)`. Must be finite and in `(0, 1)`.
    pub h: f64,
    /// Absolute tolerance (default `1e-9`). Finite, `>= 0`.
    pub atol: f64,
    /// Relative tolerance (default `1e-6`). Finite, `>= 0`.
    pub rtol: f64,
    /// Seed of the projection `r` and of the fast-mode directions (default 0).
    pub seed: u64,
    /// Kink policy (default [`KinkHandling::Subgradient`]).
    pub kinks: KinkHandling,
    /// Largest share of a tensor's elements that may be at a kink (default
    /// `0.2`); more fails the tensor. In `[0, 1]`.
    pub max_kink_share: f64,
    /// Full, fast or automatic (default [`Mode::Auto`]).
    pub mode: Mode,
    /// When the full check evaluates the second stencil (default
    /// [`Richardson::OnDemand`]).
    pub richardson: Richardson,
    /// Element count above which [`Mode::Auto`] uses the fast check (default 4096).
    pub fast_threshold: usize,
    /// Directions per tensor when [`Mode::Auto`] goes fast (default 4).
    pub fast_directions: usize,
    /// Run the contract checks (repeatable, linear in dout, latest forward,
    /// arguments unmodified). Default `true`.
    pub contracts: bool,
    /// Split the numeric work over rayon's threads in
    /// [`check_parallel`](super::check_parallel) (default `true`).
    pub parallel: bool,
    /// Tolerance of the f32 check in units of f32's epsilon (default 1024,
    /// i.e. ≈ 1.2e-4 relative to the tensor's largest gradient).
    pub f32_ulps: f64,
    /// How many of the worst elements a failing tensor lists (default 5).
    pub worst_listed: usize,
    /// Layer-specific invariants to check on the analytic gradients.
    pub invariants: Vec<Invariant>,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            h: 1e-4,
            atol: 1e-9,
            rtol: 1e-6,
            seed: 0,
            kinks: KinkHandling::Subgradient,
            max_kink_share: 0.2,
            mode: Mode::Auto,
            richardson: Richardson::OnDemand,
            fast_threshold: 4096,
            fast_directions: 4,
            contracts: true,
            parallel: true,
            f32_ulps: 1024.0,
            worst_listed: 5,
            invariants: Vec::new(),
        }
    }
}

impl CheckConfig {
    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the mode.
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets when the second stencil is evaluated.
    pub fn with_richardson(mut self, richardson: Richardson) -> Self {
        self.richardson = richardson;
        self
    }

    /// Sets the step `h`.
    pub fn with_h(mut self, h: f64) -> Self {
        self.h = h;
        self
    }

    /// Sets both tolerances.
    pub fn with_tolerances(mut self, atol: f64, rtol: f64) -> Self {
        self.atol = atol;
        self.rtol = rtol;
        self
    }

    /// Turns the contract checks on or off.
    pub fn with_contracts(mut self, on: bool) -> Self {
        self.contracts = on;
        self
    }

    /// Adds a layer invariant.
    pub fn with_invariant(mut self, invariant: Invariant) -> Self {
        self.invariants.push(invariant);
        self
    }

    /// Sets the kink policy.
    pub fn with_kinks(mut self, kinks: KinkHandling) -> Self {
        self.kinks = kinks;
        self
    }

    /// Turns the parallel numeric evaluation on or off.
    pub fn with_parallel(mut self, on: bool) -> Self {
        self.parallel = on;
        self
    }

    /// **Errors** with [`Error::Config`] on a non-finite or non-positive `h`
    /// (or `h >= 1`), negative or non-finite tolerances, a kink share outside
    /// `[0, 1]`, zero fast directions or a non-positive `f32_ulps`.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Config(msg));
        if !(self.h.is_finite() && self.h > 0.0 && self.h < 1.0) {
            return bad(format!(
                "check: h must be finite and in (0, 1), got {}",
                self.h
            ));
        }
        if !(self.atol.is_finite() && self.atol >= 0.0) {
            return bad(format!(
                "check: atol must be finite and >= 0, got {}",
                self.atol
            ));
        }
        if !(self.rtol.is_finite() && self.rtol >= 0.0) {
            return bad(format!(
                "check: rtol must be finite and >= 0, got {}",
                self.rtol
            ));
        }
        if !(0.0..=1.0).contains(&self.max_kink_share) {
            return bad(format!(
                "check: max_kink_share must be in [0, 1], got {}",
                self.max_kink_share
            ));
        }
        if let Mode::Fast { directions: 0 } = self.mode {
            return bad("check: Mode::Fast needs at least 1 direction".into());
        }
        if self.fast_directions == 0 {
            return bad("check: fast_directions must be at least 1".into());
        }
        if !(self.f32_ulps.is_finite() && self.f32_ulps > 0.0) {
            return bad(format!(
                "check: f32_ulps must be finite and > 0, got {}",
                self.f32_ulps
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        CheckConfig::default().validate().unwrap();
    }

    #[test]
    fn bad_values_are_config_errors() {
        let cases = [
            CheckConfig::default().with_h(0.0),
            CheckConfig::default().with_h(-1e-4),
            CheckConfig::default().with_h(f64::NAN),
            CheckConfig::default().with_h(f64::INFINITY),
            CheckConfig::default().with_tolerances(-1.0, 1e-6),
            CheckConfig::default().with_tolerances(1e-9, f64::NAN),
            CheckConfig::default().with_mode(Mode::Fast { directions: 0 }),
            CheckConfig {
                max_kink_share: 1.5,
                ..Default::default()
            },
            CheckConfig {
                f32_ulps: 0.0,
                ..Default::default()
            },
        ];
        for c in cases {
            let err = c.validate().unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{c:?} gave {err}");
        }
    }

    #[test]
    fn message_names_the_value() {
        let err = CheckConfig::default().with_h(-2.0).validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration: check: h must be finite and in (0, 1), got -2"
        );
    }
}
