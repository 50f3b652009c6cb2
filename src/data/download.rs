//! Downloading the four MNIST files from a mirror, verified by SHA-256.
//!
//! Each file is streamed into a temporary file in the target folder while
//! being hashed, then renamed into place only if its digest matches the
//! [`Manifest`]: an interrupted or corrupted download never leaves a file
//! under the final name. Files already present with the right digest are
//! not fetched again.

use super::error::DataError;
use crate::Result;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The mirror TensorFlow Datasets uses for MNIST.
pub const MNIST_BASE_URL: &str = "https://storage.googleapis.com/cvdf-datasets/mnist/";

/// Size limit for files whose manifest entry gives no size (1 GiB).
const DEFAULT_MAX_BYTES: u64 = 1 << 30;

/// One file to fetch: its name (appended to the base URL and used in the
/// target folder), its SHA-256 in lower-case hex, and optionally its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// File name, e.g. `"train-images-idx3-ubyte.gz"`.
    pub file_name: String,
    /// Expected SHA-256, 64 lower-case hex digits.
    pub sha256: String,
    /// Exact size in bytes if known: a larger body is cut off with
    /// [`DataError::TooLarge`] instead of being downloaded in full.
    pub size: Option<u64>,
}

/// The files a download fetches and their checksums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The files, fetched in this order.
    pub entries: Vec<ManifestEntry>,
}

impl Manifest {
    /// A manifest from `(file name, sha256)` pairs, sizes unknown.
    pub fn new<N: Into<String>, H: Into<String>>(files: impl IntoIterator<Item = (N, H)>) -> Self {
        Manifest {
            entries: files
                .into_iter()
                .map(|(n, h)| ManifestEntry {
                    file_name: n.into(),
                    sha256: h.into().to_ascii_lowercase(),
                    size: None,
                })
                .collect(),
        }
    }

    /// The four MNIST files, with the digests and sizes published by
    /// TensorFlow Datasets, torchvision and others.
    pub fn mnist() -> Self {
        let e = |name: &str, sha: &str, size| ManifestEntry {
            file_name: name.into(),
            sha256: sha.into(),
            size: Some(size),
        };
        Manifest {
            entries: vec![
                e(
                    "train-images-idx3-ubyte.gz",
                    "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                    9_912_422,
                ),
                e(
                    "train-labels-idx1-ubyte.gz",
                    "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                    28_881,
                ),
                e(
                    "t10k-images-idx3-ubyte.gz",
                    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                    1_648_877,
                ),
                e(
                    "t10k-labels-idx1-ubyte.gz",
                    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                    4_542,
                ),
            ],
        }
    }
}

/// What happened to one manifest file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Where the verified file now is.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// `true` if it was already present with the right digest and not fetched.
    pub skipped: bool,
}

/// Lower-case hex of a digest.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a file in lower-case hex, and its length.
///
/// **Errors** with [`DataError::Io`] if the file cannot be read.
pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        action: "cannot read",
        source,
    };
    let mut f = File::open(path).map_err(io)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let k = f.read(&mut buf).map_err(io)?;
        if k == 0 {
            return Ok((hex(&h.finalize()), total));
        }
        h.update(&buf[..k]);
        total += k as u64;
    }
}

/// Removes the temporary file unless the download succeeded.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Fetches the four MNIST files from `base_url` (e.g. [`MNIST_BASE_URL`])
/// into `dir`; see [`download`].
///
/// **Errors** as [`download`].
pub fn download_mnist(
    dir: impl AsRef<Path>,
    base_url: &str,
    progress: bool,
) -> Result<Vec<Fetched>> {
    download(dir, base_url, &Manifest::mnist(), progress)
}

