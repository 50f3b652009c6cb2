//! Names the likely bug behind a failing tensor, only where the evidence
//! supports it.
//!
//! Every pattern is tested against the numeric gradient on all elements that
//! are finite and not at a kink, with a tolerance of ten times the element's
//! own (so a pattern that "almost" fits is not claimed). In order:
//! non-finite values, all zeros, `analytic = c × numeric` (sign flip when
//! `c = −1`, batch-size scaling when `c = N` or `1/N`), the transpose (square
//! 2-D tensors), the gradient of the first batch row only (the numeric
//! gradient recomputed with the projection restricted to output row 0),
//! per-feature sums over the batch that should be zero and are not (the
//! BatchNormalization bug of treating the batch statistics as constants), a
//! single wrong element, unreliable numerics, and otherwise "no pattern".

use super::numeric::{Numeric, Outcome, Tol};
use serde::Serialize;
use std::fmt;

/// The likely bug behind a failing tensor.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Diagnosis {
    /// NaN or infinity in the analytic and/or numeric gradient.
    NonFinite {
        /// Elements whose analytic gradient is not finite.
        analytic: usize,
        /// Elements whose numeric gradient is not finite (the forward
        /// produced NaN/inf near the point).
        numeric: usize,
    },
    /// The analytic gradient is all zeros while the numeric one is not:
    /// the gradient was not propagated.
    AllZeros,
    /// `analytic = −numeric`.
    SignFlipped,
    /// `analytic = factor × numeric` for a constant `factor ≠ 1`.
    Scaled {
        /// The constant.
        factor: f64,
        /// `Some(N)` when `factor` is the batch size `N` (a missing division
        /// by the batch size) or `1/N` (a division too many).
        batch_size: Option<usize>,
    },
    /// The analytic gradient is the transpose of the numeric one.
    Transposed,
    /// The analytic gradient equals the gradient of the first batch row's
    /// output only: a missing sum over the batch.
    FirstRowOnly,
    /// The numeric gradient sums to zero over the batch for every feature
    /// (axis 1; for `(N, C, H, W)` over `N`, `H` and `W` per channel) while
    /// the analytic one does not: the signature of a BatchNormalization
    /// backward that treats the batch mean and variance as constants (the
    /// terms through them are what make the true `dx` sum to zero, since the
    /// output does not change when a feature is shifted over the whole
    /// batch).
    FeatureSumsNotZero {
        /// The feature whose analytic sum is furthest from zero.
        feature: usize,
        /// That sum.
        analytic_sum: f64,
    },
    /// Exactly one element is wrong.
    SingleElement {
        /// Its index.
        index: Vec<usize>,
        /// Analytic value there.
        analytic: f64,
        /// Numeric value there.
        numeric: f64,
    },
    /// More elements were at kinks than the configured share allows.
    TooManyKinks {
        /// Elements at kinks.
        at_kink: usize,
        /// Elements checked.
        elements: usize,
        /// The configured maximum share.
        max_share: f64,
    },
    /// The backward returned no gradient or one of the wrong shape.
    BadGradient {
        /// What is wrong.
        detail: String,
    },
    /// Every failing element has an unreliable numeric value (its own error
    /// estimate is large): the function is too curved or noisy at this `h`.
    UnreliableNumerics {
        /// Failing elements.
        failing: usize,
    },
    /// None of the patterns fits.
    NoPattern,
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diagnosis::NonFinite { analytic, numeric } => write!(
                f,
                "non-finite values: {analytic} analytic, {numeric} numeric element(s) are NaN or infinite"
            ),
            Diagnosis::AllZeros => {
                write!(f, "analytic gradient is all zeros: gradient not propagated")
            }
            Diagnosis::SignFlipped => write!(f, "analytic = -numeric: sign flipped"),
            Diagnosis::Scaled { factor, batch_size } => {
                write!(f, "analytic = c × numeric with c = {factor:.6}")?;
                match batch_size {
                    Some(n) if *factor > 1.0 => write!(
                        f,
                        ", equal to the batch size {n}: division by the batch size missing?"
                    ),
                    Some(n) => write!(
                        f,
                        ", equal to 1/{n} (batch size {n}): divided by the batch size once too often?"
                    ),
                    None => Ok(()),
                }
            }
            Diagnosis::Transposed => {
                write!(f, "analytic gradient is the transpose of the numeric one")
            }
            Diagnosis::FirstRowOnly => write!(
                f,
                "analytic gradient is that of the first batch row only: missing sum over the batch"
            ),
            Diagnosis::FeatureSumsNotZero {
                feature,
                analytic_sum,
            } => write!(
                f,
                "dx does not sum to zero over the batch per feature: the terms through the batch \
                 mean/variance are missing (feature {feature} sums to {analytic_sum:e}; the \
                 numeric gradient sums to 0 for every feature)"
            ),
            Diagnosis::SingleElement {
                index,
                analytic,
                numeric,
            } => write!(
                f,
                "a single wrong element at {index:?}: analytic {analytic:e}, numeric {numeric:e}"
            ),
            Diagnosis::TooManyKinks {
                at_kink,
                elements,
                max_share,
            } => write!(
                f,
                "{at_kink} of {elements} elements at kinks (more than {:.0}%): check not meaningful, move the inputs away from kinks",
                max_share * 100.0
            ),
            Diagnosis::BadGradient { detail } => write!(f, "bad gradient: {detail}"),
            Diagnosis::UnreliableNumerics { failing } => write!(
                f,
                "all {failing} failing element(s) have unreliable numeric values: try another h"
            ),
            Diagnosis::NoPattern => write!(f, "no pattern"),
        }
    }
}

