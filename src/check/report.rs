//! The [`Report`] of a check: per tensor and per contract, with an aligned
//! table for humans (`Display`) and JSON for machines (`serde::Serialize`;
//! non-finite numbers serialise as `null`).

use super::config::CheckConfig;
use super::diagnose::Diagnosis;
use crate::error::Shape;
use serde::Serialize;
use std::fmt;

/// Whether a tensor is a differentiable input or a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TensorKind {
    /// Differentiable input number `index` of `forward`.
    Input {
        /// Position among the inputs.
        index: usize,
    },
    /// A parameter from [`Layer::params`](crate::Layer::params).
    Param,
}

/// How a tensor was actually checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckedMode {
    /// Every element by central differences.
    Full,
    /// Along random directions only (all agreed).
    Fast {
        /// Directions compared.
        directions: usize,
    },
    /// The fast check disagreed (or hit kinks), so every element was checked.
    FastThenFull {
        /// Directions compared first.
        directions: usize,
    },
}

impl fmt::Display for CheckedMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckedMode::Full => write!(f, "full"),
            CheckedMode::Fast { directions } => write!(f, "fast({directions})"),
            CheckedMode::FastThenFull { directions } => write!(f, "fast({directions})>full"),
        }
    }
}

/// One compared element (or, in fast mode, one direction).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ElementReport {
    /// Multi-index of the element (empty for a direction).
    pub index: Vec<usize>,
    /// Which random direction, in fast mode.
    pub direction: Option<usize>,
    /// Analytic value (for a direction: `⟨∇L, v⟩`).
    pub analytic: f64,
    /// Numeric value (Richardson-extrapolated central difference).
    pub numeric: f64,
    /// `|analytic − numeric|` (at a kink: distance to the one-sided range).
    pub abs_err: f64,
    /// `abs_err / max(|analytic|, |numeric|, atol/rtol)`.
    pub rel_err: f64,
    /// The element's tolerance (widened by its error estimate).
    pub allowed: f64,
    /// The element was at a kink.
    pub at_kink: bool,
    /// The numeric value's own error estimate is large.
    pub unreliable: bool,
}

impl ElementReport {
    /// `[1, 2]`, or `dir 3` for a direction.
    pub fn location(&self) -> String {
        match self.direction {
            Some(d) => format!("dir {d}"),
            None => format!("{:?}", self.index),
        }
    }
}

/// The result for one input or parameter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorReport {
    /// `"input 0"` or the parameter's name.
    pub name: String,
    /// Input or parameter.
    pub kind: TensorKind,
    /// Its shape.
    pub shape: Vec<usize>,
    /// How it was checked.
    pub mode: CheckedMode,
    /// Elements compared (directions in fast mode).
    pub checked: usize,
    /// Elements (or directions) at a kink, checked as subgradients.
    pub at_kink: usize,
    /// Elements whose numeric value was flagged unreliable.
    pub unreliable: usize,
    /// Elements (directions) evaluated with both stencils `x ± h` and
    /// `x ± h/2`; the rest were settled by the outer pair alone (see
    /// [`Richardson`](super::Richardson)).
    pub both_stencils: usize,
    /// Elements outside tolerance.
    pub failed: usize,
    /// Elements with NaN/inf on either side.
    pub non_finite: usize,
    /// Largest absolute error.
    pub max_abs_err: f64,
    /// Largest relative error.
    pub max_rel_err: f64,
    /// The element with the largest error relative to its tolerance.
    pub worst: Option<ElementReport>,
    /// The worst failing elements (at most [`CheckConfig::worst_listed`]).
    pub worst_failing: Vec<ElementReport>,
    /// Verdict.
    pub passed: bool,
    /// The likely bug, for a failing tensor.
    pub diagnosis: Option<Diagnosis>,
}

/// One contract check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContractResult {
    /// What was checked, e.g. `"backward repeatable"`.
    pub name: String,
    /// Verdict.
    pub passed: bool,
    /// What was seen.
    pub detail: String,
}

