//! The one trait every layer implements, the crate's and its users'.
//!
//! A layer takes one or more inputs and produces one output. The first
//! [`Layer::num_differentiable`] inputs receive gradients from
//! [`Layer::backward`]; any further inputs (labels of a loss layer) are
//! constants. Parameters are exposed by name through [`Layer::params`], each
//! with the gradient the last `backward` computed for it.
//!
//! # Contract (what the gradient checker verifies)
//! - `forward` caches what `backward` needs; `backward` uses the cache of the
//!   **latest** successful `forward` and returns an error if there is none.
//!   A failed `forward` clears the cache, so no stale state is used.
//! - `backward` **overwrites** parameter gradients; it never accumulates them
//!   across calls. Calling it twice with the same `dout` gives the same result.
//! - Neither `forward` nor `backward` modifies its arguments.
//! - `backward` is linear in `dout`.

use crate::error::Result;
use crate::float::Float;
use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD};

/// One named parameter of a layer: its value (mutable, so optimizers and the
/// checker can change it in place) and the gradient of the last `backward`.
#[derive(Debug)]
pub struct Param<'a, F> {
    /// Name, e.g. `"W"`, `"b"`, or `"W1"` in a model.
    pub name: String,
    /// The parameter itself; there is exactly one copy of it, owned by the layer.
    pub value: ArrayViewMutD<'a, F>,
    /// Its gradient from the last `backward`, `None` before any.
    pub grad: Option<ArrayViewD<'a, F>>,
}

/// A differentiable layer (or loss, or whole model).
pub trait Layer<F: Float> {
    /// A short name for reports and errors, e.g. `"Affine"`.
    fn name(&self) -> String;

    /// How many inputs `forward` takes.
    fn num_inputs(&self) -> usize;

    /// How many of the inputs, counted from the first, are differentiable.
    /// The rest (labels) get no gradient. Defaults to all of them.
    fn num_differentiable(&self) -> usize {
        self.num_inputs()
    }

    /// Computes the output and caches what `backward` needs.
    ///
    /// **Errors** on a wrong number of inputs, mismatched shapes, empty
    /// batches or invalid labels; the cache is cleared then.
    fn forward(&mut self, inputs: &[ArrayViewD<'_, F>]) -> Result<ArrayD<F>>;

    /// Given the gradient of a scalar loss with respect to the last output,
    /// returns the gradient for each differentiable input (in order, each in
    /// the shape of its input) and stores each parameter's gradient.
    ///
    /// **Errors** if there was no successful `forward`, or if `dout`'s shape
    /// differs from the last output's.
    fn backward(&mut self, dout: ArrayViewD<'_, F>) -> Result<Vec<ArrayD<F>>>;

    /// The layer's parameters, with their gradients. Defaults to none.
    fn params(&mut self) -> Vec<Param<'_, F>> {
        Vec::new()
    }

    /// Switches between training (`true`) and evaluation (`false`) mode.
    ///
    /// Only layers that behave differently in the two modes (Dropout,
    /// BatchNormalization, models containing them) override it; the default
    /// does nothing. Layers start in training mode.
    fn set_training(&mut self, _training: bool) {}
}
