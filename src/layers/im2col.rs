//! `im2col` / `col2im`: the rearrangement that turns a convolution into one
//! matrix product.
//!
//! For an input `x (N, C, H, W)`, a kernel `(FH, FW)`, a stride `S` and a
//! zero padding `P`, the output size is
//! `OH = ⌊(H + 2P − FH) / S⌋ + 1`, `OW = ⌊(W + 2P − FW) / S⌋ + 1`
//! (rows or columns a window does not reach at the far edge are ignored, as
//! in PyTorch). `im2col` gives the matrix `col (N·OH·OW, C·FH·FW)` whose row
//! `(n, oh, ow)` (row-major) is the window at output position `(oh, ow)` of
//! sample `n`, flattened in `(c, fh, fw)` order; padded positions are 0.
//!
//! `col2im` is its **adjoint** (transpose), not its inverse: it adds each
//! entry of a `(N·OH·OW, C·FH·FW)` matrix back onto the input position it was
//! copied from, so an input element covered by several windows receives the
//! sum. That is exactly the backward of `im2col`, which is why a convolution's
//! `dx = col2im(dcol)`. Entries from padded positions are dropped.

use crate::error::{Error, Result, Shape};
use crate::float::Float;
use ndarray::{Array2, Array4, ArrayView2, ArrayView4};

/// The geometry of a sliding window over an `(N, C, H, W)` input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Kernel height `FH`.
    pub fh: usize,
    /// Kernel width `FW`.
    pub fw: usize,
    /// Stride `S` (the same in both directions).
    pub stride: usize,
    /// Zero padding `P` on every side.
    pub pad: usize,
}

impl Window {
    /// A window, **erroring** with [`Error::Config`] if the kernel is empty
    /// or the stride is 0 (`op` names the layer in the message).
    pub fn new(op: &str, fh: usize, fw: usize, stride: usize, pad: usize) -> Result<Self> {
        if fh == 0 || fw == 0 {
            return Err(Error::Config(format!(
                "{op}: the kernel must be at least 1 x 1, got {fh} x {fw}"
            )));
        }
        if stride == 0 {
            return Err(Error::Config(format!(
                "{op}: stride must be at least 1, got 0"
            )));
        }
        Ok(Window {
            fh,
            fw,
            stride,
            pad,
        })
    }

    /// `(OH, OW)` for an input of spatial size `(h, w)`.
    ///
    /// **Errors** with [`Error::BadShape`] (naming `op` and the input's
    /// `shape`) if the kernel is larger than the padded input.
    pub fn output_size(
        &self,
        op: &str,
        shape: &[usize],
        h: usize,
        w: usize,
    ) -> Result<(usize, usize)> {
        let (hp, wp) = (h + 2 * self.pad, w + 2 * self.pad);
        if hp < self.fh || wp < self.fw {
            return Err(Error::BadShape {
                op: op.into(),
                input: 0,
                got: Shape::of(shape),
                expected: format!(
                    "a padded spatial size (H + 2·{p}, W + 2·{p}) = ({hp}, {wp}) at least the kernel's ({}, {})",
                    self.fh,
                    self.fw,
                    p = self.pad
                ),
            });
        }
        Ok((
            (hp - self.fh) / self.stride + 1,
            (wp - self.fw) / self.stride + 1,
        ))
    }

    /// For each of `outs` window positions along one axis (kernel size `k`,
    /// input size `size`), the half-open range of input indices the window
    /// covers outside the padding: the `i` with [`Window::source`]`(out, u,
    /// size) == Some(i)` for some `u < k`. Never empty for a window whose
    /// padding is smaller than `k` and that fits the padded input.
    pub(crate) fn spans(&self, outs: usize, k: usize, size: usize) -> Vec<(usize, usize)> {
        (0..outs)
            .map(|o| {
                let start = o * self.stride;
                (
                    start.max(self.pad) - self.pad,
                    ((start + k).min(size + self.pad)).saturating_sub(self.pad),
                )
            })
            .collect()
    }

    /// The input row (or column) a window position reads, `None` in the padding.
    #[inline]
    pub(crate) fn source(&self, out: usize, k: usize, size: usize) -> Option<usize> {
        (out * self.stride + k)
            .checked_sub(self.pad)
            .filter(|&i| i < size)
    }
}

