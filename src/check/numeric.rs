//! Numeric derivatives: the probe that perturbs one element (or one
//! direction) and re-evaluates the projected loss, and the per-element
//! analysis (Richardson extrapolation, error estimate, kink detection).
//!
//! # Method
//! For an element `x` with step `h` we evaluate `L` at `x − h`, `x − h/2`,
//! `x`, `x + h/2`, `x + h` (the value at `x` is shared by all elements) and
//! form
//! - the central differences `D(h)` and `D(h/2)`; their Richardson
//!   combination `(4·D(h/2) − D(h)) / 3` is the numeric value (error
//!   `O(h⁴)`), and `|D(h) − D(h/2)|` (three times `D(h/2)`'s own error when
//!   the function is smooth) is its error estimate, added to the element's
//!   tolerance;
//! - the four slopes over `[x−h, x−h/2]`, `[x−h/2, x]`, `[x, x+h/2]`,
//!   `[x+h/2, x+h]`. For a smooth function consecutive slopes differ by the
//!   same `f''·h/2` (up to `O(h²)`); a kink anywhere inside the stencil puts
//!   its whole jump into one of the differences. Their spread, compared with a
//!   round-off bound and `1e-6` of the element's slope scale, detects the
//!   kink. This is the "gap between the one-sided differences does not shrink
//!   with h" test, made robust to where in the stencil the kink sits.
//! - At a kink the analytic value is accepted if it lies between the
//!   one-sided derivatives `min/max(F(h), F(h/2), B(h), B(h/2))`, widened by
//!   their own `O(h)` curvature error (measured by the slope change on the
//!   smooth side of the stencil).
//!
//! With [`Richardson::OnDemand`](super::config::Richardson::OnDemand) (the
//! default) the outer pair `x ± h` is evaluated first and
//! `Sample::screen` settles the elements it already decides; only the
//! others get the inner pair and the analysis above.
//!
//! Steps are the exact distances `(x + h) − x` and `x − (x − h)` in floating
//! point, so rounding of `x ± h` does not bias the differences.

use super::config::KinkHandling;
use super::fast::Direction;
use crate::error::{Error, Result, Shape};
use crate::layer::Layer;
use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn, Zip};

/// Which tensor of a layer: a differentiable input or a parameter (by its
/// position in [`Layer::params`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TensorRef {
    /// Differentiable input `k`.
    Input(usize),
    /// Parameter at position `k` of `params()`.
    Param(usize),
}

/// The projected loss `Σ r ⊙ y` (Neumaier-compensated) and its round-off
/// scale `Σ |r| · max(|y|, 1)`.
///
/// The floor of 1 per element matters: an output's rounding error is set by
/// the magnitudes inside its computation, not by the result. A confident
/// cross-entropy loss `lse(x) − x_t ≈ 2e-3` is the difference of two numbers
/// near 6 and carries `≈ eps · 6` of error, a thousand times `eps · |L|`; with
/// the floor, round-off on well-scaled layers is never underestimated.
pub(crate) fn project(r: &ArrayD<f64>, y: ArrayViewD<'_, f64>) -> (f64, f64) {
    let mut sum = 0.0f64;
    let mut comp = 0.0f64;
    let mut abs = 0.0f64;
    Zip::from(r).and(&y).for_each(|&ri, &yi| {
        let t = ri * yi;
        abs += ri.abs() * yi.abs().max(1.0);
        let s = sum + t;
        if sum.abs() >= t.abs() {
            comp += (sum - s) + t;
        } else {
            comp += (t - s) + sum;
        }
        sum = s;
    });
    (sum + comp, abs)
}

/// Owns a copy of the inputs and borrows a layer; evaluates the projected loss
/// with one tensor perturbed. Every perturbation is undone exactly.
pub(crate) struct Probe<'a, L: ?Sized> {
    pub layer: &'a mut L,
    /// Standard-layout copies of all inputs.
    pub inputs: Vec<ArrayD<f64>>,
    pub r: &'a ArrayD<f64>,
}

