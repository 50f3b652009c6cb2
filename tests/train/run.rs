//! The training loop and reference run on synthetic data: metrics files,
//! plots, determinism, the verification gate.

use gradverify::Error;
use gradverify::data::{Dataset, Images};
use gradverify::train::{
    EPOCH_MEANING, OUTPUT_FILES, PLOT_SIZE, TrainConfig, reference_run, train,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::Path;

/// A learnable synthetic set: `n` images of 8×8 pixels in 4 of the 10 classes; class
/// `c` lights up row pairs `2c, 2c+1` (values 150..=255) over noise 0..=90.
pub(super) fn synthetic(n: usize, seed: u64) -> Dataset {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut pixels = Vec::with_capacity(n * 64);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let c = (i % 4) as u8;
        labels.push(c);
        for p in 0..64 {
            let row = p / 8;
            let lit = row / 2 == c as usize;
            pixels.push(if lit {
                rng.random_range(150..=255)
            } else {
                rng.random_range(0..=90)
            });
        }
    }
    Dataset::new("synthetic", Images::new(n, 8, 8, pixels).unwrap(), labels).unwrap()
}

fn quick_cfg(out: &Path) -> TrainConfig {
    TrainConfig {
        epochs: 3,
        batch_size: 32,
        lr: 0.1,
        hidden: vec![16, 8],
        seed: 7,
        out: out.to_path_buf(),
        quiet: true,
        ..TrainConfig::default()
    }
}

/// Width and height from a PNG's IHDR chunk, after checking the signature.
pub(super) fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |o: usize| u32::from_be_bytes(bytes[o..o + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn reference_run_writes_metrics_json_csv_and_two_pngs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (tr, te) = (synthetic(250, 1), synthetic(80, 2));
    let cfg = quick_cfg(&out);
    let run = reference_run(&cfg, &tr, &te, || Ok("table: all ok".to_string())).unwrap();
    assert_eq!(run.verification, "table: all ok");
    let names: Vec<_> = run
        .files
        .iter()
        .map(|p| p.file_name().unwrap().to_owned())
        .collect();
    assert_eq!(names, OUTPUT_FILES.map(std::ffi::OsString::from));

    // metrics.json: exactly config, epochs, final_test_accuracy.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let obj = json.as_object().unwrap();
    let mut keys: Vec<_> = obj.keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["config", "epochs", "final_test_accuracy"]);
    let c = &json["config"];
    assert_eq!(c["epochs"], 3);
    assert_eq!(c["batch_size"], 32);
    assert_eq!(c["hidden"], serde_json::json!([16, 8]));
    assert_eq!(c["activation"], "relu");
    assert_eq!(c["train_size"], 250);
    assert_eq!(c["iterations_per_epoch"], 8); // ceil(250 / 32)
    assert_eq!(c["epoch_meaning"], EPOCH_MEANING);
    let epochs = json["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 3);
    for (i, e) in epochs.iter().enumerate() {
        let mut k: Vec<_> = e.as_object().unwrap().keys().cloned().collect();
        k.sort();
        assert_eq!(
            k,
            [
                "epoch",
                "seconds",
                "test_accuracy",
                "train_accuracy",
                "train_loss"
            ]
        );
        assert_eq!(e["epoch"], i + 1);
        for f in ["train_accuracy", "test_accuracy"] {
            let v = e[f].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{f} {v}");
        }
        assert!(e["seconds"].as_f64().unwrap() >= 0.0);
    }
    assert_eq!(json["final_test_accuracy"], epochs[2]["test_accuracy"]);
    // This set is easy: the run must actually learn it.
    assert!(
        run.record.final_test_accuracy >= 0.95,
        "{:?}",
        run.record.epochs
    );
    assert!(run.record.epochs[2].train_loss < run.record.epochs[0].train_loss);

    // metrics.csv: a header and the same rows.
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let lines: Vec<_> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "epoch,train_loss,train_accuracy,test_accuracy,seconds"
    );
    assert_eq!(lines.len(), 4);
    // CSV cells round-trip exactly (shortest representation); serde_json's
    // default float parser may be one ulp off, so JSON is compared with a tolerance.
    for ((line, e), j) in lines[1..].iter().zip(&run.record.epochs).zip(epochs) {
        let cells: Vec<f64> = line.split(',').map(|v| v.parse().unwrap()).collect();
        let want = [
            e.epoch as f64,
            e.train_loss,
            e.train_accuracy,
            e.test_accuracy,
            e.seconds,
        ];
        assert_eq!(cells, want);
        for (k, w) in [
            "epoch",
            "train_loss",
            "train_accuracy",
            "test_accuracy",
            "seconds",
        ]
        .iter()
        .zip(want)
        {
            assert!(
                (j[k].as_f64().unwrap() - w).abs() <= 1e-12 * w.abs().max(1.0),
                "{k}"
            );
        }
    }
    // iterations.csv: one row per SGD step.
    let it = std::fs::read_to_string(out.join("iterations.csv")).unwrap();
    assert_eq!(it.lines().count(), 1 + 3 * 8);
    assert_eq!(run.history.iteration_losses.len(), 24);
    assert!(it.lines().nth(9).unwrap().starts_with("9,2,"), "{it}");

    // Both plots are PNGs of the documented size.
    assert_eq!(png_size(&out.join("accuracy.png")), PLOT_SIZE);
    assert_eq!(png_size(&out.join("loss.png")), PLOT_SIZE);
}

