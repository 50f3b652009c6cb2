//! Integration tests of `gradverify::data`.

mod alloc;
mod download;
mod embedded;
mod fashion_crosscheck;
mod idx_errors;
mod load_dir;
mod npm_convert;

use std::path::Path;

/// An IDX image file: header for `n x rows x cols`, then `payload` as given
/// (its length need not match, to build broken files).
pub fn images_idx(n: u32, rows: u32, cols: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = 0x0000_0803u32.to_be_bytes().to_vec();
    for d in [n, rows, cols] {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(payload);
    v
}

/// An IDX label file declaring `n` labels, then `payload` as given.
pub fn labels_idx(n: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = 0x0000_0801u32.to_be_bytes().to_vec();
    v.extend_from_slice(&n.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// Writes `bytes` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}
