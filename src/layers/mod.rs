//! The tutorial's layers, each in its own module with forward and backward side by side.

pub mod add;
pub mod affine;
pub mod batch_norm;
#[cfg(test)]
mod checked;
pub mod conv;
pub mod dropout;
pub mod im2col;
pub mod leaky_relu;
pub mod mul;
#[cfg(test)]
pub(crate) mod numeric;
pub mod pooling;
#[cfg(test)]
mod props;
pub mod relu;
pub mod sigmoid;
pub(crate) mod small_gemm;
pub mod softmax_with_loss;
pub mod softplus;
pub mod tanh;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod worked;

pub use add::Add;
pub use affine::Affine;
pub use batch_norm::BatchNormalization;
pub use conv::Convolution;
pub use dropout::Dropout;
pub use leaky_relu::LeakyRelu;
pub use mul::Mul;
pub use pooling::{AveragePooling, MaxPooling};
pub use relu::Relu;
pub use sigmoid::Sigmoid;
pub use softmax_with_loss::SoftmaxWithLoss;
pub use softplus::Softplus;
pub use tanh::Tanh;

use crate::error::{Error, Result, Shape};
use crate::layer::Param;
use ndarray::{Array, ArrayViewD, Dimension};

/// Reshapes an owned array in row-major order whatever its memory layout.
///
/// `into_shape_with_order` alone fails on column-major arrays, which
/// ndarray's `dot` returns for column-major operands and `to_owned` keeps
/// from permuted views.
pub(crate) fn reshape_c<A: Clone, D: ndarray::Dimension, E: ndarray::ShapeArg>(
    a: ndarray::Array<A, D>,
    shape: E,
) -> ndarray::Array<A, E::Dim> {
    a.as_standard_layout()
        .into_owned()
        .into_shape_with_order(shape)
        .expect("same element count")
}

/// The [`Param`] `name` over a layer's own `value`, with the gradient `grad`
/// of the last backward (`None` before any).
pub(crate) fn param<'a, F, D: Dimension>(
    name: &str,
    value: &'a mut Array<F, D>,
    grad: Option<&'a Array<F, D>>,
) -> Param<'a, F> {
    Param {
        name: name.into(),
        value: value.view_mut().into_dyn(),
        grad: grad.map(|g| g.view().into_dyn()),
    }
}

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

/// Returns an [`Error::ShapeMismatch`] unless two element-wise operands have
/// the same shape (there is no broadcasting).
pub(crate) fn expect_same_shape<F>(
    op: &str,
    a: &ArrayViewD<'_, F>,
    b: &ArrayViewD<'_, F>,
) -> Result<()> {
    if a.shape() == b.shape() {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            op: op.into(),
            lhs: Shape::of(a.shape()),
            rhs: Shape::of(b.shape()),
            detail: "element-wise operands must have the same shape (no broadcasting)".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::Layer;
    use ndarray::{ArrayD, arr0, arr1};

    /// The tutorial's worked example on inputs `a`, `b`, `c`, returning
    /// `(x, y, f)` and `(df/dx, df/dy, df/da, df/db, df/dc)`.
    #[allow(clippy::type_complexity)]
    fn worked_example(
        a: ArrayD<f64>,
        b: ArrayD<f64>,
        c: ArrayD<f64>,
    ) -> ([ArrayD<f64>; 3], [ArrayD<f64>; 5]) {
        let (mut add_x, mut add_y, mut mul) = (Add::new(), Add::new(), Mul::new());
        let x = add_x.forward(&[a.view(), b.view()]).unwrap();
        let y = add_y.forward(&[b.view(), c.view()]).unwrap();
        let f = mul.forward(&[x.view(), y.view()]).unwrap();
        let df = ArrayD::ones(f.raw_dim());
        let g = mul.backward(df.view()).unwrap();
        let (dx, dy) = (g[0].clone(), g[1].clone());
        let gx = add_x.backward(dx.view()).unwrap();
        let gy = add_y.backward(dy.view()).unwrap();
        // b feeds both x and y: its gradient is the sum of both paths.
        let db = &gx[1] + &gy[0];
        ([x, y, f], [dx, dy, gx[0].clone(), db, gy[1].clone()])
    }

    #[test]
    fn worked_example_on_scalars_is_exact() {
        let ([x, y, f], [dx, dy, da, db, dc]) = worked_example(
            arr0(-1.0).into_dyn(),
            arr0(3.0).into_dyn(),
            arr0(4.0).into_dyn(),
        );
        assert_eq!(f.shape(), &[] as &[usize]);
        assert_eq!((x[[]], y[[]], f[[]]), (2.0, 7.0, 14.0));
        assert_eq!(
            (dx[[]], dy[[]], da[[]], db[[]], dc[[]]),
            (7.0, 2.0, 7.0, 9.0, 2.0)
        );
    }

    #[test]
    fn worked_example_on_arrays_is_exact() {
        let a = arr1(&[-1.0, 1.0]).into_dyn();
        let b = arr1(&[3.0, 2.0]).into_dyn();
        let c = arr1(&[4.0, 0.5]).into_dyn();
        let ([x, y, f], [dx, dy, da, db, dc]) = worked_example(a, b, c);
        assert_eq!(x, arr1(&[2.0, 3.0]).into_dyn());
        assert_eq!(y, arr1(&[7.0, 2.5]).into_dyn());
        assert_eq!(f, arr1(&[14.0, 7.5]).into_dyn());
        assert_eq!(dx, arr1(&[7.0, 2.5]).into_dyn());
        assert_eq!(dy, arr1(&[2.0, 3.0]).into_dyn());
        assert_eq!(da, arr1(&[7.0, 2.5]).into_dyn());
        assert_eq!(db, arr1(&[9.0, 5.5]).into_dyn());
        assert_eq!(dc, arr1(&[2.0, 3.0]).into_dyn());
    }
}
