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
use super::examples::Examples;
use super::metrics::{EpochMetrics, History};
use crate::error::{Error, Result};
use crate::model::Mlp;
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::{Array2, s};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::time::Instant;

/// Rows per evaluation batch (bounded memory for any dataset size).
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
    let mut model = Mlp::<f32>::new(
        train.features(),
        &cfg.hidden,
        train.num_classes(),
        cfg.activation,
        cfg.seed,
    )?;
    let lr = cfg.lr as f32;
    let n = train.len();
    let batch = cfg.batch_size.min(n);
    let iters = cfg.iterations_per_epoch(n);
    let mut xbuf = Array2::<f32>::zeros((batch, train.features()));
    let mut labels = Vec::with_capacity(batch);
    let mut eval_buf = Array2::<f32>::zeros((EVAL_BATCH.min(n.max(test.len())), train.features()));
    let mut engine = Engine::new(&model, batch.max(eval_buf.nrows()))?;
    let mut rng = StdRng::seed_from_u64(shuffle_seed(cfg.seed));
    let mut history = History::default();
    for epoch in 1..=cfg.epochs {
        let start = Instant::now();
        let bar = progress_bar(cfg, epoch, iters);
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng);
        let mut loss_sum = 0.0;
        // The steps run on one of rayon's threads, so the engine's parallel
        // sections hand work to the other thread directly instead of waking
        // pool threads from outside for every section.
        rayon::scope(|_| -> Result<()> {
            for (i, idx) in order.chunks(batch).enumerate() {
                let k = idx.len();
                train.fill_batch(idx, xbuf.slice_mut(s![..k, ..]), &mut labels)?;
                let loss =
                    f64::from(engine.step(&mut model, xbuf.slice(s![..k, ..]), &labels, lr)?);
                if !loss.is_finite() {
                    return Err(diverged(cfg, epoch, i + 1));
                }
                history.iteration_losses.push(loss);
                loss_sum += loss * k as f64;
                bar.set_message(format!("{:.4}", loss_sum / ((i * batch + k) as f64)));
                bar.inc(1);
            }
            Ok(())
        })?;
        bar.finish_and_clear();
        let train_accuracy = engine.accuracy(&model, train, &mut eval_buf, &mut labels)?;
        let test_accuracy = engine.accuracy(&model, test, &mut eval_buf, &mut labels)?;
        let row = EpochMetrics {
            epoch,
            train_loss: loss_sum / n as f64,
            train_accuracy,
            test_accuracy,
            seconds: start.elapsed().as_secs_f64(),
        };
        print_epoch(cfg, &row);
        history.epochs.push(row);
    }
    Ok((model, history))
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

/// The error for a non-finite training loss at `epoch`, iteration `iter`.
pub(super) fn diverged(cfg: &TrainConfig, epoch: usize, iter: usize) -> Error {
    Error::NonFinite {
        op: "train".into(),
        what: format!(
            "the training loss at epoch {epoch}, iteration {iter} (the run diverged; \
             try a smaller learning rate than {})",
            cfg.lr
        ),
    }
}

/// Prints the per-epoch line (unless `cfg.quiet`).
pub(super) fn print_epoch(cfg: &TrainConfig, row: &EpochMetrics) {
    if !cfg.quiet {
        println!(
            "epoch {:>3}/{}  train loss {:.4}  train acc {:.4}  test acc {:.4}  ({:.2} s)",
            row.epoch,
            cfg.epochs,
            row.train_loss,
            row.train_accuracy,
            row.test_accuracy,
            row.seconds
        );
    }
}

/// A bar over one epoch's iterations showing the running mean loss; hidden
/// when `cfg.quiet` (and by indicatif itself when stderr is not a terminal).
pub(super) fn progress_bar(cfg: &TrainConfig, epoch: usize, iters: usize) -> ProgressBar {
    if cfg.quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(iters as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "epoch {prefix} [{bar:40}] {pos}/{len} loss {msg} ({elapsed})",
        )
        .expect("the template is valid")
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("{epoch}/{}", cfg.epochs));
    bar
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
