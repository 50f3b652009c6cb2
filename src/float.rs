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

    /// Whether [`Float::small_affine`] has a kernel for this type on this
    /// CPU, so a caller can skip allocating its output when it has none.
    /// The default has none; `f64` has one where the CPU has AVX2 and FMA.
    fn has_small_affine() -> bool {
        false
    }

    /// `y (n, m) = x (n, k) · w (k, m) + b (m,)`, all row-major and
    /// contiguous, by a kernel for batches of a few rows, if the crate has
    /// one for this type on this CPU; returns whether it ran (`y` is
    /// untouched otherwise, and the caller uses the general GEMM). `reverse`
    /// walks `w`'s column blocks from the last, which changes no result.
    /// The default has no kernel; `f64` has the gradient checker's
    /// (`Affine`'s forward on at most 8 rows, with AVX2 and FMA).
    fn small_affine(
        x: &[Self],
        w: &[Self],
        b: &[Self],
        dims: (usize, usize, usize),
        y: &mut [Self],
        reverse: bool,
    ) -> bool {
        let _ = (x, w, b, dims, y, reverse);
        false
    }
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
    fn has_small_affine() -> bool {
        crate::layers::small_gemm::has_kernel()
    }
    fn small_affine(
        x: &[f64],
        w: &[f64],
        b: &[f64],
        dims: (usize, usize, usize),
        y: &mut [f64],
        reverse: bool,
    ) -> bool {
        crate::layers::small_gemm::affine_small(x, w, b, dims, y, reverse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_f64_has_a_small_affine_kernel() {
        // y = x · w + b for x (1, 2), w (2, 3).
        let (x, w, b) = ([1.0, 2.0], [1.0, 0.0, -1.0, 0.5, 2.0, 0.0], [0.0, 1.0, 2.0]);
        let mut y = [f64::NAN; 3];
        let ran = f64::small_affine(&x, &w, &b, (1, 2, 3), &mut y, false);
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            ran,
            std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma"),
            "f64 runs its kernel exactly where the CPU has one"
        );
        assert_eq!(ran, f64::has_small_affine(), "the probe says what runs");
        assert!(!f32::has_small_affine());
        if ran {
            assert_eq!(y, [2.0, 5.0, 1.0]);
        }
        let mut y32 = [f32::NAN; 3];
        let x32 = x.map(|v| v as f32);
        let w32 = w.map(|v| v as f32);
        let b32 = b.map(|v| v as f32);
        assert!(!f32::small_affine(
            &x32,
            &w32,
            &b32,
            (1, 2, 3),
            &mut y32,
            false
        ));
        assert!(
            y32.iter().all(|v| v.is_nan()),
            "y untouched without a kernel"
        );
    }
}
