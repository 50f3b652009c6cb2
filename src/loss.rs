//! Loss functions: `softmax`, `cross_entropy_error`, `mean_squared_error`,
//! the [`MeanSquaredError`] loss layer, and the one label validator every
//! classification loss shares ([`class_indices`]).
//!
//! # Labels
//! Labels are float arrays in one of two forms:
//! - class indices, shape `(N,)`, each an integral value in `0..C`;
//! - one-hot rows, shape `(N, C)`, each row exactly one `1` and zeros elsewhere.
//!
//! For a single unbatched sample (`y` of shape `(C,)`), [`promote_labels`]
//! also accepts a 0-d index or a one-hot vector `(C,)`, as the tutorial's
//! `cross_entropy_error` does (`t.size == y.size` means one-hot). With `C = 1`
//! a 1-element label is therefore read as one-hot.

use crate::error::{Error, Result, Shape};
use crate::float::Float;
use crate::layer::Layer;
use crate::layers::{expect_dout_shape, expect_inputs, expect_same_shape};
use ndarray::{Array1, Array2, ArrayD, ArrayView2, ArrayViewD, Axis, Ix1, Ix2, IxDyn, Zip};

/// The guard the tutorial adds inside the log of [`cross_entropy_error`]:
/// `-Σ ln(y + 1e-7)` keeps a predicted probability of exactly 0 from giving
/// `ln 0 = -inf`. It biases the loss slightly (by at most `1e-7 / y` per
/// sample), which is harmless for reporting but makes it differ from the
/// exact derivative; the [`crate::layers::SoftmaxWithLoss`] layer therefore
/// uses log-sum-exp instead.
pub const CROSS_ENTROPY_DELTA: f64 = 1e-7;

/// Validates labels for a batch of `batch` samples over `classes` classes
/// and returns them as class indices.
///
/// Accepts class indices `(batch,)` or one-hot rows `(batch, classes)`.
///
/// **Errors**
/// - [`Error::BadShape`] if `t` is neither 1-D nor 2-D, or one-hot rows have
///   a length other than `classes`;
/// - [`Error::LabelCount`] if there are not `batch` labels;
/// - [`Error::InvalidLabels`] for NaN, infinite or non-integral indices, or
///   one-hot rows that are not exactly one `1` and zeros;
/// - [`Error::LabelOutOfRange`] for a negative index or one `>= classes`.
pub fn class_indices<F: Float>(
    op: &str,
    t: ArrayViewD<'_, F>,
    batch: usize,
    classes: usize,
) -> Result<Vec<usize>> {
    match t.ndim() {
        1 => {
            if t.len() != batch {
                return Err(Error::LabelCount {
                    op: op.into(),
                    expected: batch,
                    got: t.len(),
                });
            }
            t.iter()
                .enumerate()
                .map(|(index, &v)| {
                    let v = v.f64();
                    if !v.is_finite() || v.fract() != 0.0 {
                        return Err(Error::InvalidLabels {
                            op: op.into(),
                            detail: format!(
                                "class index {v} at position {index} is not an integer"
                            ),
                        });
                    }
                    if v < 0.0 || v >= classes as f64 {
                        return Err(Error::LabelOutOfRange {
                            op: op.into(),
                            index,
                            label: v,
                            classes,
                        });
                    }
                    Ok(v as usize)
                })
                .collect()
        }
        2 => {
            let (rows, cols) = (t.shape()[0], t.shape()[1]);
            if rows != batch {
                return Err(Error::LabelCount {
                    op: op.into(),
                    expected: batch,
                    got: rows,
                });
            }
            if cols != classes {
                return Err(Error::BadShape {
                    op: op.into(),
                    input: 1,
                    got: Shape::of(t.shape()),
                    expected: format!("one-hot labels ({batch}, {classes})"),
                });
            }
            t.outer_iter()
                .enumerate()
                .map(|(index, row)| {
                    let ones = row.iter().filter(|&&v| v == F::one()).count();
                    let zeros = row.iter().filter(|&&v| v == F::zero()).count();
                    if ones != 1 || ones + zeros != classes {
                        return Err(Error::InvalidLabels {
                            op: op.into(),
                            detail: format!(
                                "row {index} is not one-hot (expected exactly one 1 and {} zeros)",
                                classes - 1
                            ),
                        });
                    }
                    Ok(row
                        .iter()
                        .position(|&v| v == F::one())
                        .expect("a one-hot row has a 1"))
                })
                .collect()
        }
        _ => Err(Error::BadShape {
            op: op.into(),
            input: 1,
            got: Shape::of(t.shape()),
            expected: format!("class indices ({batch},) or one-hot labels ({batch}, {classes})"),
        }),
    }
}

