//! The training loop: true epochs of seeded mini-batch SGD on an [`Mlp`].
//!
//! Each epoch draws one fresh permutation of the training set from a
//! `StdRng` seeded with [`shuffle_seed`]`(seed)` (created once per run, so
//! epoch `e`'s order depends only on the seed and `e`), walks it in batches
//! of `batch_size` (the last one shorter if need be), and takes one SGD step
//! per batch. After the epoch the model is evaluated on the whole training
//! and test sets. Batches are scaled from `u8` into one reused `f32` buffer.
//!
//! The steps and evaluations run on an [`Engine`]: the same arithmetic as the
//! [`Mlp`]'s layers (and [`crate::Sgd`]), on buffers allocated once, updating
//! the model's own parameters in place.

use super::config::TrainConfig;
use super::engine::Engine;
use super::epochs::{Trainee, buffer_rows, run_epochs};
use super::examples::Examples;
use super::metrics::History;
use crate::error::{Error, Result};
use crate::model::Mlp;
use ndarray::{Array2, ArrayView2};

/// Rows per evaluation batch on the engine (bounded memory for any dataset
/// size; the engine's buffers are allocated once, for this many rows).
pub(super) const EVAL_BATCH: usize = 1000;

/// The seed of the epoch-order stream, derived from the run's seed so that it
/// differs from the weight-initialisation stream (`StdRng::seed_from_u64(seed)`).
pub fn shuffle_seed(seed: u64) -> u64 {
    seed ^ 0x9E37_79B9_7F4A_7C15
}

/// Trains a fresh `Mlp<f32>` (`features → hidden… → classes`, weights from
/// `cfg.seed`) on `train` for `cfg.epochs` true epochs, evaluating on `test`
/// after each. Prints a progress bar (stderr, hidden when not a terminal)
/// and one line per epoch (stdout) unless `cfg.quiet`. The data must be
/// `Sync`: the steps run on rayon's threads.
///
/// **Errors** with [`Error::Config`] for an invalid configuration, an empty
/// set, or sets whose feature or class counts differ; with
/// [`Error::NonFinite`] if the loss diverges; and with whatever the data's
/// `fill_batch` or the model returns. A `cfg` naming another model or
/// optimizer than `mlp` with `sgd` is an [`Error::Config`]: those run on
/// [`super::generic::train_classifier`] (and [`super::reference_run`] picks
/// the right one).
pub fn train<D: Examples + Sync + ?Sized>(
    cfg: &TrainConfig,
    train: &D,
    test: &D,
) -> Result<(Mlp<f32>, History)> {
    check_sets(cfg, train, test)?;
    if !cfg.uses_engine() {
        return Err(Error::Config(format!(
            "the engine trains --model mlp with --optimizer sgd only, not {} with {}; \
             use train::generic::train_classifier",
            cfg.model, cfg.optimizer
        )));
    }
    let model = Mlp::<f32>::new(
        train.features(),
        &cfg.hidden,
        train.num_classes(),
        cfg.activation,
        cfg.seed,
    )?;
    let (batch, eval_rows) = buffer_rows(cfg, train, test, EVAL_BATCH);
    let engine = Engine::new(&model, batch.max(eval_rows))?;
    let mut run = EngineRun {
        engine,
        model,
        lr: cfg.lr as f32,
    };
    let history = run_epochs(cfg, train, test, &mut run)?;
    Ok((run.model, history))
}

/// The engine path's [`Trainee`]: SGD steps on the [`Engine`]'s buffers,
/// updating `model` in place.
struct EngineRun {
    engine: Engine,
    model: Mlp<f32>,
    lr: f32,
}

impl<D: Examples + ?Sized> Trainee<D> for EngineRun {
    const EVAL_ROWS: usize = EVAL_BATCH;

    fn step(&mut self, x: ArrayView2<'_, f32>, labels: &[usize]) -> Result<f64> {
        Ok(f64::from(self.engine.step(
            &mut self.model,
            x,
            labels,
            self.lr,
        )?))
    }

    fn accuracy(
        &mut self,
        data: &D,
        buf: &mut Array2<f32>,
        labels: &mut Vec<usize>,
    ) -> Result<f64> {
        self.engine.accuracy(&self.model, data, buf, labels)
    }
}

/// Validates `cfg` and that the sets are non-empty and agree in features
/// and classes.
///
/// **Errors** with [`Error::Config`].
pub(super) fn check_sets<D: Examples + ?Sized>(
    cfg: &TrainConfig,
    train: &D,
    test: &D,
) -> Result<()> {
    cfg.validate()?;
    if train.is_empty() || test.is_empty() {
        return Err(Error::Config(format!(
            "the training and test sets must both be non-empty (got {} and {} example(s))",
            train.len(),
            test.len()
        )));
    }
    if train.features() != test.features() || train.num_classes() != test.num_classes() {
        return Err(Error::Config(format!(
            "training and test sets differ: {} feature(s) / {} class(es) vs {} / {}",
            train.features(),
            train.num_classes(),
            test.features(),
            test.num_classes()
        )));
    }
    Ok(())
}

/// The fraction of `data` whose highest logit is at its label (ties to the
/// lowest class, as [`Mlp::accuracy`]), in batches of `buf.nrows()` rows
/// scaled into the reused buffer `buf` (`(rows, features)`), on an
/// [`Engine`] built for the call ([`Engine::accuracy`] reuses one).
///
/// **Errors** with [`Error::Config`] if `buf` has no rows, and as
/// `fill_batch` (a buffer of the wrong width) and [`Engine::count_correct`].
pub fn accuracy<D: Examples + ?Sized>(
    model: &Mlp<f32>,
    data: &D,
    buf: &mut Array2<f32>,
    labels: &mut Vec<usize>,
) -> Result<f64> {
    if buf.nrows() == 0 {
        return Err(Error::Config(
            "accuracy: the evaluation buffer needs at least one row".into(),
        ));
    }
    Engine::new(model, buf.nrows())?.accuracy(model, data, buf, labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_counts_argmax_hits_and_rejects_an_empty_buffer() {
        use crate::data::{Dataset, Images};
        // One input feature, two classes, logits (x, 0) via W = [[1, 0]]:
        // class 0 wins for x > 0, ties (x = 0) go to class 0.
        let affine =
            crate::layers::Affine::new(ndarray::arr2(&[[1.0f32, 0.0]]), ndarray::arr1(&[0.0, 0.0]))
                .unwrap();
        let m = Mlp::from_affines(vec![affine], crate::Activation::Relu).unwrap();
        let images = Images::new(5, 1, 1, vec![0, 10, 200, 0, 255]).unwrap();
        let d = Dataset::new("t", images, vec![0, 0, 1, 1, 0]).unwrap();
        let mut labels = Vec::new();
        // Batches of 2, 2, 1 through a 2-row buffer: hits at 0, 1, 4.
        let mut buf = Array2::zeros((2, 1));
        assert_eq!(accuracy(&m, &d, &mut buf, &mut labels).unwrap(), 0.6);
        let mut empty = Array2::zeros((0, 1));
        assert!(matches!(
            accuracy(&m, &d, &mut empty, &mut labels),
            Err(Error::Config(_))
        ));
        let mut wide = Array2::zeros((2, 3));
        assert!(accuracy(&m, &d, &mut wide, &mut labels).is_err());
    }

    #[test]
    fn shuffle_seed_differs_from_the_seed() {
        assert_ne!(shuffle_seed(42), 42);
        assert_eq!(shuffle_seed(42), shuffle_seed(42));
    }
}