/// All four perturbed points of a sample.
pub(crate) const STENCIL_ALL: [usize; 4] = [0, 1, 2, 3];
/// The outer pair `x ± h`.
pub(crate) const STENCIL_OUTER: [usize; 2] = [0, 1];
/// The inner pair `x ± h/2`.
pub(crate) const STENCIL_INNER: [usize; 2] = [2, 3];

/// Five function values' worth of samples of one element (or direction):
/// `L(x+h), L(x−h), L(x+h/2), L(x−h/2)` and the exact steps taken.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sample {
    /// `[L(x+h), L(x−h), L(x+h/2), L(x−h/2)]`.
    pub l: [f64; 4],
    /// `[(x+h)−x, x−(x−h), (x+h/2)−x, x−(x−h/2)]`, all positive.
    pub s: [f64; 4],
}

fn elem_mut<'b>(a: &'b mut ArrayViewMutD<'_, f64>, flat: usize) -> Option<&'b mut f64> {
    if a.is_standard_layout() {
        return a.as_slice_mut().and_then(|s| s.get_mut(flat));
    }
    let mut idx = vec![0usize; a.ndim()];
    let mut rest = flat;
    for (ax, &d) in a.shape().iter().enumerate().rev() {
        idx[ax] = rest % d;
        rest /= d;
    }
    a.get_mut(IxDyn(&idx))
}

impl<L: Layer<f64> + ?Sized> Probe<'_, L> {
    /// `Σ r ⊙ forward(inputs)`.
    ///
    /// **Errors** with the layer's error, or a shape mismatch if the output
    /// shape differs from the projection's.
    pub fn loss(&mut self) -> Result<f64> {
        let views: Vec<ArrayViewD<'_, f64>> = self.inputs.iter().map(|a| a.view()).collect();
        let y = self.layer.forward(&views)?;
        if y.shape() != self.r.shape() {
            return Err(Error::ShapeMismatch {
                op: "check".into(),
                lhs: Shape::of(self.r.shape()),
                rhs: Shape::of(y.shape()),
                detail: format!(
                    "{}.forward changed its output shape when an input or parameter element was perturbed",
                    self.layer.name()
                ),
            });
        }
        Ok(project(self.r, y.view()).0)
    }

    fn missing(&mut self, t: TensorRef) -> Error {
        Error::UnknownParam {
            op: "check".into(),
            name: format!(
                "{t:?} of {} (params() changed between calls)",
                self.layer.name()
            ),
        }
    }

    /// Runs `f` on one element.
    fn with_elem<T>(
        &mut self,
        t: TensorRef,
        flat: usize,
        f: impl FnOnce(&mut f64) -> T,
    ) -> Result<T> {
        let got = match t {
            TensorRef::Input(k) => self
                .inputs
                .get_mut(k)
                .and_then(|a| a.as_slice_mut())
                .and_then(|s| s.get_mut(flat))
                .map(f),
            TensorRef::Param(k) => {
                let mut ps = self.layer.params();
                ps.get_mut(k)
                    .and_then(|p| elem_mut(&mut p.value, flat))
                    .map(f)
            }
        };
        match got {
            Some(v) => Ok(v),
            None => Err(self.missing(t)),
        }
    }

    /// Evaluates the four perturbed losses of element `flat` of `t`.
    pub fn sample(&mut self, t: TensorRef, flat: usize, h: f64) -> Result<Sample> {
        let mut out = Sample::default();
        self.points(t, flat, h, &STENCIL_ALL, &mut out)?;
        Ok(out)
    }

    /// Evaluates the points `which` (indices into `[x+h, x−h, x+h/2, x−h/2]`:
    /// [`STENCIL_ALL`], or [`STENCIL_OUTER`] then [`STENCIL_INNER`]) of
    /// element `flat` of `t` into `out`, restoring the element exactly
    /// afterwards, also on error.
    pub fn points(
        &mut self,
        t: TensorRef,
        flat: usize,
        h: f64,
        which: &[usize],
        out: &mut Sample,
    ) -> Result<()> {
        let x0 = self.with_elem(t, flat, |v| *v)?;
        let step = h * x0.abs().max(1.0);
        let points = [x0 + step, x0 - step, x0 + step / 2.0, x0 - step / 2.0];
        for &i in which {
            let p = points[i];
            out.s[i] = (p - x0).abs();
            self.with_elem(t, flat, |v| *v = p)?;
            let l = self.loss();
            if l.is_err() {
                self.with_elem(t, flat, |v| *v = x0)?;
            }
            out.l[i] = l?;
        }
        self.with_elem(t, flat, |v| *v = x0)?;
        Ok(())
    }

    /// Sets tensor `t` to `base + step · dir` (`step = 0` restores `base`).
    pub fn set_along(
        &mut self,
        t: TensorRef,
        base: &ArrayD<f64>,
        dir: &Direction,
        step: f64,
    ) -> Result<()> {
        let assign = |mut v: ArrayViewMutD<'_, f64>| {
            if v.shape() != base.shape() {
                return false;
            }
            if step == 0.0 {
                v.assign(base);
            } else {
                dir.add_scaled(base, step, v);
            }
            true
        };
        let ok = match t {
            TensorRef::Input(k) => self.inputs.get_mut(k).map(|a| assign(a.view_mut())),
            TensorRef::Param(k) => {
                let mut ps = self.layer.params();
                ps.get_mut(k).map(|p| assign(p.value.view_mut()))
            }
        };
        if ok == Some(true) {
            Ok(())
        } else {
            Err(self.missing(t))
        }
    }

    /// Evaluates the points `which` (as in [`Probe::points`]) along
    /// direction `dir` (unit length) from `base`, with step `h · scale`
    /// (`scale = max(1, max|base|)`, computed once by the caller), into
    /// `out`. Restores `base` exactly.
    #[allow(clippy::too_many_arguments)]
    pub fn points_along(
        &mut self,
        t: TensorRef,
        base: &ArrayD<f64>,
        scale: f64,
        dir: &Direction,
        h: f64,
        which: &[usize],
        out: &mut Sample,
    ) -> Result<()> {
        let step = h * scale;
        let steps = [step, -step, step / 2.0, -step / 2.0];
        for &i in which {
            let st = steps[i];
            out.s[i] = st.abs();
            self.set_along(t, base, dir, st)?;
            let l = self.loss();
            if l.is_err() {
                self.set_along(t, base, dir, 0.0)?;
            }
            out.l[i] = l?;
        }
        self.set_along(t, base, dir, 0.0)?;
        Ok(())
    }
}

