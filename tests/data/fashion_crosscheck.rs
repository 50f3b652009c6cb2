//! Our reader against the `mnist` crate on the full Fashion-MNIST files.

use gradverify::data::{STANDARD_FILES, load_dir};
use std::path::Path;

const FASHION_DIR: &str = "/usr/share/datasets/fashion-mnist";

#[test]
fn our_reader_agrees_with_the_mnist_crate_on_fashion_mnist() {
    let src = Path::new(FASHION_DIR);
    if !STANDARD_FILES
        .iter()
        .all(|f| src.join(format!("{f}.gz")).is_file())
    {
        let msg = format!(
            "Fashion-MNIST not found in {FASHION_DIR} (apt-get install dataset-fashion-mnist)"
        );
        assert!(
            std::env::var("GRADVERIFY_REQUIRE_DATA").as_deref() != Ok("1"),
            "{msg}"
        );
        println!("{msg}: skipping the cross-check");
        return;
    }
    // The mnist crate reads raw files only: decompress into a temporary dir.
    let tmp = tempfile::tempdir().unwrap();
    for f in STANDARD_FILES {
        let gz = std::fs::File::open(src.join(format!("{f}.gz"))).unwrap();
        let mut out = std::fs::File::create(tmp.path().join(f)).unwrap();
        std::io::copy(&mut flate2::read::GzDecoder::new(gz), &mut out).unwrap();
    }
    let oracle = mnist::MnistBuilder::new()
        .base_path(tmp.path().to_str().unwrap())
        .label_format_digit()
        .training_set_length(60_000)
        .validation_set_length(0)
        .test_set_length(10_000)
        .finalize();

    // Our reader, on the gzipped originals and on the raw copies.
    for dir in [src, tmp.path()] {
        let ours = load_dir(dir).unwrap();
        assert_eq!((ours.train.len(), ours.test.len()), (60_000, 10_000));
        assert_eq!((ours.train.rows(), ours.train.cols()), (28, 28));
        assert!(
            ours.train.images().pixels() == oracle.trn_img.as_slice(),
            "train pixels"
        );
        assert!(
            ours.train.labels() == oracle.trn_lbl.as_slice(),
            "train labels"
        );
        assert!(
            ours.test.images().pixels() == oracle.tst_img.as_slice(),
            "test pixels"
        );
        assert!(
            ours.test.labels() == oracle.tst_lbl.as_slice(),
            "test labels"
        );
        // Fashion-MNIST is balanced: 6,000 and 1,000 per class.
        assert_eq!(ours.train.class_counts(), [6000; 10]);
        assert_eq!(ours.test.class_counts(), [1000; 10]);
    }
}
