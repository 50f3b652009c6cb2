//! The workloads of the PyTorch peer `gradcheck_bench.py` (in
//! `../shared/bench/peers/`), checked by gradverify, and the tutorial's MLP:
//!
//! - `Affine(784, 100)` in f64 on a batch of 3, w.r.t. the input only (2,352
//!   elements; `W` and `b` held fixed) and w.r.t. input, `W` and `b` (80,852);
//! - the MLP 784-100-64-32-10 with softmax + cross-entropy, batch 3
//!   (input and all 87,374 parameters).
//!
//! Each in full mode (every element) and fast mode (4 random directions per
//! tensor, contracts on), `REPS` times. Prints one JSON line in the peer's
//! format (`results.<case>[_fast] = {n_inputs, passed, min_s, median_s,
//! times_s}`), so `benches/gradcheck_peers.sh` can set the two side by side.
//!
//! `cargo run --release --example gradcheck_bench [REPS]` (default 3)
use gradverify::check::{CheckConfig, Mode, check_parallel};
use gradverify::{Activation, Affine, Layer, Mlp, Result};
use ndarray::{Array1, Array2, ArrayD, ArrayViewD, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use serde_json::{Value, json};
use std::time::Instant;

/// `Affine` with `W` and `b` held fixed: the check sees the input only, as
/// `gradcheck` does when only the input requires a gradient.
#[derive(Clone)]
struct InputOnly(Affine<f64>);

impl Layer<f64> for InputOnly {
    fn name(&self) -> String {
        "Affine (input only)".into()
    }
    fn num_inputs(&self) -> usize {
        1
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
        self.0.forward(inputs)
    }
    fn backward(&mut self, dout: ArrayViewD<'_, f64>) -> Result<Vec<ArrayD<f64>>> {
        self.0.backward(dout)
    }
}

/// Times `reps` checks of `layer` at `inputs` with `cfg`; the peer's fields.
fn time_check<L: Layer<f64> + Clone + Send>(
    layer: &mut L,
    inputs: &[ArrayD<f64>],
    cfg: &CheckConfig,
    reps: usize,
) -> Result<Value> {
    let mut times = Vec::with_capacity(reps);
    let mut passed = true;
    let mut n_inputs = 0;
    for _ in 0..reps {
        let start = Instant::now();
        let report = check_parallel(layer, inputs, cfg)?;
        times.push(start.elapsed().as_secs_f64());
        passed &= report.passed;
        n_inputs = report
            .tensors
            .iter()
            .map(|t| t.shape.iter().product::<usize>())
            .sum();
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    Ok(json!({
        "n_inputs": n_inputs,
        "passed": passed,
        "min_s": sorted[0],
        "median_s": sorted[sorted.len() / 2],
        "times_s": times,
    }))
}

fn main() -> Result<()> {
    let reps: usize = match std::env::args().nth(1) {
        None => 3,
        Some(s) => s.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
            gradverify::Error::Config(format!("REPS must be a positive integer, got {s:?}"))
        })?,
    };
    // Uniform(-1/√784, 1/√784) weights like torch.nn.Linear's, and a
    // standard normal input, all seeded.
    let mut rng = StdRng::seed_from_u64(0);
    let bound = 1.0 / 784f64.sqrt();
    let w = Array2::from_shape_simple_fn((784, 100), || rng.random_range(-bound..bound));
    let b = Array1::from_shape_simple_fn(100, || rng.random_range(-bound..bound));
    let x =
        Array2::from_shape_simple_fn((3, 784), || rng.sample::<f64, _>(StandardNormal)).into_dyn();
    let affine = Affine::new(w, b)?;

    let mut mlp = Mlp::<f64>::new(784, &[100, 64, 32], 10, Activation::Relu, 42)?;
    let x01 = x.mapv(|v| 1.0 / (1.0 + (-v).exp()));
    let t = ArrayD::from_shape_vec(IxDyn(&[3]), vec![3.0, 7.0, 1.0]).expect("3 labels");
    let mlp_inputs = [x01, t];
    let affine_inputs = [x];

    let mut results = serde_json::Map::new();
    for fast in [false, true] {
        let (suffix, cfg) = if fast {
            (
                "_fast",
                CheckConfig::default().with_mode(Mode::Fast { directions: 4 }),
            )
        } else {
            ("", CheckConfig::default().with_mode(Mode::Full))
        };
        let cases: [(&str, Value); 3] = [
            (
                "input_only",
                time_check(&mut InputOnly(affine.clone()), &affine_inputs, &cfg, reps)?,
            ),
            (
                "input+W+b",
                time_check(&mut affine.clone(), &affine_inputs, &cfg, reps)?,
            ),
            (
                "mlp_784_100_64_32_10",
                time_check(&mut mlp, &mlp_inputs, &cfg, reps)?,
            ),
        ];
        for (name, v) in cases {
            eprintln!(
                "# {:>28}: n_inputs={} min {:.4}s median {:.4}s passed={}",
                format!("{name}{suffix}"),
                v["n_inputs"],
                v["min_s"].as_f64().unwrap_or(f64::NAN),
                v["median_s"].as_f64().unwrap_or(f64::NAN),
                v["passed"]
            );
            results.insert(format!("{name}{suffix}"), v);
        }
    }
    println!(
        "{}",
        json!({ "gradverify": env!("CARGO_PKG_VERSION"), "results": results })
    );
    Ok(())
}
