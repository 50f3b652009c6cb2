//! Checking an f32 backward against f64 numerics of the same layer.
//!
//! Users train in f32, and some bugs exist only there: an `exp` that
//! overflows at 89 instead of 710, a cancellation that loses all digits. The
//! f32 check runs forward/backward (and the contracts) on the f32 layer, then
//! evaluates the numeric gradient on an **f64 twin** of the same layer, with
//! the twin's parameters set to the f32 layer's values and the inputs rounded
//! to f32 first, so both sides see exactly the same point. Tolerances come
//! from f32's precision ([`CheckConfig::f32_ulps`] × eps32, relative to each
//! tensor's largest gradient), wide enough for f32 rounding and far too
//! narrow for NaN, an overflow or a lost sign.

use super::config::CheckConfig;
use super::engine::{Mapper, Parallel, Serial, TolModel, analytic_phase, numeric_phase};
use super::report::Report;
use crate::error::{Error, Result, Shape};
use crate::layer::Layer;
use ndarray::ArrayD;

/// Copies the f32 layer's parameters into the f64 twin, by name.
fn sync_twin<A: Layer<f32> + ?Sized, B: Layer<f64> + ?Sized>(
    layer: &mut A,
    twin: &mut B,
) -> Result<()> {
    let src: Vec<(String, ArrayD<f32>)> = layer
        .params()
        .into_iter()
        .map(|p| (p.name, p.value.to_owned()))
        .collect();
    let mut dst = twin.params();
    if dst.len() != src.len() {
        let missing = src
            .iter()
            .find(|(n, _)| !dst.iter().any(|d| &d.name == n))
            .map(|(n, _)| n.clone())
            .or_else(|| {
                dst.iter()
                    .find(|d| !src.iter().any(|(n, _)| n == &d.name))
                    .map(|d| d.name.clone())
            })
            .unwrap_or_default();
        return Err(Error::UnknownParam {
            op: "check_f32 (f64 twin)".into(),
            name: missing,
        });
    }
    for (name, value) in src {
        let Some(d) = dst.iter_mut().find(|d| d.name == name) else {
            return Err(Error::UnknownParam {
                op: "check_f32 (f64 twin)".into(),
                name,
            });
        };
        if d.value.shape() != value.shape() {
            return Err(Error::ShapeMismatch {
                op: "check_f32".into(),
                lhs: Shape::of(value.shape()),
                rhs: Shape::of(d.value.shape()),
                detail: format!("parameter {name} of the f32 layer and of its f64 twin"),
            });
        }
        d.value.zip_mut_with(&value, |t, &s| *t = s as f64);
    }
    Ok(())
}

fn run<A: Layer<f32> + ?Sized, B: Layer<f64> + ?Sized, M: Mapper<B>>(
    layer: &mut A,
    twin: &mut B,
    mapper: &mut M,
    inputs: &[ArrayD<f64>],
    config: &CheckConfig,
) -> Result<Report> {
    let inputs32: Vec<ArrayD<f32>> = inputs.iter().map(|a| a.mapv(|v| v as f32)).collect();
    let phase = analytic_phase(layer, &inputs32, config)?;
    if twin.num_inputs() != layer.num_inputs() {
        return Err(Error::InputCount {
            op: format!("check_f32 (f64 twin {})", twin.name()),
            expected: layer.num_inputs(),
            got: twin.num_inputs(),
        });
    }
    sync_twin(layer, twin)?;
    let inputs64: Vec<ArrayD<f64>> = inputs32.iter().map(|a| a.mapv(|v| v as f64)).collect();
    numeric_phase(
        twin,
        mapper,
        inputs64,
        phase,
        config,
        TolModel::F32 {
            ulps: config.f32_ulps,
        },
        "f32 vs f64",
    )
}

/// Checks `layer`'s f32 backward against the f64 numeric gradient of `twin`,
/// the same layer instantiated at f64 (its parameters are overwritten with
/// `layer`'s). `inputs` are rounded to f32.
///
/// **Errors** on a bad config, if the layer errors, or if the twin's
/// parameters (names, shapes) or input count differ from the layer's.
pub fn check_f32<A: Layer<f32> + ?Sized, B: Layer<f64> + ?Sized>(
    layer: &mut A,
    twin: &mut B,
    inputs: &[ArrayD<f64>],
    config: &CheckConfig,
) -> Result<Report> {
    run(layer, twin, &mut Serial, inputs, config)
}

/// [`check_f32`] with the numeric work on the twin split over rayon's
/// threads (if [`CheckConfig::parallel`]).
///
/// **Errors** as [`check_f32`].
pub fn check_f32_parallel<A: Layer<f32> + ?Sized, B: Layer<f64> + Clone + Send>(
    layer: &mut A,
    twin: &mut B,
    inputs: &[ArrayD<f64>],
    config: &CheckConfig,
) -> Result<Report> {
    if config.parallel {
        run(layer, twin, &mut Parallel, inputs, config)
    } else {
        run(layer, twin, &mut Serial, inputs, config)
    }
}