/// What the diagnosis looks at for one tensor.
pub(crate) struct Evidence<'a> {
    pub analytic: &'a [f64],
    pub numeric: &'a [Numeric],
    pub outcomes: &'a [Outcome],
    pub shape: &'a [usize],
    /// Batch size of the first input (its first dimension), if it has one.
    pub batch: Option<usize>,
    /// The tolerances in effect.
    pub tol: Tol,
}

impl Evidence<'_> {
    /// Indices usable as evidence: finite and not at a kink.
    fn usable(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.analytic.len())
            .filter(|&i| !self.outcomes[i].non_finite && !self.outcomes[i].at_kink)
    }

    /// Does `analytic ≈ target` on every usable element, within ten times
    /// the element tolerance plus `extra_rel` relative?
    fn fits(&self, extra_rel: f64, target: impl Fn(usize) -> f64) -> bool {
        let mut any = false;
        for i in self.usable() {
            any = true;
            let (a, t) = (self.analytic[i], target(i));
            let n = &self.numeric[i];
            let mag = a.abs().max(t.abs());
            let slack =
                10.0 * (self.tol.atol + self.tol.rtol * mag) + extra_rel * mag + n.est + n.noise;
            let close = (a - t).abs() <= slack; // false for NaN
            if !close {
                return false;
            }
        }
        any
    }

    fn usable_count(&self) -> usize {
        self.usable().count()
    }

    /// The least-squares `c` in `analytic ≈ c · numeric`.
    fn scale(&self) -> Option<f64> {
        let (mut an, mut nn) = (0.0, 0.0);
        for i in self.usable() {
            an += self.analytic[i] * self.numeric[i].value;
            nn += self.numeric[i].value * self.numeric[i].value;
        }
        (nn > 0.0).then(|| an / nn)
    }
}

/// Diagnoses a failing tensor. `row0` lazily computes the numeric gradient
/// with the projection restricted to the first output row (`None` when that
/// makes no sense: a 0-d output or a batch of 1).
pub(crate) fn diagnose(ev: &Evidence<'_>, row0: &mut dyn FnMut() -> Option<Vec<f64>>) -> Diagnosis {
    let bad_a = ev.analytic.iter().filter(|v| !v.is_finite()).count();
    let bad_n = ev
        .numeric
        .iter()
        .filter(|n| !n.finite || !n.value.is_finite())
        .count();
    if bad_a + bad_n > 0 {
        return Diagnosis::NonFinite {
            analytic: bad_a,
            numeric: bad_n,
        };
    }
    let failing: Vec<usize> = (0..ev.outcomes.len())
        .filter(|&i| !ev.outcomes[i].pass)
        .collect();
    let numeric_max = ev
        .usable()
        .fold(0.0f64, |m, i| m.max(ev.numeric[i].value.abs()));
    if ev.analytic.iter().all(|&a| a == 0.0) && numeric_max > 0.0 {
        return Diagnosis::AllZeros;
    }
    // Patterns need at least two usable elements to be evidence.
    if ev.usable_count() >= 2 {
        if let Some(c) = ev.scale()
            && (c - 1.0).abs() > 1e-3
            && ev.fits(0.0, |i| c * ev.numeric[i].value)
        {
            if (c + 1.0).abs() <= 1e-3 {
                return Diagnosis::SignFlipped;
            }
            let batch_size = ev.batch.filter(|&n| {
                let nf = n as f64;
                n > 1 && ((c - nf).abs() <= 1e-3 * nf || (c * nf - 1.0).abs() <= 1e-3)
            });
            return Diagnosis::Scaled {
                factor: c,
                batch_size,
            };
        }
        if let [r, c] = ev.shape
            && r == c
            && *r >= 2
        {
            let d = *r;
            let transposed = |i: usize| ev.numeric[(i % d) * d + i / d].value;
            let symmetric = (0..d * d).all(|i| {
                let (a, b) = (ev.numeric[i].value, transposed(i));
                (a - b).abs() <= ev.outcomes[i].allowed
            });
            if !symmetric && ev.fits(0.0, transposed) {
                return Diagnosis::Transposed;
            }
        }
        if let Some(r0) = row0() {
            let differs = r0.len() == ev.numeric.len()
                && (0..r0.len()).any(|i| {
                    let n = ev.numeric[i].value;
                    (r0[i] - n).abs()
                        > 10.0 * ev.outcomes[i].allowed + 1e-5 * n.abs().max(r0[i].abs())
                });
            if differs && r0.len() == ev.analytic.len() && ev.fits(1e-5, |i| r0[i]) {
                return Diagnosis::FirstRowOnly;
            }
        }
    }
    if let Some((feature, analytic_sum)) = feature_sums_not_zero(ev) {
        return Diagnosis::FeatureSumsNotZero {
            feature,
            analytic_sum,
        };
    }
    if failing.len() == 1 && ev.outcomes.len() > 1 {
        let i = failing[0];
        return Diagnosis::SingleElement {
            index: unravel(i, ev.shape),
            analytic: ev.analytic[i],
            numeric: ev.numeric[i].value,
        };
    }
    if !failing.is_empty() && failing.iter().all(|&i| ev.outcomes[i].unreliable) {
        return Diagnosis::UnreliableNumerics {
            failing: failing.len(),
        };
    }
    Diagnosis::NoPattern
}

