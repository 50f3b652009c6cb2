//! Building blocks shared by the fuzz cases: hostile float values, tensors
//! with capped shapes in every memory layout, and an independent label oracle.
//!
//! This file is compiled twice: into the fuzz crate (`fuzz/src/lib.rs`) and,
//! through `#[path]`, into the main crate's regression tests, so a committed
//! input replays exactly the checks the fuzzer ran.

use arbitrary::Arbitrary;
use gradverify::Float;
use ndarray::{ArrayD, Axis, IxDyn, ShapeBuilder, Slice};
use std::fmt;

/// Largest rank a fuzzed tensor may have.
pub const MAX_RANK: usize = 4;
/// Largest extent of one dimension.
pub const MAX_DIM: u8 = 6;
/// Largest number of values spelled out for one tensor (they are cycled).
pub const MAX_VALUES: usize = 64;
/// Inputs at most this large in magnitude are "moderate": the stable
/// functions must give finite results on them.
pub const MODERATE: f64 = 1e30;

/// One value, biased towards the hostile ones.
#[derive(Arbitrary, Clone, Copy, PartialEq)]
pub enum Val {
    /// `k / 8`: small exact values, including integers usable as labels.
    Small(i8),
    /// An integer class index `0..=11` (a few beyond ten classes).
    Label(u8),
    /// `+0.0` or `-0.0`.
    Zero(bool),
    /// Exactly one.
    One,
    /// `±1e30`.
    Big(bool),
    /// `±MAX` of the float type.
    Max(bool),
    /// A subnormal, `±MIN_POSITIVE / 4`.
    Subnormal(bool),
    /// `±inf`.
    Inf(bool),
    /// NaN.
    Nan,
    /// Any `f64` bit pattern (rounded to `f32` in `f32` runs).
    Raw(u64),
}

impl Val {
    /// The value in float type `F`.
    pub fn get<F: Float>(self) -> F {
        let sign = |neg: bool, v: F| if neg { -v } else { v };
        match self {
            Val::Small(k) => F::of(f64::from(k) / 8.0),
            Val::Label(k) => F::of(f64::from(k % 12)),
            Val::Zero(neg) => sign(neg, F::zero()),
            Val::One => F::one(),
            Val::Big(neg) => sign(neg, F::of(1e30)),
            Val::Max(neg) => sign(neg, F::max_value()),
            Val::Subnormal(neg) => sign(neg, F::min_positive_value() / F::of(4.0)),
            Val::Inf(neg) => sign(neg, F::infinity()),
            Val::Nan => F::nan(),
            Val::Raw(bits) => F::of(f64::from_bits(bits)),
        }
    }
}

impl fmt::Debug for Val {
    /// Prints the value the way it reads in source: exact numbers, or the
    /// named constants whose value depends on the float type.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = |neg: bool| if neg { "-" } else { "" };
        match *self {
            Val::Max(neg) => write!(f, "{}F::MAX", sign(neg)),
            Val::Subnormal(neg) => write!(f, "{}F::MIN_POSITIVE/4", sign(neg)),
            Val::Raw(bits) => write!(f, "f64::from_bits({bits:#x}) = {:?}", f64::from_bits(bits)),
            v => write!(f, "{:?}", v.get::<f64>()),
        }
    }
}

/// How a tensor's elements are laid out in memory. The logical values are
/// the same in every layout; only strides differ.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Row-major, contiguous.
    Standard,
    /// Column-major: built transposed, then viewed with reversed axes.
    Fortran,
    /// Every second element of a twice-as-long axis 0.
    Strided,
    /// Axis 0 stored backwards (negative stride).
    Flipped,
}

/// A tensor: shape (rank and extents capped), values cycled to fill it, and
/// a memory layout.
#[derive(Arbitrary, Clone)]
pub struct Tensor {
    /// Extents, each taken modulo `MAX_DIM`; at most `MAX_RANK` of them.
    pub dims: Vec<u8>,
    /// Values, repeated to fill the tensor; empty means all zeros.
    pub vals: Vec<Val>,
    /// Memory layout of the materialized array.
    pub layout: Layout,
}

impl Tensor {
    /// `false` if the tensor exceeds the caps (the case is rejected).
    pub fn within_caps(&self) -> bool {
        self.dims.len() <= MAX_RANK && self.vals.len() <= MAX_VALUES
    }

    /// The logical shape.
    pub fn shape(&self) -> Vec<usize> {
        self.dims
            .iter()
            .map(|&d| usize::from(d % MAX_DIM))
            .collect()
    }

    /// Element `i` in logical (row-major) order.
    pub fn val<F: Float>(&self, i: usize) -> F {
        if self.vals.is_empty() {
            F::zero()
        } else {
            self.vals[i % self.vals.len()].get()
        }
    }

    /// All elements in logical order.
    pub fn values<F: Float>(&self) -> Vec<F> {
        let n: usize = self.shape().iter().product();
        (0..n).map(|i| self.val(i)).collect()
    }

