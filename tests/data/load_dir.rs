//! `load_dir`: the four standard files, raw or gzip, of any lengths.

use super::{images_idx, labels_idx, write};
use gradverify::Error;
use gradverify::data::idx::gzip;
use gradverify::data::{DataError, load_dir};

/// A dir with 3 training and 2 test images of 2x2, mixing raw and `.gz`.
fn small_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "train-images-idx3-ubyte.gz",
        &gzip(&images_idx(3, 2, 2, &(0..12).collect::<Vec<u8>>())),
    );
    write(d, "train-labels-idx1-ubyte", &labels_idx(3, &[4, 0, 9]));
    write(d, "t10k-images-idx3-ubyte", &images_idx(2, 2, 2, &[255; 8]));
    write(
        d,
        "t10k-labels-idx1-ubyte.gz",
        &gzip(&labels_idx(2, &[1, 1])),
    );
    dir
}

#[test]
fn loads_any_lengths_with_either_name() {
    let dir = small_dir();
    let sets = load_dir(dir.path()).unwrap();
    assert_eq!((sets.train.len(), sets.test.len()), (3, 2));
    assert_eq!(sets.train.labels(), &[4, 0, 9]);
    assert_eq!(sets.train.images().image(2), Some(&[8u8, 9, 10, 11][..]));
    let (x, y) = sets.test.batch::<f32>(&[1]).unwrap();
    assert_eq!(x.dim(), (1, 4));
    assert!(x.iter().all(|&v| v == 1.0));
    assert_eq!(y, vec![1]);
}

#[test]
fn a_missing_file_names_both_accepted_names() {
    let dir = small_dir();
    std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let e = load_dir(dir.path()).unwrap_err();
    assert!(
        matches!(e, Error::Data(DataError::MissingFile { .. })),
        "{e:?}"
    );
    assert!(
        e.to_string().ends_with(
            "missing file: expected one of t10k-labels-idx1-ubyte, t10k-labels-idx1-ubyte.gz"
        ),
        "{e}"
    );
}

#[test]
fn image_and_label_counts_must_match() {
    let dir = small_dir();
    write(
        dir.path(),
        "train-labels-idx1-ubyte",
        &labels_idx(2, &[4, 0]),
    );
    let e = load_dir(dir.path()).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Data(DataError::CountMismatch {
                images: 3,
                labels: 2,
                ..
            })
        ),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(msg.contains("train-images-idx3-ubyte.gz + "), "{msg}");
    assert!(
        msg.ends_with("3 image(s) but 2 label(s), expected equal counts"),
        "{msg}"
    );
}

#[test]
fn train_and_test_images_must_have_the_same_size() {
    let dir = small_dir();
    write(
        dir.path(),
        "t10k-images-idx3-ubyte",
        &images_idx(2, 1, 4, &[0; 8]),
    );
    let e = load_dir(dir.path()).unwrap_err();
    assert!(
        e.to_string().contains("images are 1x4, expected 2x2"),
        "{e}"
    );
}

#[test]
fn an_error_in_one_file_names_that_file() {
    let dir = small_dir();
    let p = write(
        dir.path(),
        "t10k-images-idx3-ubyte",
        &images_idx(2, 2, 2, &[0; 9]),
    );
    let e = load_dir(dir.path()).unwrap_err();
    assert!(e.to_string().starts_with(&p.display().to_string()), "{e}");
    assert!(e.to_string().contains("1 trailing byte(s)"), "{e}");
}
