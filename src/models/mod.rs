//! Reference models beyond the tutorial's [`Mlp`]: [`MlpBn`] (the MLP with
//! BatchNormalization and Dropout) and [`ConvNet`] (conv-relu-pool-affine-
//! relu-affine-softmax), plus the [`Classifier`] trait all three implement so
//! a trainer can hold any of them as a `Box<dyn Classifier<F>>` chosen by
//! [`ModelKind`] (e.g. from a `--model mlp|mlp-bn|convnet` flag).
//!
//! Every model is a [`Layer`] with inputs `(x, t)` (only `x` differentiable)
//! and the 0-d mean cross-entropy loss as output, so the gradient checker and
//! the optimizers work on it unchanged; [`Layer::set_training`] switches its
//! Dropout and BatchNormalization layers between training and evaluation.

pub(crate) mod chain;
pub mod convnet;
pub mod mlp_bn;

pub use convnet::{ConvNet, ConvNetConfig};
pub use mlp_bn::MlpBn;

use crate::error::{Error, Result};
use crate::float::Float;
use crate::layer::Layer;
use crate::loss::labelled_batch;
use crate::model::{Activation, Mlp};
use ndarray::{ArrayD, ArrayViewD};
use rand::Rng;
use rand::rngs::StdRng;
use rand_distr::StandardNormal;
use std::fmt;
use std::str::FromStr;

/// A classification model: a [`Layer`] whose output is the loss, plus logits
/// and accuracy.
pub trait Classifier<F: Float>: Layer<F> {
    /// The logits `(N, classes)` of a batch, in the current mode.
    ///
    /// **Errors** on inputs of the wrong shape.
    fn predict(&mut self, x: ArrayViewD<'_, F>) -> Result<ArrayD<F>>;

    /// The number of classes.
    fn num_classes(&self) -> usize;

    /// The mean cross-entropy loss of `x` against labels `t` (class indices
    /// or one-hot), in the current mode.
    ///
    /// **Errors** as [`Classifier::predict`] and for invalid labels.
    fn loss(&mut self, x: ArrayViewD<'_, F>, t: ArrayViewD<'_, F>) -> Result<F> {
        Ok(self.forward(&[x, t])?[[]])
    }

    /// The fraction of samples whose highest logit is at their label (ties
    /// go to the lowest class). Models with Dropout or BatchNormalization
    /// evaluate this in **evaluation mode** and then return to the mode
    /// they were in.
    ///
    /// **Errors** as [`Classifier::loss`].
    fn accuracy(&mut self, x: ArrayViewD<'_, F>, t: ArrayViewD<'_, F>) -> Result<f64> {
        let logits = self.predict(x)?;
        accuracy_of("Classifier.accuracy", logits.view(), t)
    }
}

impl<F: Float> Classifier<F> for Mlp<F> {
    fn predict(&mut self, x: ArrayViewD<'_, F>) -> Result<ArrayD<F>> {
        Mlp::predict(self, x)
    }
    fn num_classes(&self) -> usize {
        Mlp::num_classes(self)
    }
    fn accuracy(&mut self, x: ArrayViewD<'_, F>, t: ArrayViewD<'_, F>) -> Result<f64> {
        Mlp::accuracy(self, x, t)
    }
}

/// The accuracy of `logits` against labels `t` (indices or one-hot).
pub(crate) fn accuracy_of<F: Float>(
    op: &str,
    logits: ArrayViewD<'_, F>,
    t: ArrayViewD<'_, F>,
) -> Result<f64> {
    let (y, labels) = labelled_batch(op, logits, t)?;
    let correct = y
        .outer_iter()
        .zip(&labels)
        .filter(|(row, k)| {
            let best = row
                .iter()
                .enumerate()
                .fold((0, F::neg_infinity()), |(bi, bv), (i, &v)| {
                    if v > bv { (i, v) } else { (bi, bv) }
                })
                .0;
            best == **k
        })
        .count();
    Ok(correct as f64 / labels.len() as f64)
}

/// Runs `f` in evaluation mode, then puts the layer back in `training`.
pub(crate) fn in_eval_mode<F: Float, L: Layer<F> + ?Sized, T>(
    layer: &mut L,
    training: bool,
    f: impl FnOnce(&mut L) -> T,
) -> T {
    layer.set_training(false);
    let out = f(layer);
    layer.set_training(training);
    out
}

/// `shape` filled from `N(0, std²)` in row-major order.
pub(crate) fn normal<F: Float, Sh: ndarray::ShapeBuilder>(
    rng: &mut StdRng,
    shape: Sh,
    std: f64,
) -> ndarray::Array<F, Sh::Dim> {
    ndarray::Array::from_shape_simple_fn(shape, || {
        F::of(rng.sample::<f64, _>(StandardNormal) * std)
    })
}

/// Which reference model to build, as named on a command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ModelKind {
    /// The tutorial's [`Mlp`] with ReLU (`"mlp"`).
    Mlp,
    /// [`MlpBn`]: the MLP with BatchNormalization and Dropout (`"mlp-bn"`).
    MlpBn,
    /// [`ConvNet`] (`"convnet"`).
    ConvNet,
}