/// For a tensor of at least two dimensions with a batch of at least two and
/// no kinks: `Some((feature, analytic sum))` if the numeric gradient sums to
/// zero over every axis but axis 1 for each index along axis 1 (within the
/// elements' tolerances, and not because it is zero) while the analytic one
/// does not for some feature (the one furthest from zero is returned).
fn feature_sums_not_zero(ev: &Evidence<'_>) -> Option<(usize, f64)> {
    let shape = ev.shape;
    if shape.len() < 2 || shape[0] < 2 || shape[1] == 0 {
        return None;
    }
    if ev.outcomes.iter().any(|o| o.at_kink || o.non_finite) {
        return None;
    }
    let d = shape[1];
    let inner: usize = shape[2..].iter().product();
    // Per feature: analytic sum, Σ|analytic|, numeric sum, Σ|numeric|, Σ allowed.
    let mut acc = vec![[0.0f64; 5]; d];
    for (i, (a, n)) in ev.analytic.iter().zip(ev.numeric).enumerate() {
        let s = &mut acc[(i / inner.max(1)) % d];
        s[0] += a;
        s[1] += a.abs();
        s[2] += n.value;
        s[3] += n.value.abs();
        s[4] += ev.outcomes[i].allowed + n.est + n.noise;
    }
    let numeric_zero = acc.iter().all(|s| s[2].abs() <= s[4] + 1e-9 * s[3]);
    let numeric_nontrivial = acc.iter().any(|s| s[3] > 10.0 * s[4]);
    if !numeric_zero || !numeric_nontrivial {
        return None;
    }
    let (feature, s) = acc
        .iter()
        .enumerate()
        .max_by(|a, b| a.1[0].abs().total_cmp(&b.1[0].abs()))?;
    let violated = s[0].abs() > 10.0 * s[4] + 1e-3 * s[1];
    violated.then_some((feature, s[0]))
}

