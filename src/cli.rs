//! The command line: `gradverify [train [OPTIONS]]`.
//!
//! With no subcommand it runs the verification and then the reference run on
//! the embedded digits with the default settings. `train` takes the options
//! below; every run starts with the verification gate (see
//! [`crate::train::reference_run`]).

use crate::data::{
    DEFAULT_SPLIT_SEED, MNIST_BASE_URL, TrainTest, download_mnist, embedded_split, load_dir,
};
use crate::error::{Error, Result};
use crate::model::Activation;
use crate::models::ModelKind;
use crate::optim::OptimizerKind;
use crate::train::{Run, TrainConfig};
use clap::builder::PossibleValue;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Verifies the hand-written backpropagation, then trains the tutorial's MLP.
///
/// Without a subcommand it runs the verification and the reference run on the
/// embedded digits; the `train` options may be given directly then.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "gradverify",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do; without one, the default reference run.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The training options when no subcommand is given.
    #[command(flatten)]
    pub defaults: TrainArgs,
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Verify, then train on the embedded digits or on given IDX files.
    Train(TrainArgs),
}

impl Cli {
    /// The training options to use: those of `train`, or the defaults when
    /// no subcommand was given.
    pub fn train_args(&self) -> TrainArgs {
        match &self.command {
            Some(Command::Train(a)) => a.clone(),
            None => self.defaults.clone(),
        }
    }
}

/// Options of `gradverify train`.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct TrainArgs {
    /// A directory with the four standard IDX files (train-images-idx3-ubyte,
    /// train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte,
    /// each optionally .gz), of any lengths. Default: the embedded digits,
    /// split 8,000 / 2,000.
    #[arg(long, value_name = "DIR", conflicts_with = "download")]
    pub data_dir: Option<PathBuf>,
    /// Download the four MNIST files into DIR (verifying their SHA-256) and
    /// train on them.
    #[arg(long, value_name = "DIR")]
    pub download: Option<PathBuf>,
    /// The base URL to download from (with --download).
    #[arg(long, value_name = "URL", requires = "download")]
    pub mirror: Option<String>,
    /// True epochs: passes over the whole training set (the tutorial's
    /// `epochs = 1000` were iterations).
    #[arg(long, default_value_t = 20, value_parser = at_least_one)]
    pub epochs: usize,
    /// Examples per SGD step.
    #[arg(long, default_value_t = 100, value_parser = at_least_one)]
    pub batch_size: usize,
    /// The learning rate [default: 0.1 with sgd, 0.001 with adam, 0.01 with
    /// the other optimizers].
    #[arg(long, value_parser = positive)]
    pub lr: Option<f64>,
    /// The model: the tutorial's MLP, the MLP with BatchNormalization and
    /// Dropout, or the small ConvNet (needs square images, e.g. 28×28).
    #[arg(long, default_value = "mlp")]
    pub model: ModelKind,
    /// The optimizer (mlp with sgd runs on the fast allocation-free engine).
    #[arg(long, default_value = "sgd")]
    pub optimizer: OptimizerKind,
    /// Hidden layer widths, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100,64,32", value_parser = at_least_one)]
    pub hidden: Vec<usize>,
    /// The hidden layers' activation.
    #[arg(long, default_value = "relu")]
    pub activation: Activation,
    /// Seeds the weights and the epoch orders.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where to write metrics.json, metrics.csv, iterations.csv and the plots
    /// [default: runs/digits, runs/mnist with --download, runs/NAME for
    /// --data-dir .../NAME].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Exit with an error if the final test accuracy is below X (0..=1).
    #[arg(long, value_name = "X", value_parser = fraction)]
    pub min_accuracy: Option<f64>,
    /// No progress bars, tables or per-epoch lines.
    #[arg(long)]
    pub quiet: bool,
}

impl Default for TrainArgs {
    /// The options of a bare `gradverify train`.
    fn default() -> Self {
        Cli::parse_from(["gradverify"]).defaults
    }
}