impl ModelKind {
    /// All kinds, in CLI order.
    pub const ALL: [ModelKind; 3] = [ModelKind::Mlp, ModelKind::MlpBn, ModelKind::ConvNet];

    /// `"mlp"`, `"mlp-bn"` or `"convnet"`.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Mlp => "mlp",
            ModelKind::MlpBn => "mlp-bn",
            ModelKind::ConvNet => "convnet",
        }
    }

    /// The model for `(channels, height, width)` images and `classes`
    /// classes, initialised from `seed`: an [`Mlp`] with `hidden` ReLU
    /// layers, an [`MlpBn`] with the same hidden sizes and dropout
    /// probability `dropout`, or the [`ConvNet`] of
    /// [`ConvNetConfig::for_images`] (which uses `hidden[0]`, or 100, as its
    /// hidden width and ignores `dropout`).
    ///
    /// **Errors** as the models' constructors (zero sizes, `dropout`
    /// outside `[0, 1)`, images smaller than the kernel).
    pub fn build<F: Float>(
        self,
        image: (usize, usize, usize),
        classes: usize,
        hidden: &[usize],
        dropout: F,
        seed: u64,
    ) -> Result<Box<dyn Classifier<F> + Send>> {
        let (c, h, w) = image;
        Ok(match self {
            ModelKind::Mlp => Box::new(Mlp::new(
                c * h * w,
                hidden,
                classes,
                Activation::Relu,
                seed,
            )?),
            ModelKind::MlpBn => Box::new(MlpBn::new(c * h * w, hidden, classes, dropout, seed)?),
            ModelKind::ConvNet => {
                let mut cfg = ConvNetConfig::for_images(c, h, w, classes);
                if let Some(&h0) = hidden.first() {
                    cfg.hidden = h0;
                }
                Box::new(ConvNet::new(cfg, seed)?)
            }
        })
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelKind {
    type Err = Error;

    /// Parses `"mlp"`, `"mlp-bn"` or `"convnet"`.
    fn from_str(s: &str) -> Result<Self> {
        ModelKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                Error::Config(format!(
                    "unknown model {s:?}; expected one of mlp, mlp-bn, convnet"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{arr1, arr2};

    #[test]
    fn model_kinds_parse_and_build() {
        for k in ModelKind::ALL {
            assert_eq!(k.name().parse::<ModelKind>().unwrap(), k);
            let mut m = k.build::<f64>((1, 6, 6), 3, &[5], 0.2, 1).unwrap();
            let x = crate::layers::numeric::spread(&[2, 36], 1);
            let t = arr1(&[0.0, 2.0]).into_dyn();
            let loss = m.loss(x.view(), t.view()).unwrap();
            assert!(loss.is_finite() && loss > 0.0, "{k}: {loss}");
            assert_eq!(m.predict(x.view()).unwrap().shape(), &[2, 3]);
            let a = m.accuracy(x.view(), t.view()).unwrap();
            assert!((0.0..=1.0).contains(&a));
        }
        let e = "cnn".parse::<ModelKind>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid configuration: unknown model \"cnn\"; expected one of mlp, mlp-bn, convnet"
        );
    }

    #[test]
    fn accuracy_counts_argmax_hits() {
        let logits = arr2(&[[1.0, 2.0], [3.0, 0.0], [0.5, 0.5]]).into_dyn();
        let t = arr1(&[1.0, 1.0, 0.0]).into_dyn();
        let a = accuracy_of("t", logits.view(), t.view()).unwrap();
        assert!((a - 2.0 / 3.0).abs() < 1e-15);
    }
}