/// Round-off factor: `L` carries ≈ 16 eps · Σ|r ⊙ y| of error, and the
/// Richardson value combines four evaluations over steps of `h/2`, which
/// multiplies it by about 3/h; 64 leaves a margin.
const NOISE_FACTOR: f64 = 64.0;

/// Kinks show as a slope spread above this share of the element's slope scale.
const KINK_REL: f64 = 1e-6;

/// The numeric side of one element.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Numeric {
    /// Richardson-extrapolated central difference.
    pub value: f64,
    /// Its error estimate `|D(h) − D(h/2)|`.
    pub est: f64,
    /// Round-off bound.
    pub noise: f64,
    /// A kink lies within the stencil.
    pub kink: bool,
    /// Smallest one-sided derivative.
    pub lo: f64,
    /// Largest one-sided derivative.
    pub hi: f64,
    /// Curvature error of the one-sided differences, `≈ |f''|·h/2`: the
    /// smaller slope change on the two sides of the stencil (at most one side
    /// holds the kink).
    pub curv: f64,
    /// All evaluations were finite.
    pub finite: bool,
    /// Both stencils were evaluated (false: settled by the outer pair).
    pub both_stencils: bool,
}

/// Stage 1 of [`Richardson::OnDemand`](super::config::Richardson::OnDemand)
/// settles an element only if its one-sided slopes `F(h)`, `B(h)` differ by
/// at most this share of the slope scale. For a smooth function
/// `F − B = f''·h` (1e-4 relative at the default `h` and unit curvature), so
/// smooth elements pass; a kink in the stencil whose jump exceeds 1 % of the
/// slope always goes on to the five-point analysis (and is counted there).
const SCREEN_KINK_REL: f64 = 1e-2;