#[test]
fn same_seed_and_data_give_the_same_metrics_and_another_seed_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let (tr, te) = (synthetic(200, 3), synthetic(60, 4));
    let cfg = quick_cfg(&dir.path().join("a"));
    let (_, h1) = train(&cfg, &tr, &te).unwrap();
    let (_, h2) = train(&cfg, &tr, &te).unwrap();
    assert_eq!(
        h1.iteration_losses, h2.iteration_losses,
        "bit-identical losses"
    );
    for (a, b) in h1.epochs.iter().zip(&h2.epochs) {
        assert_eq!(
            (a.epoch, a.train_loss, a.train_accuracy, a.test_accuracy),
            (b.epoch, b.train_loss, b.train_accuracy, b.test_accuracy)
        );
    }
    let other = TrainConfig { seed: 8, ..cfg };
    let (_, h3) = train(&other, &tr, &te).unwrap();
    assert_ne!(h1.iteration_losses, h3.iteration_losses);
}

#[test]
fn the_gate_refuses_to_train_when_verification_fails() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("refused");
    let (tr, te) = (synthetic(40, 5), synthetic(20, 6));
    let cfg = quick_cfg(&out);
    let e = reference_run(&cfg, &tr, &te, || {
        Err(Error::VerificationFailed {
            failures: vec!["Sigmoid: dx relative error 0.5 > 1e-6".into()],
            report: "Sigmoid  FAIL".into(),
        })
    })
    .unwrap_err();
    match &e {
        Error::VerificationFailed { failures, report } => {
            assert_eq!(failures, &["Sigmoid: dx relative error 0.5 > 1e-6"]);
            assert_eq!(report, "Sigmoid  FAIL");
        }
        other => panic!("expected VerificationFailed, got {other}"),
    }
    assert_eq!(
        e.to_string(),
        "verification failed (1 failing check(s): Sigmoid: dx relative error 0.5 > 1e-6); \
         refusing to train until the backpropagation is fixed"
    );
    assert!(
        !out.exists(),
        "nothing may be trained or written after a failed verification"
    );

    // An error that is not itself a verification failure is reported as one.
    let e = reference_run(&cfg, &tr, &te, || {
        Err(Error::Config("checker broke".into()))
    })
    .unwrap_err();
    assert!(
        matches!(&e, Error::VerificationFailed { failures, .. }
            if failures[0].contains("invalid configuration: checker broke")),
        "{e}"
    );
    assert!(!out.exists());
}

