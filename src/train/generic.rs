//! The generic training loop: any [`ModelKind`] with any
//! [`OptimizerKind`](crate::optim::OptimizerKind), through the
//! [`Classifier`] / [`crate::Layer`] and [`Optimizer`] traits.
//!
//! It follows [`super::fit::train`] step for step — the same seeded epoch
//! orders ([`super::shuffle_seed`]), the same batches scaled into one reused
//! `f32` buffer, the same progress bar, per-epoch lines and [`History`] — but
//! each step is `forward(x, t)` → `backward(1)` → `optimizer.step(model)` on
//! a boxed model, so it serves `mlp-bn`, `convnet` and every optimizer. (The
//! reference `mlp` + `sgd` run stays on the allocation-free
//! [`super::Engine`]; [`super::reference_run`] chooses.)
//!
//! # Modes
//! Training steps run in training mode (Dropout drops, BatchNormalization
//! uses batch statistics and updates its running ones); both accuracies after
//! an epoch are measured in evaluation mode ([`crate::Layer::set_training`]`(false)`)
//! and the model is put back into training mode afterwards.

use super::config::TrainConfig;
use super::epochs::{Trainee, run_epochs};
use super::examples::Examples;
use super::fit::check_sets;
use super::metrics::History;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::model::{Activation, Mlp};
use crate::models::{Classifier, ModelKind};
use crate::optim::Optimizer;
use ndarray::{Array1, Array2, ArrayD, ArrayView2, IxDyn, s};

/// Rows per evaluation batch on the generic path. Its layers allocate every
/// batch's activations: at 1,000 rows the ConvNet's are up to 69 MB each,
/// which glibc maps and unmaps (zeroing fresh pages) on every batch. At 200
/// the digits ConvNet run peaks at 96 MB instead of 319 MB, and an epoch
/// (8,000 training digits, then the evaluation of both sets) takes 7.5–8.0 s
/// instead of 8.8–8.9 s, with the same accuracies.
pub const GENERIC_EVAL_BATCH: usize = 200;

/// The dropout probability of every hidden layer of `mlp-bn` runs.
pub const MLP_BN_DROPOUT: f64 = 0.1;

/// The smallest image side `convnet` accepts: its 5×5 kernel and 2×2 pooling
/// need at least 6×6 pixels.
pub const CONVNET_MIN_SIDE: usize = 6;

/// A trainable model as the generic loop holds it.
pub type BoxedClassifier = Box<dyn Classifier<f32> + Send>;

/// Checks that `cfg`'s model can be built for `data` and returns the image
/// shape `(C, H, W)` it will be built for (`(1, 1, features)` for the MLPs
/// when the data are not images).
///
/// **Errors** with [`Error::Config`] if `--activation` is not ReLU for a
/// model other than `mlp` (the others are ReLU networks), or, for
/// `convnet`, if the data are not images, or not square images of at least
/// [`CONVNET_MIN_SIDE`] pixels a side (MNIST's are 28×28).
pub fn check_setup<D: Examples + ?Sized>(
    cfg: &TrainConfig,
    data: &D,
) -> Result<(usize, usize, usize)> {
    if cfg.model != ModelKind::Mlp && cfg.activation != Activation::Relu {
        return Err(Error::Config(format!(
            "--activation {} applies to --model mlp only; {} uses ReLU",
            cfg.activation.name(),
            cfg.model
        )));
    }
    let image = data.image_shape();
    if cfg.model != ModelKind::ConvNet {
        return Ok(image.unwrap_or((1, 1, data.features())));
    }
    let Some((c, h, w)) = image else {
        return Err(Error::Config(format!(
            "--model convnet needs image data (C, H, W); these examples are {} flat feature(s)",
            data.features()
        )));
    };
    if h != w || h < CONVNET_MIN_SIDE || c * h * w != data.features() {
        return Err(Error::Config(format!(
            "--model convnet needs square images of at least {CONVNET_MIN_SIDE}×{CONVNET_MIN_SIDE} \
             pixels (MNIST's are 28×28), got {c} channel(s) of {h}×{w}"
        )));
    }
    Ok((c, h, w))
}

/// The freshly initialised model `cfg` names, for `image`-shaped examples
/// and `classes` classes, from `cfg.seed`: [`Mlp`] (with `cfg.activation`),
/// [`crate::MlpBn`] (dropout [`MLP_BN_DROPOUT`]) or [`crate::ConvNet`] (as
/// [`ModelKind::build`]).
///
/// **Errors** as the models' constructors.
pub fn build_model(
    cfg: &TrainConfig,
    image: (usize, usize, usize),
    classes: usize,
) -> Result<BoxedClassifier> {
    let (c, h, w) = image;
    match cfg.model {
        ModelKind::Mlp => Ok(Box::new(Mlp::<f32>::new(
            c * h * w,
            &cfg.hidden,
            classes,
            cfg.activation,
            cfg.seed,
        )?)),
        kind => kind.build::<f32>(
            image,
            classes,
            &cfg.hidden,
            f32::of(MLP_BN_DROPOUT),
            cfg.seed,
        ),
    }
}

