//! A labelled set of `u8` images, scaled to `[0, 1]` one batch at a time.

use super::error::DataError;
use super::idx::{Images, check_labels, read_images, read_labels};
use crate::{Float, Result};
use ndarray::parallel::prelude::*;
use ndarray::{Array2, ArrayViewMut2, Axis};
use rayon::slice::ParallelSlice;
use std::path::{Path, PathBuf};

/// Images with one digit label (`0..=9`) each.
///
/// Pixels stay `u8`; [`Dataset::batch`] and [`Dataset::fill_batch`] scale the
/// requested rows by `1/255` into floats, so a 60,000-image set costs 47 MB,
/// not four times that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    name: String,
    images: Images,
    labels: Vec<u8>,
}

/// A training set and a test set with images of the same size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainTest {
    /// The set to train on.
    pub train: Dataset,
    /// The held-out set.
    pub test: Dataset,
}

impl Dataset {
    /// Pairs images with labels. `name` appears in error messages and reports.
    ///
    /// **Errors** with [`DataError::CountMismatch`] if the counts differ and
    /// [`DataError::BadLabel`] if a label exceeds 9.
    pub fn new(name: impl Into<String>, images: Images, labels: Vec<u8>) -> Result<Self> {
        let name = name.into();
        if images.len() != labels.len() {
            return Err(DataError::CountMismatch {
                name,
                images: images.len(),
                labels: labels.len(),
            }
            .into());
        }
        check_labels(&labels, &name)?;
        Ok(Dataset {
            name,
            images,
            labels,
        })
    }

    /// Reads an image file and a label file (each raw or gzip).
    ///
    /// **Errors** as [`read_images`], [`read_labels`] and [`Dataset::new`].
    pub fn load(images: impl AsRef<Path>, labels: impl AsRef<Path>) -> Result<Self> {
        let (ip, lp) = (images.as_ref(), labels.as_ref());
        let name = format!("{} + {}", ip.display(), lp.display());
        Dataset::new(name, read_images(ip)?, read_labels(lp)?)
    }

    /// The name given at construction.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// `true` if there are no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Rows per image.
    pub fn rows(&self) -> usize {
        self.images.rows()
    }

    /// Columns per image.
    pub fn cols(&self) -> usize {
        self.images.cols()
    }

    /// Features per example, `rows * cols` (784 for MNIST): the width of a batch.
    pub fn features(&self) -> usize {
        self.images.features()
    }

    /// The images.
    pub fn images(&self) -> &Images {
        &self.images
    }

    /// All labels, in order.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// How many examples each digit `0..=9` has.
    pub fn class_counts(&self) -> [usize; 10] {
        let mut c = [0; 10];
        for &l in &self.labels {
            c[l as usize] += 1;
        }
        c
    }

    fn check_indices(&self, indices: &[usize]) -> Result<()> {
        match indices.iter().position(|&i| i >= self.len()) {
            Some(position) => Err(DataError::IndexOutOfRange {
                name: self.name.clone(),
                position,
                index: indices[position],
                len: self.len(),
            }
            .into()),
            None => Ok(()),
        }
    }

    /// The examples at `indices` as a `(indices.len(), features)` array of
    /// pixels scaled to `[0, 1]` (`p / 255`), and their labels.
    ///
    /// **Errors** with [`DataError::IndexOutOfRange`] if an index is `>= len()`.
    pub fn batch<F: Float>(&self, indices: &[usize]) -> Result<(Array2<F>, Vec<usize>)> {
        let mut x = Array2::zeros((indices.len(), self.features()));
        let mut y = Vec::with_capacity(indices.len());
        self.fill_batch(indices, x.view_mut(), &mut y)?;
        Ok((x, y))
    }

    /// Writes the examples at `indices` into a caller-provided buffer (any
    /// layout, e.g. `buf.view_mut()` or `buf.slice_mut(s![..k, ..])` for a
    /// short last batch) and replaces the contents of `labels` with theirs:
    /// a training loop reusing both allocates nothing per batch.
    ///
    /// **Errors** with [`DataError::IndexOutOfRange`] if an index is
    /// `>= len()` and [`DataError::BatchShape`] if `out` is not
    /// `(indices.len(), features)`; nothing is written then.
    pub fn fill_batch<F: Float>(
        &self,
        indices: &[usize],
        mut out: ArrayViewMut2<'_, F>,
        labels: &mut Vec<usize>,
    ) -> Result<()> {
        self.check_indices(indices)?;
        let expected = [indices.len(), self.features()];
        if out.dim() != (expected[0], expected[1]) {
            return Err(DataError::BatchShape {
                name: self.name.clone(),
                got: [out.nrows(), out.ncols()],
                expected,
            }
            .into());
        }
        // Batches of at least `PARALLEL_ROWS` rows are split into one block
        // of rows per thread: gathering shuffled images is bound by memory
        // latency, and a training step waits for it.
        let threads = rayon::current_num_threads();
        if threads > 1 && indices.len() >= PARALLEL_ROWS {
            let per = indices.len().div_ceil(threads);
            out.axis_chunks_iter_mut(Axis(0), per)
                .into_par_iter()
                .zip(indices.par_chunks(per))
                .for_each(|(block, idx)| self.scale_rows(idx, block));
        } else {
            self.scale_rows(indices, out);
        }
        labels.clear();
        labels.extend(indices.iter().map(|&i| self.labels[i] as usize));
        Ok(())
    }

