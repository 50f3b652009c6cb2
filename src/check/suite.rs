//! The standard verification of every built-in layer and the MLP, on small
//! fixed shapes with fixed seeds: what `cargo run --release` prints before it
//! trains, and refuses to train if anything fails.
//!
//! Inputs are drawn from `StdRng::seed_from_u64` with magnitudes in
//! `[0.1, 2]` (random sign), so no ReLU input sits at its kink; the MLPs get
//! nonzero biases for the same reason (a dead ReLU row would otherwise feed
//! exact zeros to the next layer). Shapes are the MNIST ones scaled down:
//! images `(N, 1, 4, 4)` for Affine, an MLP 16-10-8-4 on a batch of 3.
//!
//! The layers beyond the tutorial follow: Tanh, LeakyReLU, Softplus,
//! Dropout (its mask held fixed, see [`crate::layers::dropout`]: the checker
//! evaluates forward many times, and a fresh mask per call would make the
//! numeric derivative meaningless), BatchNormalization in training mode
//! (with the [`Invariant::FeaturesSumToZero`] invariant, which names the
//! constant-statistics bug) and in evaluation mode (after two training
//! batches set its running statistics), Convolution with stride 2 and
//! padding 1, Max/AveragePooling, and the models MlpBn (dropout frozen, both
//! modes) and a small ConvNet on `(1, 6, 6)` images.
//! Everything is deterministic; the whole suite takes well under a second in
//! release mode.

use super::config::{CheckConfig, Invariant};
use super::report::{Report, sci, table};
use super::{check, check_f32};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::layer::Layer;
use crate::layers::{
    Add, Affine, AveragePooling, BatchNormalization, Convolution, Dropout, LeakyRelu, MaxPooling,
    Mul, Relu, Sigmoid, SoftmaxWithLoss, Softplus, Tanh,
};
use crate::loss::MeanSquaredError;
use crate::model::{Activation, Mlp};
use crate::models::{ConvNet, ConvNetConfig, MlpBn};
use ndarray::{Array1, Array2, Array4, ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fmt;

/// One verified layer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SuiteEntry {
    /// What was checked, e.g. `"Affine (2, 1, 4, 4) -> 5"`.
    pub label: String,
    /// The check's report.
    pub report: Report,
}

/// The reports of the standard verification.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Suite {
    /// One entry per checked layer configuration.
    pub entries: Vec<SuiteEntry>,
}

impl Suite {
    /// Every entry passed.
    pub fn passed(&self) -> bool {
        self.entries.iter().all(|e| e.report.passed)
    }

    /// The one-line-per-tensor summary table (layer, tensor, elements,
    /// at kinks, max rel err, verdict); failed contracts get a line each.
    pub fn summary(&self) -> String {
        let mut rows = vec![
            [
                "layer",
                "tensor",
                "elements",
                "at kink",
                "max rel err",
                "verdict",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
        ];
        for e in &self.entries {
            for t in &e.report.tensors {
                rows.push(vec![
                    e.label.clone(),
                    t.name.clone(),
                    t.shape.iter().product::<usize>().to_string(),
                    t.at_kink.to_string(),
                    sci(t.max_rel_err),
                    if t.passed { "ok".into() } else { "FAIL".into() },
                ]);
            }
            for c in e.report.failed_contracts() {
                rows.push(vec![
                    e.label.clone(),
                    format!("contract: {}", c.name),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "FAIL".into(),
                ]);
            }
        }
        let mut s = String::new();
        table(&mut s, &rows, 2).expect("writing to a String cannot fail");
        let (n, failed) = (
            self.entries.len(),
            self.entries.iter().filter(|e| !e.report.passed).count(),
        );
        if failed == 0 {
            s.push_str(&format!("all {n} gradient checks passed\n"));
        } else {
            s.push_str(&format!("{failed} of {n} gradient checks FAILED\n"));
        }
        s
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())?;
        for e in self.entries.iter().filter(|e| !e.report.passed) {
            writeln!(f, "\n{}", e.report)?;
        }
        Ok(())
    }
}

