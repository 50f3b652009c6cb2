//! The crate's error type.
//!
//! Every public forward, backward, loss, model and data function returns
//! [`Result`]. Messages name the operation, the shapes involved and what was
//! expected, in the spirit of numpy's `shapes (3,) and (2,2) not aligned`.

use std::fmt;

pub use crate::data::DataError;

/// A shape printed the way numpy prints it: `(3,)`, `(2, 2)`, `()`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Shape(pub Vec<usize>);

impl Shape {
    /// The shape of any slice of dimensions.
    pub fn of(dims: &[usize]) -> Self {
        Shape(dims.to_vec())
    }
}

impl From<&[usize]> for Shape {
    fn from(d: &[usize]) -> Self {
        Shape(d.to_vec())
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [] => write!(f, "()"),
            [d] => write!(f, "({d},)"),
            dims => {
                write!(f, "(")?;
                for (i, d) in dims.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{d}")?;
                }
                write!(f, ")")
            }
        }
    }
}

/// Everything that can go wrong in this crate.
///
/// `op` fields name the operation, e.g. `"Affine.forward"`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two shapes that must agree do not (numpy's "not aligned").
    #[error("{op}: shapes {lhs} and {rhs} not aligned: {detail}")]
    ShapeMismatch {
        /// The operation, e.g. `"Affine.forward"`.
        op: String,
        /// Left operand's shape.
        lhs: Shape,
        /// Right operand's shape.
        rhs: Shape,
        /// Which dimensions disagree and what was expected.
        detail: String,
    },
    /// An input of unsupported rank or shape.
    #[error("{op}: input {input} has shape {got}, expected {expected}")]
    BadShape {
        /// The operation.
        op: String,
        /// Which input (0-based).
        input: usize,
        /// The shape received.
        got: Shape,
        /// What was expected, in words.
        expected: String,
    },
    /// `backward` was called with no successful `forward` before it.
    #[error("{op}: backward called before a successful forward")]
    BackwardBeforeForward {
        /// The operation.
        op: String,
    },
    /// The upstream gradient's shape differs from the last forward output's.
    #[error(
        "{op}: dout has shape {got}, expected {expected} (the shape of the last forward output)"
    )]
    DoutShape {
        /// The operation.
        op: String,
        /// Shape of the last forward output.
        expected: Shape,
        /// Shape of the `dout` received.
        got: Shape,
    },
    /// Wrong number of inputs passed to `forward`.
    #[error("{op}: expected {expected} input(s), got {got}")]
    InputCount {
        /// The operation.
        op: String,
        /// Inputs the layer takes.
        expected: usize,
        /// Inputs received.
        got: usize,
    },
    /// A batch with no rows (or an input with no elements).
    #[error("{op}: empty batch (input shape {shape})")]
    EmptyBatch {
        /// The operation.
        op: String,
        /// The offending shape.
        shape: Shape,
    },
    /// A class label outside `0..classes`.
    #[error("{op}: label {label} at position {index} is out of range 0..{classes}")]
    LabelOutOfRange {
        /// The operation.
        op: String,
        /// Position in the batch.
        index: usize,
        /// The label value.
        label: f64,
        /// Number of classes.
        classes: usize,
    },
    /// Label count differs from batch size.
    #[error("{op}: {got} label(s) for a batch of {expected}")]
    LabelCount {
        /// The operation.
        op: String,
        /// Batch size.
        expected: usize,
        /// Labels received.
        got: usize,
    },
    /// Labels that are neither integer class indices nor one-hot rows.
    #[error("{op}: invalid labels: {detail}")]
    InvalidLabels {
        /// The operation.
        op: String,
        /// What is wrong with them.
        detail: String,
    },
    /// NaN or infinity where a finite value is required.
    #[error("{op}: non-finite value in {what}")]
    NonFinite {
        /// The operation.
        op: String,
        /// Which tensor held it.
        what: String,
    },
    /// A configuration that cannot work (a hidden size of 0, a bad learning rate).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A parameter name the layer or model does not have.
    #[error("{op}: no parameter named {name:?}")]
    UnknownParam {
        /// The operation.
        op: String,
        /// The name asked for.
        name: String,
    },
    /// An optimizer step on a parameter that has no gradient yet (no
    /// `backward` has run since the layer was built).
    #[error("{op}: parameter {name:?} has no gradient (run backward first)")]
    MissingGradient {
        /// The operation, e.g. `"Sgd.step"`.
        op: String,
        /// The parameter's name.
        name: String,
    },
    /// Loading, splitting or downloading data failed (see [`DataError`]).
    #[error(transparent)]
    Data(#[from] DataError),
    /// The verification gate (gradient checks, snapshot facts) found
    /// failures, so the reference run refused to train.
    #[error(
        "verification failed ({} failing check(s): {}); refusing to train until the backpropagation is fixed",
        failures.len(),
        failures.join("; ")
    )]
    VerificationFailed {
        /// One line per failing check, naming it and what went wrong.
        failures: Vec<String>,
        /// The full verification table, passing rows included (may be empty).
        report: String,
    },
    /// Writing a run's outputs (metrics, plots) failed.
    #[error("cannot write {path}: {detail}")]
    Output {
        /// The file or directory being written.
        path: std::path::PathBuf,
        /// What went wrong (the I/O or encoder error).
        detail: String,
    },
    /// A finished run's final test accuracy is below the required minimum
    /// (the CLI's `--min-accuracy`).
    #[error("final test accuracy {accuracy:.4} is below the required minimum {min:.4}")]
    AccuracyBelowMinimum {
        /// The run's final test accuracy.
        accuracy: f64,
        /// The required minimum.
        min: f64,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_print_like_numpy() {
        assert_eq!(Shape(vec![]).to_string(), "()");
        assert_eq!(Shape(vec![3]).to_string(), "(3,)");
        assert_eq!(Shape(vec![2, 2]).to_string(), "(2, 2)");
    }
}
