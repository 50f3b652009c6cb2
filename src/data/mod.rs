//! Data, loaded for real: an IDX reader that returns typed errors instead of
//! panicking, datasets scaled to `[0, 1]` one batch at a time, the embedded
//! 10,000 real digits with their seeded stratified split, and a verified
//! MNIST downloader.
//!
//! ```no_run
//! # fn main() -> gradverify::Result<()> {
//! use gradverify::data;
//! let sets = data::load_dir("/usr/share/datasets/fashion-mnist")?;
//! let (x, y) = sets.train.batch::<f32>(&[0, 1, 2])?;
//! assert_eq!(x.dim(), (3, 784));
//! # let _ = y; Ok(()) }
//! ```

pub mod dataset;
pub mod download;
pub mod embedded;
pub mod error;
pub mod idx;
pub mod npm;
pub mod split;

pub use dataset::{Dataset, STANDARD_FILES, TrainTest, load_dir};
pub use download::{Fetched, MNIST_BASE_URL, Manifest, ManifestEntry, download, download_mnist};
pub use embedded::{DEFAULT_SPLIT_SEED, EMBEDDED_TEST_SIZE, embedded_digits, embedded_split};
pub use error::DataError;
pub use idx::{Images, parse_images, parse_labels, read_images, read_labels};
pub use split::{Split, stratified_split};
