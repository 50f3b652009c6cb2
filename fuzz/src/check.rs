//! Fuzz case `check`: the gradient checker on fuzzed layers, inputs and
//! configurations, in `f64` (`check`) and mixed precision (`check_f32`).
//!
//! Besides the crate's layers, the case can build `Probe`, a user layer
//! `y = w * x + x^2 / 2` (parameter `w` in `x`'s shape) whose backward can be
//! made wrong on purpose: NaN or infinity in `dx` or `dw`, an element off by
//! a value, or a NaN in the forward output.
//!
//! Properties asserted:
//! - the checker never panics;
//! - an invalid configuration (h of 0 or NaN, negative tolerances, ...) is
//!   `Error::Config`, and a non-finite input is `Error::NonFinite`, exactly
//!   when `CheckConfig::validate` / the inputs say so;
//! - a report is consistent: `passed` is the conjunction of its tensors and
//!   contracts, and no tensor with a non-finite element passes;
//! - NaN or infinity in a gradient never passes: the tensor fails, counts the
//!   non-finite element, and the printed report says NaN or inf; a NaN in
//!   the forward output never yields a passing report;
//! - an element off by at least 1 fails a full check with tight tolerances,
//!   and a correct `Probe` passes one with sane settings.

use super::common::{Tensor, Val};
use arbitrary::Arbitrary;
use gradverify::check::{CheckConfig, Invariant, KinkHandling, Mode, Report, check, check_f32};
use gradverify::{
    Activation, Add, Affine, Error, Float, Layer, MeanSquaredError, Mlp, Mul, Param, Relu, Sigmoid,
    SoftmaxWithLoss,
};
use ndarray::{Array1, Array2, ArrayD, ArrayViewD, IxDyn};
use std::fmt;

/// Largest number of elements over all inputs (the checker evaluates the
/// layer several times per element).
pub const MAX_ELEMENTS: usize = 48;

/// A deliberate mistake in `Probe`'s backward (or forward).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum BugKind {
    /// The gradient element is NaN.
    Nan,
    /// The gradient element is `+inf` (`true`: `-inf`).
    Inf(bool),
    /// The gradient element is off by this value.
    Off(Val),
    /// The forward output element is NaN.
    NanForward,
}

/// Where the mistake goes.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Bug {
    /// In `dw` (else `dx`; ignored for `NanForward`).
    pub in_dw: bool,
    /// Element index, modulo the tensor's length.
    pub at: u8,
    /// What goes wrong.
    pub kind: BugKind,
}

/// The layer under check.
#[derive(Arbitrary, Debug, Clone)]
pub enum LayerSpec {
    /// `Sigmoid`.
    Sigmoid,
    /// `Relu` (kinks at 0).
    Relu,
    /// `Add`.
    Add,
    /// `Mul`.
    Mul,
    /// `Affine` with W `rows % 5 x cols % 5`, b of `cols` values.
    Affine {
        /// Rows (input size).
        rows: u8,
        /// Columns (output size).
        cols: u8,
        /// W's values, cycled.
        w: Vec<Val>,
        /// b's values, cycled.
        b: Vec<Val>,
    },
    /// `SoftmaxWithLoss` (input 1 is labels).
    SoftmaxWithLoss,
    /// `MeanSquaredError`.
    MeanSquaredError,
    /// A small `Mlp` with sizes modulo 5.
    Mlp {
        /// Input size.
        input: u8,
        /// Hidden sizes.
        hidden: Vec<u8>,
        /// Classes.
        output: u8,
        /// Sigmoid (else ReLU).
        sigmoid: bool,
    },
    /// The user layer `Probe`, with `w`'s values and an optional bug.
    Probe {
        /// w's values, cycled to input 0's shape.
        w: Vec<Val>,
        /// The mistake, if any.
        bug: Option<Bug>,
    },
}

