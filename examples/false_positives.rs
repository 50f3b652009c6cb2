//! The false-positive run: at least 10,000 generated cases per correct layer
//! (and the MLP), each checked with its own checker seed; prints cases and
//! false failures per layer.
//!
//! `cargo run --release --example false_positives [cases]`
use gradverify::check::{CheckConfig, Invariant, Report, check, check_f32};
use gradverify::strategies::{self, array, classification, labels, same_shape_pair};
use gradverify::{
    Activation, Add, Affine, Float, Layer, MeanSquaredError, Mlp, Mul, Relu, Sigmoid,
    SoftmaxWithLoss,
};
use ndarray::{ArrayD, Ix1, Ix2};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use rayon::prelude::*;
use std::time::Instant;

/// Draws `n` values of `strategy` from a deterministic runner.
fn draw<S: Strategy>(strategy: S, n: usize) -> Vec<S::Value> {
    let mut runner = TestRunner::deterministic();
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).expect("strategy").current())
        .collect()
}

struct Tally {
    name: &'static str,
    cases: usize,
    failures: usize,
    errors: usize,
    first: Option<String>,
}

fn tally<T: Sync>(
    name: &'static str,
    cases: &[T],
    run: impl Fn(&T, u64) -> gradverify::Result<Report> + Sync,
) -> Tally {
    let start = Instant::now();
    let results: Vec<gradverify::Result<Report>> = cases
        .par_iter()
        .enumerate()
        .map(|(i, c)| run(c, i as u64))
        .collect();
    let failures = results
        .iter()
        .filter(|r| matches!(r, Ok(r) if !r.passed))
        .count();
    let errors = results.iter().filter(|r| r.is_err()).count();
    let first = results.iter().find_map(|r| match r {
        Ok(r) if !r.passed => Some(r.to_string()),
        Err(e) => Some(e.to_string()),
        _ => None,
    });
    eprintln!(
        "{name}: {} cases in {:.1} s",
        cases.len(),
        start.elapsed().as_secs_f64()
    );
    Tally {
        name,
        cases: cases.len(),
        failures,
        errors,
        first,
    }
}

fn mlp<F: Float>(
    input: usize,
    hidden: &[usize],
    classes: usize,
    act: Activation,
    seed: u64,
    biases: &[f64],
) -> Mlp<F> {
    let mut m = Mlp::new(input, hidden, classes, act, seed).expect("valid sizes");
    let mut next = biases.iter();
    for mut p in m.params().into_iter().filter(|p| p.name.starts_with('b')) {
        p.value
            .mapv_inplace(|_| F::of(0.5 * next.next().expect("one bias per unit")));
    }
    m
}

type MlpCase = (
    usize,
    Vec<usize>,
    usize,
    Activation,
    u64,
    Vec<f64>,
    ArrayD<f64>,
    ArrayD<f64>,
);

fn mlp_case() -> impl Strategy<Value = MlpCase> {
    (
        strategies::batch(),
        strategies::features(),
        proptest::collection::vec(1..=8usize, 1..=3),
        2..=10usize,
        prop_oneof![Just(Activation::Relu), Just(Activation::Sigmoid)],
        any::<u64>(),
        strategies::label_form(),
    )
        .prop_flat_map(|(n, d, hidden, c, act, seed, form)| {
            let nb = hidden.iter().sum::<usize>() + c;
            (
                Just(d),
                Just(hidden),
                Just(c),
                Just(act),
                Just(seed),
                proptest::collection::vec(strategies::value(), nb),
                array(vec![n, d]),
                labels(n, c, form),
            )
        })
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let cfg = |seed: u64| CheckConfig::default().with_seed(seed);
    let mut tallies = Vec::new();

    let pairs = draw(same_shape_pair(), n);
    tallies.push(tally("Add", &pairs, |(x, y), s| {
        check(&mut Add::new(), &[x.clone(), y.clone()], &cfg(s))
    }));
    tallies.push(tally("Mul", &pairs, |(x, y), s| {
        check(&mut Mul::new(), &[x.clone(), y.clone()], &cfg(s))
    }));
    tallies.push(tally("MeanSquaredError", &pairs, |(x, y), s| {
        check(
            &mut MeanSquaredError::new(),
            &[x.clone(), y.clone()],
            &cfg(s),
        )
    }));
    drop(pairs);
    let arrays = draw(strategies::any_array(), n);
    tallies.push(tally("Sigmoid", &arrays, |x, s| {
        check(&mut Sigmoid::new(), std::slice::from_ref(x), &cfg(s))
    }));
    tallies.push(tally("Relu", &arrays, |x, s| {
        check(&mut Relu::new(), std::slice::from_ref(x), &cfg(s))
    }));
    drop(arrays);
    let affine = draw(
        (strategies::affine_input_shape(), strategies::features()).prop_flat_map(|(shape, out)| {
            let fan_in: usize = if shape.len() == 1 {
                shape[0]
            } else {
                shape[1..].iter().product()
            };
            (array(shape), array(vec![fan_in, out]), array(vec![out]))
        }),
        n,
    );
    tallies.push(tally("Affine (rank 1-4)", &affine, |(x, w, b), s| {
        let mut a = Affine::new(
            w.clone().into_dimensionality::<Ix2>().expect("2-D"),
            b.clone().into_dimensionality::<Ix1>().expect("1-D"),
        )?;
        check(&mut a, std::slice::from_ref(x), &cfg(s))
    }));
    drop(affine);
    let cls = draw(classification(), n);
    tallies.push(tally("SoftmaxWithLoss", &cls, |(x, t, _), s| {
        let c = cfg(s).with_invariant(Invariant::RowsSumToZero { input: 0 });
        check(&mut SoftmaxWithLoss::new(), &[x.clone(), t.clone()], &c)
    }));
    drop(cls);
    let mlps = draw(mlp_case(), n);
    tallies.push(tally(
        "Mlp (relu/sigmoid)",
        &mlps,
        |(d, h, c, act, seed, b, x, t), s| {
            check(
                &mut mlp::<f64>(*d, h, *c, *act, *seed, b),
                &[x.clone(), t.clone()],
                &cfg(s),
            )
        },
    ));
    tallies.push(tally(
        "Mlp f32 vs f64",
        &mlps,
        |(d, h, c, act, seed, b, x, t), s| {
            let (mut m32, mut m64) = (
                mlp::<f32>(*d, h, *c, *act, *seed, b),
                mlp::<f64>(*d, h, *c, *act, *seed, b),
            );
            check_f32(&mut m32, &mut m64, &[x.clone(), t.clone()], &cfg(s))
        },
    ));

    println!(
        "{:<20} {:>8} {:>16} {:>8}",
        "layer", "cases", "false failures", "errors"
    );
    for t in &tallies {
        println!(
            "{:<20} {:>8} {:>16} {:>8}",
            t.name, t.cases, t.failures, t.errors
        );
    }
    for t in &tallies {
        if let Some(f) = &t.first {
            println!("\nfirst false failure of {}:\n{f}", t.name);
        }
    }
}