/// The multi-index of flat position `flat` in `shape` (row-major).
pub(crate) fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for (ax, &d) in shape.iter().enumerate().rev() {
        if d > 0 {
            idx[ax] = flat % d;
            flat /= d;
        }
    }
    idx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::config::KinkHandling;
    use crate::check::numeric::compare;

    fn numeric(v: f64) -> Numeric {
        Numeric {
            value: v,
            est: 1e-12,
            noise: 1e-12,
            kink: false,
            lo: v,
            hi: v,
            curv: 0.0,
            finite: true,
            both_stencils: true,
        }
    }

    fn run(
        analytic: &[f64],
        num: &[f64],
        shape: &[usize],
        batch: Option<usize>,
        row0: Option<Vec<f64>>,
    ) -> Diagnosis {
        let tol = Tol {
            atol: 1e-9,
            rtol: 1e-6,
            rel_floor: 1e-3,
            kinks: KinkHandling::Subgradient,
        };
        let n: Vec<Numeric> = num.iter().map(|&v| numeric(v)).collect();
        let o: Vec<Outcome> = analytic
            .iter()
            .zip(&n)
            .map(|(&a, n)| compare(a, n, &tol))
            .collect();
        let ev = Evidence {
            analytic,
            numeric: &n,
            outcomes: &o,
            shape,
            batch,
            tol,
        };
        let mut r = row0;
        diagnose(&ev, &mut || r.take())
    }

    const N: [f64; 4] = [0.3, -1.2, 0.7, 2.0];

    #[test]
    fn scale_sign_batch() {
        let twice: Vec<f64> = N.iter().map(|v| 2.0 * v).collect();
        assert_eq!(
            run(&twice, &N, &[2, 2], None, None),
            Diagnosis::Scaled {
                factor: 2.0,
                batch_size: None
            }
        );
        assert_eq!(
            run(&twice, &N, &[2, 2], Some(2), None),
            Diagnosis::Scaled {
                factor: 2.0,
                batch_size: Some(2)
            }
        );
        let neg: Vec<f64> = N.iter().map(|v| -v).collect();
        assert_eq!(run(&neg, &N, &[4], None, None), Diagnosis::SignFlipped);
    }

    #[test]
    fn transpose_zeros_single_nopattern() {
        let t = [N[0], N[2], N[1], N[3]];
        assert_eq!(run(&t, &N, &[2, 2], None, None), Diagnosis::Transposed);
        // Same values as a flat tensor: no transpose claim.
        assert_eq!(run(&t, &N, &[4], None, None), Diagnosis::NoPattern);
        assert_eq!(run(&[0.0; 4], &N, &[4], None, None), Diagnosis::AllZeros);
        let mut one = N;
        one[2] *= 1.01;
        assert!(matches!(
            run(&one, &N, &[2, 2], None, None),
            Diagnosis::SingleElement { ref index, .. } if index == &vec![1, 0]
        ));
    }

    #[test]
    fn first_row_needs_matching_evidence() {
        let row0 = vec![0.1, -0.4, 0.2, 0.5];
        assert_eq!(
            run(&row0, &N, &[4], Some(3), Some(row0.clone())),
            Diagnosis::FirstRowOnly
        );
        let other = vec![0.0, 0.0, 0.0, 9.0];
        assert_eq!(
            run(&other, &N, &[4], Some(3), Some(row0)),
            Diagnosis::NoPattern
        );
    }

    #[test]
    fn nan_is_reported() {
        let a = [f64::NAN, 1.0];
        assert_eq!(
            run(&a, &[1.0, 1.0], &[2], None, None),
            Diagnosis::NonFinite {
                analytic: 1,
                numeric: 0
            }
        );
    }

    #[test]
    fn feature_sums_that_should_be_zero_are_named() {
        // (3, 2): numeric columns sum to 0, analytic's first column does not.
        let num = [1.0, -0.5, -0.4, 0.2, -0.6, 0.3];
        let ana = [1.1, -0.5, -0.2, 0.2, -0.6, 0.3];
        let d = run(&ana, &num, &[3, 2], Some(3), None);
        assert!(
            matches!(d, Diagnosis::FeatureSumsNotZero { feature: 0, analytic_sum } if (analytic_sum - 0.3).abs() < 1e-12),
            "{d:?}"
        );
        assert!(d.to_string().starts_with(
            "dx does not sum to zero over the batch per feature: the terms through the batch mean/variance are missing"
        ));
        // Per channel over (N, H, W) for a 4-D tensor: channel 1 is off.
        let num4 = [1.0, -1.0, 2.0, -2.0, -0.5, 0.5, 0.25, -0.25];
        let mut ana4 = num4;
        ana4[2] = 2.5;
        assert!(matches!(
            run(&ana4, &num4, &[2, 2, 2, 1], Some(2), None),
            Diagnosis::FeatureSumsNotZero { feature: 1, .. }
        ));
        // Numeric sums not zero: no such claim (here, a single element).
        let num = [1.0, -0.5, -0.4, 0.2, 0.6, 0.3];
        let ana = [1.1, -0.5, -0.4, 0.2, 0.6, 0.3];
        assert!(matches!(
            run(&ana, &num, &[3, 2], Some(3), None),
            Diagnosis::SingleElement { .. }
        ));
        // A batch of one has no batch to sum over.
        assert_eq!(
            run(&[1.0, 2.0], &[0.0, 0.0], &[1, 2], Some(1), None),
            Diagnosis::NoPattern
        );
    }

    #[test]
    fn unravel_row_major() {
        assert_eq!(unravel(5, &[2, 3]), vec![1, 2]);
        assert_eq!(unravel(0, &[]), Vec::<usize>::new());
    }
}
