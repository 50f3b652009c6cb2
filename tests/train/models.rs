//! `gradverify train --model mlp|mlp-bn|convnet --optimizer ...` (issue 8):
//! every model and optimizer through the command line on tiny IDX sets,
//! the config recorded in `metrics.json`, the loss going down, and bad
//! combinations refused with typed errors before the verification runs.

use clap::Parser;
use gradverify::cli::{Cli, TrainArgs, run};
use gradverify::data::Images;
use gradverify::data::idx::{encode_images, encode_labels};
use gradverify::train::OUTPUT_FILES;
use gradverify::{Error, ModelKind, OptimizerKind};
use std::path::Path;
use std::process::Command as Process;

fn parse(args: &[&str]) -> Result<TrainArgs, clap::Error> {
    let cli = Cli::try_parse_from(std::iter::once("gradverify").chain(args.iter().copied()))?;
    Ok(cli.train_args())
}

/// Three classes of `side`×`side` images: a bright left third, middle third
/// or right third (with a little per-image variation), `n` training and 15
/// test images.
fn write_idx(dir: &Path, side: usize, n: usize) {
    let make = |count: usize, salt: usize| {
        let mut px = Vec::new();
        let mut labels = Vec::new();
        for i in 0..count {
            let class = (i + salt) % 3;
            labels.push(class as u8);
            for r in 0..side {
                for c in 0..side {
                    let bright = c * 3 / side == class;
                    let jitter = ((i * 7 + r * 3 + c) % 5) as u8 * 8;
                    px.push(if bright { 200 + jitter } else { 10 + jitter });
                }
            }
        }
        (Images::new(count, side, side, px).unwrap(), labels)
    };
    std::fs::create_dir_all(dir).unwrap();
    let write = |name: &str, bytes: Vec<u8>| std::fs::write(dir.join(name), bytes).unwrap();
    let (train, tl) = make(n, 0);
    let (test, sl) = make(15, 1);
    write("train-images-idx3-ubyte", encode_images(&train).unwrap());
    write("train-labels-idx1-ubyte", encode_labels(&tl).unwrap());
    write("t10k-images-idx3-ubyte", encode_images(&test).unwrap());
    write("t10k-labels-idx1-ubyte", encode_labels(&sl).unwrap());
}

/// `train --data-dir DATA --out OUT --quiet --hidden 8 --batch-size 10` plus `extra`.
fn args(data: &Path, out: &Path, extra: &[&str]) -> TrainArgs {
    let mut a = vec![
        "train",
        "--data-dir",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        "--hidden",
        "8",
        "--batch-size",
        "10",
    ];
    a.extend_from_slice(extra);
    parse(&a).unwrap()
}

fn metrics(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap()
}

/// Runs without the verification gate (covered by its own tests).
fn no_verify() -> gradverify::Result<String> {
    Ok(String::new())
}

#[test]
fn model_and_optimizer_default_to_mlp_and_sgd_and_parse_every_name() {
    let a = parse(&["train"]).unwrap();
    assert_eq!((a.model, a.optimizer), (ModelKind::Mlp, OptimizerKind::Sgd));
    let cfg = a.config("digits");
    assert!(cfg.uses_engine());
    assert_eq!(cfg.lr, 0.1);
    for k in ModelKind::ALL {
        assert_eq!(parse(&["train", "--model", k.name()]).unwrap().model, k);
    }
    for k in OptimizerKind::ALL {
        let a = parse(&["train", "--optimizer", k.name()]).unwrap();
        assert_eq!(a.optimizer, k);
        let want = if k == OptimizerKind::Sgd {
            0.1
        } else {
            k.default_lr()
        };
        assert_eq!(a.config("x").lr, want, "{k}: the optimizer's default lr");
        let b = parse(&["train", "--optimizer", k.name(), "--lr", "0.5"]).unwrap();
        assert_eq!(b.config("x").lr, 0.5);
    }
    for bad in [["--model", "cnn"], ["--optimizer", "lbfgs"]] {
        let e = parse(&["train", bad[0], bad[1]]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::InvalidValue, "{e}");
        assert!(e.to_string().contains(bad[1]), "{e}");
    }
}