/// Trains the model `cfg.model` with `cfg.optimizer` (learning rate
/// `cfg.lr`) on `train` for `cfg.epochs` true epochs, evaluating on `test`
/// after each, exactly as [`super::fit::train`] does for the engine path.
/// Returns the trained model (in training mode) and the history. The data
/// must be `Sync`: the steps run on one of rayon's threads, as the engine's.
///
/// **Errors** as [`super::fit::train`] and [`check_setup`], and with
/// whatever the model or the optimizer returns.
pub fn train_classifier<D: Examples + Sync + ?Sized>(
    cfg: &TrainConfig,
    train: &D,
    test: &D,
) -> Result<(BoxedClassifier, History)> {
    check_sets(cfg, train, test)?;
    let image = check_setup(cfg, train)?;
    let model = build_model(cfg, image, train.num_classes())?;
    let opt = cfg.optimizer.build::<f32>(cfg.lr as f32)?;
    let mut run = ClassifierRun {
        model,
        opt,
        one: ArrayD::from_elem(IxDyn(&[]), 1.0f32),
    };
    let history = run_epochs(cfg, train, test, &mut run)?;
    Ok((run.model, history))
}

/// The generic path's [`Trainee`]: forward with the loss, backward from
/// `dL/dL = 1`, one optimizer step; evaluation through [`evaluate`].
struct ClassifierRun {
    model: BoxedClassifier,
    opt: Box<dyn Optimizer<f32> + Send>,
    one: ArrayD<f32>,
}

impl<D: Examples + ?Sized> Trainee<D> for ClassifierRun {
    const EVAL_ROWS: usize = GENERIC_EVAL_BATCH;

    fn start_epoch(&mut self) {
        self.model.set_training(true);
    }

    fn step(&mut self, x: ArrayView2<'_, f32>, labels: &[usize]) -> Result<f64> {
        let t = Array1::from_iter(labels.iter().map(|&l| l as f32)).into_dyn();
        let loss = f64::from(self.model.forward(&[x.into_dyn(), t.view()])?[[]]);
        if loss.is_finite() {
            self.model.backward(self.one.view())?;
            self.opt.step(&mut *self.model)?;
        }
        Ok(loss)
    }

    fn accuracy(
        &mut self,
        data: &D,
        buf: &mut Array2<f32>,
        labels: &mut Vec<usize>,
    ) -> Result<f64> {
        evaluate(&mut *self.model, data, buf, labels)
    }
}

/// The fraction of `data` whose highest logit is at its label (ties to the
/// lowest class; a row with NaN logits counts as a miss), predicted in
/// **evaluation mode** in batches of `buf.nrows()` rows; the model is left
/// in training mode.
///
/// **Errors** with [`Error::Config`] if `buf` has no rows, and as
/// `fill_batch` and [`Classifier::predict`].
pub fn evaluate<D: Examples + ?Sized>(
    model: &mut dyn Classifier<f32>,
    data: &D,
    buf: &mut Array2<f32>,
    labels: &mut Vec<usize>,
) -> Result<f64> {
    let rows = buf.nrows();
    if rows == 0 {
        return Err(Error::Config(
            "evaluate: the evaluation buffer needs at least one row".into(),
        ));
    }
    model.set_training(false);
    let counted = count_correct(model, data, buf, labels, rows);
    model.set_training(true);
    Ok(counted? as f64 / data.len().max(1) as f64)
}

