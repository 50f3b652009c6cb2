//! What the training loop needs from a dataset: [`Examples`].
//!
//! Images stay `u8`; a batch is scaled to `[0, 1]` (`p / 255`) into a buffer
//! the loop allocates once and reuses, so no float copy of the whole set is
//! ever held. [`Dataset`] (IDX files, the embedded digits) implements it.

use crate::data::Dataset;
use crate::error::Result;
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

    /// The `(channels, height, width)` of each example when the examples are
    /// images (what a convolutional model needs), `None` when unknown.
    /// Defaults to `None`; the product is [`Examples::features`] when set.
    fn image_shape(&self) -> Option<(usize, usize, usize)> {
        None
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

impl Examples for Dataset {
    fn len(&self) -> usize {
        Dataset::len(self)
    }

    fn features(&self) -> usize {
        Dataset::features(self)
    }

    /// One channel of `rows × cols` pixels.
    fn image_shape(&self) -> Option<(usize, usize, usize)> {
        Some((1, self.rows(), self.cols()))
    }

    fn fill_batch<F: Float>(
        &self,
        indices: &[usize],
        out: ArrayViewMut2<'_, F>,
        labels: &mut Vec<usize>,
    ) -> Result<()> {
        Dataset::fill_batch(self, indices, out, labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Images;
    use ndarray::Array2;

    #[test]
    fn a_dataset_is_examples_scaled_by_one_over_255() {
        let images = Images::new(3, 1, 2, vec![0, 255, 51, 102, 1, 254]).unwrap();
        let d = Dataset::new("tiny", images, vec![7, 3, 9]).unwrap();
        fn through_the_trait<D: Examples>(d: &D) -> (usize, usize, usize, bool) {
            (d.len(), d.features(), d.num_classes(), d.is_empty())
        }
        assert_eq!(through_the_trait(&d), (3, 2, 10, false));
        assert_eq!(Examples::image_shape(&d), Some((1, 1, 2)));
        let mut buf = Array2::<f64>::from_elem((2, 2), -1.0);
        let mut labels = vec![0; 5];
        Examples::fill_batch(&d, &[1, 2], buf.view_mut(), &mut labels).unwrap();
        assert_eq!(labels, vec![3, 9]);
        assert!((buf[[0, 0]] - 0.2).abs() < 1e-15);
        assert!((buf[[1, 1]] - 254.0 / 255.0).abs() < 1e-15);
        assert!(Examples::fill_batch(&d, &[3, 0], buf.view_mut(), &mut labels).is_err());
    }
}
