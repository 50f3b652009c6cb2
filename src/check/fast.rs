//! Fast mode: directional derivatives along seeded random unit vectors.
//!
//! For a tensor of `n` elements, `k` directions cost `2k` evaluations (`4k`
//! where the outer pair does not settle a direction) instead of `2n`. Each
//! direction `v` (Gaussian for a vector, rank one
//! `u ⊗ w` with Gaussian factors for a matrix or higher) gives the 1-D
//! function `t ↦ L(x + t·v)`, analysed exactly like one element (Richardson
//! value, error estimate, kinks), and compared with the analytic `⟨∇L, v⟩`.
//! Tolerances: `atol · ‖v‖₁` (each element may carry `atol`), plus the
//! round-off of the inner product itself. A tensor with a direction that
//! disagrees, or more kinks than allowed, gets `None` so the caller runs the
//! full check on it to find the wrong elements.
//!
//! The directions of all tensors are checked together, as one batch of
//! evaluations for the mapper (serial or split over threads).

use super::diagnose::Diagnosis;
use super::engine::{Ctx, Mapper, TensorSpec, assemble, numeric_side};
use super::numeric::{Outcome, TensorRef, Tol, compare};
use super::report::{CheckedMode, TensorReport};
use crate::error::Result;
use crate::layer::Layer;
use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn, Zip};
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use rand_xoshiro::Xoshiro256PlusPlus;

/// A seeded random unit direction in a tensor's space.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Direction {
    /// Every element drawn: tensors of rank 0 or 1.
    Dense(ArrayD<f64>),
    /// Rank one, `v = u ⊗ w` over the tensor seen as `(d₀, d₁·d₂·…)`, with
    /// `‖u‖ = ‖w‖ = 1` so `‖v‖ = 1`: `d₀ + d₁·d₂·…` numbers instead of
    /// their product, so a direction in a weight matrix costs no memory
    /// traffic of its own. For a gradient error `E`, `⟨E, v⟩ = uᵀ·E·w`,
    /// zero with probability 0, with `E[(uᵀEw)²] ≈ ‖E‖²/(d₀·d₁·…)` as for a
    /// dense Gaussian direction.
    Outer { u: Vec<f64>, w: Vec<f64> },
}