    /// The array, in the requested layout.
    pub fn array<F: Float>(&self) -> ArrayD<F> {
        let shape = self.shape();
        let logical = ArrayD::from_shape_vec(IxDyn(&shape), self.values::<F>())
            .expect("element count matches shape");
        match self.layout {
            Layout::Standard => logical,
            Layout::Fortran => {
                let mut a = ArrayD::zeros(IxDyn(&shape).f());
                a.assign(&logical);
                a
            }
            Layout::Strided if !shape.is_empty() => {
                let mut long = shape.clone();
                long[0] *= 2;
                let mut a = ArrayD::from_elem(IxDyn(&long), F::nan());
                a.slice_axis_inplace(Axis(0), Slice::new(0, None, 2));
                a.assign(&logical);
                a
            }
            Layout::Flipped if !shape.is_empty() => {
                // Store axis 0 backwards, then view it reversed: same
                // logical values, negative stride.
                let rev: Vec<F> = logical
                    .slice_axis(Axis(0), Slice::new(0, None, -1))
                    .iter()
                    .copied()
                    .collect();
                let mut a = ArrayD::from_shape_vec(IxDyn(&shape), rev).expect("same count");
                a.invert_axis(Axis(0));
                a
            }
            _ => logical,
        }
    }

    /// `true` if every element is finite and at most `bound` in magnitude.
    pub fn bounded<F: Float>(&self, bound: f64) -> bool {
        self.values::<F>()
            .iter()
            .all(|v| v.is_finite() && v.f64().abs() <= bound)
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n: usize = self.shape().iter().product();
        let shown: Vec<Val> = if self.vals.is_empty() {
            Vec::new()
        } else {
            (0..n.min(12))
                .map(|i| self.vals[i % self.vals.len()])
                .collect()
        };
        write!(
            f,
            "tensor(shape {:?}, {:?}, values {:?}{})",
            self.shape(),
            self.layout,
            shown,
            if n > 12 {
                " ..."
            } else if self.vals.is_empty() && n > 0 {
                " (all 0.0)"
            } else {
                ""
            }
        )
    }
}

/// The class indices `labels` denote for a batch of `n` rows and `c`
/// classes, or `None` if they are invalid. Written independently of the
/// library: class indices `(n,)` of exact integers in `0..c`, or one-hot
/// rows `(n, c)` of exact zeros and a single exact one.
pub fn oracle_labels<F: Float>(t: &ArrayD<F>, n: usize, c: usize) -> Option<Vec<usize>> {
    match t.ndim() {
        1 if t.len() == n => t
            .iter()
            .map(|&v| {
                let v = v.f64();
                (v.is_finite() && v.fract() == 0.0 && v >= 0.0 && v < c as f64)
                    .then_some(v as usize)
            })
            .collect(),
        2 if t.shape() == [n, c] => t
            .outer_iter()
            .map(|row| {
                let mut hot = None;
                for (j, &v) in row.iter().enumerate() {
                    if v == F::one() && hot.is_none() {
                        hot = Some(j);
                    } else if v != F::zero() {
                        return None;
                    }
                }
                hot
            })
            .collect(),
        _ => None,
    }
}

/// The labels as the loss functions see them when the scores are a single
/// 1-D row of `c` classes: a 0-d label becomes `(1,)`, a `(c,)` vector a
/// one-hot row `(1, c)`.
pub fn promoted<F: Float>(t: &ArrayD<F>, c: usize) -> ArrayD<F> {
    match t.ndim() {
        0 => t.to_shape(IxDyn(&[1])).expect("one element").to_owned(),
        1 if t.len() == c => t.to_shape(IxDyn(&[1, c])).expect("c elements").to_owned(),
        _ => t.clone(),
    }
}

/// `true` if `a` and `b` have the same shape and the same elements bit for
/// bit, NaNs included (used where the library must be deterministic).
pub fn same_bits<F: Float>(a: &ArrayD<F>, b: &ArrayD<F>) -> bool {
    a.shape() == b.shape()
        && a.iter()
            .zip(b.iter())
            .all(|(x, y)| x.f64().to_bits() == y.f64().to_bits() || (x.is_nan() && y.is_nan()))
}

/// Relative-or-absolute closeness for results that may differ by rounding.
pub fn close(a: f64, b: f64, rel: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a.is_infinite() || b.is_infinite() {
        return a == b;
    }
    (a - b).abs() <= rel * (1.0 + a.abs().max(b.abs()))
}

/// A case of a layer target: the float type, what to build, and a sequence
/// of operations on it. The fields decode in this order (`f64`, `kind`,
/// `ops`), so seeds and findings keep their meaning.
#[derive(Arbitrary, Clone)]
pub struct OpsCase<K, O> {
    /// Run in `f64` (else `f32`).
    pub f64: bool,
    /// The layer or model.
    pub kind: K,
    /// The steps.
    pub ops: Vec<O>,
}

/// The name a case's printout starts with (`// NAME case, in f64`).
pub trait Target {
    /// The decoder's name.
    const NAME: &'static str;
}

impl<K: fmt::Debug + Target, O: fmt::Debug> fmt::Debug for OpsCase<K, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ty = if self.f64 { "f64" } else { "f32" };
        writeln!(f, "// {} case, in {ty}", K::NAME)?;
        writeln!(f, "layer = {:?}", self.kind)?;
        for (i, op) in self.ops.iter().enumerate() {
            writeln!(f, "op {i}: {op:?}")?;
        }
        Ok(())
    }
}
