//! `Y = X·W + b` in f64 for a batch of a few rows, as the gradient checker
//! runs it.
//!
//! The checker evaluates a model hundreds of thousands of times on a batch
//! of 2–5 rows. A general GEMM (matrixmultiply, behind ndarray's `dot`)
//! packs both operands into panels on every call and computes in blocks of
//! 8 rows: at `(3, 784)·(784, 100)` three quarters of its time went to
//! packing `W` and to the five padding rows. This kernel reads `W` once,
//! straight from the layer's own row-major array, and keeps a block of
//! `4 × 8` outputs in AVX registers while it runs down `W`'s rows: each
//! output is `b_j + Σ_p x_p·w_pj`, fused multiply-adds summed in order of
//! `p`.
//!
//! It exists for x86-64 CPUs with AVX2 and FMA (detected at run time);
//! [`affine_small`] returns `false` elsewhere and the caller uses the
//! general GEMM.

use crate::float::Float;

/// The largest number of rows this kernel is used for; larger batches go to
/// the general GEMM, whose packing then pays for itself.
pub(crate) const MAX_ROWS: usize = 8;

/// Whether this CPU has the instructions the f64 kernels are compiled for
/// (AVX2 and FMA on x86_64; no other architecture has a kernel).
pub(crate) fn has_kernel() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Computes `y (n, m) = x (n, k) · w (k, m) + b (m,)`, all row-major and
/// contiguous, if this CPU has the kernel's instructions; returns whether
/// it did (`y` is untouched otherwise).
///
/// The kernel walks `w` one block of columns at a time, down all its rows;
/// `reverse` walks the blocks from the last to the first. Every output is
/// the same sum either way, bit for bit. A caller that alternates the order
/// on successive calls with the same `w` finds the blocks read last still in
/// L2 at the start of the next call: the checker's 784×100 f64 `W` (627 KB)
/// does not fit a 512 KB L2, and read in one order it is fetched from L3
/// entirely on every call.
///
/// # Panics
/// If a slice's length does not match its shape (an internal invariant:
/// the caller passes arrays it has checked).
pub(crate) fn affine_small(
    x: &[f64],
    w: &[f64],
    b: &[f64],
    (n, k, m): (usize, usize, usize),
    y: &mut [f64],
    reverse: bool,
) -> bool {
    assert!(
        x.len() == n * k && w.len() == k * m && b.len() == m && y.len() == n * m,
        "affine_small: slice lengths do not match ({n}, {k})·({k}, {m})"
    );
    #[cfg(target_arch = "x86_64")]
    if has_kernel() {
        let mut r0 = 0;
        while r0 < n {
            let rows = (n - r0).min(4);
            let xs = &x[r0 * k..(r0 + rows) * k];
            let ys = &mut y[r0 * m..(r0 + rows) * m];
            // SAFETY: the CPU has AVX2 and FMA, which the kernels are
            // compiled for; the slice lengths were checked above.
            unsafe {
                match rows {
                    4 => avx::block::<4>(xs, w, b, (k, m), ys, reverse),
                    3 => avx::block::<3>(xs, w, b, (k, m), ys, reverse),
                    2 => avx::block::<2>(xs, w, b, (k, m), ys, reverse),
                    _ => avx::block::<1>(xs, w, b, (k, m), ys, reverse),
                }
            }
            r0 += rows;
        }
        return true;
    }
    let _ = (x, w, b, y);
    false
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::{
        __m256d, _MM_HINT_T0, _mm_prefetch, _mm256_add_pd, _mm256_fmadd_pd, _mm256_loadu_pd,
        _mm256_set1_pd, _mm256_setzero_pd, _mm256_storeu_pd,
    };

    /// Rows of `W` ahead of the one being read that are prefetched: the
    /// panel walks down `W` with a stride of a whole row, which the
    /// hardware prefetchers follow poorly once `W` outgrows L2.
    const PREFETCH_ROWS: usize = 12;

    /// `R` rows of the output (`x` holds `R·k` values, `y` `R·m`): column
    /// blocks of 8 (two registers per row), then of 4, then single columns,
    /// or the same blocks from the last to the first if `reverse`.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA; `x.len() == R·k`, `w.len() == k·m`,
    /// `b.len() == m`, `y.len() == R·m`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn block<const R: usize>(
        x: &[f64],
        w: &[f64],
        b: &[f64],
        (k, m): (usize, usize),
        y: &mut [f64],
        reverse: bool,
    ) {
        debug_assert!(x.len() == R * k && w.len() == k * m && b.len() == m && y.len() == R * m);
        // Blocks in order: `wide` of 8 columns, `narrow` (0 or 1) of 4, then
        // `singles` single columns.
        let wide = m / 8;
        let narrow = (m % 8) / 4;
        let singles = m % 4;
        let steps = wide + narrow + singles;
        for s in 0..steps {
            let s = if reverse { steps - 1 - s } else { s };
            if s < wide {
                // SAFETY: columns 8s..8s + 8 are within every row.
                unsafe { panel::<R, 2>(x, w, b, (k, m), 8 * s, y) };
            } else if s < wide + narrow {
                // SAFETY: as above, for 4 columns.
                unsafe { panel::<R, 1>(x, w, b, (k, m), 8 * wide, y) };
            } else {
                let j = 8 * wide + 4 * narrow + (s - wide - narrow);
                for r in 0..R {
                    let mut acc = 0.0f64;
                    for p in 0..k {
                        acc = x[r * k + p].mul_add(w[p * m + j], acc);
                    }
                    y[r * m + j] = acc + b[j];
                }
            }
        }
    }

    /// Columns `j0 .. j0 + 4·V` of `R` rows, accumulated in `R·V` registers.
    ///
    /// # Safety
    /// As [`block`], and `j0 + 4·V <= m`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn panel<const R: usize, const V: usize>(
        x: &[f64],
        w: &[f64],
        b: &[f64],
        (k, m): (usize, usize),
        j0: usize,
        y: &mut [f64],
    ) {
        let mut acc: [[__m256d; V]; R] = [[_mm256_setzero_pd(); V]; R];
        let xp = x.as_ptr();
        let mut wp = w.as_ptr().wrapping_add(j0);
        for p in 0..k {
            // Prefetching is a hint and never faults, even past the end.
            let ahead = wp.wrapping_add(PREFETCH_ROWS * m).cast::<i8>();
            _mm_prefetch::<_MM_HINT_T0>(ahead);
            _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(4 * V * 8 - 1));
            // SAFETY: `p < k`, so row `p` of `w` (offset `p·m`) exists and
            // holds columns `j0 .. j0 + 4V`; `r·k + p < R·k = x.len()`.
            unsafe {
                let wv: [__m256d; V] = std::array::from_fn(|v| _mm256_loadu_pd(wp.add(4 * v)));
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let a = _mm256_set1_pd(*xp.add(r * k + p));
                    for (acc_rv, &wvv) in acc_r.iter_mut().zip(&wv) {
                        *acc_rv = _mm256_fmadd_pd(a, wvv, *acc_rv);
                    }
                }
            }
            wp = wp.wrapping_add(m);
        }
        for (r, acc_r) in acc.iter().enumerate() {
            for (v, &a) in acc_r.iter().enumerate() {
                let j = j0 + 4 * v;
                // SAFETY: `j + 4 <= m`, so `b[j..j + 4]` and row `r`'s
                // `y[r·m + j .. r·m + j + 4]` exist.
                unsafe {
                    let sum = _mm256_add_pd(a, _mm256_loadu_pd(b.as_ptr().add(j)));
                    _mm256_storeu_pd(y.as_mut_ptr().add(r * m + j), sum);
                }
            }
        }
    }
}