    /// Writes the scaled pixels of the (checked) examples `indices` into the
    /// rows of `out`.
    fn scale_rows<F: Float>(&self, indices: &[usize], mut out: ArrayViewMut2<'_, F>) {
        // `p / 255` computed in `F`: both operands are exact, so this is one
        // correctly rounded division, which for f32 equals rounding the f64
        // quotient (checked for all 256 values in a test). Unlike a table
        // lookup it vectorises.
        let d = F::of(255.0);
        for (k, (mut row, &i)) in out.rows_mut().into_iter().zip(indices).enumerate() {
            let pixels = self.images.image(i).expect("index checked above");
            // Shuffled rows are scattered over the whole set: ask for the
            // image after next early, so its cache misses overlap this work.
            if let Some(&ahead) = indices.get(k + 2) {
                prefetch(self.images.image(ahead).expect("index checked above"));
            }
            match row.as_slice_mut() {
                Some(o) => {
                    for (o, &p) in o.iter_mut().zip(pixels) {
                        *o = F::of(f64::from(p)) / d;
                    }
                }
                None => {
                    for (o, &p) in row.iter_mut().zip(pixels) {
                        *o = F::of(f64::from(p)) / d;
                    }
                }
            }
        }
    }

    /// A new dataset holding copies of the examples at `indices`, in that order.
    ///
    /// **Errors** with [`DataError::IndexOutOfRange`] if an index is `>= len()`.
    pub fn subset(&self, indices: &[usize], name: impl Into<String>) -> Result<Dataset> {
        self.check_indices(indices)?;
        let mut pixels = Vec::with_capacity(indices.len() * self.features());
        for &i in indices {
            pixels.extend_from_slice(self.images.image(i).expect("index checked above"));
        }
        let images = Images::new(indices.len(), self.rows(), self.cols(), pixels)?;
        let labels = indices.iter().map(|&i| self.labels[i]).collect();
        Dataset::new(name, images, labels)
    }
}

/// Batches with at least this many rows are scaled on all of rayon's threads.
const PARALLEL_ROWS: usize = 64;

