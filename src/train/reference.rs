//! The reference run behind the verification gate: verify first, refuse to
//! train if anything failed, then train and write every output.

use super::config::TrainConfig;
use super::examples::Examples;
use super::fit::train;
use super::metrics::{History, RunRecord, iterations_csv, write_file};
use super::plot::{plot_accuracy, plot_loss};
use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::model::{Activation, Mlp};
use ndarray::{Array1, Array2};
use std::fmt::Write as _;
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
/// **Errors** with [`Error::VerificationFailed`] without training when
/// verification fails, and otherwise as [`train`] and [`write_outputs`].
pub fn reference_run<D, V>(cfg: &TrainConfig, train_set: &D, test_set: &D, verify: V) -> Result<Run>
where
    D: Examples + ?Sized,
    V: FnOnce() -> Result<String>,
{
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
    let (_model, history) = train(cfg, train_set, test_set)?;
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

/// A real, cheap verification: the backpropagated gradient of a small
/// `Mlp<f64>` (4 → 5 → 3 → 3, each activation, a batch of 6) against a
/// central difference of its loss, for every parameter. Returns a table with
/// one row per activation and parameter; fails with
/// [`Error::VerificationFailed`] if any relative error exceeds `1e-6`.
///
/// **Errors** also as [`Mlp::gradient`] (which cannot fail on these shapes).
pub fn mlp_gradient_check() -> Result<String> {
    const H: f64 = 1e-5;
    const TOL: f64 = 1e-6;
    let x = Array2::from_shape_fn((6, 4), |(i, j)| ((i * 7 + j * 5) % 11) as f64 / 5.5 - 1.0)
        .into_dyn();
    let t = Array1::from_shape_fn(6, |i| (i % 3) as f64).into_dyn();
    let mut table = format!(
        "MLP gradient: backprop vs central difference (h = {H:e})\n{:<28} {:>6} {:>12}  result\n",
        "model", "param", "max rel err"
    );
    let mut failures = Vec::new();
    for act in [Activation::Relu, Activation::Sigmoid] {
        let mut m = Mlp::<f64>::new(4, &[5, 3], 3, act, 11)?;
        // Biases start at 0; move them off it so no ReLU input sits exactly
        // on its kink (where a central difference measures half a slope).
        for p in m.params().iter_mut().filter(|p| p.name.starts_with('b')) {
            p.value
                .iter_mut()
                .enumerate()
                .for_each(|(i, v)| *v = 0.1 + 0.03 * i as f64);
        }
        let grads = m.gradient(x.view(), t.view())?;
        for (p_index, (name, g)) in grads.iter().enumerate() {
            let mut worst = 0.0f64;
            for k in 0..g.len() {
                let nudge = |delta: f64, m: &mut Mlp<f64>| {
                    let mut ps = m.params();
                    let v = ps[p_index]
                        .value
                        .as_slice_mut()
                        .expect("parameters are contiguous");
                    v[k] += delta;
                };
                nudge(H, &mut m);
                let up = m.loss(x.view(), t.view())?;
                nudge(-2.0 * H, &mut m);
                let down = m.loss(x.view(), t.view())?;
                nudge(H, &mut m);
                let numeric = (up - down) / (2.0 * H);
                let analytic = g.as_slice().expect("contiguous")[k];
                let rel = (numeric - analytic).abs() / (numeric.abs() + analytic.abs()).max(1e-6);
                worst = worst.max(rel);
            }
            let ok = worst <= TOL;
            let label = format!("Mlp 4-5-3-3 {}", act.name());
            writeln!(
                table,
                "{label:<28} {name:>6} {worst:>12.3e}  {}",
                if ok { "ok" } else { "FAIL" }
            )
            .expect("writing to a String cannot fail");
            if !ok {
                failures.push(format!(
                    "{label} {name}: relative error {worst:.3e} > {TOL:e}"
                ));
            }
        }
    }
    if failures.is_empty() {
        Ok(table)
    } else {
        Err(Error::VerificationFailed {
            failures,
            report: table,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cheap_gradient_check_passes_on_the_real_mlp() {
        let table = mlp_gradient_check().unwrap();
        // A caption, a header and 2 activations x 6 parameters.
        assert_eq!(table.lines().count(), 14, "{table}");
        assert!(table.lines().skip(2).all(|l| l.ends_with("ok")), "{table}");
        assert!(table.contains("sigmoid") && table.contains("W3"), "{table}");
    }
}
