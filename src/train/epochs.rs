//! The epoch loop both training paths share ([`super::fit::train`] on the
//! engine, [`super::generic::train_classifier`] on any classifier): one
//! shuffle per epoch from the run's order stream, batches scaled into one
//! reused buffer, a progress bar and a divergence check per step, then the
//! accuracy on both sets and one [`EpochMetrics`] row.

use super::config::TrainConfig;
use super::examples::Examples;
use super::fit::shuffle_seed;
use super::metrics::{EpochMetrics, History};
use crate::error::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::{Array2, ArrayView2, s};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::time::Instant;

/// What [`run_epochs`] trains: the steps on scaled batches and the
/// evaluation after each epoch. The steps run on one of rayon's threads
/// (hence `Send`), so parallel sections inside a step hand work to the other
/// thread directly instead of waking pool threads from outside every time.
pub(super) trait Trainee<D: ?Sized>: Send {
    /// Rows per evaluation batch (at most; fewer for smaller sets).
    const EVAL_ROWS: usize;

    /// Called before each epoch's first step.
    fn start_epoch(&mut self) {}

    /// One optimisation step on the batch `x` (`(k, features)`, scaled) with
    /// its `labels`; returns the batch's mean loss.
    fn step(&mut self, x: ArrayView2<'_, f32>, labels: &[usize]) -> Result<f64>;

    /// The fraction of `data` classified correctly, in chunks through `buf`.
    fn accuracy(&mut self, data: &D, buf: &mut Array2<f32>, labels: &mut Vec<usize>)
    -> Result<f64>;
}

/// The rows of the step buffer and of the evaluation buffer (at most
/// `eval_rows`) for these sets.
pub(super) fn buffer_rows<D: Examples + ?Sized>(
    cfg: &TrainConfig,
    train: &D,
    test: &D,
    eval_rows: usize,
) -> (usize, usize) {
    let n = train.len();
    (cfg.batch_size.min(n), eval_rows.min(n.max(test.len())))
}

/// Runs `cfg.epochs` true epochs of `trainee` on `train`, evaluating on
/// `train` and `test` after each. The sets must have been checked
/// (`check_sets`) and be non-empty.
///
/// **Errors** with [`Error::NonFinite`] if a step's loss is not finite, and
/// with whatever the data's `fill_batch` or the trainee returns.
pub(super) fn run_epochs<D, T>(
    cfg: &TrainConfig,
    train: &D,
    test: &D,
    trainee: &mut T,
) -> Result<History>
where
    D: Examples + Sync + ?Sized,
    T: Trainee<D>,
{
    let n = train.len();
    let (batch, eval_rows) = buffer_rows(cfg, train, test, T::EVAL_ROWS);
    let iters = cfg.iterations_per_epoch(n);
    let mut xbuf = Array2::<f32>::zeros((batch, train.features()));
    let mut labels = Vec::with_capacity(batch);
    let mut eval_buf = Array2::<f32>::zeros((eval_rows, train.features()));
    let mut rng = StdRng::seed_from_u64(shuffle_seed(cfg.seed));
    let mut history = History::default();
    for epoch in 1..=cfg.epochs {
        let start = Instant::now();
        let bar = progress_bar(cfg, epoch, iters);
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng);
        trainee.start_epoch();
        let mut loss_sum = 0.0;
        rayon::scope(|_| -> Result<()> {
            for (i, idx) in order.chunks(batch).enumerate() {
                let k = idx.len();
                train.fill_batch(idx, xbuf.slice_mut(s![..k, ..]), &mut labels)?;
                let loss = trainee.step(xbuf.slice(s![..k, ..]), &labels)?;
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
        let train_accuracy = trainee.accuracy(train, &mut eval_buf, &mut labels)?;
        let test_accuracy = trainee.accuracy(test, &mut eval_buf, &mut labels)?;
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
    Ok(history)
}

/// The error for a non-finite training loss at `epoch`, iteration `iter`.
fn diverged(cfg: &TrainConfig, epoch: usize, iter: usize) -> Error {
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
fn print_epoch(cfg: &TrainConfig, row: &EpochMetrics) {
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
fn progress_bar(cfg: &TrainConfig, epoch: usize, iters: usize) -> ProgressBar {
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