/// Checks that `x` has rank 4 and returns its shape.
pub(crate) fn expect_nchw(op: &str, shape: &[usize]) -> Result<[usize; 4]> {
    match *shape {
        [n, c, h, w] => {
            if n == 0 || c == 0 || h == 0 || w == 0 {
                Err(Error::EmptyBatch {
                    op: op.into(),
                    shape: Shape::of(shape),
                })
            } else {
                Ok([n, c, h, w])
            }
        }
        _ => Err(Error::BadShape {
            op: op.into(),
            input: 0,
            got: Shape::of(shape),
            expected: "rank 4 (N, C, H, W)".into(),
        }),
    }
}

/// Calls `f(r, k, [n, c, iy, ix])` for every kernel tap that lands inside
/// the `(N, C, H, W)` input (padding skipped): row `r` of the column matrix
/// is window `(n, oy, ox)` of an `(OH, OW)` output, and column `k` the tap
/// `(c, ky, kx)`, both in row-major order.
fn for_each_tap(
    [n, c, h, w]: [usize; 4],
    (oh, ow): (usize, usize),
    win: &Window,
    mut f: impl FnMut(usize, usize, [usize; 4]),
) {
    for r in 0..n * oh * ow {
        let (ni, rest) = (r / (oh * ow), r % (oh * ow));
        let (oy, ox) = (rest / ow, rest % ow);
        for ci in 0..c {
            for ky in 0..win.fh {
                let Some(iy) = win.source(oy, ky, h) else {
                    continue;
                };
                for kx in 0..win.fw {
                    if let Some(ix) = win.source(ox, kx, w) {
                        f(r, (ci * win.fh + ky) * win.fw + kx, [ni, ci, iy, ix]);
                    }
                }
            }
        }
    }
}

/// The windows of `x (N, C, H, W)` as rows of `(N·OH·OW, C·FH·FW)`.
///
/// **Errors** as [`Window::output_size`].
pub fn im2col<F: Float>(x: ArrayView4<'_, F>, win: &Window) -> Result<Array2<F>> {
    let (n, c, h, w) = x.dim();
    let (oh, ow) = win.output_size("im2col", x.shape(), h, w)?;
    let cols = c * win.fh * win.fw;
    let mut col = Array2::zeros((n * oh * ow, cols));
    for_each_tap([n, c, h, w], (oh, ow), win, |r, k, at| col[[r, k]] = x[at]);
    Ok(col)
}