impl TrainArgs {
    /// The run's configuration; `name` names the default output directory
    /// `runs/<name>`.
    pub fn config(&self, name: &str) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.learning_rate(),
            hidden: self.hidden.clone(),
            activation: self.activation,
            seed: self.seed,
            model: self.model,
            optimizer: self.optimizer,
            out: self
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from("runs").join(name)),
            quiet: self.quiet,
        }
    }
}

impl TrainArgs {
    /// `--lr`, or the optimizer's default: 0.1 for sgd (the reference run),
    /// [`OptimizerKind::default_lr`] for the others.
    pub fn learning_rate(&self) -> f64 {
        self.lr.unwrap_or(match self.optimizer {
            OptimizerKind::Sgd => 0.1,
            k => k.default_lr(),
        })
    }
}

impl ValueEnum for ModelKind {
    fn value_variants<'a>() -> &'a [Self] {
        &ModelKind::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()))
    }
}

impl ValueEnum for OptimizerKind {
    fn value_variants<'a>() -> &'a [Self] {
        &OptimizerKind::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()))
    }
}

impl ValueEnum for Activation {
    fn value_variants<'a>() -> &'a [Self] {
        &[Activation::Relu, Activation::Sigmoid]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()))
    }
}

/// Parses an integer of at least 1.
fn at_least_one(s: &str) -> std::result::Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(v) => Ok(v),
        Err(e) => Err(format!("{s:?} is not a whole number: {e}")),
    }
}

/// Parses a finite number greater than 0.
fn positive(s: &str) -> std::result::Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(v) => Err(format!("must be finite and greater than 0, got {v}")),
        Err(e) => Err(format!("{s:?} is not a number: {e}")),
    }
}

/// Parses a number in `0..=1`.
fn fraction(s: &str) -> std::result::Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        Ok(v) => Err(format!("must be between 0 and 1, got {v}")),
        Err(e) => Err(format!("{s:?} is not a number: {e}")),
    }
}

/// **Errors** with [`Error::AccuracyBelowMinimum`] if `min` is set and
/// `accuracy < min`.
pub fn enforce_min_accuracy(accuracy: f64, min: Option<f64>) -> Result<()> {
    match min {
        Some(min) if accuracy < min => Err(Error::AccuracyBelowMinimum { accuracy, min }),
        _ => Ok(()),
    }
}

/// Runs what `args` asks for: loads the data, runs `verify` and (if it
/// passed) the training, writes the outputs, and enforces `--min-accuracy`.
///
/// **Errors** as the data loaders, [`crate::train::reference_run`] and
/// [`enforce_min_accuracy`].
pub fn run<V>(args: &TrainArgs, verify: V) -> Result<Run>
where
    V: FnOnce() -> Result<String>,
{
    let (name, sets) = load(args)?;
    let cfg = args.config(&name);
    let run = crate::train::reference_run(&cfg, &sets.train, &sets.test, verify)?;
    if !args.quiet {
        println!(
            "final test accuracy {:.4} after {} epoch(s); outputs in {}",
            run.record.final_test_accuracy,
            cfg.epochs,
            cfg.out.display()
        );
    }
    enforce_min_accuracy(run.record.final_test_accuracy, args.min_accuracy)?;
    Ok(run)
}

/// The data `args` selects, with the name of its default output directory:
/// `--data-dir DIR` (named after DIR), `--download DIR` (`"mnist"`), or the
/// embedded digits split 8,000 / 2,000 (`"digits"`).
///
/// **Errors** as [`load_dir`], [`download_mnist`] and [`embedded_split`].
pub fn load(args: &TrainArgs) -> Result<(String, TrainTest)> {
    if let Some(dir) = &args.data_dir {
        let name = dir
            .file_name()
            .map_or_else(|| "data".to_string(), |n| n.to_string_lossy().into_owned());
        return Ok((name, load_dir(dir)?));
    }
    if let Some(dir) = &args.download {
        let mirror = args.mirror.as_deref().unwrap_or(MNIST_BASE_URL);
        download_mnist(dir, mirror, !args.quiet)?;
        return Ok(("mnist".into(), load_dir(dir)?));
    }
    Ok(("digits".into(), embedded_split(DEFAULT_SPLIT_SEED)?))
}
