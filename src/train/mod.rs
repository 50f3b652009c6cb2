//! The reference training run: configuration, the seeded true-epoch SGD
//! loop (and the generic one for the other models and optimizers), metrics, plots and the verification gate in front of it all.
//!
//! ```no_run
//! # fn main() -> gradverify::Result<()> {
//! use gradverify::data::embedded_split;
//! use gradverify::train::{TrainConfig, reference_run};
//! let sets = embedded_split(gradverify::data::DEFAULT_SPLIT_SEED)?; // 8,000 / 2,000
//! let cfg = TrainConfig { epochs: 2, ..TrainConfig::default() };
//! let run = reference_run(&cfg, &sets.train, &sets.test, gradverify::check::suite::verify)?;
//! println!("{}", run.record.final_test_accuracy);
//! # Ok(()) }
//! ```

pub mod config;
pub mod engine;
mod epochs;
pub mod examples;
pub mod fit;
pub mod generic;
pub mod metrics;
pub mod plot;
pub mod reference;

pub use config::TrainConfig;
pub use engine::Engine;
pub use examples::Examples;
pub use fit::{accuracy, shuffle_seed, train};
pub use generic::train_classifier;
pub use metrics::{EPOCH_MEANING, EpochMetrics, History, RecordedConfig, RunRecord};
pub use plot::{PLOT_SIZE, plot_accuracy, plot_loss};
pub use reference::{OUTPUT_FILES, Run, reference_run, write_outputs};