/// `a·b + c`, fused when the caller was compiled with FMA.
#[inline(always)]
fn madd<F: Float, const FMA: bool>(a: F, b: F, c: F) -> F {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// Dot product in eight interleaved partial sums (which the compiler keeps
/// in vector registers), added pairwise at the end, then the tail in order.
#[inline(always)]
fn dot_lanes<F: Float, const FMA: bool>(a: &[F], b: &[F]) -> F {
    const LANES: usize = 8;
    let mut acc = [F::zero(); LANES];
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (at, bt) = (ac.remainder(), bc.remainder());
    for (ca, cb) in ac.zip(bc) {
        for l in 0..LANES {
            acc[l] = madd::<F, FMA>(ca[l], cb[l], acc[l]);
        }
    }
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            acc[l] += acc[l + width];
        }
    }
    at.iter()
        .zip(bt)
        .fold(acc[0], |s, (&x, &y)| madd::<F, FMA>(x, y, s))
}

/// The two matrix products of an affine backward for a batch of at most
/// [`MAX_ROWS`] rows, all row-major and contiguous:
/// `dx (n, k) = d (n, m) · wᵀ` and `dw (k, m) = xᵀ · d`.
///
/// A general GEMM packs `w` (for `dx`) and the whole `(k, m)` output panel
/// (for `dw`, an inner dimension of only `n`) on every call; here each row of
/// `w` is read once, straight from the layer, for the `n` dot products it
/// takes part in, and each row of `dw` is written once as `Σ_r x_rp · d_r`.
/// Any float type; the loops are written for the compiler to vectorise, with
/// AVX2 and FMA when the CPU has them (detected at run time).
///
/// # Panics
/// If a slice's length does not match its shape (an internal invariant).
pub(crate) fn affine_backward_small<F: Float>(
    x: &[F],
    w: &[F],
    d: &[F],
    dims: (usize, usize, usize),
    dx: &mut [F],
    dw: &mut [F],
) {
    let (n, k, m) = dims;
    assert!(
        n <= MAX_ROWS
            && x.len() == n * k
            && w.len() == k * m
            && d.len() == n * m
            && dx.len() == n * k
            && dw.len() == k * m,
        "affine_backward_small: slice lengths do not match ({n}, {k})·({k}, {m})"
    );
    #[cfg(target_arch = "x86_64")]
    if has_kernel() {
        // SAFETY: the CPU has the instructions the function is compiled for.
        unsafe { backward_avx(x, w, d, dims, dx, dw) };
        return;
    }
    backward_body::<F, false>(x, w, d, dims, dx, dw);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn backward_avx<F: Float>(
    x: &[F],
    w: &[F],
    d: &[F],
    dims: (usize, usize, usize),
    dx: &mut [F],
    dw: &mut [F],
) {
    backward_body::<F, true>(x, w, d, dims, dx, dw);
}

#[inline(always)]
fn backward_body<F: Float, const FMA: bool>(
    x: &[F],
    w: &[F],
    d: &[F],
    (n, k, m): (usize, usize, usize),
    dx: &mut [F],
    dw: &mut [F],
) {
    if m == 0 {
        dx.fill(F::zero());
        return;
    }
    for (p, (w_row, dw_row)) in w.chunks_exact(m).zip(dw.chunks_exact_mut(m)).enumerate() {
        for r in 0..n {
            dx[r * k + p] = dot_lanes::<F, FMA>(w_row, &d[r * m..(r + 1) * m]);
        }
        match n {
            0 => dw_row.fill(F::zero()),
            _ => {
                let x0 = x[p];
                for (o, &g) in dw_row.iter_mut().zip(&d[..m]) {
                    *o = x0 * g;
                }
            }
        }
        for r in 1..n {
            let xr = x[r * k + p];
            for (o, &g) in dw_row.iter_mut().zip(&d[r * m..(r + 1) * m]) {
                *o = madd::<F, FMA>(xr, g, *o);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array2};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Runs `f(n, k, m, x (n, k), w (k, m), rng)` for every row count up to
    /// [`MAX_ROWS`] and every `(k, m)`, with entries uniform in `[-1, 1)`.
    fn for_each_case(
        seed: u64,
        shapes: &[(usize, usize)],
        mut f: impl FnMut((usize, usize, usize), &Array2<f64>, &Array2<f64>, &mut StdRng),
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        for n in 1..=MAX_ROWS {
            for &(k, m) in shapes {
                let x = Array2::from_shape_simple_fn((n, k), || rng.random_range(-1.0..1.0));
                let w = Array2::from_shape_simple_fn((k, m), || rng.random_range(-1.0..1.0));
                f((n, k, m), &x, &w, &mut rng);
            }
        }
    }

    /// Asserts `got ≈ want` elementwise within `tol`.
    fn assert_close<T: Copy + Into<f64>>(got: &[T], want: &Array2<f64>, tol: f64, what: &str) {
        for (i, (&g, &w)) in got.iter().zip(want.iter()).enumerate() {
            let g: f64 = g.into();
            assert!((g - w).abs() <= tol, "{what} element {i}: {g} vs {w}");
        }
    }

    #[test]
    fn backward_matches_the_general_products_at_every_small_shape() {
        let shapes = [
            (1, 1),
            (3, 7),
            (5, 8),
            (9, 10),
            (2, 17),
            (784, 100),
            (32, 0),
        ];
        for_each_case(11, &shapes, |(n, k, m), x, w, rng| {
            let d = Array2::from_shape_simple_fn((n, m), || rng.random_range(-1.0..1.0));
            let (want_dx, want_dw) = (d.dot(&w.t()), x.t().dot(&d));
            let what = format!("({n}, {k}, {m})");
            let mut dx = vec![f64::NAN; n * k];
            let mut dw = vec![f64::NAN; k * m];
            let s = |a: &Array2<f64>| a.as_slice().unwrap().to_vec();
            affine_backward_small(&s(x), &s(w), &s(&d), (n, k, m), &mut dx, &mut dw);
            let tol = 1e-13 * (m.max(n) as f64);
            assert_close(&dx, &want_dx, tol, &format!("dx {what}"));
            assert_close(&dw, &want_dw, tol, &format!("dw {what}"));
            // f32 takes the same path.
            let s32 = |a: &Array2<f64>| a.iter().map(|&v| v as f32).collect::<Vec<f32>>();
            let mut dx32 = vec![f32::NAN; n * k];
            let mut dw32 = vec![f32::NAN; k * m];
            affine_backward_small(&s32(x), &s32(w), &s32(&d), (n, k, m), &mut dx32, &mut dw32);
            let tol = 1e-5 * (m.max(n) as f64 + 1.0);
            assert_close(&dx32, &want_dx, tol, &format!("f32 dx {what}"));
            assert_close(&dw32, &want_dw, tol, &format!("f32 dw {what}"));
        });
    }

    #[test]
    fn matches_the_general_product_at_every_small_shape() {
        let mut computed = 0;
        let shapes = [
            (1, 1),
            (3, 7),
            (5, 8),
            (9, 10),
            (2, 13),
            (17, 16),
            (784, 100),
            (32, 10),
        ];
        for_each_case(7, &shapes, |(n, k, m), x, w, rng| {
            let b = Array1::from_shape_simple_fn(m, || rng.random_range(-1.0..1.0));
            let run = |reverse: bool| {
                let mut y = vec![f64::NAN; n * m];
                let done = affine_small(
                    x.as_slice().unwrap(),
                    w.as_slice().unwrap(),
                    b.as_slice().unwrap(),
                    (n, k, m),
                    &mut y,
                    reverse,
                );
                (done, y)
            };
            let (done, y) = run(false);
            if !done {
                assert!(y.iter().all(|v| v.is_nan()), "y written without the kernel");
                return;
            }
            computed += 1;
            let (_, y_reversed) = run(true);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&y),
                bits(&y_reversed),
                "({n}, {k})·({k}, {m}): the block order changed a result"
            );
            let want = x.dot(w) + &b;
            assert_close(
                &y,
                &want,
                1e-13 * k as f64,
                &format!("({n}, {k})·({k}, {m})"),
            );
        });
        if computed == 0 {
            eprintln!("notice: no AVX2+FMA on this CPU; the small-batch kernel is not used here");
        }
    }

    #[test]
    fn sums_each_output_in_order_of_p() {
        // With x = 1 everywhere and w_pj = 2^-p-ish values that round
        // differently when summed out of order, the result must equal the
        // sequential fused sum exactly.
        let (n, k, m) = (3, 40, 13);
        let x = vec![1.0f64; n * k];
        let w: Vec<f64> = (0..k * m)
            .map(|i| 1.0 + (i % 7) as f64 * 1e-16 + (i / m) as f64 * 1e3)
            .collect();
        let b: Vec<f64> = (0..m).map(|j| j as f64 * 0.5).collect();
        for reverse in [false, true] {
            let mut y = vec![0.0; n * m];
            if !affine_small(&x, &w, &b, (n, k, m), &mut y, reverse) {
                return;
            }
            for r in 0..n {
                for j in 0..m {
                    let mut acc = 0.0f64;
                    for p in 0..k {
                        acc = x[r * k + p].mul_add(w[p * m + j], acc);
                    }
                    assert_eq!(
                        y[r * m + j],
                        acc + b[j],
                        "row {r} column {j}, reverse {reverse}"
                    );
                }
            }
        }
    }
}