fn count_correct<D: Examples + ?Sized>(
    model: &mut dyn Classifier<f32>,
    data: &D,
    buf: &mut Array2<f32>,
    labels: &mut Vec<usize>,
    rows: usize,
) -> Result<usize> {
    let mut correct = 0;
    let mut start = 0;
    while start < data.len() {
        let end = (start + rows).min(data.len());
        let idx: Vec<usize> = (start..end).collect();
        let k = idx.len();
        data.fill_batch(&idx, buf.slice_mut(s![..k, ..]), labels)?;
        let logits = model.predict(buf.slice(s![..k, ..]).into_dyn())?;
        let logits = logits
            .into_dimensionality::<ndarray::Ix2>()
            .map_err(|_| Error::Config("predict must return (N, classes) logits".into()))?;
        for (row, &label) in logits.outer_iter().zip(labels.iter()) {
            let mut best: Option<(usize, f32)> = None;
            for (j, &v) in row.iter().enumerate() {
                if !v.is_nan() && best.is_none_or(|(_, b)| v > b) {
                    best = Some((j, v));
                }
            }
            if row.iter().all(|v| !v.is_nan()) && best.map(|b| b.0) == Some(label) {
                correct += 1;
            }
        }
        start = end;
    }
    Ok(correct)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Dataset, Images};
    use crate::optim::OptimizerKind;

    /// 24 images of 6×6: class 1 iff the left half is brighter.
    fn tiny() -> Dataset {
        let n = 24;
        let mut px = Vec::new();
        let mut labels = Vec::new();
        for i in 0..n {
            let left = i % 2 == 0;
            for _r in 0..6 {
                for c in 0..6 {
                    let bright = (c < 3) == left;
                    px.push(if bright { 200 + (i as u8 % 50) } else { 20 });
                }
            }
            labels.push(u8::from(left));
        }
        Dataset::new("tiny", Images::new(n, 6, 6, px).unwrap(), labels).unwrap()
    }

    fn cfg(model: ModelKind, optimizer: OptimizerKind, lr: f64) -> TrainConfig {
        TrainConfig {
            epochs: 8,
            batch_size: 8,
            lr,
            hidden: vec![8],
            model,
            optimizer,
            quiet: true,
            ..TrainConfig::default()
        }
    }

    #[test]
    fn every_model_learns_the_tiny_problem_and_ends_in_training_mode() {
        let d = tiny();
        for (m, o, lr) in [
            (ModelKind::Mlp, OptimizerKind::Adam, 0.01),
            (ModelKind::MlpBn, OptimizerKind::Adam, 0.01),
            (ModelKind::ConvNet, OptimizerKind::Momentum, 0.05),
        ] {
            let (_model, h) = train_classifier(&cfg(m, o, lr), &d, &d).unwrap();
            assert_eq!(h.epochs.len(), 8);
            assert_eq!(h.iteration_losses.len(), 24);
            let last = h.epochs.last().unwrap();
            assert!(last.train_accuracy >= 0.9, "{m} {o}: {:?}", h.epochs);
            assert!(last.train_loss < h.epochs[0].train_loss, "{m} {o}: {h:?}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_run() {
        let d = tiny();
        let c = cfg(ModelKind::MlpBn, OptimizerKind::RmsProp, 0.01);
        let a = train_classifier(&c, &d, &d).unwrap().1;
        let b = train_classifier(&c, &d, &d).unwrap().1;
        assert_eq!(a.iteration_losses, b.iteration_losses);
    }

    #[test]
    fn bad_combinations_are_config_errors() {
        let d = tiny();
        let mut c = cfg(ModelKind::MlpBn, OptimizerKind::Sgd, 0.1);
        c.activation = Activation::Sigmoid;
        let e = train_classifier(&c, &d, &d).err().unwrap();
        assert_eq!(
            e.to_string(),
            "invalid configuration: --activation sigmoid applies to --model mlp only; mlp-bn uses ReLU"
        );
        let wide = Dataset::new(
            "wide",
            Images::new(2, 6, 8, vec![0; 96]).unwrap(),
            vec![0, 1],
        )
        .unwrap();
        let c = cfg(ModelKind::ConvNet, OptimizerKind::Sgd, 0.1);
        let e = train_classifier(&c, &wide, &wide).err().unwrap();
        assert!(matches!(e, Error::Config(_)), "{e}");
        assert!(e.to_string().contains("got 1 channel(s) of 6×8"), "{e}");
        // The engine refuses what it does not train.
        assert!(matches!(
            super::super::fit::train(&c, &d, &d),
            Err(Error::Config(_))
        ));
    }

    /// The evaluation batch (GENERIC_EVAL_BATCH, smaller than the engine's)
    /// changes no accuracy: in evaluation mode every row's prediction is its
    /// own, for batches of 1, 7 (a ragged last batch) and the whole set.
    #[test]
    fn accuracy_does_not_depend_on_the_evaluation_batch() {
        let d = tiny();
        for (m, o, lr) in [
            (ModelKind::MlpBn, OptimizerKind::Adam, 0.01),
            (ModelKind::ConvNet, OptimizerKind::Momentum, 0.05),
        ] {
            let mut c = cfg(m, o, lr);
            c.epochs = 2;
            let (mut model, _) = train_classifier(&c, &d, &d).unwrap();
            let mut labels = Vec::new();
            let accs: Vec<f64> = [1, 7, d.len(), GENERIC_EVAL_BATCH.min(d.len())]
                .iter()
                .map(|&rows| {
                    let mut buf = Array2::zeros((rows, d.features()));
                    evaluate(&mut *model, &d, &mut buf, &mut labels).unwrap()
                })
                .collect();
            assert!(accs.iter().all(|&a| a == accs[0]), "{m}: {accs:?}");
        }
    }

    #[test]
    fn evaluate_restores_training_mode_and_rejects_an_empty_buffer() {
        let d = tiny();
        let c = cfg(ModelKind::MlpBn, OptimizerKind::Sgd, 0.1);
        let mut m = build_model(&c, (1, 6, 6), 2).unwrap();
        let mut labels = Vec::new();
        let a = evaluate(&mut *m, &d, &mut Array2::zeros((5, 36)), &mut labels).unwrap();
        assert!((0.0..=1.0).contains(&a));
        // Back in training mode: dropout makes two predictions differ.
        let x =
            Array2::<f32>::from_shape_fn((4, 36), |(i, j)| ((i * 7 + j * 3) % 11) as f32 / 11.0)
                .into_dyn();
        let (p1, p2) = (m.predict(x.view()).unwrap(), m.predict(x.view()).unwrap());
        assert_ne!(p1, p2);
        assert!(matches!(
            evaluate(&mut *m, &d, &mut Array2::zeros((0, 36)), &mut labels),
            Err(Error::Config(_))
        ));
    }
}
