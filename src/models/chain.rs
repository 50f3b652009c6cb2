//! The plumbing the reference classifiers ([`Mlp`](crate::model::Mlp),
//! [`MlpBn`](super::MlpBn), [`ConvNet`](super::ConvNet)) share. Each is a
//! chain of layers ending in a [`SoftmaxWithLoss`], and each walks it the
//! same way.
//!
//! A model lists its layers in forward order as [`Link`]s, each with the
//! number its parameters take (`W1, b1, gamma1, …`); the functions here run
//! a batch forward through that list, a gradient backward through it in
//! reverse, collect the parameters under their numbered names, switch the
//! mode, and put the loss at the end.

use crate::error::{Error, Result};
use crate::float::Float;
use crate::layer::{Layer, Param};
use crate::layers::{SoftmaxWithLoss, expect_dout_shape, expect_inputs};
use ndarray::{ArrayD, ArrayViewD};

/// One layer of a chain and the number appended to its parameters' names
/// (`W` of link number 2 is `W2`). Layers without parameters may take any
/// number; the models give them the one of the layer before.
pub(crate) type Link<'a, F> = (usize, &'a mut dyn Layer<F>);

/// `x` forward through every layer of `chain` in order.
///
/// **Errors** as the first layer that fails. **Panics** if `chain` is
/// empty (every model has at least one layer).
pub(crate) fn forward_through<F: Float>(
    chain: Vec<Link<'_, F>>,
    x: ArrayViewD<'_, F>,
) -> Result<ArrayD<F>> {
    let mut links = chain.into_iter();
    let (_, first) = links.next().expect("a chain has at least one layer");
    let mut h = first.forward(&[x])?;
    for (_, layer) in links {
        h = layer.forward(&[h.view()])?;
    }
    Ok(h)
}

/// The gradient `d` of the chain's output, backward through every layer of
/// `chain` in reverse order: the gradient of its input.
///
/// **Errors** as the first layer that fails.
pub(crate) fn backward_through<F: Float>(
    chain: Vec<Link<'_, F>>,
    mut d: ArrayD<F>,
) -> Result<ArrayD<F>> {
    for (_, layer) in chain.into_iter().rev() {
        d = layer.backward(d.view())?.remove(0);
    }
    Ok(d)
}

/// Every layer's parameters in chain order, each named with its link's
/// number appended (`W` → `W1`).
pub(crate) fn numbered_params<F: Float>(chain: Vec<Link<'_, F>>) -> Vec<Param<'_, F>> {
    chain
        .into_iter()
        .flat_map(|(n, layer)| {
            layer.params().into_iter().map(move |mut p| {
                p.name = format!("{}{n}", p.name);
                p
            })
        })
        .collect()
}

/// Switches every layer of `chain` to training or evaluation mode.
pub(crate) fn set_training<F: Float>(chain: Vec<Link<'_, F>>, training: bool) {
    for (_, layer) in chain {
        layer.set_training(training);
    }
}

/// The start of a classifier's [`Layer::forward`]: clears `*ready` (the
/// layers' caches no longer hold a complete forward) and splits the inputs
/// into `(x, t)`.
///
/// **Errors** with [`Error::InputCount`] unless there are two inputs.
pub(crate) fn split_inputs<'a, 'v, F>(
    op: &str,
    inputs: &'a [ArrayViewD<'v, F>],
    ready: &mut bool,
) -> Result<(ArrayViewD<'a, F>, ArrayViewD<'a, F>)> {
    *ready = false;
    expect_inputs(op, inputs, 2)?;
    Ok((inputs[0].view(), inputs[1].view()))
}

/// The end of a classifier's [`Layer::forward`]: the 0-d loss of `logits`
/// against labels `t`; sets `*ready` once it succeeded.
///
/// **Errors** as [`SoftmaxWithLoss`]'s forward.
pub(crate) fn loss_forward<F: Float>(
    loss: &mut SoftmaxWithLoss<F>,
    ready: &mut bool,
    logits: ArrayD<F>,
    t: ArrayViewD<'_, F>,
) -> Result<ArrayD<F>> {
    let out = loss.forward(&[logits.view(), t])?;
    *ready = true;
    Ok(out)
}

/// The start of a classifier's [`Layer::backward`]: the gradient of the
/// logits from the 0-d `dout` of the loss.
///
/// **Errors** with [`Error::BackwardBeforeForward`] unless `ready` (a
/// complete successful forward) and [`Error::DoutShape`] unless `dout` is
/// 0-d.
pub(crate) fn loss_backward<F: Float>(
    op: &str,
    ready: bool,
    loss: &mut SoftmaxWithLoss<F>,
    dout: ArrayViewD<'_, F>,
) -> Result<ArrayD<F>> {
    if !ready {
        return Err(Error::BackwardBeforeForward { op: op.into() });
    }
    expect_dout_shape(op, &[], dout.shape())?;
    Ok(loss.backward(dout)?.remove(0))
}
