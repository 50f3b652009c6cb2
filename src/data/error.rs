//! Errors of the data layer: reading IDX files, building datasets,
//! splitting them and downloading MNIST.
//!
//! Every variant names the file (a path, or the name of an embedded file)
//! and says what was expected, so a message alone is enough to fix the input.

use std::path::PathBuf;

/// Magic number of an IDX file of unsigned bytes with one dimension (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;
/// Magic number of an IDX file of unsigned bytes with three dimensions (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;

/// Everything that can go wrong while loading, splitting or downloading data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A file could not be opened, read or written.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done, e.g. `"cannot read"`.
        action: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// None of the accepted names of a required file exists in a directory.
    #[error("{}: missing file: expected one of {}", dir.display(), tried.join(", "))]
    MissingFile {
        /// The directory searched.
        dir: PathBuf,
        /// The file names tried, in order.
        tried: Vec<String>,
    },
    /// The first four bytes are not the expected IDX magic number.
    #[error(
        "{file}: wrong magic number {}, expected {expected:#010x} ({what})",
        hex_bytes(found)
    )]
    BadMagic {
        /// The file.
        file: String,
        /// The four bytes found.
        found: [u8; 4],
        /// The magic number expected.
        expected: u32,
        /// What that magic means, e.g. `"IDX u8 images, 3 dimensions"`.
        what: &'static str,
    },
    /// The file ends before the header does.
    #[error("{file}: truncated header: {got} byte(s), expected {expected}")]
    TruncatedHeader {
        /// The file.
        file: String,
        /// Bytes available (after decompression).
        got: usize,
        /// Header length.
        expected: usize,
    },
    /// The file ends before the payload the header declares.
    #[error(
        "{file}: truncated payload: {got} byte(s) after the header, expected {expected} \
         (dimensions {dims:?})"
    )]
    Truncated {
        /// The file.
        file: String,
        /// Payload bytes available (after decompression).
        got: u64,
        /// Payload bytes the header declares.
        expected: u64,
        /// The dimensions read from the header.
        dims: Vec<u32>,
    },
    /// Bytes follow the payload the header declares.
    #[error(
        "{file}: {}{extra} trailing byte(s) after the {expected}-byte payload the header \
         declares (dimensions {dims:?})",
        if *at_least { "at least " } else { "" }
    )]
    TrailingBytes {
        /// The file.
        file: String,
        /// Extra bytes found.
        extra: u64,
        /// `true` when counting stopped early (gzip input): at least `extra`.
        at_least: bool,
        /// Payload bytes the header declares.
        expected: u64,
        /// The dimensions read from the header.
        dims: Vec<u32>,
    },
    /// Header dimensions whose product overflows or that make no sense
    /// (an image with zero rows or columns).
    #[error("{file}: invalid dimensions {dims:?}: {detail}")]
    BadDims {
        /// The file.
        file: String,
        /// The dimensions read from the header.
        dims: Vec<u32>,
        /// What is wrong with them.
        detail: String,
    },
    /// The input starts like gzip but does not decompress.
    #[error("{file}: corrupt gzip data: {detail}")]
    CorruptGzip {
        /// The file.
        file: String,
        /// The decompressor's message.
        detail: String,
    },
    /// A label outside `0..=9`.
    #[error("{file}: label {value} at position {index} is out of range, expected 0..=9")]
    BadLabel {
        /// The file (or dataset).
        file: String,
        /// Position of the label.
        index: usize,
        /// Its value.
        value: u8,
    },
    /// Image and label files hold different numbers of items.
    #[error("{name}: {images} image(s) but {labels} label(s), expected equal counts")]
    CountMismatch {
        /// The dataset (usually both file names).
        name: String,
        /// Number of images.
        images: usize,
        /// Number of labels.
        labels: usize,
    },
    /// Images whose size differs from the other split's (train vs test).
    #[error("{name}: images are {got_rows}x{got_cols}, expected {rows}x{cols} like {other}")]
    ImageSizeMismatch {
        /// The dataset with the unexpected size.
        name: String,
        /// Its rows.
        got_rows: usize,
        /// Its columns.
        got_cols: usize,
        /// The dataset it is compared with.
        other: String,
        /// Rows expected.
        rows: usize,
        /// Columns expected.
        cols: usize,
    },
    /// Pixel buffer length that is not `n * rows * cols`.
    #[error("{file}: {got} pixel(s) for {n} image(s) of {rows}x{cols}, expected {expected}")]
    PixelCount {
        /// The dataset.
        file: String,
        /// Number of images.
        n: usize,
        /// Rows per image.
        rows: usize,
        /// Columns per image.
        cols: usize,
        /// Pixels received.
        got: usize,
        /// `n * rows * cols` (saturated).
        expected: usize,
    },
    /// A batch index past the end of the dataset.
    #[error("{name}: index {index} at batch position {position} is out of range 0..{len}")]
    IndexOutOfRange {
        /// The dataset.
        name: String,
        /// Position in the index list.
        position: usize,
        /// The index.
        index: usize,
        /// Dataset length.
        len: usize,
    },
    /// A caller-provided batch buffer of the wrong shape.
    #[error("{name}: batch buffer has shape {got:?}, expected {expected:?} (indices x features)")]
    BatchShape {
        /// The dataset.
        name: String,
        /// Shape of the buffer given.
        got: [usize; 2],
        /// Shape needed.
        expected: [usize; 2],
    },
    /// A split that cannot be made (test size larger than the dataset).
    #[error("split of {n} item(s): {detail}")]
    BadSplit {
        /// Items to split.
        n: usize,
        /// What is wrong.
        detail: String,
    },
    /// The server answered with an HTTP error status.
    #[error("{url}: HTTP status {status}, expected 200")]
    Http {
        /// The URL requested.
        url: String,
        /// The status received.
        status: u16,
    },
    /// The request failed before a status arrived (DNS, connection, TLS, timeout).
    #[error("{url}: request failed: {detail}")]
    Network {
        /// The URL requested.
        url: String,
        /// The client's message.
        detail: String,
    },
    /// A downloaded (or present) file whose SHA-256 is not the expected one.
    #[error("{file}: SHA-256 mismatch: expected {expected}, got {got}")]
    Checksum {
        /// The file name (and URL for downloads).
        file: String,
        /// Expected digest, lower-case hex.
        expected: String,
        /// Actual digest, lower-case hex.
        got: String,
    },
    /// A download larger than the manifest allows.
    #[error("{url}: body larger than the {limit} bytes expected")]
    TooLarge {
        /// The URL requested.
        url: String,
        /// The size limit.
        limit: u64,
    },
    /// Input that is not what a converter expects (e.g. a bad npm JSON digit file).
    #[error("{file}: {detail}")]
    BadInput {
        /// The file.
        file: String,
        /// What is wrong.
        detail: String,
    },
}

/// `0x00 0x00 0x08 0x03` style rendering of raw bytes.
fn hex_bytes(b: &[u8; 4]) -> String {
    format!("0x{:02x}{:02x}{:02x}{:02x}", b[0], b[1], b[2], b[3])
}
