//! The committed digits and their default split.

use gradverify::data::npm::NPM_DIGIT_COUNTS;
use gradverify::data::{
    DEFAULT_SPLIT_SEED, EMBEDDED_TEST_SIZE, embedded_digits, embedded_split, stratified_split,
};
use std::collections::HashSet;

#[test]
fn embedded_files_decode_to_ten_thousand_digits_with_the_npm_counts() {
    let d = embedded_digits().unwrap();
    assert_eq!((d.len(), d.rows(), d.cols()), (10_000, 28, 28));
    assert_eq!(
        d.class_counts(),
        [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    );
    assert_eq!(d.class_counts(), NPM_DIGIT_COUNTS);
    let mut levels = [false; 256];
    for &p in d.images().pixels() {
        levels[p as usize] = true;
    }
    assert!(levels.iter().all(|&l| l), "all 256 grey levels occur");
    // Real digits: mostly background, a few hundred bytes of ink per image.
    let ink = d.images().pixels().iter().filter(|&&p| p > 0).count() as f64 / 10_000.0;
    assert!(
        (100.0..250.0).contains(&ink),
        "mean non-zero pixels per image {ink}"
    );
}

/// 20% of each digit's count, rounded by largest remainder to total 2,000.
const TEST_PER_DIGIT: [usize; 10] = [200, 225, 198, 206, 196, 173, 203, 214, 189, 196];

#[test]
fn default_split_is_8000_2000_stratified_and_disjoint() {
    assert_eq!(TEST_PER_DIGIT.iter().sum::<usize>(), EMBEDDED_TEST_SIZE);
    let sets = embedded_split(DEFAULT_SPLIT_SEED).unwrap();
    assert_eq!((sets.train.len(), sets.test.len()), (8000, 2000));
    assert_eq!(sets.test.class_counts(), TEST_PER_DIGIT);
    let all = NPM_DIGIT_COUNTS;
    let (train, test) = (sets.train.class_counts(), sets.test.class_counts());
    for (c, &n) in all.iter().enumerate() {
        assert_eq!(train[c] + test[c], n);
        let share = test[c] as f64 / n as f64;
        assert!((share - 0.2).abs() < 1.0 / n as f64, "digit {c}: {share}");
    }
    assert_eq!(sets.train.name(), "embedded digits/train");
}

#[test]
fn split_indices_partition_the_set_and_depend_only_on_the_seed() {
    let d = embedded_digits().unwrap();
    let a = stratified_split(d.labels(), 2000, DEFAULT_SPLIT_SEED).unwrap();
    let b = stratified_split(d.labels(), 2000, DEFAULT_SPLIT_SEED).unwrap();
    assert_eq!(a, b, "same seed, same split");
    let train: HashSet<usize> = a.train.iter().copied().collect();
    let test: HashSet<usize> = a.test.iter().copied().collect();
    assert_eq!((train.len(), test.len()), (8000, 2000), "no duplicates");
    assert!(train.is_disjoint(&test));
    assert_eq!(train.union(&test).count(), 10_000);
    assert!(a.test.windows(2).all(|w| w[0] < w[1]), "sorted");

    let c = stratified_split(d.labels(), 2000, DEFAULT_SPLIT_SEED + 1).unwrap();
    assert_ne!(a.test, c.test, "another seed, another split");
    let c_test: HashSet<usize> = c.test.iter().copied().collect();
    // Random 20% samples overlap by about 20%, far from all.
    let overlap = test.intersection(&c_test).count();
    assert!((200..800).contains(&overlap), "overlap {overlap}");
}

#[test]
fn an_embedded_batch_is_scaled_to_the_unit_interval() {
    let sets = embedded_split(DEFAULT_SPLIT_SEED).unwrap();
    let idx: Vec<usize> = (0..100).map(|i| i * 79).collect();
    let (x, y) = sets.train.batch::<f32>(&idx).unwrap();
    assert_eq!(x.dim(), (100, 784));
    assert!(x.iter().all(|&v| (0.0..=1.0).contains(&v)));
    assert!(x.iter().any(|&v| v == 1.0));
    for (row, &i) in x.rows().into_iter().zip(&idx) {
        let px = sets.train.images().image(i).unwrap();
        for (&v, &p) in row.iter().zip(px) {
            assert_eq!(v, f32::from(p) / 255.0);
        }
    }
    assert_eq!(y[1], sets.train.labels()[79] as usize);
}
