//! The command line: argument parsing, `--min-accuracy`, and errors printed
//! as `error: ...` with exit code 1 (never a panic).

use clap::Parser;
use gradverify::Error;
use gradverify::cli::{Cli, Command, TrainArgs, enforce_min_accuracy, run};
use gradverify::data::Images;
use gradverify::data::idx::{encode_images, encode_labels};
use gradverify::model::Activation;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

fn parse(args: &[&str]) -> Result<TrainArgs, clap::Error> {
    let cli = Cli::try_parse_from(std::iter::once("gradverify").chain(args.iter().copied()))?;
    Ok(cli.train_args())
}

#[test]
fn train_options_parse_and_default_to_the_reference_settings() {
    let a = parse(&["train"]).unwrap();
    assert_eq!(a, TrainArgs::default());
    assert_eq!(
        (
            a.epochs,
            a.batch_size,
            a.learning_rate(),
            a.hidden.clone(),
            a.activation,
            a.seed
        ),
        (20, 100, 0.1, vec![100, 64, 32], Activation::Relu, 42)
    );
    assert_eq!(
        (a.data_dir.clone(), a.out.clone(), a.min_accuracy, a.quiet),
        (None, None, None, false)
    );
    // No subcommand: the same defaults, and the same options accepted.
    assert_eq!(parse(&[]).unwrap(), a);
    assert_eq!(parse(&["--epochs", "5", "--quiet"]).unwrap().epochs, 5);
    let cfg = a.config("digits");
    assert_eq!(cfg.out, PathBuf::from("runs/digits"));

    let b = parse(&[
        "train",
        "--data-dir",
        "/d",
        "--epochs",
        "3",
        "--batch-size",
        "50",
        "--lr",
        "0.05",
        "--hidden",
        "100,64,32",
        "--activation",
        "sigmoid",
        "--seed",
        "7",
        "--out",
        "o",
        "--min-accuracy",
        "0.9",
        "--quiet",
    ])
    .unwrap();
    assert_eq!(b.hidden, vec![100, 64, 32]);
    assert_eq!(b.data_dir, Some(PathBuf::from("/d")));
    assert_eq!(
        (b.epochs, b.batch_size, b.lr, b.seed),
        (3, 50, Some(0.05), 7)
    );
    assert_eq!(b.activation, Activation::Sigmoid);
    assert_eq!(b.min_accuracy, Some(0.9));
    assert!(b.quiet);
    assert_eq!(b.config("ignored").out, PathBuf::from("o"));
    assert_eq!(parse(&["train", "--hidden", "8"]).unwrap().hidden, vec![8]);
    let d = parse(&[
        "train",
        "--download",
        "/m",
        "--mirror",
        "http://127.0.0.1:9/",
    ])
    .unwrap();
    assert_eq!(d.mirror.as_deref(), Some("http://127.0.0.1:9/"));
    assert!(matches!(
        Cli::try_parse_from(["gradverify", "train"])
            .unwrap()
            .command,
        Some(Command::Train(_))
    ));
}

#[test]
fn bad_values_are_clap_errors_naming_the_option() {
    for (args, needle) in [
        (&["train", "--hidden", "100,0,32"][..], "--hidden"),
        (&["train", "--hidden", "100,x"], "--hidden"),
        (&["train", "--epochs", "0"], "must be at least 1"),
        (&["train", "--batch-size=-3"], "is not a whole number"),
        (&["train", "--lr", "0"], "must be finite and greater than 0"),
        (&["train", "--lr", "nan"], "--lr"),
        (
            &["train", "--activation", "tanh"],
            "possible values: relu, sigmoid",
        ),
        (
            &["train", "--min-accuracy", "1.5"],
            "must be between 0 and 1",
        ),
        (&["train", "--mirror", "http://x/"], "--download"),
        (
            &["train", "--data-dir", "a", "--download", "b"],
            "cannot be used with",
        ),
        (&["train", "--bogus"], "--bogus"),
    ] {
        let e = parse(args).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{args:?}");
        let msg = e.to_string();
        assert!(msg.contains(needle), "{args:?}: {msg}");
    }
}