/// Reshapes the labels of one unbatched sample (predictions of shape
/// `(classes,)`) to batch form: a 0-d index becomes `(1,)`, a one-hot vector
/// `(classes,)` becomes `(1, classes)`; anything else is returned unchanged
/// (and [`class_indices`] will report what is wrong with it).
pub fn promote_labels<'a, F: Float>(t: ArrayViewD<'a, F>, classes: usize) -> ArrayViewD<'a, F> {
    match t.ndim() {
        // `insert_axis` keeps the strides, so a strided or reversed view
        // works too (`into_shape_with_order` fails on those).
        0 => t.insert_axis(Axis(0)),
        1 if t.len() == classes => t.insert_axis(Axis(0)),
        _ => t,
    }
}

/// Scores `y` (`(N, C)`, or a single sample `(C,)` promoted to a batch of 1)
/// as a batch, with the class index of each row from labels `t` (class
/// indices or one-hot; a single sample's labels are promoted with it, see
/// [`promote_labels`]).
///
/// **Errors** as [`as_batch`], then as [`class_indices`].
pub(crate) fn labelled_batch<'a, F: Float>(
    op: &str,
    y: ArrayViewD<'a, F>,
    t: ArrayViewD<'_, F>,
) -> Result<(ArrayView2<'a, F>, Vec<usize>)> {
    let t = if y.ndim() == 1 {
        promote_labels(t, y.len())
    } else {
        t
    };
    let y2 = as_batch(op, y)?;
    let (n, c) = y2.dim();
    let labels = class_indices(op, t, n, c)?;
    Ok((y2, labels))
}

/// Views `x` as a batch `(N, C)`: 2-D as is, 1-D `(C,)` as `(1, C)`.
///
/// **Errors** with [`Error::BadShape`] for other ranks and
/// [`Error::EmptyBatch`] if `N` or `C` is 0.
pub(crate) fn as_batch<'a, F: Float>(op: &str, x: ArrayViewD<'a, F>) -> Result<ArrayView2<'a, F>> {
    let shape = Shape::of(x.shape());
    let x2 = match x.ndim() {
        // A new leading axis rather than a reshape: works for any strides.
        1 => x
            .into_dimensionality::<Ix1>()
            .expect("rank checked")
            .insert_axis(Axis(0)),
        2 => x.into_dimensionality::<Ix2>().expect("rank checked"),
        _ => {
            return Err(Error::BadShape {
                op: op.into(),
                input: 0,
                got: shape,
                expected: "a 1-D (C,) or 2-D (N, C) array".into(),
            });
        }
    };
    if x2.is_empty() {
        return Err(Error::EmptyBatch {
            op: op.into(),
            shape,
        });
    }
    Ok(x2)
}

/// Row-wise softmax of a non-empty batch, returned together with each row's
/// log-sum-exp `m + ln Σ exp(x - m)` (`m` the row max).
pub(crate) fn softmax_rows<F: Float>(x: ArrayView2<'_, F>) -> (Array2<F>, Array1<F>, Array1<F>) {
    // Standard layout whatever `x`'s strides, so callers can reshape `y`
    // (`to_owned` would keep a column-major or reversed layout).
    let mut y = x.as_standard_layout().into_owned();
    let mut max = Array1::zeros(x.nrows());
    let mut log_sum = Array1::zeros(x.nrows());
    for ((mut row, m_out), l_out) in y
        .outer_iter_mut()
        .zip(max.iter_mut())
        .zip(log_sum.iter_mut())
    {
        let m = row.fold(F::neg_infinity(), |a, &b| a.max(b));
        row.mapv_inplace(|v| (v - m).exp());
        let s = row.sum();
        row.mapv_inplace(|v| v / s);
        *m_out = m;
        *l_out = s.ln();
    }
    (y, max, log_sum)
}

/// Softmax `exp(x_i - max) / Σ_j exp(x_j - max)`, over a 1-D vector or each
/// row of a 2-D batch. Subtracting the row maximum keeps `exp` from
/// overflowing; logits of `±1e4` are fine.
///
/// **Errors** with [`Error::BadShape`] for ranks other than 1 and 2, and
/// [`Error::EmptyBatch`] for an input with no elements.
pub fn softmax<F: Float>(x: ArrayViewD<'_, F>) -> Result<ArrayD<F>> {
    let shape = x.raw_dim();
    let x2 = as_batch("softmax", x)?;
    let (y, _, _) = softmax_rows(x2);
    Ok(y.into_shape_with_order(shape).expect("same element count"))
}

