//! The float types layers are generic over: `f32` for training, `f64` for checking.

use ndarray::NdFloat;
use num_traits::FromPrimitive;
use std::iter::Sum;

/// A float a layer can compute in. Implemented for `f32` and `f64`.
pub trait Float: NdFloat + FromPrimitive + Default + Sum + Send + Sync + 'static {
    /// `"f32"` or `"f64"`, for reports.
    const NAME: &'static str;
    /// Machine epsilon of the type.
    const EPSILON: Self;
    /// Converts from `f64`, rounding to nearest.
    fn of(v: f64) -> Self;
    /// Converts to `f64` exactly.
    fn f64(self) -> f64;
}

impl Float for f32 {
    const NAME: &'static str = "f32";
    const EPSILON: Self = f32::EPSILON;
    fn of(v: f64) -> Self {
        v as f32
    }
    fn f64(self) -> f64 {
        self as f64
    }
}

impl Float for f64 {
    const NAME: &'static str = "f64";
    const EPSILON: Self = f64::EPSILON;
    fn of(v: f64) -> Self {
        v
    }
    fn f64(self) -> f64 {
        self
    }
}
