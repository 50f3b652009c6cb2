//! The check's driver: the analytic phase (forward, backward, contracts) on
//! the layer in its own float type, then the numeric phase in f64, serial or
//! split over rayon's threads (the caller's layer and one clone of the layer
//! and the inputs per further chunk of work).

use super::config::{CheckConfig, KinkHandling, Mode, Richardson};
use super::contract::{self, Analytic};
use super::diagnose::{Diagnosis, Evidence, diagnose, unravel};
use super::fast;
use super::numeric::{
    Numeric, Outcome, Probe, STENCIL_ALL, STENCIL_INNER, STENCIL_OUTER, Sample, TensorRef, Tol,
    compare, project,
};
use super::report::{CheckedMode, ContractResult, ElementReport, Report, TensorKind, TensorReport};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::layer::Layer;
use ndarray::ArrayD;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

/// Runs `g(probe, i)` for `i in 0..n`, serially or in parallel.
pub(crate) trait Mapper<L: ?Sized> {
    /// **Errors** with the first error any evaluation returned.
    fn map<T: Send>(
        &mut self,
        layer: &mut L,
        inputs: &[ArrayD<f64>],
        r: &ArrayD<f64>,
        n: usize,
        g: &(dyn Fn(&mut Probe<'_, L>, usize) -> Result<T> + Sync),
    ) -> Result<Vec<T>>;

    /// Runs `f(i)` for `i in 0..n`, work that touches no layer, serially or
    /// in parallel like [`Mapper::map`].
    fn map_pure<T: Send>(&self, n: usize, f: &(dyn Fn(usize) -> T + Sync)) -> Vec<T>;
}

/// Evaluates on the caller's layer, in order.
pub(crate) struct Serial;

impl<L: Layer<f64> + ?Sized> Mapper<L> for Serial {
    fn map<T: Send>(
        &mut self,
        layer: &mut L,
        inputs: &[ArrayD<f64>],
        r: &ArrayD<f64>,
        n: usize,
        g: &(dyn Fn(&mut Probe<'_, L>, usize) -> Result<T> + Sync),
    ) -> Result<Vec<T>> {
        let mut p = Probe {
            layer,
            inputs: inputs.to_vec(),
            r,
        };
        (0..n).map(|i| g(&mut p, i)).collect()
    }

    fn map_pure<T: Send>(&self, n: usize, f: &(dyn Fn(usize) -> T + Sync)) -> Vec<T> {
        (0..n).map(f).collect()
    }
}

/// Below this many items [`Parallel`] evaluates serially. Measured on the
/// 2-core machine with the fast check of the tutorial's MLP (36 directions,
/// 72 evaluations of 25–35 µs): two threads took longer than one, since
/// cloning the model (1.4 MB of fresh pages) cost 0.7 ms and the two
/// evaluation streams, each reading the 627 KB first-layer weights from the
/// shared L3 cache, slowed each other by 20–60 %.
const MIN_PARALLEL: usize = 64;

/// Splits `0..n` into interleaved chunks (item `i` in chunk `i mod c`, so
/// neighbouring items of similar cost are spread), between one and four per
/// thread (one per 16 items, so a few costly items are not outweighed by the
/// layer clones). The first chunk runs on the caller's layer, every other
/// one on its own clone of the layer and inputs. Results are assembled in
/// index order, so the outcome is identical to [`Serial`]'s. Fewer than
/// [`MIN_PARALLEL`] items are evaluated serially.
pub(crate) struct Parallel;

impl<L: Layer<f64> + Clone + Send> Mapper<L> for Parallel {
    fn map<T: Send>(
        &mut self,
        layer: &mut L,
        inputs: &[ArrayD<f64>],
        r: &ArrayD<f64>,
        n: usize,
        g: &(dyn Fn(&mut Probe<'_, L>, usize) -> Result<T> + Sync),
    ) -> Result<Vec<T>> {
        let threads = rayon::current_num_threads();
        if threads < 2 || n < MIN_PARALLEL {
            return Serial.map(layer, inputs, r, n, g);
        }
        let chunks = (n / 16).clamp(threads, threads * 4);
        let mut clones: Vec<L> = (1..chunks).map(|_| layer.clone()).collect();
        let locals: Vec<&mut L> = std::iter::once(layer).chain(clones.iter_mut()).collect();
        let parts: Vec<Result<Vec<T>>> = locals
            .into_par_iter()
            .enumerate()
            .map(|(c, local)| {
                let mut p = Probe {
                    layer: local,
                    inputs: inputs.to_vec(),
                    r,
                };
                (c..n).step_by(chunks).map(|i| g(&mut p, i)).collect()
            })
            .collect();
        let mut parts: Vec<std::vec::IntoIter<T>> = parts
            .into_iter()
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .map(Vec::into_iter)
            .collect();
        Ok((0..n)
            .map(|i| {
                parts[i % chunks]
                    .next()
                    .expect("chunk i mod c holds item i")
            })
            .collect())
    }

    fn map_pure<T: Send>(&self, n: usize, f: &(dyn Fn(usize) -> T + Sync)) -> Vec<T> {
        if n < MIN_PARALLEL {
            return (0..n).map(f).collect();
        }
        (0..n).into_par_iter().map(f).collect()
    }
}

/// How tolerances are derived.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TolModel {
    /// The configured `atol`/`rtol`.
    F64,
    /// Analytic values from an f32 backward: `rtol + ulps·eps32` relative and
    /// `atol + ulps·eps32·S` absolute, `S` the largest gradient of any tensor
    /// of the layer, since f32 rounding errors scale with the magnitudes
    /// being summed, not with each (possibly cancelled) result.
    F32 { ulps: f64 },
}

impl TolModel {
    pub(crate) fn tol(&self, cfg: &CheckConfig, scale: f64) -> Tol {
        let (atol, rtol) = match self {
            TolModel::F64 => (cfg.atol, cfg.rtol),
            TolModel::F32 { ulps } => {
                let e = ulps * f32::EPSILON as f64;
                (cfg.atol + e * scale, cfg.rtol + e)
            }
        };
        Tol {
            atol,
            rtol,
            rel_floor: if rtol > 0.0 { atol / rtol } else { 0.0 },
            kinks: cfg.kinks,
        }
    }
}

/// What the analytic phase hands to the numeric phase.
pub(crate) struct AnalyticPhase {
    pub layer: String,
    pub out_shape: Vec<usize>,
    /// The projection, exactly representable in the layer's float type.
    pub r: ArrayD<f64>,
    pub specs: Vec<TensorSpec>,
    pub contracts: Vec<ContractResult>,
    pub num_differentiable: usize,
}

/// One tensor to check.
pub(crate) struct TensorSpec {
    pub name: String,
    pub kind: TensorKind,
    pub tref: TensorRef,
    pub shape: Vec<usize>,
    /// The analytic gradient, or why there is none usable.
    pub analytic: std::result::Result<ArrayD<f64>, String>,
}

/// Seeded projection weights: random sign times a magnitude in `[0.5, 1.5)`,
/// so every output element carries weight and none is near zero.
pub(crate) fn projection(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    ArrayD::from_shape_simple_fn(shape, || {
        let m: f64 = rng.random_range(0.5..1.5);
        if rng.random_bool(0.5) { m } else { -m }
    })
}

fn validate_inputs<F: Float, L: Layer<F> + ?Sized>(
    layer: &L,
    inputs: &[ArrayD<F>],
) -> Result<usize> {
    if inputs.len() != layer.num_inputs() {
        return Err(Error::InputCount {
            op: format!("check({})", layer.name()),
            expected: layer.num_inputs(),
            got: inputs.len(),
        });
    }
    let nd = layer.num_differentiable();
    if nd > layer.num_inputs() {
        return Err(Error::Config(format!(
            "check: {} reports {nd} differentiable inputs but takes {}",
            layer.name(),
            layer.num_inputs()
        )));
    }
    for (k, x) in inputs.iter().enumerate() {
        if !x.fold(true, |ok, v| ok && v.is_finite()) {
            return Err(Error::NonFinite {
                op: format!("check({})", layer.name()),
                what: format!("input {k}"),
            });
        }
    }
    Ok(nd)
}

fn to_f64<F: Float>(a: &ArrayD<F>) -> ArrayD<f64> {
    a.mapv(|v| v.f64())
}

/// [`to_f64`] by value: an f64 array is moved, not copied.
fn into_f64<F: Float>(a: ArrayD<F>) -> ArrayD<f64> {
    let any: Box<dyn std::any::Any> = Box::new(a);
    match any.downcast::<ArrayD<f64>>() {
        Ok(a) => *a,
        Err(any) => to_f64(
            any.downcast_ref::<ArrayD<F>>()
                .expect("the box holds the ArrayD<F> just put in"),
        ),
    }
}

/// Forward, projection, backward and the contract checks, in `F`.
pub(crate) fn analytic_phase<F: Float, L: Layer<F> + ?Sized>(
    layer: &mut L,
    inputs: &[ArrayD<F>],
    cfg: &CheckConfig,
) -> Result<AnalyticPhase> {
    cfg.validate()?;
    let nd = validate_inputs(layer, inputs)?;
    let y = layer.forward(&contract::views(inputs))?;
    let out_shape = y.shape().to_vec();
    let r64 = projection(&out_shape, cfg.seed);
    let r_f: ArrayD<F> = r64.mapv(F::of);
    let r = to_f64(&r_f);
    let reference: Analytic<F> = contract::backward(layer, &r_f)?;
    let mut contracts = vec![contract::shapes(&reference, inputs, nd)];
    if cfg.contracts {
        contracts.extend(contract::behaviour(
            layer, inputs, &r_f, &reference, cfg.seed,
        )?);
    }
    contracts.extend(contract::invariants(&reference, &cfg.invariants, cfg.atol));

    let mut specs = Vec::new();
    let mut grads = reference.grads.into_iter();
    for (k, input) in inputs.iter().enumerate().take(nd) {
        let shape = input.shape().to_vec();
        let analytic = match grads.next() {
            None => Err("backward returned no gradient for this input".to_string()),
            Some(g) if g.shape() != shape.as_slice() => Err(format!(
                "gradient has shape {:?}, input has {:?}",
                g.shape(),
                shape
            )),
            Some(g) => Ok(into_f64(g)),
        };
        specs.push(TensorSpec {
            name: format!("input {k}"),
            kind: TensorKind::Input { index: k },
            tref: TensorRef::Input(k),
            shape,
            analytic,
        });
    }
    for (k, p) in reference.params.into_iter().enumerate() {
        let shape = p.shape;
        let analytic = match p.grad {
            None => Err("no gradient stored after backward".to_string()),
            Some(g) if g.shape() != shape.as_slice() => Err(format!(
                "gradient has shape {:?}, value has {:?}",
                g.shape(),
                shape
            )),
            Some(g) => Ok(into_f64(g)),
        };
        specs.push(TensorSpec {
            name: p.name,
            kind: TensorKind::Param,
            tref: TensorRef::Param(k),
            shape,
            analytic,
        });
    }
    Ok(AnalyticPhase {
        layer: layer.name(),
        out_shape,
        r,
        specs,
        contracts,
        num_differentiable: nd,
    })
}

/// Everything the numeric phase of one tensor needs.
pub(crate) struct Ctx<'a> {
    pub cfg: &'a CheckConfig,
    pub inputs: &'a [ArrayD<f64>],
    pub r: &'a ArrayD<f64>,
    pub l0: f64,
    pub labs: f64,
    pub batch: Option<usize>,
    pub model: TolModel,
    pub out_shape: &'a [usize],
    /// Largest finite analytic gradient over all tensors: the f32 tolerance
    /// scale, since an f32 gradient element's rounding error follows the
    /// magnitudes of the terms summed into it (a bias gradient that cancels
    /// over the batch to 1e-6 still carries errors from terms near 1e-3).
    pub global_scale: f64,
}

/// The numeric phase over all tensors, then the report.
pub(crate) fn numeric_phase<L: Layer<f64> + ?Sized, M: Mapper<L>>(
    layer: &mut L,
    mapper: &mut M,
    inputs: Vec<ArrayD<f64>>,
    phase: AnalyticPhase,
    cfg: &CheckConfig,
    model: TolModel,
    precision: &str,
) -> Result<Report> {
    let inputs: Vec<ArrayD<f64>> = inputs
        .into_iter()
        .map(|a| a.as_standard_layout().into_owned())
        .collect();
    let y = layer.forward(&contract::views(&inputs))?;
    if y.shape() != phase.out_shape.as_slice() {
        return Err(Error::ShapeMismatch {
            op: "check".into(),
            lhs: crate::Shape::of(&phase.out_shape),
            rhs: crate::Shape::of(y.shape()),
            detail: "the f64 evaluation's output shape differs from the analytic one".into(),
        });
    }
    let (l0, labs) = project(&phase.r, y.view());
    let global_scale = phase
        .specs
        .iter()
        .filter_map(|s| s.analytic.as_ref().ok())
        .map(|a| {
            a.fold(
                0.0f64,
                |m, v| if v.is_finite() { m.max(v.abs()) } else { m },
            )
        })
        .fold(0.0f64, f64::max);
    // Floor: f32 rounding of O(1) intermediates (a softmax probability near
    // 1 in `y − t`) leaves absolute errors ~eps32 even when every gradient is
    // tiny, so the scale is at least 1 % of the projection's magnitude.
    let r_max = phase.r.fold(0.0f64, |m, v| m.max(v.abs()));
    let global_scale = global_scale.max(1e-2 * r_max);
    let batch = inputs
        .first()
        .filter(|x| x.ndim() >= 2)
        .map(|x| x.shape()[0]);
    let ctx = Ctx {
        cfg,
        inputs: &inputs,
        r: &phase.r,
        l0,
        labs,
        batch,
        model,
        out_shape: &phase.out_shape,
        global_scale,
    };
    // Fast mode first, for all its tensors at once; the full check for the
    // rest and for the tensors whose directions disagree.
    let directions: Vec<Option<usize>> = phase
        .specs
        .iter()
        .map(|s| fast_directions(cfg, s.shape.iter().product()))
        .collect();
    let todo: Vec<(&TensorSpec, usize)> = phase
        .specs
        .iter()
        .zip(&directions)
        .filter_map(|(s, k)| Some((s, (*k)?)).filter(|(s, _)| s.analytic.is_ok()))
        .collect();
    let mut fast = fast::check_tensors_fast(layer, mapper, &ctx, &todo)?.into_iter();
    let mut tensors = Vec::new();
    for (spec, k) in phase.specs.iter().zip(&directions) {
        let report = match (&spec.analytic, k) {
            (Ok(analytic), Some(k)) => match fast.next().expect("one result per fast tensor") {
                Some(report) => report,
                None => {
                    let mut full = full_tensor(layer, mapper, &ctx, spec, analytic)?;
                    full.mode = CheckedMode::FastThenFull { directions: *k };
                    full
                }
            },
            (Ok(analytic), None) => full_tensor(layer, mapper, &ctx, spec, analytic)?,
            (Err(detail), _) => unusable(spec, detail),
        };
        tensors.push(report);
    }
    let _ = phase.num_differentiable;
    let passed = tensors.iter().all(|t| t.passed) && phase.contracts.iter().all(|c| c.passed);
    Ok(Report {
        layer: phase.layer,
        precision: precision.to_string(),
        config: cfg.clone(),
        output_shape: phase.out_shape,
        tensors,
        contracts: phase.contracts,
        passed,
    })
}

/// The number of directions if `cfg` checks a tensor of `n` elements in
/// fast mode, `None` for the full check.
fn fast_directions(cfg: &CheckConfig, n: usize) -> Option<usize> {
    match cfg.mode {
        Mode::Full => None,
        Mode::Fast { directions } => Some(directions),
        Mode::Auto => (n > cfg.fast_threshold).then_some(cfg.fast_directions),
    }
}

/// The report of a tensor without a usable analytic gradient.
fn unusable(spec: &TensorSpec, detail: &str) -> TensorReport {
    TensorReport {
        name: spec.name.clone(),
        kind: spec.kind,
        shape: spec.shape.clone(),
        mode: CheckedMode::Full,
        checked: 0,
        at_kink: 0,
        unreliable: 0,
        both_stencils: 0,
        failed: 0,
        non_finite: 0,
        max_abs_err: f64::NAN,
        max_rel_err: f64::NAN,
        worst: None,
        worst_failing: Vec::new(),
        passed: false,
        diagnosis: Some(Diagnosis::BadGradient {
            detail: detail.to_string(),
        }),
    }
}

/// Assembles a tensor report from per-item outcomes. `index_of` maps an item
/// to its (index, direction) location.
pub(crate) fn assemble(
    spec: &TensorSpec,
    mode: CheckedMode,
    cfg: &CheckConfig,
    analytic: &[f64],
    numeric: &[Numeric],
    outcomes: &[Outcome],
    location: &dyn Fn(usize) -> (Vec<usize>, Option<usize>),
) -> TensorReport {
    let elem = |i: usize| {
        let (index, direction) = location(i);
        let o = &outcomes[i];
        ElementReport {
            index,
            direction,
            analytic: analytic[i],
            numeric: numeric[i].value,
            abs_err: o.abs_err,
            rel_err: o.rel_err,
            allowed: o.allowed,
            at_kink: o.at_kink,
            unreliable: o.unreliable,
        }
    };
    let badness = |i: usize| {
        let o = &outcomes[i];
        if o.non_finite {
            f64::INFINITY
        } else if o.allowed > 0.0 {
            o.abs_err / o.allowed
        } else if o.abs_err == 0.0 {
            0.0
        } else {
            f64::INFINITY
        }
    };
    let checked = outcomes.len();
    let at_kink = outcomes.iter().filter(|o| o.at_kink).count();
    let unreliable = outcomes.iter().filter(|o| o.unreliable).count();
    let non_finite = outcomes.iter().filter(|o| o.non_finite).count();
    let mut failing: Vec<usize> = (0..checked).filter(|&i| !outcomes[i].pass).collect();
    let failed = failing.len();
    failing.sort_by(|&a, &b| badness(b).total_cmp(&badness(a)).then(a.cmp(&b)));
    let worst_i = (0..checked).fold(None, |best: Option<usize>, i| match best {
        Some(b) if badness(b) >= badness(i) => Some(b),
        _ => Some(i),
    });
    let max_abs_err = outcomes.iter().fold(0.0f64, |m, o| m.max(o.abs_err));
    let max_rel_err = outcomes.iter().fold(0.0f64, |m, o| m.max(o.rel_err));
    let too_many_kinks = checked > 0 && at_kink as f64 > cfg.max_kink_share * checked as f64;
    TensorReport {
        name: spec.name.clone(),
        kind: spec.kind,
        shape: spec.shape.clone(),
        mode,
        checked,
        at_kink,
        unreliable,
        both_stencils: numeric.iter().filter(|n| n.both_stencils).count(),
        failed,
        non_finite,
        max_abs_err,
        max_rel_err,
        worst: worst_i.map(elem),
        worst_failing: failing
            .iter()
            .take(cfg.worst_listed)
            .map(|&i| elem(i))
            .collect(),
        passed: failed == 0 && !too_many_kinks,
        diagnosis: (failed == 0 && too_many_kinks).then_some(Diagnosis::TooManyKinks {
            at_kink,
            elements: checked,
            max_share: cfg.max_kink_share,
        }),
    }
}

/// Step factors tried, in turn, on an element that has a kink within its
/// stencil: a kink at distance `d > 0` from `x` leaves the stencil once the
/// step is below `d`, and the element is then compared like any other. Only
/// kinks closer than `h/256` (in practice: exactly at `x`) remain "at a
/// kink". This keeps kinks that merely happen to lie within `h` (common in
/// an MLP, where one near-zero pre-activation downstream is crossed by the
/// perturbation of many upstream parameters) from failing the kink-share
/// rule, at the price of a few extra evaluations per such element.
const KINK_REFINE: [f64; 2] = [1.0 / 16.0, 1.0 / 256.0];

/// Evaluates the points `which` (see [`Probe::points`]) of item `i` (an
/// element, or a direction in fast mode) with step `h` into a sample.
pub(crate) type PointsFn<'a, L> =
    dyn Fn(&mut Probe<'_, L>, usize, f64, &[usize], &mut Sample) -> Result<()> + Sync + 'a;

/// All four points of item `i` with step `h`.
fn sample_all<L: ?Sized>(
    points: &PointsFn<'_, L>,
    p: &mut Probe<'_, L>,
    i: usize,
    h: f64,
) -> Result<Sample> {
    let mut s = Sample::default();
    points(p, i, h, &STENCIL_ALL, &mut s)?;
    Ok(s)
}

/// The numeric side of the items whose analytic values are `a` (elements,
/// or directions in fast mode): both stencils for every item
/// ([`Richardson::Always`]) or the inner pair only for the items the outer
/// pair does not settle ([`Richardson::OnDemand`]), then the kink
/// refinement. `scales` holds each item's gradient scale, `None` to take
/// one for all from the numeric values; `tol(i)` gives item `i`'s
/// tolerances.
pub(crate) fn numeric_side<L: Layer<f64> + ?Sized, M: Mapper<L>>(
    layer: &mut L,
    mapper: &mut M,
    ctx: &Ctx<'_>,
    a: &[f64],
    scales: Option<&[f64]>,
    tol: &(dyn Fn(usize) -> Tol + Sync),
    points: &PointsFn<'_, L>,
) -> Result<Vec<Numeric>> {
    let (n, h) = (a.len(), ctx.cfg.h);
    let scale_of = |i: usize, tensor: f64| scales.map_or(tensor, |s| s[i]);
    let (mut numeric, scale): (Vec<Numeric>, f64) = match ctx.cfg.richardson {
        Richardson::Always => {
            let samples = mapper.map(layer, ctx.inputs, ctx.r, n, &|p, i| {
                sample_all(points, p, i, h)
            })?;
            let scale = tensor_scale(samples.iter().map(|s| s.half_central()));
            let numeric = samples
                .iter()
                .enumerate()
                .map(|(i, s)| s.analyse(ctx.l0, ctx.labs, scale_of(i, scale)))
                .collect();
            (numeric, scale)
        }
        Richardson::OnDemand => {
            let outer = mapper.map(layer, ctx.inputs, ctx.r, n, &|p, i| {
                let mut s = Sample::UNEVALUATED;
                points(p, i, h, &STENCIL_OUTER, &mut s)?;
                Ok(s)
            })?;
            let scale = tensor_scale(outer.iter().map(|s| s.central()));
            let settled: Vec<Option<Numeric>> = (0..n)
                .map(|i| outer[i].screen(ctx.l0, ctx.labs, scale_of(i, scale), a[i], &tol(i)))
                .collect();
            let todo: Vec<usize> = (0..n).filter(|&i| settled[i].is_none()).collect();
            let rest = mapper.map(layer, ctx.inputs, ctx.r, todo.len(), &|p, j| {
                let mut s = outer[todo[j]];
                points(p, todo[j], h, &STENCIL_INNER, &mut s)?;
                Ok(s)
            })?;
            // `todo` lists the unsettled items in order, as `rest` does.
            let mut rest = rest.iter().zip(&todo);
            let numeric = settled
                .into_iter()
                .map(|s| {
                    s.unwrap_or_else(|| {
                        let (s, &i) = rest
                            .next()
                            .expect("one completed sample per unsettled item");
                        s.analyse(ctx.l0, ctx.labs, scale_of(i, scale))
                    })
                })
                .collect();
            (numeric, scale)
        }
    };
    refine_kinks(
        layer,
        mapper,
        ctx,
        &mut numeric,
        &|i| scale_of(i, scale),
        points,
    )?;
    Ok(numeric)
}

/// Re-samples the items at kinks with smaller steps (see [`KINK_REFINE`]).
fn refine_kinks<L: Layer<f64> + ?Sized, M: Mapper<L>>(
    layer: &mut L,
    mapper: &mut M,
    ctx: &Ctx<'_>,
    numeric: &mut [Numeric],
    scale: &dyn Fn(usize) -> f64,
    points: &PointsFn<'_, L>,
) -> Result<()> {
    if ctx.cfg.kinks != KinkHandling::Subgradient {
        return Ok(());
    }
    for factor in KINK_REFINE {
        let todo: Vec<usize> = (0..numeric.len()).filter(|&i| numeric[i].kink).collect();
        if todo.is_empty() {
            break;
        }
        let h = ctx.cfg.h * factor;
        let s = mapper.map(layer, ctx.inputs, ctx.r, todo.len(), &|p, j| {
            sample_all(points, p, todo[j], h)
        })?;
        for (j, &i) in todo.iter().enumerate() {
            numeric[i] = s[j].analyse(ctx.l0, ctx.labs, scale(i));
        }
    }
    Ok(())
}

/// The largest finite magnitude among a tensor's numeric derivatives.
fn tensor_scale(values: impl Iterator<Item = f64>) -> f64 {
    values
        .map(f64::abs)
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
}

/// Central differences for every element.
fn full_tensor<L: Layer<f64> + ?Sized, M: Mapper<L>>(
    layer: &mut L,
    mapper: &mut M,
    ctx: &Ctx<'_>,
    spec: &TensorSpec,
    analytic: &ArrayD<f64>,
) -> Result<TensorReport> {
    let n = analytic.len();
    let (tref, h) = (spec.tref, ctx.cfg.h);
    let a: Vec<f64> = analytic.iter().copied().collect();
    let tol = ctx.model.tol(ctx.cfg, ctx.global_scale);
    let numeric = numeric_side(
        layer,
        mapper,
        ctx,
        &a,
        None,
        &|_| tol,
        &|p, i, h, which, out| p.points(tref, i, h, which, out),
    )?;
    let outcomes: Vec<Outcome> = a
        .iter()
        .zip(&numeric)
        .map(|(&a, n)| compare(a, n, &tol))
        .collect();
    let shape = spec.shape.clone();
    let mut report = assemble(
        spec,
        CheckedMode::Full,
        ctx.cfg,
        &a,
        &numeric,
        &outcomes,
        &|i| (unravel(i, &shape), None),
    );
    if report.failed > 0 {
        let ev = Evidence {
            analytic: &a,
            numeric: &numeric,
            outcomes: &outcomes,
            shape: &spec.shape,
            batch: ctx.batch,
            tol,
        };
        let mut row0 = || -> Option<Vec<f64>> {
            if ctx.out_shape.is_empty() || ctx.out_shape[0] < 2 {
                return None;
            }
            let mut r0 = ctx.r.clone();
            r0.outer_iter_mut()
                .skip(1)
                .for_each(|mut row| row.fill(0.0));
            let s = mapper
                .map(layer, ctx.inputs, &r0, n, &|p, i| p.sample(tref, i, h))
                .ok()?;
            Some(s.iter().map(|s| s.analyse(0.0, 0.0, 0.0).value).collect())
        };
        report.diagnosis = Some(diagnose(&ev, &mut row0));
    }
    Ok(report)
}
