//! What a run records: per-epoch rows ([`EpochMetrics`]), per-iteration
//! losses ([`History`]), and the [`RunRecord`] written as `metrics.json`
//! and `metrics.csv`.

use super::config::TrainConfig;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;

/// One epoch's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean of this epoch's mini-batch losses (weighted by batch size), as
    /// computed during training.
    pub train_loss: f64,
    /// Accuracy on the whole training set after the epoch.
    pub train_accuracy: f64,
    /// Accuracy on the whole test set after the epoch.
    pub test_accuracy: f64,
    /// Wall-clock seconds for the epoch: its training pass plus both
    /// evaluations. The only field that differs between identical runs.
    pub seconds: f64,
}

/// Everything a training run measured.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct History {
    /// One row per epoch.
    pub epochs: Vec<EpochMetrics>,
    /// The mini-batch loss of every iteration, in order.
    pub iteration_losses: Vec<f64>,
}

/// The run's configuration as recorded: the [`TrainConfig`] plus what it
/// meant for this data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedConfig {
    /// The settings.
    #[serde(flatten)]
    pub train: TrainConfig,
    /// Training examples.
    pub train_size: usize,
    /// Test examples.
    pub test_size: usize,
    /// SGD steps per epoch, `ceil(train_size / batch_size)`.
    pub iterations_per_epoch: usize,
    /// What `epochs` counts, spelled out (the tutorial's were iterations).
    pub epoch_meaning: String,
}

/// The text stored in [`RecordedConfig::epoch_meaning`].
pub const EPOCH_MEANING: &str = "true epochs: each epoch is one pass over every training example in a \
     fresh seeded order; the tutorial's `epochs = 1000` were iterations (one random batch each)";

/// The content of `metrics.json`:
/// `{"config": {...}, "epochs": [...], "final_test_accuracy": ..}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The configuration and data sizes.
    pub config: RecordedConfig,
    /// One row per epoch.
    pub epochs: Vec<EpochMetrics>,
    /// The last epoch's test accuracy.
    pub final_test_accuracy: f64,
}

impl RunRecord {
    /// The record of a finished run.
    pub fn new(cfg: &TrainConfig, train_size: usize, test_size: usize, history: &History) -> Self {
        RunRecord {
            config: RecordedConfig {
                train: cfg.clone(),
                train_size,
                test_size,
                iterations_per_epoch: cfg.iterations_per_epoch(train_size),
                epoch_meaning: EPOCH_MEANING.into(),
            },
            epochs: history.epochs.clone(),
            final_test_accuracy: history.epochs.last().map_or(0.0, |e| e.test_accuracy),
        }
    }

    /// The record as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain data always serialises")
    }

    /// The epoch rows as CSV with the header
    /// `epoch,train_loss,train_accuracy,test_accuracy,seconds`.
    pub fn to_csv(&self) -> String {
        let mut s = String::from("epoch,train_loss,train_accuracy,test_accuracy,seconds\n");
        for e in &self.epochs {
            writeln!(
                s,
                "{},{},{},{},{}",
                e.epoch, e.train_loss, e.train_accuracy, e.test_accuracy, e.seconds
            )
            .expect("writing to a String cannot fail");
        }
        s
    }
}

/// The per-iteration losses as CSV with the header `iteration,epoch,loss`
/// (both counted from 1).
pub fn iterations_csv(history: &History, iterations_per_epoch: usize) -> String {
    let mut s = String::from("iteration,epoch,loss\n");
    for (i, l) in history.iteration_losses.iter().enumerate() {
        let epoch = i / iterations_per_epoch.max(1) + 1;
        writeln!(s, "{},{epoch},{l}", i + 1).expect("writing to a String cannot fail");
    }
    s
}

/// Writes `contents` to `path`.
///
/// **Errors** with [`Error::Output`] naming the path.
pub(crate) fn write_file(path: &Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents).map_err(|e| Error::Output {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history() -> History {
        History {
            epochs: vec![
                EpochMetrics {
                    epoch: 1,
                    train_loss: 0.5,
                    train_accuracy: 0.75,
                    test_accuracy: 0.625,
                    seconds: 1.5,
                },
                EpochMetrics {
                    epoch: 2,
                    train_loss: 0.25,
                    train_accuracy: 0.875,
                    test_accuracy: 0.8125,
                    seconds: 1.25,
                },
            ],
            iteration_losses: vec![1.0, 0.5, 0.25],
        }
    }

    #[test]
    fn record_has_the_final_test_accuracy_and_the_csv_its_rows() {
        let cfg = TrainConfig {
            batch_size: 3,
            ..TrainConfig::default()
        };
        let r = RunRecord::new(&cfg, 7, 4, &history());
        assert_eq!(r.final_test_accuracy, 0.8125);
        assert_eq!(r.config.iterations_per_epoch, 3);
        assert_eq!(
            r.to_csv(),
            "epoch,train_loss,train_accuracy,test_accuracy,seconds\n\
             1,0.5,0.75,0.625,1.5\n2,0.25,0.875,0.8125,1.25\n"
        );
        let back: RunRecord = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(back, r);
        assert_eq!(
            iterations_csv(&history(), 2),
            "iteration,epoch,loss\n1,1,1\n2,1,0.5\n3,2,0.25\n"
        );
    }
}
