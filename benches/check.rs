//! Benchmarks of the gradient check of the tutorial's MLP 784-100-64-32-10
//! on a batch of 3 (87,374 parameters): full mode (every element, both
//! cores) with the second stencil on demand (the default) and always, and
//! fast mode (4 random directions per tensor), with and without the
//! contract checks. Targets on the 2-core machine: full < 5 s, fast < 5 ms.
//!
//! `cargo bench --bench check` (full mode takes ~10 samples of several
//! seconds; `cargo bench --bench check -- fast` runs only the fast one).
use criterion::{Criterion, criterion_group, criterion_main};
use gradverify::check::{CheckConfig, Mode, Richardson, check_parallel};
use gradverify::{Activation, Mlp};
use ndarray::{Array2, ArrayD, IxDyn};
use std::hint::black_box;
use std::time::Duration;

fn setup() -> (Mlp<f64>, [ArrayD<f64>; 2]) {
    let mlp = Mlp::<f64>::new(784, &[100, 64, 32], 10, Activation::Relu, 42).expect("valid sizes");
    let x =
        Array2::from_shape_fn((3, 784), |(i, j)| ((i * 31 + j * 7) % 17) as f64 / 17.0).into_dyn();
    let t = ArrayD::from_shape_vec(IxDyn(&[3]), vec![3.0, 7.0, 1.0]).expect("3 labels");
    (mlp, [x, t])
}

fn bench(c: &mut Criterion) {
    let (mut mlp, inputs) = setup();
    let mut group = c.benchmark_group("mlp_784_100_64_32_10_batch3");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    let fast = CheckConfig::default().with_mode(Mode::Fast { directions: 4 });
    group.measurement_time(Duration::from_secs(2));
    for (name, cfg) in [
        ("fast", fast.clone()),
        ("fast_no_contracts", fast.with_contracts(false)),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let r = check_parallel(&mut mlp, &inputs, &cfg).expect("runs");
                assert!(r.passed);
                black_box(r)
            })
        });
    }
    let full = CheckConfig::default().with_mode(Mode::Full);
    group.measurement_time(Duration::from_secs(60));
    for (name, cfg) in [
        ("full", full.clone()),
        (
            "full_richardson_always",
            full.with_richardson(Richardson::Always),
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let r = check_parallel(&mut mlp, &inputs, &cfg).expect("runs");
                assert!(r.passed);
                black_box(r)
            })
        });
    }
    group.finish();
}

// No plots: criterion's plotters backend panics when no system font is
// installed (FontUnavailable), after the first benchmark's figures.
criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = bench
}
criterion_main!(benches);
