//! The tutorial's layers, each in its own module with forward and backward side by side.

pub mod sigmoid;

pub use sigmoid::Sigmoid;

use crate::error::{Error, Result, Shape};
use ndarray::ArrayViewD;

/// Returns an [`Error::InputCount`] unless exactly `expected` inputs were given.
pub(crate) fn expect_inputs<F>(
    op: &str,
    inputs: &[ArrayViewD<'_, F>],
    expected: usize,
) -> Result<()> {
    if inputs.len() == expected {
        Ok(())
    } else {
        Err(Error::InputCount {
            op: op.to_string(),
            expected,
            got: inputs.len(),
        })
    }
}

/// Returns an [`Error::DoutShape`] unless `dout` has the shape of the last output.
pub(crate) fn expect_dout_shape(op: &str, expected: &[usize], got: &[usize]) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::DoutShape {
            op: op.to_string(),
            expected: Shape::of(expected),
            got: Shape::of(got),
        })
    }
}