/// Fuzzed configuration: `None` keeps the default.
#[derive(Arbitrary, Debug, Clone)]
pub struct Cfg {
    /// Step.
    pub h: Option<Val>,
    /// Absolute tolerance.
    pub atol: Option<Val>,
    /// Relative tolerance.
    pub rtol: Option<Val>,
    /// Projection seed.
    pub seed: u8,
    /// Strict kinks (else subgradient).
    pub strict_kinks: bool,
    /// Largest share of kinks.
    pub max_kink_share: Option<Val>,
    /// 0: Auto, 1: Full, else Fast with `mode - 2` directions (0 invalid).
    pub mode: u8,
    /// Elements above which Auto goes fast.
    pub fast_threshold: Option<u8>,
    /// Directions in Auto's fast mode.
    pub fast_directions: Option<u8>,
    /// Check contracts.
    pub contracts: bool,
    /// f32 tolerance in ulps.
    pub f32_ulps: Option<Val>,
    /// Worst elements listed.
    pub worst_listed: u8,
    /// A rows-sum-to-zero invariant on this input.
    pub invariant: Option<u8>,
}

impl Cfg {
    fn build(&self) -> CheckConfig {
        let mut c = CheckConfig::default();
        let v = |o: &Option<Val>, d: f64| o.map_or(d, |v| v.get::<f64>());
        c.h = v(&self.h, c.h);
        c.atol = v(&self.atol, c.atol);
        c.rtol = v(&self.rtol, c.rtol);
        c.seed = u64::from(self.seed);
        c.kinks = if self.strict_kinks {
            KinkHandling::Strict
        } else {
            KinkHandling::Subgradient
        };
        c.max_kink_share = v(&self.max_kink_share, c.max_kink_share);
        c.mode = match self.mode % 8 {
            0 => Mode::Auto,
            1 => Mode::Full,
            m => Mode::Fast {
                directions: usize::from(m - 2),
            },
        };
        if let Some(t) = self.fast_threshold {
            c.fast_threshold = usize::from(t);
        }
        if let Some(d) = self.fast_directions {
            c.fast_directions = usize::from(d % 8);
        }
        c.contracts = self.contracts;
        c.parallel = false;
        c.f32_ulps = v(&self.f32_ulps, c.f32_ulps);
        c.worst_listed = usize::from(self.worst_listed % 8);
        if let Some(i) = self.invariant {
            c.invariants.push(Invariant::RowsSumToZero {
                input: usize::from(i % 3),
            });
        }
        c
    }
}

/// A whole case.
#[derive(Arbitrary, Clone)]
pub struct Case {
    /// Mixed precision (`check_f32`, an `f32` layer against its `f64` twin).
    pub f32: bool,
    /// The layer.
    pub layer: LayerSpec,
    /// The configuration.
    pub cfg: Cfg,
    /// The inputs (labels included).
    pub inputs: Vec<Tensor>,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "// check case ({})",
            if self.f32 { "check_f32" } else { "check" }
        )?;
        writeln!(f, "layer = {:?}", self.layer)?;
        writeln!(f, "config = {:?}", self.cfg.build())?;
        for (i, t) in self.inputs.iter().enumerate() {
            writeln!(f, "input {i} = {t:?}")?;
        }
        Ok(())
    }
}

/// `y = w * x + x^2 / 2`, element-wise; `dx = (w + x) dout`, `dw = x dout`.
#[derive(Debug, Clone)]
pub struct Probe<F> {
    w: ArrayD<F>,
    dw: Option<ArrayD<F>>,
    x: Option<ArrayD<F>>,
    bug: Option<Bug>,
}

impl<F: Float> Probe<F> {
    fn new(w: ArrayD<F>, bug: Option<Bug>) -> Self {
        Probe {
            w,
            dw: None,
            x: None,
            bug,
        }
    }
}