/// Seeded well-scaled values: magnitude in `[0.1, 2]`, random sign.
fn values(rng: &mut StdRng, shape: &[usize]) -> ArrayD<f64> {
    ArrayD::from_shape_simple_fn(IxDyn(shape), || {
        let m: f64 = rng.random_range(0.1..=2.0);
        if rng.random_bool(0.5) { m } else { -m }
    })
}

fn index_labels(rng: &mut StdRng, n: usize, classes: usize) -> ArrayD<f64> {
    ArrayD::from_shape_simple_fn(IxDyn(&[n]), || rng.random_range(0..classes) as f64)
}

fn one_hot(rng: &mut StdRng, n: usize, classes: usize) -> ArrayD<f64> {
    let mut t = ArrayD::zeros(IxDyn(&[n, classes]));
    for i in 0..n {
        t[[i, rng.random_range(0..classes)]] = 1.0;
    }
    t
}

/// An MLP with seeded nonzero biases (`0.5 ×` well-scaled values).
fn mlp<F: Float>(
    sizes: (usize, &[usize], usize),
    activation: Activation,
    seed: u64,
) -> Result<Mlp<F>> {
    let mut m = Mlp::new(sizes.0, sizes.1, sizes.2, activation, seed)?;
    let mut rng = StdRng::seed_from_u64(seed ^ 0xb1a5);
    for mut p in m.params().into_iter().filter(|p| p.name.starts_with('b')) {
        let v = values(&mut rng, p.value.shape());
        p.value.zip_mut_with(&v, |b, &x| *b = F::of(0.5 * x));
    }
    Ok(m)
}

fn affine(rng: &mut StdRng, fan_in: usize, out: usize) -> Result<Affine<f64>> {
    let w: Array2<f64> = values(rng, &[fan_in, out])
        .into_dimensionality()
        .expect("2-D");
    let b: Array1<f64> = values(rng, &[out]).into_dimensionality().expect("1-D");
    Affine::new(w * 0.5, b)
}

/// The verification gate in front of every training run (the CLI's and the
/// one in `cargo test`): runs [`run`] and returns its summary table when
/// everything passed.
///
/// **Errors** with [`Error::VerificationFailed`] (one line per failing tensor
/// or contract, and the full table) if any check fails, and as [`run`].
pub fn verify() -> Result<String> {
    let suite = run()?;
    let table = suite.summary();
    if suite.passed() {
        return Ok(table);
    }
    let mut failures = Vec::new();
    for e in &suite.entries {
        for t in e.report.failures() {
            let why = t
                .diagnosis
                .as_ref()
                .map_or_else(String::new, |d| format!(" ({d})"));
            failures.push(format!(
                "{} {}: max rel err {}{why}",
                e.label,
                t.name,
                sci(t.max_rel_err)
            ));
        }
        for c in e.report.failed_contracts() {
            failures.push(format!("{} contract {}: {}", e.label, c.name, c.detail));
        }
    }
    Err(Error::VerificationFailed {
        failures,
        report: table,
    })
}

/// Runs the standard verification with the default [`CheckConfig`].
///
/// **Errors** only if a layer errors (which would itself be a bug).
pub fn run() -> Result<Suite> {
    run_with(&CheckConfig::default())
}

