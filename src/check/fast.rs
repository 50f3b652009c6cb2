//! Fast mode: directional derivatives along seeded random unit vectors.
//!
//! For a tensor of `n` elements, `k` directions cost `4k` evaluations
//! instead of `4n`. Each direction `v` (Gaussian, normalised to unit length)
//! gives the 1-D function `t ↦ L(x + t·v)`, analysed exactly like one
//! element (Richardson value, error estimate, kinks), and compared with the
//! analytic `⟨∇L, v⟩`. Tolerances: `atol · ‖v‖₁` (each element may carry
//! `atol`), plus the round-off of the inner product itself. A direction that
//! disagrees, or more kinks than allowed, returns `None` so the caller runs
//! the full check on this tensor to find the wrong elements.

use super::diagnose::Diagnosis;
use super::engine::{Ctx, Mapper, TensorSpec, assemble, numeric_side};
use super::numeric::{Outcome, TensorRef, Tol, compare};
use super::report::{CheckedMode, TensorReport};
use crate::error::Result;
use crate::layer::Layer;
use ndarray::{ArrayD, Zip};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// `k` seeded unit directions in `shape`, different per tensor.
pub(crate) fn directions(shape: &[usize], k: usize, seed: u64, tensor: usize) -> Vec<ArrayD<f64>> {
    let mut rng =
        StdRng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (tensor as u64 + 1));
    (0..k)
        .map(|_| {
            let mut v =
                ArrayD::from_shape_simple_fn(shape, || rng.sample::<f64, _>(StandardNormal));
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm > 0.0 {
                v.mapv_inplace(|x| x / norm);
            }
            v
        })
        .collect()
}

/// The fast check of one tensor: `Some(report)` if every direction agrees,
/// `None` if the full check must localise.
pub(crate) fn check_tensor_fast<L: Layer<f64> + ?Sized, M: Mapper<L>>(
    layer: &mut L,
    mapper: &mut M,
    ctx: &Ctx<'_>,
    spec: &TensorSpec,
    analytic: &ArrayD<f64>,
    k: usize,
) -> Result<Option<TensorReport>> {
    if analytic.iter().any(|v| !v.is_finite()) {
        return Ok(None);
    }
    let slot = match spec.tref {
        TensorRef::Input(i) => i,
        TensorRef::Param(i) => 1000 + i,
    };
    let dirs = directions(&spec.shape, k, ctx.cfg.seed, slot);
    let base: ArrayD<f64> = match spec.tref {
        TensorRef::Input(i) => ctx.inputs[i].clone(),
        TensorRef::Param(i) => match layer.params().get(i) {
            Some(p) => p.value.to_owned(),
            None => return Ok(None),
        },
    };
    let tref = spec.tref;
    let mut a = Vec::with_capacity(k);
    let mut l1 = Vec::with_capacity(k);
    let mut v1 = Vec::with_capacity(k);
    for v in &dirs {
        let (mut dot, mut abs) = (0.0, 0.0);
        Zip::from(analytic).and(v).for_each(|&g, &d| {
            dot += g * d;
            abs += (g * d).abs();
        });
        a.push(dot);
        l1.push(abs);
        v1.push(v.iter().map(|x| x.abs()).sum::<f64>());
    }
    let n = analytic.len() as f64;
    // Per direction: `atol · ‖v‖₁` (each element may carry `atol`) plus the
    // round-off of the inner product.
    let tols: Vec<Tol> = (0..k)
        .map(|j| {
            let mut tol = ctx.model.tol(ctx.cfg, ctx.global_scale);
            tol.atol = tol.atol * v1[j] + 4.0 * n * f64::EPSILON * l1[j];
            tol.rel_floor = if tol.rtol > 0.0 {
                tol.atol / tol.rtol
            } else {
                0.0
            };
            tol
        })
        .collect();
    let scale = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let numeric = numeric_side(
        layer,
        mapper,
        ctx,
        &a,
        Some(scale),
        &|j| tols[j],
        &|p, j, h, which, out| p.points_along(tref, &base, &dirs[j], h, which, out),
    )?;
    let outcomes: Vec<Outcome> = (0..k)
        .map(|j| compare(a[j], &numeric[j], &tols[j]))
        .collect();
    let report = assemble(
        spec,
        CheckedMode::Fast { directions: k },
        ctx.cfg,
        &a,
        &numeric,
        &outcomes,
        &|j| (Vec::new(), Some(j)),
    );
    let kinks_over = matches!(report.diagnosis, Some(Diagnosis::TooManyKinks { .. }));
    if report.failed > 0 || kinks_over {
        return Ok(None);
    }
    Ok(Some(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions_are_unit_seeded_and_distinct() {
        let a = directions(&[3, 4], 3, 7, 0);
        let b = directions(&[3, 4], 3, 7, 0);
        let c = directions(&[3, 4], 3, 7, 1);
        assert_eq!(a, b);
        assert_ne!(a, c);
        for v in &a {
            let norm: f64 = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            assert!((norm - 1.0).abs() < 1e-12);
        }
        assert_ne!(a[0], a[1]);
    }
}
