//! What the training loop needs from a dataset: [`Examples`].
//!
//! Images stay `u8`; a batch is scaled to `[0, 1]` (`p / 255`) into a buffer
//! the loop allocates once and reuses, so no float copy of the whole set is
//! ever held. [`U8Examples`] is a small in-memory implementation (for
//! synthetic data, tests, or a user's own arrays).

use crate::error::{Error, Result, Shape};
use crate::float::Float;
use ndarray::ArrayViewMut2;

/// A labelled set of examples the training loop can draw batches from.
pub trait Examples {
    /// Number of examples.
    fn len(&self) -> usize;

    /// `true` if there are no examples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Features per example (784 for 28×28 images): the model's input size.
    fn features(&self) -> usize;

    /// Number of classes; labels are in `0..num_classes()`. Defaults to 10.
    fn num_classes(&self) -> usize {
        10
    }

    /// Writes the examples at `indices`, scaled to `[0, 1]`, into the rows of
    /// `out` (shape `(indices.len(), features())`) and replaces the contents
    /// of `labels` with theirs.
    ///
    /// **Errors** if an index is `>= len()` or `out` has the wrong shape.
    fn fill_batch<F: Float>(
        &self,
        indices: &[usize],
        out: ArrayViewMut2<'_, F>,
        labels: &mut Vec<usize>,
    ) -> Result<()>;
}

/// Examples held in memory as `u8` rows of `features` pixels each, with one
/// `u8` label per row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct U8Examples {
    features: usize,
    classes: usize,
    pixels: Vec<u8>,
    labels: Vec<u8>,
}

impl U8Examples {
    /// Wraps `pixels` (row-major, `labels.len() * features` bytes) and
    /// `labels` (each `< classes`).
    ///
    /// **Errors** with [`Error::Config`] if `features` or `classes` is 0 and
    /// [`Error::ShapeMismatch`] if the pixel count is not
    /// `labels.len() * features`; [`Error::LabelOutOfRange`] for a label
    /// `>= classes`.
    pub fn new(features: usize, classes: usize, pixels: Vec<u8>, labels: Vec<u8>) -> Result<Self> {
        const OP: &str = "U8Examples.new";
        if features == 0 || classes == 0 {
            return Err(Error::Config(format!(
                "{OP}: features and classes must be at least 1, got {features} and {classes}"
            )));
        }
        if pixels.len() != labels.len() * features {
            return Err(Error::ShapeMismatch {
                op: OP.into(),
                lhs: Shape(vec![pixels.len()]),
                rhs: Shape(vec![labels.len(), features]),
                detail: format!(
                    "{} pixel(s) for {} label(s) of {features} feature(s) each (expected {})",
                    pixels.len(),
                    labels.len(),
                    labels.len() * features
                ),
            });
        }
        if let Some(index) = labels.iter().position(|&l| l as usize >= classes) {
            return Err(Error::LabelOutOfRange {
                op: OP.into(),
                index,
                label: f64::from(labels[index]),
                classes,
            });
        }
        Ok(U8Examples {
            features,
            classes,
            pixels,
            labels,
        })
    }

    /// The labels, in order.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }
}

impl Examples for U8Examples {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn features(&self) -> usize {
        self.features
    }

    fn num_classes(&self) -> usize {
        self.classes
    }

    fn fill_batch<F: Float>(
        &self,
        indices: &[usize],
        mut out: ArrayViewMut2<'_, F>,
        labels: &mut Vec<usize>,
    ) -> Result<()> {
        const OP: &str = "U8Examples.fill_batch";
        if out.dim() != (indices.len(), self.features) {
            return Err(Error::BadShape {
                op: OP.into(),
                input: 0,
                got: Shape::of(out.shape()),
                expected: format!("({}, {})", indices.len(), self.features),
            });
        }
        if let Some(index) = indices.iter().position(|&i| i >= self.len()) {
            return Err(Error::Config(format!(
                "{OP}: index {} at batch position {index} is out of range for {} example(s)",
                indices[index],
                self.len()
            )));
        }
        let scale: Vec<F> = (0..=255u32).map(|p| F::of(f64::from(p) / 255.0)).collect();
        for (mut row, &i) in out.rows_mut().into_iter().zip(indices) {
            let px = &self.pixels[i * self.features..(i + 1) * self.features];
            for (o, &p) in row.iter_mut().zip(px) {
                *o = scale[p as usize];
            }
        }
        labels.clear();
        labels.extend(indices.iter().map(|&i| self.labels[i] as usize));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn fill_batch_scales_by_one_over_255_in_index_order() {
        let d = U8Examples::new(2, 3, vec![0, 255, 51, 102, 1, 254], vec![2, 0, 1]).unwrap();
        assert_eq!((d.len(), d.features(), d.num_classes()), (3, 2, 3));
        let mut buf = Array2::<f64>::from_elem((3, 2), -1.0);
        let mut labels = vec![9; 7];
        d.fill_batch(&[1, 0, 1], buf.view_mut(), &mut labels)
            .unwrap();
        assert_eq!(labels, vec![0, 2, 0]);
        assert!((buf[[0, 0]] - 0.2).abs() < 1e-15);
        assert!((buf[[0, 1]] - 0.4).abs() < 1e-15);
        assert_eq!(buf[[1, 1]], 1.0);
        assert_eq!(buf.row(0), buf.row(2));
    }

    #[test]
    fn bad_construction_and_bad_batches_are_errors() {
        let e = U8Examples::new(2, 3, vec![0; 5], vec![0, 1]).unwrap_err();
        assert!(e.to_string().contains("5 pixel(s) for 2 label(s)"), "{e}");
        let e = U8Examples::new(1, 3, vec![0, 0], vec![0, 3]).unwrap_err();
        assert!(matches!(e, Error::LabelOutOfRange { index: 1, .. }), "{e}");
        assert!(U8Examples::new(0, 3, vec![], vec![]).is_err());
        let d = U8Examples::new(1, 2, vec![7, 8], vec![0, 1]).unwrap();
        let mut buf = Array2::<f32>::zeros((2, 1));
        let mut l = Vec::new();
        let e = d.fill_batch(&[0, 2], buf.view_mut(), &mut l).unwrap_err();
        assert!(e.to_string().contains("index 2 at batch position 1"), "{e}");
        let e = d.fill_batch(&[0], buf.view_mut(), &mut l).unwrap_err();
        assert!(matches!(e, Error::BadShape { .. }), "{e}");
    }
}
