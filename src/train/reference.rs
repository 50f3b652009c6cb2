//! The reference run behind the verification gate: verify first, refuse to
//! train if anything failed, then train and write every output.

use super::config::TrainConfig;
use super::examples::Examples;
use super::fit::train;
use super::generic::{check_setup, train_classifier};
use super::metrics::{History, RunRecord, iterations_csv, write_file};
use super::plot::{plot_accuracy, plot_loss};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The file names a run writes into its output directory.
pub const OUTPUT_FILES: [&str; 5] = [
    "metrics.json",
    "metrics.csv",
    "iterations.csv",
    "accuracy.png",
    "loss.png",
];

/// A finished reference run.
#[derive(Debug, Clone)]
pub struct Run {
    /// The verification table printed before training.
    pub verification: String,
    /// What `metrics.json` holds.
    pub record: RunRecord,
    /// Per-epoch and per-iteration figures.
    pub history: History,
    /// The files written, in [`OUTPUT_FILES`] order.
    pub files: Vec<PathBuf>,
}

/// Runs `verify`, prints its table (unless `cfg.quiet`), and only if it
/// passed trains on `train`/`test` and writes the outputs into `cfg.out`.
///
/// `verify` returns the verification table when every check passed. When a
/// check fails it should return [`Error::VerificationFailed`] (with the table
/// in `report`); any other error it returns is wrapped into one.
///
/// `mlp` with `sgd` (the default) trains on the allocation-free engine
/// ([`train`]); every other model/optimizer on
/// [`super::generic::train_classifier`]. A model that cannot be built for
/// the data (see [`check_setup`]) is refused before the verification runs.
///
/// **Errors** with [`Error::VerificationFailed`] without training when
/// verification fails, and otherwise as [`check_setup`], [`train`],
/// [`train_classifier`] and [`write_outputs`].
pub fn reference_run<D, V>(cfg: &TrainConfig, train_set: &D, test_set: &D, verify: V) -> Result<Run>
where
    D: Examples + Sync + ?Sized,
    V: FnOnce() -> Result<String>,
{
    if !cfg.uses_engine() {
        check_setup(cfg, train_set)?;
    }
    let verification = match verify() {
        Ok(table) => table,
        Err(Error::VerificationFailed { failures, report }) => {
            if !cfg.quiet && !report.is_empty() {
                println!("{report}");
            }
            return Err(Error::VerificationFailed { failures, report });
        }
        Err(other) => {
            return Err(Error::VerificationFailed {
                failures: vec![format!("the verification could not run: {other}")],
                report: String::new(),
            });
        }
    };
    if !cfg.quiet {
        println!("{verification}");
    }
    let history = if cfg.uses_engine() {
        train(cfg, train_set, test_set)?.1
    } else {
        train_classifier(cfg, train_set, test_set)?.1
    };
    let record = RunRecord::new(cfg, train_set.len(), test_set.len(), &history);
    let files = write_outputs(&cfg.out, &record, &history)?;
    Ok(Run {
        verification,
        record,
        history,
        files,
    })
}

/// Creates `dir` and writes [`OUTPUT_FILES`] into it: `metrics.json`,
/// `metrics.csv`, `iterations.csv` (`iteration,epoch,loss`), `accuracy.png`
/// and `loss.png`. Returns their paths.
///
/// **Errors** with [`Error::Output`] naming the file that failed.
pub fn write_outputs(dir: &Path, record: &RunRecord, history: &History) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Output {
        path: dir.to_path_buf(),
        detail: e.to_string(),
    })?;
    let files: Vec<PathBuf> = OUTPUT_FILES.iter().map(|f| dir.join(f)).collect();
    write_file(&files[0], &(record.to_json() + "\n"))?;
    write_file(&files[1], &record.to_csv())?;
    write_file(
        &files[2],
        &iterations_csv(history, record.config.iterations_per_epoch),
    )?;
    plot_accuracy(history, &files[3])?;
    plot_loss(history, &files[4])?;
    Ok(files)
}
