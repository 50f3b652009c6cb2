//! A short reference run on the embedded real digits (8,000 / 2,000), gate first.

use super::run::png_size;
use gradverify::check::suite::verify;
use gradverify::data::{DEFAULT_SPLIT_SEED, embedded_split};
use gradverify::train::{PLOT_SIZE, TrainConfig, reference_run};

/// Two true epochs at batch size 32 (500 SGD steps) reach about 92.5% on
/// seed 42; the floor leaves room for other machines' float rounding.
#[test]
fn two_epochs_on_the_embedded_digits_reach_90_percent() {
    let sets = embedded_split(DEFAULT_SPLIT_SEED).unwrap();
    assert_eq!((sets.train.len(), sets.test.len()), (8000, 2000));
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrainConfig {
        epochs: 2,
        batch_size: 32,
        out: dir.path().join("digits"),
        quiet: true,
        ..TrainConfig::default()
    };
    let run = reference_run(&cfg, &sets.train, &sets.test, verify).unwrap();
    assert_eq!(run.record.config.iterations_per_epoch, 250);
    assert_eq!(run.history.iteration_losses.len(), 500);
    let acc = run.record.final_test_accuracy;
    assert!(
        acc >= 0.90,
        "test accuracy {acc} after 2 epochs: {:?}",
        run.record.epochs
    );
    assert!(run.record.epochs[1].train_loss < run.record.epochs[0].train_loss);
    assert_eq!(png_size(&cfg.out.join("accuracy.png")), PLOT_SIZE);
}