fn poke<F: Float>(a: &mut ArrayD<F>, at: u8, kind: BugKind) {
    if a.is_empty() {
        return;
    }
    let n = a.len();
    let v = a.iter_mut().nth(usize::from(at) % n).expect("index < len");
    *v = match kind {
        BugKind::Nan | BugKind::NanForward => F::nan(),
        BugKind::Inf(neg) => {
            if neg {
                F::neg_infinity()
            } else {
                F::infinity()
            }
        }
        BugKind::Off(d) => *v + d.get::<F>(),
    };
}

impl<F: Float> Layer<F> for Probe<F> {
    fn name(&self) -> String {
        "Probe".into()
    }

    fn num_inputs(&self) -> usize {
        1
    }

    fn forward(&mut self, inputs: &[ArrayViewD<'_, F>]) -> gradverify::Result<ArrayD<F>> {
        self.x = None;
        if inputs.len() != 1 {
            return Err(Error::InputCount {
                op: "Probe.forward".into(),
                expected: 1,
                got: inputs.len(),
            });
        }
        let x = &inputs[0];
        if x.shape() != self.w.shape() {
            return Err(Error::ShapeMismatch {
                op: "Probe.forward".into(),
                lhs: gradverify::Shape::of(x.shape()),
                rhs: gradverify::Shape::of(self.w.shape()),
                detail: "x must have w's shape".into(),
            });
        }
        let mut y = &self.w * x + &x.mapv(|v| v * v * F::of(0.5));
        if let Some(b) = self.bug
            && let BugKind::NanForward = b.kind
        {
            poke(&mut y, b.at, b.kind);
        }
        self.x = Some(x.to_owned());
        Ok(y)
    }

    fn backward(&mut self, dout: ArrayViewD<'_, F>) -> gradverify::Result<Vec<ArrayD<F>>> {
        let x = self
            .x
            .as_ref()
            .ok_or_else(|| Error::BackwardBeforeForward {
                op: "Probe.backward".into(),
            })?;
        if dout.shape() != x.shape() {
            return Err(Error::DoutShape {
                op: "Probe.backward".into(),
                expected: gradverify::Shape::of(x.shape()),
                got: gradverify::Shape::of(dout.shape()),
            });
        }
        let mut dx = (&self.w + x) * &dout;
        let mut dw = x * &dout;
        if let Some(b) = self.bug
            && !matches!(b.kind, BugKind::NanForward)
        {
            poke(if b.in_dw { &mut dw } else { &mut dx }, b.at, b.kind);
        }
        self.dw = Some(dw);
        Ok(vec![dx])
    }

    fn params(&mut self) -> Vec<Param<'_, F>> {
        vec![Param {
            name: "w".into(),
            value: self.w.view_mut(),
            grad: self.dw.as_ref().map(|g| g.view()),
        }]
    }
}

fn cycled<F: Float>(vals: &[Val], i: usize) -> F {
    if vals.is_empty() {
        F::of(0.5)
    } else {
        vals[i % vals.len()].get()
    }
}

/// Builds the layer in `F`; `None` if its constructor (rightly) refuses.
fn build<F: Float>(spec: &LayerSpec, inputs: &[ArrayD<f64>]) -> Option<Box<dyn Layer<F>>> {
    Some(match spec {
        LayerSpec::Sigmoid => Box::new(Sigmoid::<F>::new()),
        LayerSpec::Relu => Box::new(Relu::<F>::new()),
        LayerSpec::Add => Box::new(Add::<F>::new()),
        LayerSpec::Mul => Box::new(Mul::<F>::new()),
        LayerSpec::SoftmaxWithLoss => Box::new(SoftmaxWithLoss::<F>::new()),
        LayerSpec::MeanSquaredError => Box::new(MeanSquaredError::<F>::new()),
        LayerSpec::Affine { rows, cols, w, b } => {
            let (r, c) = (usize::from(rows % 5), usize::from(cols % 5));
            let wa = Array2::from_shape_fn((r, c), |(i, j)| cycled::<F>(w, i * c + j));
            let ba = Array1::from_shape_fn(c, |i| cycled::<F>(b, i));
            Box::new(Affine::new(wa, ba).ok()?)
        }
        LayerSpec::Mlp {
            input,
            hidden,
            output,
            sigmoid,
        } => {
            if hidden.len() > 2 {
                return None;
            }
            let h: Vec<usize> = hidden.iter().map(|&v| usize::from(v % 5)).collect();
            let act = if *sigmoid {
                Activation::Sigmoid
            } else {
                Activation::Relu
            };
            Box::new(
                Mlp::<F>::new(usize::from(input % 5), &h, usize::from(output % 5), act, 3).ok()?,
            )
        }
        LayerSpec::Probe { w, bug } => {
            let shape = inputs.first().map_or(vec![], |x| x.shape().to_vec());
            let n: usize = shape.iter().product();
            let wa =
                ArrayD::from_shape_vec(IxDyn(&shape), (0..n).map(|i| cycled::<F>(w, i)).collect())
                    .expect("n elements");
            Box::new(Probe::new(wa, *bug))
        }
    })
}

