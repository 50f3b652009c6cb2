//! proptest strategies for gradient-check inputs (feature `proptest`).
//!
//! Bounds follow the checker's property tests: batch `1..=8`, features
//! `1..=16`, values of magnitude `[0.1, 2]` with either sign (well scaled:
//! sigmoid and softmax are far from saturation, products stay `O(1)`, and a
//! ReLU input is never within a finite-difference step of its kink; see
//! [`value`]), Affine inputs of rank 1 to 4 (`(D,)`, `(N, D)`, `(N, C, W)`,
//! `(N, C, H, W)`: the `(N, 1, 28, 28)` of MNIST scaled down), and labels as
//! class indices `(N,)` or one-hot rows `(N, C)`, both stored as floats.
//!
//! All randomness comes from the strategies, so failures shrink.

use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;

/// Largest batch generated.
pub const MAX_BATCH: usize = 8;
/// Largest feature count generated.
pub const MAX_FEATURES: usize = 16;

/// A batch size in `1..=8`.
pub fn batch() -> impl Strategy<Value = usize> {
    1..=MAX_BATCH
}

/// A feature count in `1..=16`.
pub fn features() -> impl Strategy<Value = usize> {
    1..=MAX_FEATURES
}

/// A well-scaled value: magnitude uniform in `[0.1, 2]`, either sign.
///
/// Bounded away from 0 so that a generated case is never degenerate: an
/// input of exactly 0 into an MLP with zero biases puts every ReLU exactly at
/// its kink, and the check then (rightly) refuses to pass vacuously. Kinks
/// have their own tests.
pub fn value() -> impl Strategy<Value = f64> {
    (0.1..=2.0f64, any::<bool>()).prop_map(|(m, neg)| if neg { -m } else { m })
}

/// An array of `shape` filled with [`value`]s.
pub fn array(shape: Vec<usize>) -> impl Strategy<Value = ArrayD<f64>> {
    let n: usize = shape.iter().product();
    proptest::collection::vec(value(), n).prop_map(move |v| {
        ArrayD::from_shape_vec(IxDyn(&shape), v).expect("length is the shape's product")
    })
}

/// A 2-D shape `(batch, features)`.
pub fn matrix_shape() -> impl Strategy<Value = Vec<usize>> {
    (batch(), features()).prop_map(|(n, d)| vec![n, d])
}

/// A shape of rank 1 to 4 with small dimensions (element-wise layers).
pub fn any_shape() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        features().prop_map(|d| vec![d]),
        matrix_shape(),
        (batch(), 1..=3usize, 1..=6usize).prop_map(|(n, c, w)| vec![n, c, w]),
        (batch(), 1..=2usize, 1..=4usize, 1..=4usize).prop_map(|(n, c, h, w)| vec![n, c, h, w]),
    ]
}

/// An array of any shape from [`any_shape`].
pub fn any_array() -> impl Strategy<Value = ArrayD<f64>> {
    any_shape().prop_flat_map(array)
}

/// Two arrays of one shape (for Add, Mul).
pub fn same_shape_pair() -> impl Strategy<Value = (ArrayD<f64>, ArrayD<f64>)> {
    any_shape().prop_flat_map(|s| (array(s.clone()), array(s)))
}

/// An Affine input shape of rank 1 to 4: `(D,)`, `(N, D)`, `(N, C, W)` or
/// `(N, C, H, W)`; the features per sample (product after the batch axis) are
/// at most 32.
pub fn affine_input_shape() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        features().prop_map(|d| vec![d]),
        matrix_shape(),
        (batch(), 1..=2usize, 1..=8usize).prop_map(|(n, c, w)| vec![n, c, w]),
        (batch(), 1..=2usize, 1..=4usize, 1..=4usize).prop_map(|(n, c, h, w)| vec![n, c, h, w]),
    ]
}

/// The two label forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelForm {
    /// Class indices `(N,)` as floats.
    Index,
    /// One-hot rows `(N, C)`.
    OneHot,
}

/// Either label form.
pub fn label_form() -> impl Strategy<Value = LabelForm> {
    prop_oneof![Just(LabelForm::Index), Just(LabelForm::OneHot)]
}

/// Builds labels for `classes` classes from class indices.
pub fn labels_from(indices: &[usize], classes: usize, form: LabelForm) -> ArrayD<f64> {
    match form {
        LabelForm::Index => ArrayD::from_shape_vec(
            IxDyn(&[indices.len()]),
            indices.iter().map(|&c| c as f64).collect(),
        )
        .expect("one label per row"),
        LabelForm::OneHot => {
            let mut t = ArrayD::zeros(IxDyn(&[indices.len(), classes]));
            for (i, &c) in indices.iter().enumerate() {
                t[[i, c]] = 1.0;
            }
            t
        }
    }
}

/// `n` labels of `classes` classes in `form`.
pub fn labels(n: usize, classes: usize, form: LabelForm) -> impl Strategy<Value = ArrayD<f64>> {
    proptest::collection::vec(0..classes, n).prop_map(move |idx| labels_from(&idx, classes, form))
}

/// A classification case: scores `(N, C)` with `C` in `2..=16` and labels
/// of either form.
pub fn classification() -> impl Strategy<Value = (ArrayD<f64>, ArrayD<f64>, LabelForm)> {
    (batch(), 2..=MAX_FEATURES, label_form())
        .prop_flat_map(|(n, c, form)| (array(vec![n, c]), labels(n, c, form), Just(form)))
}

/// A square matrix side in `2..=8` (for transposition bugs that shapes do
/// not give away).
pub fn square_side() -> impl Strategy<Value = usize> {
    2..=8usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    #[test]
    fn strategies_respect_their_bounds() {
        let mut runner = TestRunner::deterministic();
        for _ in 0..200 {
            let s = affine_input_shape()
                .new_tree(&mut runner)
                .unwrap()
                .current();
            assert!((1..=4).contains(&s.len()), "{s:?}");
            let per_sample: usize = if s.len() == 1 {
                s[0]
            } else {
                s[1..].iter().product()
            };
            assert!((1..=32).contains(&per_sample));
            let (x, t, form) = classification().new_tree(&mut runner).unwrap().current();
            assert!(x.iter().all(|v| (0.1..=2.0).contains(&v.abs())));
            let c = x.shape()[1];
            match form {
                LabelForm::Index => {
                    assert_eq!(t.shape(), &[x.shape()[0]]);
                    assert!(
                        t.iter()
                            .all(|&v| v >= 0.0 && v < c as f64 && v.fract() == 0.0)
                    );
                }
                LabelForm::OneHot => {
                    assert_eq!(t.shape(), x.shape());
                    for row in t.outer_iter() {
                        assert_eq!(row.sum(), 1.0);
                    }
                }
            }
        }
    }
}