#[test]
fn every_model_trains_and_records_model_and_optimizer_in_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("tiny");
    write_idx(&data, 8, 30);
    for (model, optimizer) in [("mlp", "momentum"), ("mlp-bn", "sgd"), ("convnet", "adam")] {
        let out = dir.path().join(format!("{model}-{optimizer}"));
        let a = args(
            &data,
            &out,
            &["--model", model, "--optimizer", optimizer, "--epochs", "2"],
        );
        let r = run(&a, no_verify).unwrap();
        assert_eq!(r.history.epochs.len(), 2);
        assert_eq!(r.history.iteration_losses.len(), 6, "3 batches of 10 × 2");
        for f in OUTPUT_FILES {
            assert!(out.join(f).is_file(), "{model}: {f} missing");
        }
        let j = metrics(&out);
        assert_eq!(j["config"]["model"], model);
        assert_eq!(j["config"]["optimizer"], optimizer);
        assert_eq!(j["config"]["train_size"], 30);
        assert_eq!(j["epochs"].as_array().unwrap().len(), 2);
        let acc = j["final_test_accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc), "{model}: {acc}");
    }
}

#[test]
fn each_optimizer_name_trains_an_mlp_bn_step() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("tiny");
    write_idx(&data, 6, 20);
    for k in OptimizerKind::ALL {
        let out = dir.path().join(k.name());
        let a = args(
            &data,
            &out,
            &[
                "--model",
                "mlp-bn",
                "--optimizer",
                k.name(),
                "--epochs",
                "1",
            ],
        );
        let r = run(&a, no_verify).unwrap();
        assert_eq!(r.record.config.train.optimizer, k);
        assert!(r.history.iteration_losses.iter().all(|l| l.is_finite()));
        assert_eq!(metrics(&out)["config"]["optimizer"], k.name());
    }
}

#[test]
fn the_loss_decreases_for_mlp_bn_with_adam_and_convnet_with_sgd() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("tiny");
    write_idx(&data, 8, 60);
    for (model, optimizer, lr) in [("mlp-bn", "adam", "0.01"), ("convnet", "sgd", "0.1")] {
        let out = dir.path().join(model);
        let a = args(
            &data,
            &out,
            &[
                "--model",
                model,
                "--optimizer",
                optimizer,
                "--lr",
                lr,
                "--epochs",
                "5",
            ],
        );
        let r = run(&a, no_verify).unwrap();
        let e = &r.history.epochs;
        assert!(
            e[4].train_loss < 0.7 * e[0].train_loss,
            "{model} + {optimizer}: {e:?}"
        );
        assert!(e[4].train_accuracy > 0.8, "{model} + {optimizer}: {e:?}");
    }
}

#[test]
fn the_default_run_is_the_engine_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("tiny");
    write_idx(&data, 6, 30);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let ra = run(&args(&data, &a, &["--epochs", "2"]), no_verify).unwrap();
    let rb = run(
        &args(
            &data,
            &b,
            &["--epochs", "2", "--model", "mlp", "--optimizer", "sgd"],
        ),
        no_verify,
    )
    .unwrap();
    assert_eq!(ra.history.iteration_losses, rb.history.iteration_losses);
    assert_eq!(metrics(&a)["config"]["model"], "mlp");
    assert_eq!(metrics(&a)["config"]["optimizer"], "sgd");
    // The same model through the generic loop (another optimizer) differs.
    let c = dir.path().join("c");
    let rc = run(
        &args(&data, &c, &["--epochs", "2", "--optimizer", "momentum"]),
        no_verify,
    )
    .unwrap();
    assert_ne!(ra.history.iteration_losses, rc.history.iteration_losses);
}

#[test]
fn bad_combinations_are_typed_errors_before_the_verification() {
    let dir = tempfile::tempdir().unwrap();
    // 4×4 images: too small for the ConvNet's 5×5 kernel.
    let small = dir.path().join("small");
    write_idx(&small, 4, 12);
    let out = dir.path().join("out");
    let verified = std::cell::Cell::new(false);
    let verify = || {
        verified.set(true);
        Ok(String::new())
    };
    let e = run(&args(&small, &out, &["--model", "convnet"]), verify).unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
    assert_eq!(
        e.to_string(),
        "invalid configuration: --model convnet needs square images of at least 6×6 pixels \
         (MNIST's are 28×28), got 1 channel(s) of 4×4"
    );
    let data = dir.path().join("ok");
    write_idx(&data, 6, 12);
    let e = run(
        &args(
            &data,
            &out,
            &["--model", "mlp-bn", "--activation", "sigmoid"],
        ),
        || {
            verified.set(true);
            Ok(String::new())
        },
    )
    .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
    assert!(e.to_string().contains("applies to --model mlp only"), "{e}");
    assert!(!verified.get(), "refused before verifying");
    assert!(!out.exists(), "nothing written");

    // Through the binary: one line on stderr, exit code 1, no panic.
    let o = Process::new(env!("CARGO_BIN_EXE_gradverify"))
        .args([
            "train",
            "--model",
            "convnet",
            "--data-dir",
            small.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: invalid configuration: --model convnet needs square images"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