/// Runs the standard verification with `config` (its invariants are
/// extended with the layer-specific ones).
///
/// **Errors** on an invalid config or if a layer errors.
pub fn run_with(config: &CheckConfig) -> Result<Suite> {
    let mut rng = StdRng::seed_from_u64(config.seed ^ 0x5017e);
    let mut entries = Vec::new();
    let mut push = |label: String, report: Report| entries.push(SuiteEntry { label, report });
    let cfg = config;

    let (x, y) = (values(&mut rng, &[4, 5]), values(&mut rng, &[4, 5]));
    push(
        "Add (4, 5)".into(),
        check(&mut Add::new(), &[x.clone(), y.clone()], cfg)?,
    );
    push("Mul (4, 5)".into(), check(&mut Mul::new(), &[x, y], cfg)?);
    let x = values(&mut rng, &[4, 10]);
    push(
        "Sigmoid (4, 10)".into(),
        check(&mut Sigmoid::new(), std::slice::from_ref(&x), cfg)?,
    );
    push(
        "Relu (4, 10)".into(),
        check(&mut Relu::new(), std::slice::from_ref(&x), cfg)?,
    );
    let x = values(&mut rng, &[4, 12]);
    push(
        "Affine (4, 12) -> 10".into(),
        check(&mut affine(&mut rng, 12, 10)?, &[x], cfg)?,
    );
    let x = values(&mut rng, &[2, 1, 4, 4]);
    push(
        "Affine (2, 1, 4, 4) -> 5".into(),
        check(&mut affine(&mut rng, 16, 5)?, &[x], cfg)?,
    );

    let sm_cfg = cfg
        .clone()
        .with_invariant(Invariant::RowsSumToZero { input: 0 });
    let x = values(&mut rng, &[4, 10]);
    let t = index_labels(&mut rng, 4, 10);
    push(
        "SoftmaxWithLoss (4, 10), index labels".into(),
        check(&mut SoftmaxWithLoss::new(), &[x.clone(), t], &sm_cfg)?,
    );
    let t = one_hot(&mut rng, 4, 10);
    push(
        "SoftmaxWithLoss (4, 10), one-hot labels".into(),
        check(&mut SoftmaxWithLoss::new(), &[x, t], &sm_cfg)?,
    );
    let (y, t) = (values(&mut rng, &[4, 10]), values(&mut rng, &[4, 10]));
    push(
        "MeanSquaredError (4, 10)".into(),
        check(&mut MeanSquaredError::new(), &[y, t], cfg)?,
    );

    let sizes: (usize, &[usize], usize) = (16, &[10, 8], 4);
    let x = values(&mut rng, &[3, 16]);
    let t = index_labels(&mut rng, 3, 4);
    for (act, name) in [(Activation::Relu, "relu"), (Activation::Sigmoid, "sigmoid")] {
        let mut m = mlp::<f64>(sizes, act, 7)?;
        push(
            format!("Mlp 16-10-8-4 {name}, batch 3"),
            check(&mut m, &[x.clone(), t.clone()], cfg)?,
        );
    }
    let mut m32 = mlp::<f32>(sizes, Activation::Relu, 7)?;
    let mut m64 = mlp::<f64>(sizes, Activation::Relu, 7)?;
    push(
        "Mlp 16-10-8-4 relu, f32 vs f64".into(),
        check_f32(&mut m32, &mut m64, &[x, t], cfg)?,
    );
    beyond_the_tutorial(&mut rng, cfg, &mut push)?;
    Ok(Suite { entries })
}

