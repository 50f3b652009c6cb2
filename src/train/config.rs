//! [`TrainConfig`]: everything a reference run depends on, serialised into
//! its `metrics.json`.

use crate::error::{Error, Result};
use crate::model::Activation;
use crate::models::ModelKind;
use crate::optim::OptimizerKind;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::str::FromStr;

/// The settings of one training run.
///
/// # Epochs
/// `epochs` counts **true epochs**: each is one pass over every training
/// example, in a fresh seeded order, in `ceil(N / batch_size)` iterations
/// (the last batch is shorter when `batch_size` does not divide `N`). The
/// tutorial's `epochs = 1000` drew one random batch per "epoch", so they were
/// 1000 *iterations* (about 1.7 epochs of 60,000 images at batch size 100).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Passes over the whole training set.
    pub epochs: usize,
    /// Examples per SGD step.
    pub batch_size: usize,
    /// The SGD learning rate.
    pub lr: f64,
    /// Hidden layer widths, input side first.
    pub hidden: Vec<usize>,
    /// The hidden layers' activation, `"relu"` or `"sigmoid"`.
    #[serde(with = "activation_name")]
    pub activation: Activation,
    /// Seeds the weights and (through a derived seed) the epoch orders.
    pub seed: u64,
    /// The model (`"mlp"`, `"mlp-bn"` or `"convnet"`; default `"mlp"`).
    #[serde(default = "default_model", with = "by_name")]
    pub model: ModelKind,
    /// The optimizer (`"sgd"`, `"momentum"`, `"nesterov"`, `"adagrad"`,
    /// `"rmsprop"` or `"adam"`; default `"sgd"`). `mlp` with `sgd` runs on the
    /// allocation-free [`crate::train::Engine`]; every other combination on
    /// the generic [`crate::train::generic`] loop.
    #[serde(default = "default_optimizer", with = "by_name")]
    pub optimizer: OptimizerKind,
    /// Where `metrics.json`, `metrics.csv`, `iterations.csv` and the plots go.
    pub out: PathBuf,
    /// No progress bar and no per-epoch lines (tests, scripts). The bar is
    /// also hidden by itself when stderr is not a terminal.
    #[serde(default)]
    pub quiet: bool,
}

impl Default for TrainConfig {
    /// The reference settings: 20 epochs, batch 100, lr 0.1, hidden
    /// `[100, 64, 32]`, ReLU, seed 42, output in `runs/digits`.
    fn default() -> Self {
        TrainConfig {
            epochs: 20,
            batch_size: 100,
            lr: 0.1,
            hidden: vec![100, 64, 32],
            activation: Activation::Relu,
            seed: 42,
            model: ModelKind::Mlp,
            optimizer: OptimizerKind::Sgd,
            out: PathBuf::from("runs/digits"),
            quiet: false,
        }
    }
}

impl TrainConfig {
    /// Checks the values that [`crate::Mlp::new`] and [`crate::Sgd::new`]
    /// do not: at least one epoch and a batch size of at least 1. (Hidden
    /// sizes and the learning rate are checked by those constructors.)
    ///
    /// **Errors** with [`Error::Config`].
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(Error::Config("epochs must be at least 1".into()));
        }
        if self.batch_size == 0 {
            return Err(Error::Config("batch_size must be at least 1".into()));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::Config(format!(
                "lr must be finite and positive, got {}",
                self.lr
            )));
        }
        if let Some(i) = self.hidden.iter().position(|&h| h == 0) {
            return Err(Error::Config(format!(
                "hidden layer {} has size 0; every hidden layer needs at least 1 unit",
                i + 1
            )));
        }
        Ok(())
    }

    /// Whether this run takes the allocation-free engine path (`mlp` with
    /// `sgd`, the reference run) rather than the generic one.
    pub fn uses_engine(&self) -> bool {
        self.model == ModelKind::Mlp && self.optimizer == OptimizerKind::Sgd
    }

    /// Iterations (SGD steps) per epoch for `n` training examples.
    pub fn iterations_per_epoch(&self, n: usize) -> usize {
        n.div_ceil(self.batch_size.max(1))
    }
}

