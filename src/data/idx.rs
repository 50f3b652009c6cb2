//! Reading and writing IDX files of unsigned bytes, raw or gzip-compressed.
//!
//! The format (LeCun's MNIST page): a big-endian `u32` magic number,
//! `0x00000801` for one dimension (labels) or `0x00000803` for three
//! (images: count, rows, columns), then one big-endian `u32` per dimension,
//! then exactly `product(dims)` payload bytes. Gzip is recognised by content
//! (`1f 8b`), not by file name.
//!
//! The reader never allocates more than its input justifies: the expected
//! length is computed with checked arithmetic and compared with the bytes
//! present before anything is copied, and gzip input is decompressed through
//! a `take(expected + 1)` limit, so a header claiming 2^32 images or a gzip
//! bomb costs no more memory than the real payload.

use super::error::{DataError, IMAGES_MAGIC, LABELS_MAGIC};
use crate::Result;
use std::borrow::Cow;
use std::io::{self, Read, Write};
use std::path::Path;

/// The first two bytes of every gzip stream.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Deflate cannot expand data by more than about 1032:1; used only to cap
/// the capacity reserved up front for a gzip payload.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// How far past the declared payload trailing gzip output is counted before
/// the error says "at least".
const TRAILING_COUNT_LIMIT: u64 = 1 << 20;

/// A stack of `n` greyscale images of `rows x cols` bytes, stored row-major
/// in one buffer (image `i` is `pixels[i*rows*cols .. (i+1)*rows*cols]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    n: usize,
    rows: usize,
    cols: usize,
    pixels: Vec<u8>,
}

impl Images {
    /// Wraps a pixel buffer.
    ///
    /// **Errors** with [`DataError::PixelCount`] if `pixels.len()` is not
    /// `n * rows * cols`.
    pub fn new(n: usize, rows: usize, cols: usize, pixels: Vec<u8>) -> Result<Self> {
        let expected = n
            .checked_mul(rows)
            .and_then(|v| v.checked_mul(cols))
            .unwrap_or(usize::MAX);
        if pixels.len() != expected {
            return Err(DataError::PixelCount {
                file: "Images::new".into(),
                n,
                rows,
                cols,
                got: pixels.len(),
                expected,
            }
            .into());
        }
        Ok(Images {
            n,
            rows,
            cols,
            pixels,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.n
    }

    /// `true` if there are no images.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Rows per image.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns per image.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Pixels per image, `rows * cols` (784 for MNIST).
    pub fn features(&self) -> usize {
        self.rows * self.cols
    }

    /// All pixels, image after image.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// The pixels of image `i`, or `None` past the end.
    pub fn image(&self, i: usize) -> Option<&[u8]> {
        let f = self.features();
        (i < self.n).then(|| &self.pixels[i * f..(i + 1) * f])
    }

    /// The pixel buffer, consuming `self`.
    pub fn into_pixels(self) -> Vec<u8> {
        self.pixels
    }
}

/// Which IDX variant is expected.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Labels,
    Images,
}

impl Kind {
    fn magic(self) -> u32 {
        match self {
            Kind::Labels => LABELS_MAGIC,
            Kind::Images => IMAGES_MAGIC,
        }
    }
    fn what(self) -> &'static str {
        match self {
            Kind::Labels => "IDX u8 labels, 1 dimension",
            Kind::Images => "IDX u8 images, 3 dimensions",
        }
    }
    fn ndims(self) -> usize {
        match self {
            Kind::Labels => 1,
            Kind::Images => 3,
        }
    }
    fn header_len(self) -> usize {
        4 + 4 * self.ndims()
    }
}