/// Hints the CPU to load `bytes` into the cache (no effect on the result).
#[inline]
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(64) {
        // SAFETY: a prefetch never faults and does not change memory; the
        // address is inside `bytes` anyway.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                line.as_ptr().cast(),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// The four standard MNIST-layout file names, without `.gz`.
pub const STANDARD_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// `dir/name` if it exists, else `dir/name.gz`.
fn find(dir: &Path, name: &str) -> Result<PathBuf> {
    let tried = [name.to_string(), format!("{name}.gz")];
    for t in &tried {
        let p = dir.join(t);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(DataError::MissingFile {
        dir: dir.to_path_buf(),
        tried: tried.to_vec(),
    }
    .into())
}

/// Loads the four standard files ([`STANDARD_FILES`], each raw or `.gz`)
/// from `dir`: MNIST, Fashion-MNIST or any subset of any length in that layout.
///
/// **Errors** with [`DataError::MissingFile`] if a file is absent under both
/// names, [`DataError::ImageSizeMismatch`] if train and test images differ in
/// size, and otherwise as [`Dataset::load`].
pub fn load_dir(dir: impl AsRef<Path>) -> Result<TrainTest> {
    let dir = dir.as_ref();
    let [tri, trl, tei, tel] = STANDARD_FILES.map(|n| find(dir, n));
    let train = Dataset::load(tri?, trl?)?;
    let test = Dataset::load(tei?, tel?)?;
    if (test.rows(), test.cols()) != (train.rows(), train.cols()) {
        return Err(DataError::ImageSizeMismatch {
            name: test.name.clone(),
            got_rows: test.rows(),
            got_cols: test.cols(),
            other: train.name.clone(),
            rows: train.rows(),
            cols: train.cols(),
        }
        .into());
    }
    Ok(TrainTest { train, test })
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;

    fn tiny() -> Dataset {
        // Three 1x2 images: [0, 255], [51, 102], [1, 254]
        let images = Images::new(3, 1, 2, vec![0, 255, 51, 102, 1, 254]).unwrap();
        Dataset::new("tiny", images, vec![7, 3, 9]).unwrap()
    }

    #[test]
    fn a_batch_split_over_threads_equals_one_filled_row_by_row() {
        // 300 images of 3x4 pixels, every pixel distinct per image.
        let n = 300;
        let pixels: Vec<u8> = (0..n * 12).map(|i| (i * 7 % 256) as u8).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        let d = Dataset::new("many", Images::new(n, 3, 4, pixels).unwrap(), labels).unwrap();
        let idx: Vec<usize> = (0..n).map(|i| (i * 97) % n).rev().take(250).collect();
        assert!(idx.len() >= PARALLEL_ROWS);
        let mut whole = Array2::<f32>::zeros((idx.len(), 12));
        let mut labels = Vec::new();
        // Two threads, whatever the machine has.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| d.fill_batch(&idx, whole.view_mut(), &mut labels))
            .unwrap();
        for (k, &i) in idx.iter().enumerate() {
            let (row, l) = d.batch::<f32>(&[i]).unwrap();
            assert_eq!(whole.row(k), row.row(0), "row {k} (image {i})");
            assert_eq!(labels[k], l[0]);
        }
    }

    #[test]
    fn scaling_in_f32_equals_the_rounded_f64_quotient_for_every_pixel() {
        let pixels: Vec<u8> = (0..=255).collect();
        let d = Dataset::new("all", Images::new(1, 16, 16, pixels).unwrap(), vec![0]).unwrap();
        let (x32, _) = d.batch::<f32>(&[0]).unwrap();
        let (x64, _) = d.batch::<f64>(&[0]).unwrap();
        for p in 0..=255usize {
            assert_eq!(x32[[0, p]], (p as f64 / 255.0) as f32, "pixel {p}");
            assert_eq!(x64[[0, p]], p as f64 / 255.0, "pixel {p}");
        }
        // A non-contiguous destination (a column-major buffer) gets the same.
        // Row 0 of the transpose of a (256, 2) buffer has stride 2.
        let mut f = ndarray::Array2::<f32>::zeros((256, 2)).reversed_axes();
        let mut labels = Vec::new();
        let mut row0 = f.slice_mut(ndarray::s![..1, ..]);
        assert!(row0.as_slice_mut().is_none());
        d.fill_batch(&[0], row0, &mut labels).unwrap();
        assert_eq!(f.slice(ndarray::s![..1, ..]), x32);
    }

    #[test]
    fn batch_scales_by_one_over_255_in_index_order() {
        let (x, y) = tiny().batch::<f64>(&[1, 0, 1]).unwrap();
        assert_eq!(x.dim(), (3, 2));
        assert_abs_diff_eq!(x[[0, 0]], 0.2, epsilon = 1e-15);
        assert_abs_diff_eq!(x[[0, 1]], 0.4, epsilon = 1e-15);
        assert_abs_diff_eq!(x[[1, 1]], 1.0, epsilon = 0.0);
        assert_eq!(x.row(0), x.row(2));
        assert_eq!(y, vec![3, 7, 3]);
    }

    #[test]
    fn fill_batch_reuses_the_buffer_and_rejects_bad_input_without_writing() {
        let d = tiny();
        let mut buf = Array2::<f32>::from_elem((2, 2), -1.0);
        let mut labels = vec![42; 5];
        d.fill_batch(&[2, 0], buf.view_mut(), &mut labels).unwrap();
        assert_eq!(labels, vec![9, 7]);
        assert_abs_diff_eq!(buf[[0, 0]], 1.0 / 255.0, epsilon = 1e-7);
        assert_abs_diff_eq!(buf[[1, 1]], 1.0, epsilon = 0.0);

        let before = buf.clone();
        let e = d
            .fill_batch(&[0, 3], buf.view_mut(), &mut labels)
            .unwrap_err();
        assert!(e.to_string().contains("index 3 at batch position 1"), "{e}");
        let e = d.fill_batch(&[0], buf.view_mut(), &mut labels).unwrap_err();
        assert!(e.to_string().contains("expected [1, 2]"), "{e}");
        assert_eq!(buf, before);
        assert_eq!(labels, vec![9, 7]);
    }

    #[test]
    fn constructor_checks_counts_and_labels() {
        let img = || Images::new(2, 1, 1, vec![0, 0]).unwrap();
        let e = Dataset::new("d", img(), vec![1]).unwrap_err();
        assert!(e.to_string().contains("2 image(s) but 1 label(s)"), "{e}");
        let e = Dataset::new("d", img(), vec![1, 10]).unwrap_err();
        assert!(e.to_string().contains("label 10 at position 1"), "{e}");
    }

    #[test]
    fn subset_copies_the_chosen_examples() {
        let s = tiny().subset(&[2, 1], "s").unwrap();
        assert_eq!(s.labels(), &[9, 3]);
        assert_eq!(s.images().pixels(), &[1, 254, 51, 102]);
        assert_eq!(s.class_counts()[9], 1);
    }
}