impl FromStr for Activation {
    type Err = Error;

    /// Parses `"relu"` or `"sigmoid"` (case-insensitive).
    ///
    /// **Errors** with [`Error::Config`] for anything else.
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "relu" => Ok(Activation::Relu),
            "sigmoid" => Ok(Activation::Sigmoid),
            _ => Err(Error::Config(format!(
                "unknown activation {s:?}; expected \"relu\" or \"sigmoid\""
            ))),
        }
    }
}

fn default_model() -> ModelKind {
    ModelKind::Mlp
}

fn default_optimizer() -> OptimizerKind {
    OptimizerKind::Sgd
}

/// Serialises a [`ModelKind`] or [`OptimizerKind`] as its CLI name.
mod by_name {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::fmt::Display;
    use std::str::FromStr;

    pub(super) fn serialize<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub(super) fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr<Err: Display>,
        D: Deserializer<'de>,
    {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Serialises an [`Activation`] as its lower-case name.
mod activation_name {
    use crate::model::Activation;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(a: &Activation, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(a.name())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Activation, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_reference_setting_and_round_trips_through_json() {
        let c = TrainConfig::default();
        let j = serde_json::to_value(&c).unwrap();
        assert_eq!(
            j,
            serde_json::json!({
                "epochs": 20, "batch_size": 100, "lr": 0.1, "hidden": [100, 64, 32],
                "activation": "relu", "seed": 42, "model": "mlp", "optimizer": "sgd",
                "out": "runs/digits", "quiet": false
            })
        );
        let back: TrainConfig = serde_json::from_value(j).unwrap();
        assert_eq!(back, c);
        let e = serde_json::from_value::<TrainConfig>(serde_json::json!({
            "epochs": 1, "batch_size": 1, "lr": 0.1, "hidden": [], "activation": "tanh",
            "seed": 0, "out": "x"
        }))
        .unwrap_err();
        assert!(e.to_string().contains("unknown activation \"tanh\""), "{e}");
    }

    #[test]
    fn validate_rejects_zero_epochs_zero_batch_bad_lr_and_empty_layers() {
        let ok = TrainConfig::default();
        ok.validate().unwrap();
        for (c, msg) in [
            (
                TrainConfig {
                    epochs: 0,
                    ..ok.clone()
                },
                "epochs must be at least 1",
            ),
            (
                TrainConfig {
                    batch_size: 0,
                    ..ok.clone()
                },
                "batch_size must be at least 1",
            ),
            (
                TrainConfig {
                    lr: -0.1,
                    ..ok.clone()
                },
                "lr must be finite and positive, got -0.1",
            ),
            (
                TrainConfig {
                    lr: f64::NAN,
                    ..ok.clone()
                },
                "lr must be finite and positive, got NaN",
            ),
            (
                TrainConfig {
                    hidden: vec![5, 0],
                    ..ok.clone()
                },
                "hidden layer 2 has size 0",
            ),
        ] {
            let e = c.validate().unwrap_err();
            assert!(e.to_string().contains(msg), "{e}");
        }
    }

    #[test]
    fn iterations_per_epoch_counts_the_short_last_batch() {
        let c = TrainConfig::default();
        assert_eq!(c.iterations_per_epoch(8000), 80);
        assert_eq!(c.iterations_per_epoch(8001), 81);
        assert_eq!(c.iterations_per_epoch(60000), 600);
        assert_eq!(c.iterations_per_epoch(0), 0);
    }

    #[test]
    fn activation_parses_case_insensitively() {
        assert_eq!("ReLU".parse::<Activation>().unwrap(), Activation::Relu);
        assert_eq!(
            "sigmoid".parse::<Activation>().unwrap(),
            Activation::Sigmoid
        );
        assert!(matches!(
            "tanh".parse::<Activation>(),
            Err(Error::Config(_))
        ));
    }
}