/// Checks magic and dimensions of a (possibly short) header and returns the
/// dimensions and the payload length they declare.
fn parse_header(h: &[u8], kind: Kind, file: &str) -> Result<(Vec<u32>, u64), DataError> {
    let hl = kind.header_len();
    let truncated = || DataError::TruncatedHeader {
        file: file.to_string(),
        got: h.len(),
        expected: hl,
    };
    if h.len() < 4 {
        return Err(truncated());
    }
    let found = [h[0], h[1], h[2], h[3]];
    if u32::from_be_bytes(found) != kind.magic() {
        return Err(DataError::BadMagic {
            file: file.to_string(),
            found,
            expected: kind.magic(),
            what: kind.what(),
        });
    }
    if h.len() < hl {
        return Err(truncated());
    }
    let dims: Vec<u32> = h[4..hl]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let bad = |detail: &str| DataError::BadDims {
        file: file.to_string(),
        dims: dims.clone(),
        detail: detail.to_string(),
    };
    if let Kind::Images = kind
        && (dims[1] == 0 || dims[2] == 0)
    {
        return Err(bad("images need at least one row and one column"));
    }
    let len = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(u64::from(d)))
        .ok_or_else(|| bad("the product of the dimensions overflows 64 bits"))?;
    if usize::try_from(len).is_err() {
        return Err(bad(
            "the payload does not fit in this machine's address space",
        ));
    }
    Ok((dims, len))
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(k) => filled += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Decodes one IDX file (raw or gzip) into its dimensions and payload.
fn decode(bytes: Cow<'_, [u8]>, kind: Kind, file: &str) -> Result<(Vec<u32>, Vec<u8>), DataError> {
    if bytes.starts_with(&GZIP_MAGIC) {
        return decode_gzip(&bytes, kind, file);
    }
    let hl = kind.header_len();
    let (dims, expected) = parse_header(&bytes[..bytes.len().min(hl)], kind, file)?;
    let got = (bytes.len() - hl) as u64;
    let dims = expect_payload_len(file, dims, got, expected, || (got - expected, false))?;
    let payload = match bytes {
        Cow::Owned(mut v) => {
            v.drain(..hl);
            v
        }
        Cow::Borrowed(b) => b[hl..].to_vec(),
    };
    Ok((dims, payload))
}

fn decode_gzip(bytes: &[u8], kind: Kind, file: &str) -> Result<(Vec<u32>, Vec<u8>), DataError> {
    let corrupt = |e: io::Error| DataError::CorruptGzip {
        file: file.to_string(),
        detail: e.to_string(),
    };
    let mut dec = flate2::bufread::MultiGzDecoder::new(bytes);
    let hl = kind.header_len();
    let mut header = [0u8; 16];
    let got = read_full(&mut dec, &mut header[..hl]).map_err(corrupt)?;
    let (dims, expected) = parse_header(&header[..got], kind, file)?;
    let cap = (expected + 1).min((bytes.len() as u64).saturating_mul(MAX_DEFLATE_RATIO));
    let mut payload = Vec::with_capacity(cap as usize);
    (&mut dec)
        .take(expected + 1)
        .read_to_end(&mut payload)
        .map_err(corrupt)?;
    let got = payload.len() as u64;
    let dims = expect_payload_len(file, dims, got, expected, || {
        // Free the payload before counting what follows it.
        payload = Vec::new();
        let more = io::copy(&mut (&mut dec).take(TRAILING_COUNT_LIMIT), &mut io::sink());
        match more {
            Ok(m) => (1 + m, m == TRAILING_COUNT_LIMIT),
            Err(_) => (1, true),
        }
    })?;
    Ok((dims, payload))
}

/// `dims` back if the payload has the `expected` length its header
/// declares.
///
/// **Errors** with [`DataError::Truncated`] if it has fewer bytes, and with
/// [`DataError::TrailingBytes`] if it has more, counted by `trailing` as
/// `(extra, at_least)`.
fn expect_payload_len(
    file: &str,
    dims: Vec<u32>,
    got: u64,
    expected: u64,
    trailing: impl FnOnce() -> (u64, bool),
) -> Result<Vec<u32>, DataError> {
    if got < expected {
        return Err(DataError::Truncated {
            file: file.to_string(),
            got,
            expected,
            dims,
        });
    }
    if got > expected {
        let (extra, at_least) = trailing();
        return Err(DataError::TrailingBytes {
            file: file.to_string(),
            extra,
            at_least,
            expected,
            dims,
        });
    }
    Ok(dims)
}

fn images_from(bytes: Cow<'_, [u8]>, file: &str) -> Result<Images> {
    let (dims, pixels) = decode(bytes, Kind::Images, file)?;
    let [n, rows, cols] = [dims[0], dims[1], dims[2]].map(|d| d as usize);
    Images::new(n, rows, cols, pixels)
}

fn labels_from(bytes: Cow<'_, [u8]>, file: &str) -> Result<Vec<u8>> {
    let (_, labels) = decode(bytes, Kind::Labels, file)?;
    check_labels(&labels, file)?;
    Ok(labels)
}

/// Checks every label is a digit `0..=9`.
///
/// **Errors** with [`DataError::BadLabel`] naming `file`, the first bad
/// position and its value.
pub fn check_labels(labels: &[u8], file: &str) -> Result<()> {
    match labels.iter().position(|&l| l > 9) {
        Some(index) => Err(DataError::BadLabel {
            file: file.to_string(),
            index,
            value: labels[index],
        }
        .into()),
        None => Ok(()),
    }
}