impl Sample {
    /// A sample with no point evaluated yet (every value NaN).
    pub const UNEVALUATED: Sample = Sample {
        l: [f64::NAN; 4],
        s: [f64::NAN; 4],
    };

    /// `D(h/2)`, used for the tensor's scale.
    pub fn half_central(&self) -> f64 {
        (self.l[2] - self.l[3]) / (self.s[2] + self.s[3])
    }

    /// `D(h)`, the central difference over the outer pair.
    pub fn central(&self) -> f64 {
        (self.l[0] - self.l[1]) / (self.s[0] + self.s[1])
    }

    /// Stage 1 of [`Richardson::OnDemand`](super::config::Richardson::OnDemand):
    /// given only the outer pair, settles the element if that already
    /// decides it beyond doubt, i.e. all of
    /// - every value is finite;
    /// - the one-sided slopes agree to [`SCREEN_KINK_REL`] (no kink of any
    ///   consequence within `±h`);
    /// - `|a − D(h)|` is at most half of what the full analysis would allow
    ///   without its error estimate: `(atol + rtol·max(|a|, |D|) + noise) / 2`,
    ///   `noise` the round-off bound of the Richardson value.
    ///
    /// The full analysis compares the Richardson value `R` with tolerance
    /// `base + est + noise`, where `est = |D(h) − D(h/2)|` and
    /// `|R − D(h)| = 4·est/3`. `est` is `D(h)`'s truncation error `f'''·h²/6`
    /// (≈ 2e-9 relative at the default `h` for a unit third derivative) plus
    /// the round-off of two central differences, which `noise` bounds with a
    /// wide margin; so an element settled here passes the full analysis too,
    /// and one that fails there cannot be settled here. `None`: evaluate the
    /// inner pair and [`analyse`](Sample::analyse).
    pub fn screen(&self, l0: f64, labs: f64, scale: f64, a: f64, tol: &Tol) -> Option<Numeric> {
        let [lp, lm, ..] = self.l;
        let [sp, sm, ..] = self.s;
        if !(lp.is_finite() && lm.is_finite() && l0.is_finite() && a.is_finite()) {
            return None;
        }
        let d = self.central();
        let h = 0.5 * (sp + sm);
        let noise = NOISE_FACTOR * f64::EPSILON * (labs + l0.abs()) / h;
        let base = tol.atol + tol.rtol * a.abs().max(d.abs());
        let f1 = (lp - l0) / sp;
        let b1 = (l0 - lm) / sm;
        let slope_scale = f1.abs().max(b1.abs()).max(1e-3 * scale);
        let smooth = (f1 - b1).abs() <= 16.0 * noise + SCREEN_KINK_REL * slope_scale;
        let settled = d.is_finite() && smooth && (a - d).abs() <= 0.5 * (base + noise);
        settled.then_some(Numeric {
            value: d,
            est: 0.0,
            noise,
            kink: false,
            lo: f1.min(b1),
            hi: f1.max(b1),
            curv: (f1 - b1).abs(),
            finite: true,
            both_stencils: false,
        })
    }