/// The adjoint of [`im2col`]: sums each entry of `col (N·OH·OW, C·FH·FW)`
/// onto the input position of `x_shape = (N, C, H, W)` it came from.
///
/// **Errors** as [`Window::output_size`], and with [`Error::ShapeMismatch`]
/// if `col` is not `(N·OH·OW, C·FH·FW)`.
pub fn col2im<F: Float>(
    col: ArrayView2<'_, F>,
    x_shape: [usize; 4],
    win: &Window,
) -> Result<Array4<F>> {
    let [n, c, h, w] = x_shape;
    let (oh, ow) = win.output_size("col2im", &x_shape, h, w)?;
    let want = (n * oh * ow, c * win.fh * win.fw);
    if col.dim() != want {
        return Err(Error::ShapeMismatch {
            op: "col2im".into(),
            lhs: Shape::of(col.shape()),
            rhs: Shape::of(&x_shape),
            detail: format!(
                "col must be (N·OH·OW, C·FH·FW) = ({}, {}) for this input and window",
                want.0, want.1
            ),
        });
    }
    let mut x = Array4::zeros((n, c, h, w));
    for_each_tap(x_shape, (oh, ow), win, |r, k, at| x[at] += col[[r, k]]);
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array, arr2};

    /// `spans` is exactly the set of in-bounds `source`s, for every window
    /// geometry a layer accepts (padding below the kernel, window within the
    /// padded input) up to kernel 4, stride 3, input 7.
    #[test]
    fn spans_are_the_in_bounds_sources() {
        let mut geometries = 0;
        for (k, stride, size) in
            (1..=4).flat_map(|k| (1..=3).flat_map(move |s| (1..=7).map(move |n| (k, s, n))))
        {
            for pad in 0..k {
                if size + 2 * pad < k {
                    continue;
                }
                let win = Window::new("t", k, k, stride, pad).unwrap();
                let outs = (size + 2 * pad - k) / stride + 1;
                let spans = win.spans(outs, k, size);
                assert_eq!(spans.len(), outs);
                for (o, &(lo, hi)) in spans.iter().enumerate() {
                    let want: Vec<usize> = (0..k).filter_map(|u| win.source(o, u, size)).collect();
                    assert_eq!(
                        (lo..hi).collect::<Vec<_>>(),
                        want,
                        "{win:?} size {size} out {o}"
                    );
                    assert!(lo < hi, "{win:?} size {size} out {o}: empty");
                }
                geometries += 1;
            }
        }
        assert!(geometries > 100, "{geometries}");
    }

    #[test]
    fn im2col_hand_example_with_padding() {
        // x = [[1, 2], [3, 4]], 2x2 kernel, stride 1, pad 1: 3x3 windows.
        let x = Array::from_shape_vec((1, 1, 2, 2), vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let win = Window::new("t", 2, 2, 1, 1).unwrap();
        let col = im2col(x.view(), &win).unwrap();
        assert_eq!(col.dim(), (9, 4));
        assert_eq!(col.row(0).to_vec(), vec![0.0, 0.0, 0.0, 1.0]);
        assert_eq!(col.row(4).to_vec(), vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(col.row(8).to_vec(), vec![4.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn output_size_floors_and_stride_skips() {
        let win = Window::new("t", 3, 2, 2, 0).unwrap();
        // H = 8: (8 − 3) / 2 + 1 = 3; W = 5: (5 − 2) / 2 + 1 = 2.
        assert_eq!(win.output_size("t", &[1, 1, 8, 5], 8, 5).unwrap(), (3, 2));
        let x = Array::from_shape_fn((2, 2, 8, 5), |(n, c, h, w)| {
            (n * 1000 + c * 100 + h * 10 + w) as f64
        });
        let col = im2col(x.view(), &win).unwrap();
        assert_eq!(col.dim(), (2 * 3 * 2, 2 * 3 * 2));
        // Sample 1, output (2, 1), channel 1, kernel (2, 0): x[1, 1, 2·2 + 2, 1·2 + 0].
        let r = (3 + 2) * 2 + 1;
        assert_eq!(col[[r, (3 + 2) * 2]], x[[1, 1, 6, 2]]);
    }

    /// col2im is the adjoint: ⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩ for all x, c.
    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        for (fh, fw, s, p) in [(3, 3, 1, 1), (2, 3, 2, 0), (3, 2, 3, 2), (1, 1, 1, 0)] {
            let win = Window::new("t", fh, fw, s, p).unwrap();
            let shape = [2, 3, 5, 6];
            let x = Array::from_shape_fn(shape, |(a, b, c, d)| {
                ((a * 31 + b * 17 + c * 5 + d * 3) % 13) as f64 - 6.0
            });
            let col = im2col(x.view(), &win).unwrap();
            let cm = Array::from_shape_fn(col.dim(), |(i, j)| ((i * 7 + j * 11) % 9) as f64 - 4.0);
            let back = col2im(cm.view(), shape, &win).unwrap();
            let lhs = (&col * &cm).sum();
            let rhs = (&x * &back).sum();
            assert_eq!(lhs, rhs, "{fh}x{fw} s{s} p{p}");
        }
    }

    #[test]
    fn col2im_sums_overlaps() {
        // 1x3 input, 1x2 kernel, stride 1: the middle element is in two windows.
        let win = Window::new("t", 1, 2, 1, 0).unwrap();
        let back = col2im(arr2(&[[1.0, 2.0], [3.0, 4.0]]).view(), [1, 1, 1, 3], &win).unwrap();
        assert_eq!(back.into_raw_vec_and_offset().0, vec![1.0, 5.0, 4.0]);
    }

    #[test]
    fn errors() {
        assert!(matches!(
            Window::new("Conv", 3, 3, 0, 0),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            Window::new("Conv", 0, 3, 1, 0),
            Err(Error::Config(_))
        ));
        let win = Window::new("t", 3, 3, 1, 0).unwrap();
        let x = Array4::<f64>::zeros((1, 1, 2, 5));
        let e = im2col(x.view(), &win).unwrap_err();
        assert_eq!(
            e.to_string(),
            "im2col: input 0 has shape (1, 1, 2, 5), expected a padded spatial size (H + 2·0, W + 2·0) = (2, 5) at least the kernel's (3, 3)"
        );
        let e = col2im(Array2::<f64>::zeros((2, 9)).view(), [1, 1, 3, 3], &win).unwrap_err();
        assert!(matches!(e, Error::ShapeMismatch { .. }), "{e}");
        assert!(matches!(
            expect_nchw("t", &[1, 2, 3]),
            Err(Error::BadShape { .. })
        ));
        assert!(matches!(
            expect_nchw("t", &[0, 2, 3, 3]),
            Err(Error::EmptyBatch { .. })
        ));
    }
}