/// Parses an IDX image file (magic `0x00000803`) held in memory, raw or gzip.
/// `file` names the input in error messages.
///
/// **Errors** with a [`DataError`] naming `file` on a wrong magic number,
/// a truncated header or payload, trailing bytes, absurd dimensions or
/// corrupt gzip data.
pub fn parse_images(bytes: &[u8], file: &str) -> Result<Images> {
    images_from(Cow::Borrowed(bytes), file)
}

/// Parses an IDX label file (magic `0x00000801`) held in memory, raw or gzip.
///
/// **Errors** as [`parse_images`] does, and with [`DataError::BadLabel`] on a
/// label above 9.
pub fn parse_labels(bytes: &[u8], file: &str) -> Result<Vec<u8>> {
    labels_from(Cow::Borrowed(bytes), file)
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| {
        DataError::Io {
            path: path.to_path_buf(),
            action: "cannot read",
            source,
        }
        .into()
    })
}

/// Reads an IDX image file, raw or gzip (detected by content).
///
/// **Errors** with [`DataError::Io`] if the file cannot be read, otherwise as
/// [`parse_images`], naming the path.
pub fn read_images(path: impl AsRef<Path>) -> Result<Images> {
    let path = path.as_ref();
    images_from(Cow::Owned(read_file(path)?), &path.display().to_string())
}

/// Reads an IDX label file, raw or gzip (detected by content).
///
/// **Errors** with [`DataError::Io`] if the file cannot be read, otherwise as
/// [`parse_labels`], naming the path.
pub fn read_labels(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    labels_from(Cow::Owned(read_file(path)?), &path.display().to_string())
}

fn dim_u32(v: usize, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| {
        DataError::BadDims {
            file: "IDX writer".into(),
            dims: vec![],
            detail: format!("{what} = {v} does not fit the format's 32-bit dimension"),
        }
        .into()
    })
}

/// Encodes images as a raw IDX file (magic `0x00000803`).
///
/// **Errors** with [`DataError::BadDims`] if a dimension exceeds `u32::MAX`.
pub fn encode_images(images: &Images) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(16 + images.pixels.len());
    out.extend_from_slice(&IMAGES_MAGIC.to_be_bytes());
    for (v, what) in [
        (images.n, "count"),
        (images.rows, "rows"),
        (images.cols, "cols"),
    ] {
        out.extend_from_slice(&dim_u32(v, what)?.to_be_bytes());
    }
    out.extend_from_slice(&images.pixels);
    Ok(out)
}

/// Encodes labels as a raw IDX file (magic `0x00000801`).
///
/// **Errors** with [`DataError::BadDims`] if there are more than `u32::MAX`.
pub fn encode_labels(labels: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(8 + labels.len());
    out.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
    out.extend_from_slice(&dim_u32(labels.len(), "count")?.to_be_bytes());
    out.extend_from_slice(labels);
    Ok(out)
}

/// Gzips bytes at the best compression level, with a zero timestamp so the
/// output depends only on the input (reproducible committed files).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images_bytes(n: u32, rows: u32, cols: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = IMAGES_MAGIC.to_be_bytes().to_vec();
        for d in [n, rows, cols] {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn raw_and_gzip_decode_to_the_same_images() {
        let raw = images_bytes(2, 1, 3, &[0, 1, 2, 253, 254, 255]);
        let a = parse_images(&raw, "raw").unwrap();
        let b = parse_images(&gzip(&raw), "gz").unwrap();
        assert_eq!(a, b);
        assert_eq!((a.len(), a.rows(), a.cols()), (2, 1, 3));
        assert_eq!(a.image(1), Some(&[253u8, 254, 255][..]));
        assert_eq!(a.image(2), None);
    }

    #[test]
    fn encode_then_parse_round_trips() {
        let imgs = Images::new(3, 2, 2, (0..12).collect()).unwrap();
        let back = parse_images(&encode_images(&imgs).unwrap(), "x").unwrap();
        assert_eq!(back, imgs);
        let labels = vec![9, 0, 5];
        let back = parse_labels(&gzip(&encode_labels(&labels).unwrap()), "y").unwrap();
        assert_eq!(back, labels);
    }

    #[test]
    fn gzip_output_is_reproducible() {
        assert_eq!(gzip(b"abc"), gzip(b"abc"));
        // Bytes 4..8 are the gzip MTIME field: zero.
        assert_eq!(&gzip(b"abc")[4..8], &[0, 0, 0, 0]);
    }

    #[test]
    fn images_new_rejects_wrong_pixel_count() {
        let err = Images::new(2, 2, 2, vec![0; 7]).unwrap_err();
        assert!(err.to_string().contains("7 pixel(s)"), "{err}");
    }
}