/// The rows of issue 8: the layers and models beyond the tutorial.
fn beyond_the_tutorial(
    rng: &mut StdRng,
    cfg: &CheckConfig,
    push: &mut impl FnMut(String, Report),
) -> Result<()> {
    let x = values(rng, &[4, 10]);
    push(
        "Tanh (4, 10)".into(),
        check(&mut Tanh::new(), std::slice::from_ref(&x), cfg)?,
    );
    push(
        "LeakyRelu 0.1 (4, 10)".into(),
        check(&mut LeakyRelu::new(0.1)?, std::slice::from_ref(&x), cfg)?,
    );
    push(
        "Softplus (4, 10)".into(),
        check(&mut Softplus::new(), std::slice::from_ref(&x), cfg)?,
    );
    let keep = ArrayD::from_shape_simple_fn(IxDyn(&[4, 10]), || rng.random_bool(0.7));
    push(
        "Dropout 0.3 (4, 10), mask fixed".into(),
        check(
            &mut Dropout::new(0.3, 0)?.with_fixed_mask(&keep),
            std::slice::from_ref(&x),
            cfg,
        )?,
    );

    let bn_cfg = cfg
        .clone()
        .with_invariant(Invariant::FeaturesSumToZero { input: 0 });
    let gamma = || -> Array1<f64> { Array1::from_iter([1.5, -0.7, 0.9]) };
    let beta = || -> Array1<f64> { Array1::from_iter([0.2, 0.0, -0.3]) };
    let x = values(rng, &[4, 3]);
    let mut bn = BatchNormalization::with_params(gamma(), beta())?;
    push(
        "BatchNormalization (4, 3), train".into(),
        check(&mut bn, std::slice::from_ref(&x), &bn_cfg)?,
    );
    let img = values(rng, &[2, 3, 3, 3]);
    push(
        "BatchNormalization (2, 3, 3, 3), train".into(),
        check(
            &mut BatchNormalization::with_params(gamma(), beta())?,
            std::slice::from_ref(&img),
            &bn_cfg,
        )?,
    );
    let mut bn = BatchNormalization::with_params(gamma(), beta())?;
    for _ in 0..2 {
        bn.forward(&[values(rng, &[4, 3]).view()])?;
    }
    bn.set_training(false);
    push(
        "BatchNormalization (4, 3), eval".into(),
        check(&mut bn, &[x], cfg)?,
    );

    let x = values(rng, &[2, 2, 5, 5]);
    let w: Array4<f64> = (values(rng, &[3, 2, 3, 3]) * 0.5)
        .into_dimensionality()
        .expect("4-D");
    let b: Array1<f64> = values(rng, &[3]).into_dimensionality().expect("1-D");
    push(
        "Convolution (2, 2, 5, 5) * (3, 2, 3, 3), stride 2, pad 1".into(),
        check(
            &mut Convolution::new(w, b, 2, 1)?,
            std::slice::from_ref(&x),
            cfg,
        )?,
    );
    let x = values(rng, &[2, 2, 4, 4]);
    push(
        "MaxPooling 2x2/2 (2, 2, 4, 4)".into(),
        check(
            &mut MaxPooling::new(2, 2, 2, 0)?,
            std::slice::from_ref(&x),
            cfg,
        )?,
    );
    push(
        "AveragePooling 3x3/1 pad 1 (2, 2, 4, 4)".into(),
        check(&mut AveragePooling::new(3, 3, 1, 1)?, &[x], cfg)?,
    );

    let x = values(rng, &[4, 6]);
    let t = index_labels(rng, 4, 3);
    let mut m = MlpBn::<f64>::new(6, &[5, 4], 3, 0.3, 7)?;
    m.forward(&[x.view(), t.view()])?;
    m.freeze_dropout(true);
    push(
        "MlpBn 6-5-4-3 dropout 0.3 (frozen), batch 4, train".into(),
        check(&mut m, &[x.clone(), t.clone()], cfg)?,
    );
    m.set_training(false);
    push(
        "MlpBn 6-5-4-3, batch 4, eval".into(),
        check(&mut m, &[x, t], cfg)?,
    );
    let net = ConvNetConfig {
        image: (1, 6, 6),
        filters: 2,
        kernel: 3,
        stride: 1,
        pad: 1,
        pool: 2,
        hidden: 4,
        classes: 3,
    };
    let x = values(rng, &[3, 1, 6, 6]);
    let t = index_labels(rng, 3, 3);
    push(
        "ConvNet (1, 6, 6) 2x3x3 pad 1, pool 2, 4 hidden, batch 3".into(),
        check(&mut ConvNet::<f64>::new(net, 5)?, &[x, t], cfg)?,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suite_passes_is_deterministic_and_covers_every_layer() {
        let a = run().unwrap();
        assert!(a.passed(), "{a}");
        let labels: Vec<&str> = a.entries.iter().map(|e| e.label.as_str()).collect();
        for name in [
            "Add",
            "Mul",
            "Sigmoid",
            "Relu",
            "Affine",
            "SoftmaxWithLoss",
            "MeanSquaredError",
            "Mlp",
            "Tanh",
            "LeakyRelu",
            "Softplus",
            "Dropout",
            "BatchNormalization (4, 3), train",
            "BatchNormalization (4, 3), eval",
            "Convolution",
            "MaxPooling",
            "AveragePooling",
            "MlpBn",
            "ConvNet",
        ] {
            assert!(labels.iter().any(|l| l.starts_with(name)), "{name} missing");
        }
        let b = run().unwrap();
        assert_eq!(a.summary(), b.summary());
        let s = a.summary();
        assert!(s.lines().next().unwrap().contains("max rel err"));
        assert!(
            s.contains("W1") && s.ends_with("gradient checks passed\n"),
            "{s}"
        );
    }
}
