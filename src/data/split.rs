//! Deterministic, seeded, stratified train/test splits.
//!
//! Each class keeps (as nearly as integers allow) the same share in the test
//! set as in the whole: class `c` with `n_c` of `n` items gets
//! `n_c * test_size / n` test items, rounded by the largest-remainder method
//! (ties to the lower class) so the test set has exactly `test_size` items.
//! Which items go where is decided by shuffling each class's indices with a
//! `StdRng` seeded from `seed`: the same labels and seed give the same split.

use super::dataset::{Dataset, TrainTest};
use super::error::DataError;
use crate::Result;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// Indices of a dataset split in two; both sorted ascending and disjoint,
/// together covering every index once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Training indices.
    pub train: Vec<usize>,
    /// Test indices.
    pub test: Vec<usize>,
}

impl Split {
    /// Copies the two parts of `data` out as datasets named `<name>/train`
    /// and `<name>/test`.
    ///
    /// **Errors** with [`DataError::IndexOutOfRange`] if the split was made
    /// for a larger dataset.
    pub fn apply(&self, data: &Dataset) -> Result<TrainTest> {
        Ok(TrainTest {
            train: data.subset(&self.train, format!("{}/train", data.name()))?,
            test: data.subset(&self.test, format!("{}/test", data.name()))?,
        })
    }
}

/// How many test items each class gets: proportional shares rounded by the
/// largest-remainder method, summing to exactly `test_size`.
pub fn test_counts(class_counts: &[usize], test_size: usize) -> Vec<usize> {
    let n: usize = class_counts.iter().sum();
    if n == 0 {
        return vec![0; class_counts.len()];
    }
    // Exact integer arithmetic in u128: n_c * test_size <= n^2 cannot overflow.
    let share = |c: usize| class_counts[c] as u128 * test_size as u128;
    let mut out: Vec<usize> = (0..class_counts.len())
        .map(|c| (share(c) / n as u128) as usize)
        .collect();
    let mut by_remainder: Vec<usize> = (0..class_counts.len()).collect();
    by_remainder.sort_by_key(|&c| std::cmp::Reverse(share(c) % n as u128));
    let missing = test_size - out.iter().sum::<usize>();
    for &c in by_remainder.iter().take(missing) {
        out[c] += 1;
    }
    out
}

/// Splits items with the given class `labels` into `test_size` test items
/// and the rest for training, stratified by class and seeded.
///
/// **Errors** with [`DataError::BadSplit`] if `test_size > labels.len()`.
pub fn stratified_split(labels: &[u8], test_size: usize, seed: u64) -> Result<Split> {
    let n = labels.len();
    if test_size > n {
        return Err(DataError::BadSplit {
            n,
            detail: format!("test size {test_size} exceeds the {n} items available"),
        }
        .into());
    }
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); 256];
    for (i, &l) in labels.iter().enumerate() {
        by_class[l as usize].push(i);
    }
    let counts: Vec<usize> = by_class.iter().map(Vec::len).collect();
    let take = test_counts(&counts, test_size);
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut train, mut test) = (
        Vec::with_capacity(n - test_size),
        Vec::with_capacity(test_size),
    );
    for (members, k) in by_class.iter_mut().zip(take) {
        members.shuffle(&mut rng);
        test.extend_from_slice(&members[..k]);
        train.extend_from_slice(&members[k..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    Ok(Split { train, test })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_remainder_rounding_hits_the_total() {
        // Shares 0.5, 1.5, 1.0 of 3: floors 0, 1, 1; one left goes to the
        // lowest class among the tied remainders (class 0).
        assert_eq!(test_counts(&[1, 3, 2], 3), vec![1, 1, 1]);
        assert_eq!(test_counts(&[5, 5], 0), vec![0, 0]);
        assert_eq!(test_counts(&[5, 5], 10), vec![5, 5]);
        assert_eq!(test_counts(&[], 0), Vec::<usize>::new());
    }

    #[test]
    fn too_large_a_test_size_is_an_error() {
        let e = stratified_split(&[0, 1], 3, 0).unwrap_err();
        assert!(e.to_string().contains("test size 3 exceeds the 2"), "{e}");
    }
}