/// Fetches every file of `manifest` from `base_url` + file name into `dir`
/// (created if needed), verifying SHA-256 digests, writing each through a
/// temporary file renamed into place, and skipping files already present
/// with the right digest. With `progress`, draws a progress bar per file
/// on stderr.
///
/// **Errors** with [`DataError::Http`] on an HTTP error status,
/// [`DataError::Network`] if the request or transfer fails,
/// [`DataError::TooLarge`] if a body exceeds the manifest's size,
/// [`DataError::Checksum`] on a digest mismatch and [`DataError::Io`] if the
/// folder cannot be written; no file is left under its final name or as a
/// temporary then. Files fetched before the error stay.
pub fn download(
    dir: impl AsRef<Path>,
    base_url: &str,
    manifest: &Manifest,
    progress: bool,
) -> Result<Vec<Fetched>> {
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir).map_err(|source| DataError::Io {
        path: dir.to_path_buf(),
        action: "cannot create folder",
        source,
    })?;
    let config = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .build();
    let agent = ureq::Agent::new_with_config(config);
    manifest
        .entries
        .iter()
        .map(|entry| fetch_one(&agent, dir, base_url, entry, progress))
        .collect()
}

fn fetch_one(
    agent: &ureq::Agent,
    dir: &Path,
    base_url: &str,
    entry: &ManifestEntry,
    progress: bool,
) -> Result<Fetched> {
    let path = dir.join(&entry.file_name);
    if path.is_file() {
        let (digest, bytes) = sha256_file(&path)?;
        if digest == entry.sha256 {
            if progress {
                eprintln!("{}: present, SHA-256 verified", path.display());
            }
            return Ok(Fetched {
                path,
                bytes,
                skipped: true,
            });
        }
        if progress {
            eprintln!(
                "{}: present but SHA-256 {digest} is not {}; fetching again",
                path.display(),
                entry.sha256
            );
        }
    }

    let url = format!("{}/{}", base_url.trim_end_matches('/'), entry.file_name);
    let network = |e: &dyn std::fmt::Display| DataError::Network {
        url: url.clone(),
        detail: e.to_string(),
    };
    let mut response = agent.get(&url).call().map_err(|e| match e {
        ureq::Error::StatusCode(status) => DataError::Http {
            url: url.clone(),
            status,
        },
        other => network(&other),
    })?;

    let tmp = dir.join(format!(".{}.part-{}", entry.file_name, std::process::id()));
    let mut guard = TempGuard(Some(tmp.clone()));
    let write_err = |source| DataError::Io {
        path: tmp.clone(),
        action: "cannot write",
        source,
    };
    let mut file = File::create(&tmp).map_err(write_err)?;

    let limit = entry.size.unwrap_or(DEFAULT_MAX_BYTES);
    let bar = if progress {
        let bar = match response.body().content_length() {
            Some(len) => ProgressBar::new(len),
            None => ProgressBar::new_spinner(),
        };
        let style = ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("static template is valid")
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(entry.file_name.clone());
        bar
    } else {
        ProgressBar::hidden()
    };

    let mut reader = response.body_mut().with_config().limit(u64::MAX).reader();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let k = reader.read(&mut buf).map_err(|e| network(&e))?;
        if k == 0 {
            break;
        }
        total += k as u64;
        if total > limit {
            bar.abandon();
            return Err(DataError::TooLarge { url, limit }.into());
        }
        hasher.update(&buf[..k]);
        file.write_all(&buf[..k]).map_err(write_err)?;
        bar.inc(k as u64);
    }
    file.sync_all().map_err(write_err)?;
    drop(file);
    bar.finish();

    let got = hex(&hasher.finalize());
    if got != entry.sha256 {
        return Err(DataError::Checksum {
            file: url,
            expected: entry.sha256.clone(),
            got,
        }
        .into());
    }
    std::fs::rename(&tmp, &path).map_err(|source| DataError::Io {
        path: path.clone(),
        action: "cannot rename the verified download into place",
        source,
    })?;
    guard.0 = None; // renamed: nothing to clean up
    Ok(Fetched {
        path,
        bytes: total,
        skipped: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_abc_is_the_fips_vector() {
        let mut h = Sha256::new();
        h.update(b"abc");
        assert_eq!(
            hex(&h.finalize()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn manifest_new_lowercases_digests() {
        let m = Manifest::new([("a", "ABCD")]);
        assert_eq!(m.entries[0].sha256, "abcd");
        assert_eq!(m.entries[0].size, None);
        assert_eq!(Manifest::mnist().entries.len(), 4);
    }
}