/// The full result of a gradient check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The layer's [`name`](crate::Layer::name).
    pub layer: String,
    /// `"f64"`, or `"f32 vs f64"` for [`check_f32`](super::check_f32).
    pub precision: String,
    /// The configuration used.
    pub config: CheckConfig,
    /// Shape of the layer's output.
    pub output_shape: Vec<usize>,
    /// Per differentiable input, then per parameter.
    pub tensors: Vec<TensorReport>,
    /// Contract and invariant checks.
    pub contracts: Vec<ContractResult>,
    /// All tensors and contracts passed.
    pub passed: bool,
}

impl Report {
    /// The report of the tensor called `name` (`"input 0"`, `"W"`).
    pub fn tensor(&self, name: &str) -> Option<&TensorReport> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The tensors that failed.
    pub fn failures(&self) -> impl Iterator<Item = &TensorReport> {
        self.tensors.iter().filter(|t| !t.passed)
    }

    /// The contract checks that failed.
    pub fn failed_contracts(&self) -> impl Iterator<Item = &ContractResult> {
        self.contracts.iter().filter(|c| !c.passed)
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a Report always serialises")
    }
}

/// `1.234e-5`-style, `-` for none.
pub(crate) fn sci(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{v:.3e}")
    }
}

/// Writes rows as a table with columns padded to their widest cell; the
/// first `left` columns are left-aligned, the rest right-aligned.
pub(crate) fn table(f: &mut impl fmt::Write, rows: &[Vec<String>], left: usize) -> fmt::Result {
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            if c < left {
                line.push_str(&format!("{cell:<w$}", w = widths[c]));
            } else {
                line.push_str(&format!("{cell:>w$}", w = widths[c]));
            }
        }
        writeln!(f, "{}", line.trim_end())?;
    }
    Ok(())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        writeln!(
            f,
            "gradient check of {} ({}; h {:e}, atol {:e}, rtol {:e}, seed {}): {}",
            self.layer,
            self.precision,
            c.h,
            c.atol,
            c.rtol,
            c.seed,
            if self.passed { "PASSED" } else { "FAILED" }
        )?;
        let mut rows = vec![
            [
                "tensor",
                "shape",
                "mode",
                "checked",
                "kinks",
                "unreliable",
                "max abs err",
                "max rel err",
                "worst at",
                "analytic",
                "numeric",
                "verdict",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
        ];
        for t in &self.tensors {
            let (at, a, n) = match &t.worst {
                Some(w) => (w.location(), sci(w.analytic), sci(w.numeric)),
                None => ("-".into(), "-".into(), "-".into()),
            };
            rows.push(vec![
                t.name.clone(),
                Shape::of(&t.shape).to_string(),
                t.mode.to_string(),
                t.checked.to_string(),
                t.at_kink.to_string(),
                t.unreliable.to_string(),
                sci(t.max_abs_err),
                sci(t.max_rel_err),
                at,
                a,
                n,
                if t.passed { "ok".into() } else { "FAIL".into() },
            ]);
        }
        // Left-align names, shapes and modes; numbers right.
        let mut s = String::new();
        table(&mut s, &rows, 3)?;
        for line in s.lines() {
            writeln!(f, "  {line}")?;
        }
        for t in self.failures() {
            if let Some(d) = &t.diagnosis {
                writeln!(f, "  {}: diagnosis: {d}", t.name)?;
            }
            if !t.worst_failing.is_empty() {
                writeln!(f, "  {}: worst elements:", t.name)?;
                for w in &t.worst_failing {
                    writeln!(
                        f,
                        "    {:<12} analytic {:>11}  numeric {:>11}  abs err {:>10}  allowed {:>10}{}{}",
                        w.location(),
                        sci(w.analytic),
                        sci(w.numeric),
                        sci(w.abs_err),
                        sci(w.allowed),
                        if w.at_kink { "  (at kink)" } else { "" },
                        if w.unreliable {
                            "  (numeric unreliable)"
                        } else {
                            ""
                        },
                    )?;
                }
            }
        }
        if !self.contracts.is_empty() {
            writeln!(f, "  contracts:")?;
            for k in &self.contracts {
                writeln!(
                    f,
                    "    {:<4}  {}: {}",
                    if k.passed { "ok" } else { "FAIL" },
                    k.name,
                    k.detail
                )?;
            }
        }
        Ok(())
    }
}