#[test]
fn the_real_cheap_verification_passes_and_opens_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ok");
    let cfg = TrainConfig {
        epochs: 1,
        ..quick_cfg(&out)
    };
    let run = reference_run(
        &cfg,
        &synthetic(64, 7),
        &synthetic(16, 8),
        gradverify::check::suite::verify,
    )
    .unwrap();
    assert!(run.verification.contains("W1"), "{}", run.verification);
    assert!(out.join("metrics.json").is_file());
    assert_eq!(png_size(&out.join("accuracy.png")), PLOT_SIZE);
}

#[test]
fn bad_configurations_and_mismatched_sets_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = quick_cfg(dir.path());
    let tr = synthetic(20, 9);
    let e = train(
        &TrainConfig {
            batch_size: 0,
            ..cfg.clone()
        },
        &tr,
        &tr,
    )
    .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
    let wide = Dataset::new("wide", Images::new(1, 5, 13, vec![0; 65]).unwrap(), vec![0]).unwrap();
    assert_eq!(wide.features(), 65);
    let e = train(&cfg, &tr, &wide).unwrap_err();
    assert!(
        e.to_string()
            .contains("64 feature(s) / 10 class(es) vs 65 / 10"),
        "{e}"
    );
    let empty = Dataset::new("empty", Images::new(0, 8, 8, vec![]).unwrap(), vec![]).unwrap();
    let e = train(&cfg, &tr, &empty).unwrap_err();
    assert!(e.to_string().contains("non-empty"), "{e}");
    // A learning rate far too large diverges: a typed error, not NaN metrics.
    let e = train(&TrainConfig { lr: 1e30, ..cfg }, &tr, &tr).unwrap_err();
    assert!(matches!(e, Error::NonFinite { .. }), "{e}");
}

/// Wraps a dataset and records the index list of every `fill_batch` call.
struct Recording<'a> {
    inner: &'a Dataset,
    calls: std::sync::Mutex<Vec<Vec<usize>>>,
}

impl gradverify::train::Examples for Recording<'_> {
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn features(&self) -> usize {
        self.inner.features()
    }
    fn fill_batch<F: gradverify::Float>(
        &self,
        indices: &[usize],
        out: ndarray::ArrayViewMut2<'_, F>,
        labels: &mut Vec<usize>,
    ) -> gradverify::Result<()> {
        self.calls
            .lock()
            .expect("not poisoned")
            .push(indices.to_vec());
        self.inner.fill_batch(indices, out, labels)
    }
}

#[test]
fn each_epoch_visits_every_training_example_once_in_a_fresh_order() {
    let data = synthetic(250, 11);
    let tr = Recording {
        inner: &data,
        calls: Default::default(),
    };
    let te = Recording {
        inner: &data,
        calls: Default::default(),
    };
    let cfg = quick_cfg(Path::new("unused"));
    let (_, h) = train(&cfg, &tr, &te).unwrap();
    assert_eq!(h.iteration_losses.len(), 3 * 8);
    // Per epoch: 8 training batches (7 of 32, one of 26), then one
    // evaluation pass over all 250 in order.
    let calls = tr.calls.into_inner().expect("not poisoned");
    assert_eq!(calls.len(), 3 * 9);
    let mut orders = Vec::new();
    for epoch in calls.chunks(9) {
        let sizes: Vec<usize> = epoch.iter().map(Vec::len).collect();
        assert_eq!(sizes, [32, 32, 32, 32, 32, 32, 32, 26, 250]);
        assert_eq!(epoch[8], (0..250).collect::<Vec<_>>());
        let order: Vec<usize> = epoch[..8].concat();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..250).collect::<Vec<_>>(), "a permutation");
        orders.push(order);
    }
    assert_ne!(orders[0], orders[1]);
    assert_ne!(orders[1], orders[2]);
    assert_ne!(
        orders[0],
        (0..250).collect::<Vec<_>>(),
        "shuffled, not in file order"
    );
    // The test set is only evaluated, never trained on.
    assert!(
        te.calls
            .into_inner()
            .expect("not poisoned")
            .iter()
            .all(|c| c.len() == 250)
    );
}
