//! # gradverify
//!
//! Verifies hand-written backpropagation: the layers of the classic
//! error-backpropagation tutorial (Add, Mul, Sigmoid, ReLU, Affine,
//! Softmax-with-loss, an MLP), corrected and generic over `f32`/`f64`, and a
//! gradient checker that works on any type implementing [`Layer`], including
//! yours.

pub mod check;
pub mod error;
pub mod float;
pub mod layer;
pub mod layers;
#[cfg(feature = "proptest")]
pub mod strategies;

pub use error::{Error, Result, Shape};
pub use float::Float;
pub use layer::{Layer, Param};