/// Cross-entropy of probabilities `y` against labels `t`, averaged over the
/// batch: `-(1/N) Σ_n ln(y[n, t_n] + 1e-7)` (see [`CROSS_ENTROPY_DELTA`]).
///
/// `y` is `(N, C)` or a single sample `(C,)` (promoted to a batch of 1, as
/// in the tutorial); `t` is class indices or one-hot rows (converted to
/// indices), see [`class_indices`] and [`promote_labels`].
///
/// **Errors** as [`class_indices`], plus [`Error::BadShape`] for a `y` that
/// is not 1-D or 2-D and [`Error::EmptyBatch`] for an empty `y`.
pub fn cross_entropy_error<F: Float>(y: ArrayViewD<'_, F>, t: ArrayViewD<'_, F>) -> Result<F> {
    let (y2, labels) = labelled_batch("cross_entropy_error", y, t)?;
    let n = y2.nrows();
    let delta = F::of(CROSS_ENTROPY_DELTA);
    let total: F = labels
        .iter()
        .enumerate()
        .map(|(i, &k)| -(y2[[i, k]] + delta).ln())
        .sum();
    Ok(total / F::of(n as f64))
}

/// Sum-of-squares error `0.5 * Σ (y - t)²` (not averaged, as in the
/// tutorial, whose `np.sum((pred_y, true_y)**2)` squared a tuple instead of
/// the difference).
///
/// **Errors** with [`Error::ShapeMismatch`] if `y` and `t` differ in shape and
/// [`Error::EmptyBatch`] if they have no elements.
pub fn mean_squared_error<F: Float>(y: ArrayViewD<'_, F>, t: ArrayViewD<'_, F>) -> Result<F> {
    const OP: &str = "mean_squared_error";
    expect_same_shape(OP, &y, &t)?;
    if y.is_empty() {
        return Err(Error::EmptyBatch {
            op: OP.into(),
            shape: Shape::of(y.shape()),
        });
    }
    let total: F = Zip::from(&y)
        .and(&t)
        .fold(F::zero(), |acc, &a, &b| acc + (a - b) * (a - b));
    Ok(F::of(0.5) * total)
}

/// [`mean_squared_error`] as a loss layer: inputs `(y, t)` of the same shape,
/// only `y` differentiable; output the 0-d loss `0.5 * Σ (y - t)²`;
/// backward `dy = dout * (y - t)` for a 0-d `dout`.
#[derive(Debug, Clone, Default)]
pub struct MeanSquaredError<F> {
    diff: Option<ArrayD<F>>,
}

impl<F: Float> MeanSquaredError<F> {
    /// A new layer with an empty cache.
    pub fn new() -> Self {
        MeanSquaredError { diff: None }
    }
}

impl<F: Float> Layer<F> for MeanSquaredError<F> {
    fn name(&self) -> String {
        "MeanSquaredError".into()
    }

    fn num_inputs(&self) -> usize {
        2
    }

    fn num_differentiable(&self) -> usize {
        1
    }