impl Case {
    /// `false` if the case exceeds the caps; such cases are skipped.
    pub fn within_caps(&self) -> bool {
        self.inputs.len() <= 3
            && self.inputs.iter().all(|t| t.within_caps())
            && self
                .inputs
                .iter()
                .map(|t| t.shape().iter().product::<usize>())
                .sum::<usize>()
                <= MAX_ELEMENTS
            && match &self.layer {
                LayerSpec::Affine { w, b, .. } => w.len() <= 32 && b.len() <= 32,
                LayerSpec::Probe { w, .. } => w.len() <= 32,
                LayerSpec::Mlp { hidden, .. } => hidden.len() <= 2,
                _ => true,
            }
    }

    /// Runs the case, panicking on any violated property.
    pub fn run(&self) {
        if !self.within_caps() {
            return;
        }
        let inputs: Vec<ArrayD<f64>> = self.inputs.iter().map(|t| t.array::<f64>()).collect();
        let cfg = self.cfg.build();
        let result = if self.f32 {
            let (Some(mut a), Some(mut b)) = (
                build::<f32>(&self.layer, &inputs),
                build::<f64>(&self.layer, &inputs),
            ) else {
                return;
            };
            check_f32(&mut *a, &mut *b, &inputs, &cfg)
        } else {
            let Some(mut l) = build::<f64>(&self.layer, &inputs) else {
                return;
            };
            check(&mut *l, &inputs, &cfg)
        };
        self.judge(&inputs, &cfg, result);
    }

    fn judge(&self, inputs: &[ArrayD<f64>], cfg: &CheckConfig, result: gradverify::Result<Report>) {
        let valid_cfg = cfg.validate().is_ok();
        let finite = inputs.iter().all(|x| x.iter().all(|v| v.is_finite()));
        let report = match result {
            Err(e) => {
                assert!(!e.to_string().is_empty());
                if !valid_cfg {
                    assert!(matches!(e, Error::Config(_)), "invalid config gave {e}");
                } else if let Error::Config(msg) = &e {
                    panic!("a valid config was refused: {msg}");
                }
                if valid_cfg && !finite && self.right_input_count(inputs) {
                    assert!(
                        matches!(e, Error::NonFinite { .. }),
                        "non-finite input gave {e}"
                    );
                }
                return;
            }
            Ok(r) => r,
        };
        assert!(valid_cfg, "check ran with an invalid config: {cfg:?}");
        assert!(finite, "check ran on non-finite inputs");
        let text = report.to_string();
        let all_tensors = report.tensors.iter().all(|t| t.passed);
        let all_contracts = report.contracts.iter().all(|c| c.passed);
        assert_eq!(
            report.passed,
            all_tensors && all_contracts,
            "report verdict disagrees with its parts:\n{text}"
        );
        for t in &report.tensors {
            if t.non_finite > 0 {
                assert!(
                    !t.passed,
                    "{} passed with {} non-finite element(s):\n{text}",
                    t.name, t.non_finite
                );
            }
            if t.passed {
                assert!(
                    t.max_abs_err.is_finite() && t.max_rel_err.is_finite(),
                    "{} passed with errors {} / {}:\n{text}",
                    t.name,
                    t.max_abs_err,
                    t.max_rel_err
                );
            }
        }
        if let LayerSpec::Probe { bug, .. } = &self.layer {
            self.judge_probe(inputs, cfg, &report, *bug, &text);
        }
    }

