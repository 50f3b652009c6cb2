//! Fuzz case `idx`: arbitrary bytes, arbitrary gzip streams and headers with
//! absurd dimensions into the IDX parsers.
//!
//! Properties asserted:
//! - `parse_images` and `parse_labels` never panic and every failure is an
//!   `Error::Data`;
//! - nothing allocates more than the input justifies: the target runs under
//!   `-rss_limit_mb=512 -malloc_limit_mb=256`, and a header claiming up to
//!   2^32 x 2^32 x 2^32 images is among the structured inputs;
//! - a success is exactly right: the payload length equals the product of
//!   the header's dimensions, the pixels/labels are the payload bytes, labels
//!   are digits, and re-encoding gives back the (decompressed) input;
//! - a well-formed file (structured mode with a consistent header) always
//!   parses, raw and gzipped.

use arbitrary::Arbitrary;
use gradverify::Error;
use gradverify::data::idx::{encode_images, encode_labels};
use gradverify::data::{parse_images, parse_labels};
use std::fmt;
use std::io::{Read, Write};

/// Largest payload spelled out in a structured case.
pub const MAX_PAYLOAD: usize = 1 << 16;

/// How the input bytes are made.
#[derive(Arbitrary, Clone)]
pub enum Mode {
    /// The fuzz bytes as they are.
    Raw(Vec<u8>),
    /// The fuzz bytes gzip-compressed at `level % 10` (optionally cut short
    /// after `cut` bytes of the compressed stream).
    Gzip {
        /// The uncompressed content.
        bytes: Vec<u8>,
        /// Compression level, modulo 10.
        level: u8,
        /// Truncate the compressed stream to this many bytes.
        cut: Option<u16>,
    },
    /// A header with these dimensions (labels use only the first), then the
    /// payload; `magic_images` chooses the magic number.
    Structured {
        /// Image (else label) magic.
        magic_images: bool,
        /// The declared dimensions, any `u32` (so up to 2^32 images).
        dims: [u32; 3],
        /// The payload (capped at `MAX_PAYLOAD`).
        payload: Vec<u8>,
        /// Gzip the whole file.
        gzip: bool,
    },
}

/// A whole case.
#[derive(Arbitrary, Clone)]
pub struct Case {
    /// The input.
    pub mode: Mode,
}

fn hex(bytes: &[u8]) -> String {
    let shown: String = bytes.iter().take(48).map(|b| format!("{b:02x}")).collect();
    if bytes.len() > 48 {
        format!("{shown}... ({} bytes)", bytes.len())
    } else {
        shown
    }
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.mode {
            Mode::Raw(b) => write!(f, "parse_*(hex\"{}\")", hex(b)),
            Mode::Gzip { bytes, level, cut } => write!(
                f,
                "parse_*(gzip(level {}, cut {cut:?}, hex\"{}\"))",
                level % 10,
                hex(bytes)
            ),
            Mode::Structured {
                magic_images,
                dims,
                payload,
                gzip,
            } => write!(
                f,
                "parse_*({}header(magic {}, dims {dims:?}) + hex\"{}\")",
                if *gzip { "gzip " } else { "" },
                if *magic_images { "0x803" } else { "0x801" },
                hex(payload)
            ),
        }
    }
}

fn gzip(bytes: &[u8], level: u32) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    enc.write_all(bytes).expect("Vec write");
    enc.finish().expect("Vec write")
}

/// The content after decompression, as an independent reference: `None`
/// if the stream is not valid gzip (or decompresses to more than the cap).
fn gunzip(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .take(MAX_PAYLOAD as u64 * 64)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

/// What a well-formed raw file would contain: `(header dims, payload)`.
fn reference(content: &[u8], images: bool) -> Option<(Vec<u64>, &[u8])> {
    let (magic, nd) = if images { (0x803u32, 3) } else { (0x801, 1) };
    let hl = 4 + 4 * nd;
    if content.len() < hl || content[..4] != magic.to_be_bytes() {
        return None;
    }
    let dims: Vec<u64> = content[4..hl]
        .chunks(4)
        .map(|c| u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
        .collect();
    let len = dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d))?;
    let payload = &content[hl..];
    (payload.len() as u64 == len && (!images || (dims[1] > 0 && dims[2] > 0)))
        .then_some((dims, payload))
}