#[test]
fn min_accuracy_passes_at_or_above_and_fails_below() {
    enforce_min_accuracy(0.9, None).unwrap();
    enforce_min_accuracy(0.9, Some(0.9)).unwrap();
    let e = enforce_min_accuracy(0.8712, Some(0.9)).unwrap_err();
    assert!(matches!(e, Error::AccuracyBelowMinimum { .. }));
    assert_eq!(
        e.to_string(),
        "final test accuracy 0.8712 is below the required minimum 0.9000"
    );
}

/// Writes the four standard IDX files into `dir`: 40 learnable 2×2 training
/// images, and a test set of two identical images with different labels, so
/// no model can score above 0.5 on it.
fn write_tiny_idx(dir: &Path) {
    let mut px = Vec::new();
    let mut labels = Vec::new();
    for i in 0..40u8 {
        let c = i % 2;
        labels.push(c);
        px.extend(if c == 0 {
            [250, 10, 250, 10]
        } else {
            [10, 250, 10, 250]
        });
    }
    let write = |name: &str, bytes: Vec<u8>| std::fs::write(dir.join(name), bytes).unwrap();
    write(
        "train-images-idx3-ubyte",
        encode_images(&Images::new(40, 2, 2, px).unwrap()).unwrap(),
    );
    write("train-labels-idx1-ubyte", encode_labels(&labels).unwrap());
    let test = Images::new(2, 2, 2, vec![250, 10, 250, 10, 250, 10, 250, 10]).unwrap();
    write("t10k-images-idx3-ubyte", encode_images(&test).unwrap());
    write("t10k-labels-idx1-ubyte", encode_labels(&[0, 1]).unwrap());
}

#[test]
fn a_final_accuracy_below_min_accuracy_is_an_error_after_writing_the_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("tiny");
    std::fs::create_dir(&data).unwrap();
    write_tiny_idx(&data);
    let out = dir.path().join("out");
    let args = parse(&[
        "train",
        "--data-dir",
        data.to_str().unwrap(),
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--hidden",
        "4",
        "--out",
        out.to_str().unwrap(),
        "--min-accuracy",
        "0.75",
        "--quiet",
    ])
    .unwrap();
    let e = run(&args, || Ok(String::new())).unwrap_err();
    match e {
        Error::AccuracyBelowMinimum { accuracy, min } => {
            assert!(accuracy <= 0.5, "{accuracy}");
            assert_eq!(min, 0.75);
        }
        other => panic!("expected AccuracyBelowMinimum, got {other}"),
    }
    assert!(
        out.join("metrics.json").is_file(),
        "the record is kept for inspection"
    );
    // The same run with a reachable floor succeeds.
    let ok = TrainArgs {
        min_accuracy: Some(0.5),
        ..args
    };
    assert_eq!(
        run(&ok, || Ok(String::new()))
            .unwrap()
            .record
            .config
            .train_size,
        40
    );
}

fn binary(args: &[&str]) -> (i32, String, String) {
    let o = Process::new(env!("CARGO_BIN_EXE_gradverify"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn the_binary_prints_errors_as_one_line_and_exits_1_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("tiny");
    std::fs::create_dir(&data).unwrap();
    write_tiny_idx(&data);
    let out = dir.path().join("out");
    let (code, stdout, stderr) = binary(&[
        "train",
        "--data-dir",
        data.to_str().unwrap(),
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--hidden",
        "4",
        "--out",
        out.to_str().unwrap(),
        "--min-accuracy",
        "0.75",
        "--quiet",
    ]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stderr.starts_with("error: final test accuracy 0."),
        "{stderr}"
    );
    assert!(
        stderr.contains("is below the required minimum 0.7500"),
        "{stderr}"
    );

    let missing = dir.path().join("nowhere");
    let (code, _, stderr) = binary(&["train", "--data-dir", missing.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(
        stderr.contains("nowhere"),
        "the message names the folder: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    // --download goes through the downloader: a closed local port fails cleanly.
    let dl = dir.path().join("dl");
    let (code, _, stderr) = binary(&[
        "train",
        "--download",
        dl.to_str().unwrap(),
        "--mirror",
        "http://127.0.0.1:9/",
        "--quiet",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(
        stderr.contains("http://127.0.0.1:9/train-images-idx3-ubyte.gz"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    let (code, _, stderr) = binary(&["train", "--hidden", "0"]);
    assert_eq!(code, 2, "clap's usage error code: {stderr}");
    assert!(stderr.contains("--hidden"), "{stderr}");
}