    fn right_input_count(&self, inputs: &[ArrayD<f64>]) -> bool {
        let want = match &self.layer {
            LayerSpec::Add
            | LayerSpec::Mul
            | LayerSpec::SoftmaxWithLoss
            | LayerSpec::MeanSquaredError
            | LayerSpec::Mlp { .. } => 2,
            _ => 1,
        };
        inputs.len() == want
    }

    fn judge_probe(
        &self,
        inputs: &[ArrayD<f64>],
        cfg: &CheckConfig,
        report: &Report,
        bug: Option<Bug>,
        text: &str,
    ) {
        let x = &inputs[0];
        if x.is_empty() {
            return;
        }
        let name = |b: &Bug| if b.in_dw { "w" } else { "input 0" };
        // Moderate: finite, at most 4, and either 0 or at least 1e-3 in
        // magnitude. (On tiny values, e.g. subnormal x, the loss changes by
        // less than its rounding and the checker rightly calls the numeric
        // derivative meaningless instead of passing it.)
        let moderate = |v: f64| v.is_finite() && v.abs() <= 4.0 && (v == 0.0 || v.abs() >= 1e-3);
        let w_moderate = match &self.layer {
            LayerSpec::Probe { w, .. } => w.iter().all(|v| moderate(v.get::<f64>())),
            _ => false,
        };
        let x_moderate = x.iter().all(|&v| moderate(v));
        match bug {
            Some(b) if matches!(b.kind, BugKind::NanForward) => {
                assert!(!report.passed, "a NaN forward output passed:\n{text}");
            }
            Some(b) if matches!(b.kind, BugKind::Nan | BugKind::Inf(_)) => {
                let t = report
                    .tensor(name(&b))
                    .unwrap_or_else(|| panic!("no report for {}:\n{text}", name(&b)));
                assert!(
                    !t.passed,
                    "{} with a non-finite gradient passed:\n{text}",
                    t.name
                );
                assert!(
                    !report.passed,
                    "report with a non-finite gradient passed:\n{text}"
                );
                assert!(
                    t.non_finite > 0,
                    "{}: non-finite gradient not counted:\n{text}",
                    t.name
                );
                assert!(
                    text.contains("NaN") || text.contains("inf"),
                    "the printed report does not say NaN/inf:\n{text}"
                );
            }
            Some(b) => {
                let BugKind::Off(d) = b.kind else {
                    unreachable!()
                };
                let d = d.get::<f64>();
                let w_ok = w_moderate && x_moderate;
                if d.is_finite()
                    && d.abs() >= 1.0
                    && d.abs() <= 1e6
                    && w_ok
                    && matches!(cfg.mode, Mode::Full)
                    && cfg.atol <= 1e-3
                    && cfg.rtol <= 1e-3
                    && (1e-6..=1e-2).contains(&cfg.h)
                {
                    let t = report.tensor(name(&b)).expect("tensor reported");
                    assert!(!t.passed, "{} off by {d} passed:\n{text}", t.name);
                }
            }
            None => {
                let sane = (1e-6..=1e-2).contains(&cfg.h)
                    && cfg.atol >= 1e-9
                    && cfg.rtol >= 1e-6
                    && cfg.invariants.is_empty()
                    && !self.f32
                    && w_moderate
                    && x_moderate;
                if sane {
                    assert!(report.passed, "a correct Probe failed:\n{text}");
                }
            }
        }
    }
}