impl Case {
    /// Runs the case, panicking on any violated property.
    pub fn run(&self) {
        let (bytes, well_formed) = match &self.mode {
            Mode::Raw(b) => (b.clone(), false),
            Mode::Gzip { bytes, level, cut } => {
                let mut z = gzip(bytes, u32::from(level % 10));
                if let Some(cut) = cut {
                    z.truncate(usize::from(*cut));
                }
                (z, false)
            }
            Mode::Structured {
                magic_images,
                dims,
                payload,
                gzip: gz,
            } => {
                if payload.len() > MAX_PAYLOAD {
                    return;
                }
                let magic: u32 = if *magic_images { 0x803 } else { 0x801 };
                let nd = if *magic_images { 3 } else { 1 };
                let mut v = magic.to_be_bytes().to_vec();
                for d in &dims[..nd] {
                    v.extend_from_slice(&d.to_be_bytes());
                }
                v.extend_from_slice(payload);
                let declared = dims[..nd]
                    .iter()
                    .try_fold(1u64, |a, &d| a.checked_mul(u64::from(d)));
                let ok = declared == Some(payload.len() as u64)
                    && (!*magic_images || (dims[1] > 0 && dims[2] > 0));
                if *gz { (gzip(&v, 6), ok) } else { (v, ok) }
            }
        };
        // The content the parser should see once gzip is undone.
        let content = if bytes.starts_with(&[0x1f, 0x8b]) {
            gunzip(&bytes)
        } else {
            Some(bytes.clone())
        };
        let gz = bytes.starts_with(&[0x1f, 0x8b]);
        check_images(&bytes, content.as_deref(), gz, well_formed);
        check_labels(&bytes, content.as_deref(), gz, well_formed);
    }
}

fn typed(e: &Error, what: &str, bytes: &[u8]) {
    assert!(
        matches!(e, Error::Data(_)),
        "{what}: not a data error: {e:?} on {}",
        hex(bytes)
    );
    assert!(!e.to_string().is_empty());
}

fn check_images(bytes: &[u8], content: Option<&[u8]>, gz: bool, well_formed: bool) {
    let want = content.and_then(|c| reference(c, true));
    match parse_images(bytes, "fuzz") {
        Ok(img) => {
            let content = content.expect("parsed gzip that flate2 rejects");
            let (dims, payload) =
                want.unwrap_or_else(|| panic!("parse_images accepted {}", hex(content)));
            assert_eq!(
                [img.len() as u64, img.rows() as u64, img.cols() as u64],
                [dims[0], dims[1], dims[2]],
                "image dims"
            );
            assert_eq!(img.pixels(), payload, "pixels are the payload");
            if !img.is_empty() {
                let last = img.image(img.len() - 1).expect("last image");
                assert_eq!(last.len(), img.features());
            }
            assert!(img.image(img.len()).is_none(), "image past the end");
            let enc = encode_images(&img).expect("re-encode");
            assert_eq!(enc, content, "re-encoding gives back the file");
        }
        Err(e) => {
            typed(&e, "parse_images", bytes);
            // flate2 and the reader may disagree about a stream that ends
            // early or carries garbage after a member; only a well-formed
            // file with a plain (or freshly made) stream must parse.
            if want.is_some() && (well_formed || !gz) {
                panic!("parse_images rejected a well-formed file: {e}");
            }
        }
    }
}

fn check_labels(bytes: &[u8], content: Option<&[u8]>, gz: bool, well_formed: bool) {
    let want = content.and_then(|c| reference(c, false));
    let digits = want
        .as_ref()
        .is_some_and(|(_, p)| p.iter().all(|&l| l <= 9));
    match parse_labels(bytes, "fuzz") {
        Ok(labels) => {
            let content = content.expect("parsed gzip that flate2 rejects");
            let (_, payload) =
                want.unwrap_or_else(|| panic!("parse_labels accepted {}", hex(content)));
            assert_eq!(labels, payload, "labels are the payload");
            assert!(labels.iter().all(|&l| l <= 9), "labels are digits");
            let enc = encode_labels(&labels).expect("re-encode");
            assert_eq!(enc, content, "re-encoding gives back the file");
        }
        Err(e) => {
            typed(&e, "parse_labels", bytes);
            if digits && (well_formed || !gz) {
                panic!("parse_labels rejected a well-formed file: {e}");
            }
        }
    }
}