    fn forward(&mut self, inputs: &[ArrayViewD<'_, F>]) -> Result<ArrayD<F>> {
        const OP: &str = "MeanSquaredError.forward";
        self.diff = None;
        expect_inputs(OP, inputs, 2)?;
        let (y, t) = (&inputs[0], &inputs[1]);
        expect_same_shape(OP, y, t)?;
        if y.is_empty() {
            return Err(Error::EmptyBatch {
                op: OP.into(),
                shape: Shape::of(y.shape()),
            });
        }
        let diff = y - t;
        let loss = F::of(0.5) * diff.iter().map(|&d| d * d).sum::<F>();
        self.diff = Some(diff);
        Ok(ArrayD::from_elem(IxDyn(&[]), loss))
    }

    fn backward(&mut self, dout: ArrayViewD<'_, F>) -> Result<Vec<ArrayD<F>>> {
        const OP: &str = "MeanSquaredError.backward";
        let diff = self
            .diff
            .as_ref()
            .ok_or_else(|| Error::BackwardBeforeForward { op: OP.into() })?;
        expect_dout_shape(OP, &[], dout.shape())?;
        let d = dout.iter().next().copied().expect("0-d has one element");
        Ok(vec![diff.mapv(|v| d * v)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use ndarray::{arr0, arr1, arr2};

    #[test]
    fn class_indices_accepts_both_forms() {
        let idx = arr1(&[2.0, 0.0, 1.0]).into_dyn();
        assert_eq!(class_indices("t", idx.view(), 3, 3).unwrap(), vec![2, 0, 1]);
        let oh = arr2(&[[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).into_dyn();
        assert_eq!(class_indices("t", oh.view(), 3, 3).unwrap(), vec![2, 0, 1]);
    }

    #[test]
    fn class_indices_rejects_bad_labels() {
        let e = class_indices("op", arr1(&[0.0, 1.0]).into_dyn().view(), 3, 3).unwrap_err();
        assert!(
            matches!(
                e,
                Error::LabelCount {
                    expected: 3,
                    got: 2,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(e.to_string(), "op: 2 label(s) for a batch of 3");

        let e = class_indices("op", arr1(&[0.0, 3.0]).into_dyn().view(), 2, 3).unwrap_err();
        assert_eq!(
            e.to_string(),
            "op: label 3 at position 1 is out of range 0..3"
        );
        let e = class_indices("op", arr1(&[-1.0, 0.0]).into_dyn().view(), 2, 3).unwrap_err();
        assert!(matches!(e, Error::LabelOutOfRange { index: 0, .. }), "{e}");
        for bad in [0.5, f64::NAN, f64::INFINITY] {
            let e = class_indices("op", arr1(&[0.0, bad]).into_dyn().view(), 2, 3).unwrap_err();
            assert!(matches!(e, Error::InvalidLabels { .. }), "{bad}: {e}");
        }
        // One-hot rows with two ones, no one, or a 0.5.
        for row in [[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.5, 0.5, 1.0]] {
            let t = arr2(&[[1.0, 0.0, 0.0], row]).into_dyn();
            let e = class_indices("op", t.view(), 2, 3).unwrap_err();
            assert!(matches!(e, Error::InvalidLabels { .. }), "{row:?}: {e}");
            assert!(e.to_string().contains("row 1 is not one-hot"), "{e}");
        }
        let e = class_indices("op", arr2(&[[1.0, 0.0]]).into_dyn().view(), 1, 3).unwrap_err();
        assert!(matches!(e, Error::BadShape { .. }), "{e}");
        let e = class_indices("op", arr2(&[[1.0, 0.0, 0.0]]).into_dyn().view(), 2, 3).unwrap_err();
        assert!(matches!(e, Error::LabelCount { got: 1, .. }), "{e}");
        let e = class_indices("op", arr0(1.0).into_dyn().view(), 1, 3).unwrap_err();
        assert!(matches!(e, Error::BadShape { .. }), "{e}");
    }

    #[test]
    fn softmax_rows_sum_to_one_and_survive_huge_logits() {
        let x = arr2(&[[1.0, 2.0, 3.0], [1e4, -1e4, 0.0]]).into_dyn();
        let y = softmax(x.view()).unwrap();
        assert_eq!(y.shape(), &[2, 3]);
        for row in y.outer_iter() {
            assert_abs_diff_eq!(row.sum(), 1.0, epsilon = 1e-12);
        }
        let e: f64 = [1.0f64, 2.0, 3.0].iter().map(|v| v.exp()).sum();
        assert_abs_diff_eq!(y[[0, 0]], 1f64.exp() / e, epsilon = 1e-15);
        assert_abs_diff_eq!(y[[1, 0]], 1.0);
        assert!(y.iter().all(|v| v.is_finite()));
        let v = softmax(arr1(&[0.0f32, 0.0]).into_dyn().view()).unwrap();
        assert_eq!(v.shape(), &[2]);
        assert_abs_diff_eq!(v[0], 0.5);
    }

    #[test]
    fn softmax_rejects_bad_shapes() {
        let e = softmax(ArrayD::<f64>::zeros(IxDyn(&[0, 3])).view()).unwrap_err();
        assert!(matches!(e, Error::EmptyBatch { .. }), "{e}");
        assert_eq!(e.to_string(), "softmax: empty batch (input shape (0, 3))");
        let e = softmax(ArrayD::<f64>::zeros(IxDyn(&[1, 2, 3])).view()).unwrap_err();
        assert!(matches!(e, Error::BadShape { .. }), "{e}");
    }

    #[test]
    fn cross_entropy_hand_values_both_label_forms() {
        let y = arr2(&[[0.1, 0.6, 0.3], [0.8, 0.1, 0.1]]).into_dyn();
        let want = -((0.6f64 + 1e-7).ln() + (0.8f64 + 1e-7).ln()) / 2.0;
        let idx = arr1(&[1.0, 0.0]).into_dyn();
        let oh = arr2(&[[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]).into_dyn();
        assert_abs_diff_eq!(
            cross_entropy_error(y.view(), idx.view()).unwrap(),
            want,
            epsilon = 1e-15
        );
        assert_abs_diff_eq!(
            cross_entropy_error(y.view(), oh.view()).unwrap(),
            want,
            epsilon = 1e-15
        );
        // A zero probability gives the finite -ln(1e-7) thanks to the guard.
        let y0 = arr1(&[0.0, 1.0]).into_dyn();
        let l = cross_entropy_error(y0.view(), arr0(0.0).into_dyn().view()).unwrap();
        assert_abs_diff_eq!(l, -(1e-7f64).ln(), epsilon = 1e-9);
    }

    #[test]
    fn cross_entropy_promotes_a_single_sample() {
        let y = arr1(&[0.1, 0.6, 0.3]).into_dyn();
        let want = -(0.6f64 + 1e-7).ln();
        for t in [
            arr1(&[0.0, 1.0, 0.0]).into_dyn(),
            arr0(1.0).into_dyn(),
            arr1(&[1.0]).into_dyn(),
        ] {
            let l = cross_entropy_error(y.view(), t.view()).unwrap();
            assert_abs_diff_eq!(l, want, epsilon = 1e-15);
        }
        let e = cross_entropy_error(y.view(), arr1(&[1.0, 2.0]).into_dyn().view()).unwrap_err();
        assert!(matches!(e, Error::LabelCount { .. }), "{e}");
    }

    #[test]
    fn mse_hand_value_and_errors() {
        // The tutorial's example: y = softmax-like outputs, t one-hot on class 2.
        let y = arr1(&[0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0]).into_dyn();
        let mut t = ArrayD::zeros(IxDyn(&[10]));
        t[2] = 1.0;
        let l = mean_squared_error(y.view(), t.view()).unwrap();
        assert_abs_diff_eq!(l, 0.0975, epsilon = 1e-15);
        let e = mean_squared_error(y.view(), arr1(&[1.0]).into_dyn().view()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "mean_squared_error: shapes (10,) and (1,) not aligned: element-wise operands must have the same shape (no broadcasting)"
        );
        let z = ArrayD::<f64>::zeros(IxDyn(&[0]));
        let e = mean_squared_error(z.view(), z.view()).unwrap_err();
        assert!(matches!(e, Error::EmptyBatch { .. }), "{e}");
    }

    #[test]
    fn mse_layer_forward_backward() {
        let mut l = MeanSquaredError::<f64>::new();
        let y = arr2(&[[1.0, 2.0], [3.0, 4.0]]).into_dyn();
        let t = arr2(&[[0.0, 2.0], [1.0, 5.0]]).into_dyn();
        let out = l.forward(&[y.view(), t.view()]).unwrap();
        assert_eq!(out.shape(), &[] as &[usize]);
        assert_abs_diff_eq!(out[[]], 0.5 * (1.0 + 0.0 + 4.0 + 1.0));
        let g = l.backward(arr0(3.0).into_dyn().view()).unwrap();
        assert_eq!(g.len(), 1);
        assert_eq!(g[0], arr2(&[[3.0, 0.0], [6.0, -3.0]]).into_dyn());
    }

    #[test]
    fn mse_layer_errors() {
        let mut l = MeanSquaredError::<f64>::new();
        let e = l.backward(arr0(1.0).into_dyn().view()).unwrap_err();
        assert!(matches!(e, Error::BackwardBeforeForward { .. }), "{e}");
        let y = arr1(&[1.0, 2.0]).into_dyn();
        let e = l.forward(&[y.view()]).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InputCount {
                    expected: 2,
                    got: 1,
                    ..
                }
            ),
            "{e}"
        );
        let e = l
            .forward(&[y.view(), arr1(&[1.0]).into_dyn().view()])
            .unwrap_err();
        assert!(matches!(e, Error::ShapeMismatch { .. }), "{e}");
        l.forward(&[y.view(), y.view()]).unwrap();
        let e = l.backward(arr1(&[1.0]).into_dyn().view()).unwrap_err();
        assert!(matches!(e, Error::DoutShape { .. }), "{e}");
        // A failed forward clears the cache.
        let _ = l.forward(&[y.view()]);
        let e = l.backward(arr0(1.0).into_dyn().view()).unwrap_err();
        assert!(matches!(e, Error::BackwardBeforeForward { .. }), "{e}");
    }
}