    /// Analyses the sample given `L(x)` (`l0`), the round-off scale
    /// `Σ|r ⊙ y|` (`labs`) and the tensor's gradient scale (`scale`).
    pub fn analyse(&self, l0: f64, labs: f64, scale: f64) -> Numeric {
        let [lp, lm, lp2, lm2] = self.l;
        let [sp, sm, sp2, sm2] = self.s;
        let finite = self.l.iter().all(|v| v.is_finite()) && l0.is_finite();
        let d1 = (lp - lm) / (sp + sm);
        let d2 = (lp2 - lm2) / (sp2 + sm2);
        let value = (4.0 * d2 - d1) / 3.0;
        let est = (d1 - d2).abs();
        let h = 0.5 * (sp + sm);
        let noise = NOISE_FACTOR * f64::EPSILON * (labs + l0.abs()) / h;
        // Slopes over the four half-steps, left to right.
        let sd = (lm2 - lm) / (sm - sm2);
        let sc = (l0 - lm2) / sm2;
        let sa = (lp2 - l0) / sp2;
        let sb = (lp - lp2) / (sp - sp2);
        let diffs = [sc - sd, sa - sc, sb - sa];
        let spread = diffs.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v))
            - diffs.iter().fold(f64::INFINITY, |m, &v| m.min(v));
        let f1 = (lp - l0) / sp;
        let b1 = (l0 - lm) / sm;
        let one_sided = [f1, b1, sa, sc];
        let lo = one_sided.iter().fold(f64::INFINITY, |m, &v| m.min(v));
        let hi = one_sided.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        let slope_scale = lo.abs().max(hi.abs()).max(1e-3 * scale);
        let kink = finite && spread > 16.0 * noise + KINK_REL * slope_scale;
        let curv = diffs[0].abs().min(diffs[2].abs());
        Numeric {
            value,
            est,
            noise,
            kink,
            lo,
            hi,
            curv,
            finite,
            both_stencils: true,
        }
    }
}

/// Tolerances in effect for one tensor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tol {
    pub atol: f64,
    pub rtol: f64,
    pub rel_floor: f64,
    pub kinks: KinkHandling,
}

/// The verdict on one element.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    pub abs_err: f64,
    pub rel_err: f64,
    pub allowed: f64,
    pub pass: bool,
    pub at_kink: bool,
    pub unreliable: bool,
    pub non_finite: bool,
}

/// An element's numeric value is flagged unreliable when its own error
/// estimate exceeds this share of its magnitude (it could not resolve a bug of
/// that size).
const UNRELIABLE_REL: f64 = 1e-3;