/// `n` standard normal numbers scaled to unit length (zeros stay zeros).
fn unit_gaussian(rng: &mut Xoshiro256PlusPlus, n: usize) -> Vec<f64> {
    let mut v: Vec<f64> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// `(Σ a·b, Σ |a·b|)` in four independent partial sums each, which the
/// compiler vectorises.
fn dot_and_abs(a: &[f64], b: &[f64]) -> (f64, f64) {
    let (mut s, mut t) = ([0.0f64; 4], [0.0f64; 4]);
    let (ac, bc) = (a.chunks_exact(4), b.chunks_exact(4));
    let mut tail = 0.0;
    for (x, y) in ac.remainder().iter().zip(bc.remainder()) {
        let p = x * y;
        tail += p;
        t[0] += p.abs();
    }
    for (x, y) in ac.zip(bc) {
        for l in 0..4 {
            let p = x[l] * y[l];
            s[l] += p;
            t[l] += p.abs();
        }
    }
    (s[0] + s[1] + s[2] + s[3] + tail, t[0] + t[1] + t[2] + t[3])
}

impl Direction {
    /// Direction `j` of the tensor in `slot`, in `shape`. Each direction has
    /// its own stream, so they can be drawn in parallel and in any order.
    pub(crate) fn draw(shape: &[usize], seed: u64, slot: usize, j: usize) -> Direction {
        let stream = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ ((slot as u64 + 1) << 32)
            ^ (j as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(stream);
        match shape {
            [d0, rest @ ..] if !rest.is_empty() => {
                let u = unit_gaussian(&mut rng, *d0);
                let w = unit_gaussian(&mut rng, rest.iter().product());
                Direction::Outer { u, w }
            }
            _ => {
                let n = shape.iter().product();
                let v = unit_gaussian(&mut rng, n);
                Direction::Dense(ArrayD::from_shape_vec(IxDyn(shape), v).expect("n elements"))
            }
        }
    }

    /// `(⟨g, v⟩, Σ|g·v|, ‖v‖₁)` for a tensor `g` of the direction's shape.
    pub(crate) fn project(&self, g: &ArrayD<f64>) -> (f64, f64, f64) {
        match self {
            Direction::Dense(v) => {
                let (mut dot, mut abs, mut l1) = (0.0, 0.0, 0.0);
                Zip::from(g).and(v).for_each(|&g, &d| {
                    dot += g * d;
                    abs += (g * d).abs();
                    l1 += d.abs();
                });
                (dot, abs, l1)
            }
            Direction::Outer { u, w } => {
                let (mut dot, mut abs) = (0.0, 0.0);
                let l1 = |x: &[f64]| x.iter().map(|v| v.abs()).sum::<f64>();
                if let Some(gs) = g.as_slice() {
                    for (row, &ui) in gs.chunks_exact(w.len().max(1)).zip(u) {
                        let (s, a) = dot_and_abs(row, w);
                        dot += ui * s;
                        abs += ui.abs() * a;
                    }
                    return (dot, abs, l1(u) * l1(w));
                }
                for (row, &ui) in g.outer_iter().zip(u) {
                    let w = ArrayViewD::from_shape(row.raw_dim(), w).expect("w spans a row");
                    let (mut s, mut a) = (0.0, 0.0);
                    Zip::from(&row).and(&w).for_each(|&g, &wj| {
                        s += g * wj;
                        a += (g * wj).abs();
                    });
                    dot += ui * s;
                    abs += ui.abs() * a;
                }
                (dot, abs, l1(u) * l1(w))
            }
        }
    }

    /// `out = base + step · v`, `out` and `base` of the direction's shape.
    pub(crate) fn add_scaled(
        &self,
        base: &ArrayD<f64>,
        step: f64,
        mut out: ArrayViewMutD<'_, f64>,
    ) {
        match self {
            Direction::Dense(v) => Zip::from(&mut out)
                .and(base)
                .and(v)
                .for_each(|o, &b, &d| *o = b + step * d),
            Direction::Outer { u, w } => {
                if let (Some(os), Some(bs)) = (out.as_slice_mut(), base.as_slice()) {
                    let cols = w.len().max(1);
                    for ((o, b), &ui) in os.chunks_exact_mut(cols).zip(bs.chunks_exact(cols)).zip(u)
                    {
                        let s = step * ui;
                        for ((o, &b), &wj) in o.iter_mut().zip(b).zip(w) {
                            *o = b + s * wj;
                        }
                    }
                    return;
                }
                for ((mut o, b), &ui) in out.outer_iter_mut().zip(base.outer_iter()).zip(u) {
                    let w = ArrayViewD::from_shape(b.raw_dim(), w).expect("w spans a row");
                    let s = step * ui;
                    Zip::from(&mut o)
                        .and(&b)
                        .and(&w)
                        .for_each(|o, &b, &wj| *o = b + s * wj);
                }
            }
        }
    }
}

/// One direction to check: its tensor (a position in the caller's list),
/// the direction, `⟨∇L, v⟩` and its tolerances.
struct Probed {
    tensor: usize,
    v: Direction,
    a: f64,
    tol: Tol,
}

/// A tensor's unperturbed value and `max(1, max|value|)`, which scales the
/// step along a direction.
struct Base {
    tref: TensorRef,
    value: ArrayD<f64>,
    scale: f64,
}

/// The fast check of the tensors `todo` (pairs of a spec and its number of
/// directions), all at once: per pair, `Some(report)` if every direction
/// agrees, `None` if the full check must localise.
pub(crate) fn check_tensors_fast<L: Layer<f64> + ?Sized, M: Mapper<L>>(
    layer: &mut L,
    mapper: &mut M,
    ctx: &Ctx<'_>,
    todo: &[(&TensorSpec, usize)],
) -> Result<Vec<Option<TensorReport>>> {
    // Tensors with a usable, finite gradient and a readable value.
    let mut checked: Vec<(usize, &ArrayD<f64>, Base)> = Vec::new();
    for (t, (spec, _)) in todo.iter().enumerate() {
        let Ok(analytic) = &spec.analytic else {
            continue;
        };
        if !analytic.fold(true, |ok, v| ok && v.is_finite()) {
            continue;
        }
        let value = match spec.tref {
            TensorRef::Input(i) => ctx.inputs[i].clone(),
            TensorRef::Param(i) => match layer.params().get(i) {
                Some(p) => p.value.to_owned(),
                None => continue,
            },
        };
        let scale = value.fold(1.0f64, |m, v| m.max(v.abs()));
        let tref = spec.tref;
        checked.push((t, analytic, Base { tref, value, scale }));
    }
    let items: Vec<(usize, usize)> = checked
        .iter()
        .enumerate()
        .flat_map(|(c, &(t, _, _))| (0..todo[t].1).map(move |j| (c, j)))
        .collect();
    let dirs: Vec<Probed> = mapper.map_pure(items.len(), &|i| {
        let (c, j) = items[i];
        let (t, analytic, _) = &checked[c];
        let slot = match todo[*t].0.tref {
            TensorRef::Input(i) => i,
            TensorRef::Param(i) => 1000 + i,
        };
        let v = Direction::draw(analytic.shape(), ctx.cfg.seed, slot, j);
        let (dot, abs, v1) = v.project(analytic);
        // `atol · ‖v‖₁` (each element may carry `atol`) plus the round-off
        // of the inner product.
        let mut tol = ctx.model.tol(ctx.cfg, ctx.global_scale);
        tol.atol = tol.atol * v1 + 4.0 * analytic.len() as f64 * f64::EPSILON * abs;
        tol.rel_floor = if tol.rtol > 0.0 {
            tol.atol / tol.rtol
        } else {
            0.0
        };
        Probed {
            tensor: c,
            v,
            a: dot,
            tol,
        }
    });
    let a: Vec<f64> = dirs.iter().map(|d| d.a).collect();
    // Each direction's gradient scale: the largest |⟨∇L, v⟩| of its tensor.
    let mut tensor_scale = vec![0.0f64; checked.len()];
    for d in &dirs {
        tensor_scale[d.tensor] = tensor_scale[d.tensor].max(d.a.abs());
    }
    let scales: Vec<f64> = dirs.iter().map(|d| tensor_scale[d.tensor]).collect();
    let numeric = numeric_side(
        layer,
        mapper,
        ctx,
        &a,
        Some(&scales),
        &|i| dirs[i].tol,
        &|p, i, h, which, out| {
            let d = &dirs[i];
            let base = &checked[d.tensor].2;
            p.points_along(base.tref, &base.value, base.scale, &d.v, h, which, out)
        },
    )?;
    let mut reports: Vec<Option<TensorReport>> = todo.iter().map(|_| None).collect();
    let mut start = 0;
    for (c, &(t, _, _)) in checked.iter().enumerate() {
        let (spec, k) = todo[t];
        let range = start..start + k;
        start += k;
        debug_assert!(dirs[range.clone()].iter().all(|d| d.tensor == c));
        let outcomes: Vec<Outcome> = range
            .clone()
            .map(|i| compare(a[i], &numeric[i], &dirs[i].tol))
            .collect();
        let report = assemble(
            spec,
            CheckedMode::Fast { directions: k },
            ctx.cfg,
            &a[range.clone()],
            &numeric[range],
            &outcomes,
            &|j| (Vec::new(), Some(j)),
        );
        let kinks_over = matches!(report.diagnosis, Some(Diagnosis::TooManyKinks { .. }));
        if report.failed == 0 && !kinks_over {
            reports[t] = Some(report);
        }
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Dimension;

    fn dense(d: &Direction, shape: &[usize]) -> ArrayD<f64> {
        let mut v = ArrayD::zeros(IxDyn(shape));
        d.add_scaled(&ArrayD::zeros(IxDyn(shape)), 1.0, v.view_mut());
        v
    }

    #[test]
    fn directions_are_unit_seeded_distinct_and_project_exactly() {
        for shape in [&[12][..], &[3, 4], &[2, 3, 2], &[1, 5], &[5, 1]] {
            let g = ArrayD::from_shape_fn(IxDyn(shape), |i| {
                i.slice().iter().sum::<usize>() as f64 - 2.5
            });
            let a: Vec<_> = (0..3).map(|j| Direction::draw(shape, 7, 0, j)).collect();
            let b: Vec<_> = (0..3).map(|j| Direction::draw(shape, 7, 0, j)).collect();
            assert_eq!(a, b);
            assert_ne!(Direction::draw(shape, 7, 1, 0), a[0]);
            assert_ne!(Direction::draw(shape, 8, 0, 0), a[0]);
            assert_ne!(a[0], a[1]);
            assert_ne!(a[1], a[2]);
            for d in &a {
                let v = dense(d, shape);
                let norm: f64 = v.iter().map(|x| x * x).sum::<f64>().sqrt();
                assert!((norm - 1.0).abs() < 1e-12, "{shape:?}: |v| = {norm}");
                let (dot, abs, l1) = d.project(&g);
                let want: f64 = g.iter().zip(v.iter()).map(|(g, v)| g * v).sum();
                assert!((dot - want).abs() < 1e-12, "{dot} vs {want}");
                let want: f64 = g.iter().zip(v.iter()).map(|(g, v)| (g * v).abs()).sum();
                assert!((abs - want).abs() < 1e-12);
                let want: f64 = v.iter().map(|v| v.abs()).sum();
                assert!((l1 - want).abs() < 1e-12);
                // base + step·v.
                let base = g.mapv(|x| x * 0.5);
                let mut out = ArrayD::zeros(IxDyn(shape));
                d.add_scaled(&base, 0.25, out.view_mut());
                let want = &base + &v.mapv(|x| x * 0.25);
                assert!(
                    out.iter()
                        .zip(want.iter())
                        .all(|(o, w)| (o - w).abs() < 1e-15)
                );
            }
        }
        // Rank ≥ 2 directions are rank one; vectors are dense.
        assert!(matches!(
            Direction::draw(&[3, 4], 1, 0, 0),
            Direction::Outer { .. }
        ));
        assert!(matches!(
            Direction::draw(&[12], 1, 0, 0),
            Direction::Dense(_)
        ));
    }
}
