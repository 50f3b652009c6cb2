//! # gradverify
//!
//! Verifies hand-written backpropagation: the layers of the classic
//! error-backpropagation tutorial (Add, Mul, Sigmoid, ReLU, Affine,
//! Softmax-with-loss, an MLP), corrected and generic over `f32`/`f64`, and a
//! gradient checker that works on any type implementing [`Layer`], including
//! yours.

pub mod check;
pub mod cli;
pub mod data;
pub mod error;
pub mod float;
pub mod layer;
pub mod layers;
pub mod loss;
pub mod model;
pub mod numpy_rng;
pub mod optim;
#[cfg(feature = "proptest")]
pub mod strategies;
pub mod train;

pub use error::{Error, Result, Shape};
pub use float::Float;
pub use layer::{Layer, Param};
pub use layers::{Add, Affine, Mul, Relu, Sigmoid, SoftmaxWithLoss};
pub use loss::{MeanSquaredError, cross_entropy_error, mean_squared_error, softmax};
pub use model::{Activation, Mlp};
pub use optim::Sgd;

#[cfg(test)]
pub(crate) mod test_util {
    use ndarray::{ArrayBase, Data, Dimension};

    /// Asserts two arrays have the same shape and agree element-wise within `eps`.
    #[track_caller]
    pub(crate) fn assert_close<S1, S2, D1, D2>(
        a: &ArrayBase<S1, D1>,
        b: &ArrayBase<S2, D2>,
        eps: f64,
    ) where
        S1: Data,
        S2: Data,
        S1::Elem: crate::Float,
        S2::Elem: crate::Float,
        D1: Dimension,
        D2: Dimension,
    {
        use crate::Float;
        assert_eq!(a.shape(), b.shape(), "shapes differ");
        for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
            let (x, y) = (x.f64(), y.f64());
            assert!((x - y).abs() <= eps, "element {i}: {x} vs {y} (eps {eps})");
        }
    }
}

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