/// Compares analytic `a` with the numeric side `n`.
pub(crate) fn compare(a: f64, n: &Numeric, tol: &Tol) -> Outcome {
    if !a.is_finite() || !n.finite || !n.value.is_finite() {
        return Outcome {
            abs_err: f64::INFINITY,
            rel_err: f64::INFINITY,
            allowed: 0.0,
            pass: false,
            at_kink: false,
            unreliable: !n.finite,
            non_finite: true,
        };
    }
    let rel = |err: f64, mag: f64| {
        let d = mag.max(tol.rel_floor);
        if d > 0.0 {
            err / d
        } else if err == 0.0 {
            0.0
        } else {
            f64::INFINITY
        }
    };
    if n.kink && tol.kinks == KinkHandling::Subgradient {
        let mag = n.lo.abs().max(n.hi.abs());
        let allowed = tol.atol + tol.rtol * mag + n.noise + n.curv;
        let abs_err = if a < n.lo {
            n.lo - a
        } else if a > n.hi {
            a - n.hi
        } else {
            0.0
        };
        return Outcome {
            abs_err,
            rel_err: rel(abs_err, mag.max(a.abs())),
            allowed,
            pass: abs_err <= allowed,
            at_kink: true,
            unreliable: false,
            non_finite: false,
        };
    }
    let mag = a.abs().max(n.value.abs());
    let abs_err = (a - n.value).abs();
    let allowed = tol.atol + tol.rtol * mag + n.est + n.noise;
    Outcome {
        abs_err,
        rel_err: rel(abs_err, mag),
        allowed,
        pass: abs_err <= allowed,
        at_kink: false,
        unreliable: n.est + n.noise > (UNRELIABLE_REL * n.value.abs()).max(tol.atol),
        non_finite: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_of(f: impl Fn(f64) -> f64, x: f64, h: f64) -> (Sample, f64) {
        let step = h * x.abs().max(1.0);
        let pts = [x + step, x - step, x + step / 2.0, x - step / 2.0];
        let mut s = Sample::default();
        for (i, &p) in pts.iter().enumerate() {
            s.l[i] = f(p);
            s.s[i] = (p - x).abs();
        }
        (s, f(x))
    }

    #[test]
    fn smooth_function_is_accurate_and_not_a_kink() {
        for &x in &[-1.7, -0.3, 0.0, 0.4, 2.5] {
            let (s, l0) = sample_of(|t: f64| t.sin() * 3.0 + t.exp(), x, 1e-4);
            let n = s.analyse(l0, l0.abs(), 1.0);
            let exact = 3.0 * x.cos() + x.exp();
            assert!(
                (n.value - exact).abs() < 1e-9,
                "x={x}: {} vs {exact}",
                n.value
            );
            assert!(!n.kink, "x={x} flagged as kink");
            assert!(n.est < 1e-6 && n.est > 0.0, "x={x}: est {}", n.est);
        }
    }

    #[test]
    fn relu_kink_anywhere_in_the_stencil_is_detected() {
        let h = 1e-4;
        for &x in &[0.0, 0.3e-4, -0.3e-4, 0.5e-4, -0.7e-4, 0.9e-4] {
            let (s, l0) = sample_of(|t: f64| 2.0 * t.max(0.0) + 0.5 * t, x, h);
            let n = s.analyse(l0, 1.0, 1.0);
            assert!(n.kink, "x={x}: not flagged");
            assert!(n.lo <= 0.5 + 1e-9 && n.hi >= 2.5 - 1e-9 || x != 0.0);
            // The correct derivative at x (or a subgradient at 0) is accepted.
            let a = if x > 0.0 { 2.5 } else { 0.5 };
            let tol = Tol {
                atol: 1e-9,
                rtol: 1e-6,
                rel_floor: 1e-3,
                kinks: KinkHandling::Subgradient,
            };
            assert!(compare(a, &n, &tol).pass, "x={x}: {n:?}");
            // A value outside the one-sided range is not.
            assert!(!compare(3.0, &n, &tol).pass);
            assert!(!compare(-1.0, &n, &tol).pass);
        }
    }

    #[test]
    fn wrong_value_fails_and_right_one_passes() {
        let (s, l0) = sample_of(|t: f64| (t * 1.3).tanh(), 0.2, 1e-4);
        let n = s.analyse(l0, 1.0, 1.0);
        let exact = 1.3 * (1.0 - (0.26f64).tanh().powi(2));
        let tol = Tol {
            atol: 1e-9,
            rtol: 1e-6,
            rel_floor: 1e-3,
            kinks: KinkHandling::Subgradient,
        };
        assert!(compare(exact, &n, &tol).pass);
        let off = compare(exact * 1.0001, &n, &tol);
        assert!(!off.pass && !off.at_kink);
        assert!((off.rel_err - 1e-4).abs() < 1e-6, "{}", off.rel_err);
    }

    #[test]
    fn non_finite_never_passes() {
        let (s, l0) = sample_of(|t: f64| if t > 0.0 { f64::NAN } else { t }, 0.0, 1e-4);
        let n = s.analyse(l0, 1.0, 1.0);
        let tol = Tol {
            atol: 1.0,
            rtol: 1.0,
            rel_floor: 1.0,
            kinks: KinkHandling::Subgradient,
        };
        let o = compare(1.0, &n, &tol);
        assert!(!o.pass && o.non_finite);
        let (s, l0) = sample_of(|t: f64| t, 0.0, 1e-4);
        let n = s.analyse(l0, 1.0, 1.0);
        assert!(!compare(f64::NAN, &n, &tol).pass);
        assert!(!compare(f64::INFINITY, &n, &tol).pass);
    }

    #[test]
    fn projection_is_compensated() {
        let r = ArrayD::from_elem(IxDyn(&[3]), 1.0);
        let y = ndarray::arr1(&[1e16, 1.0, -1e16]).into_dyn();
        let (l, abs) = project(&r, y.view());
        assert_eq!(l, 1.0);
        assert_eq!(abs, 2e16 + 1.0);
        let (_, floor) = project(&r, ndarray::arr1(&[1e-3, 0.0, -2.0]).into_dyn().view());
        assert_eq!(floor, 4.0);
    }
}
