//! gradverify's side of the peer benchmark (`../shared/bench/peers/`): the
//! same run as `numpy_mlp.py` and `jax_mlp.py`, printing the same JSON line.
//!
//! 784-100-64-32-10 ReLU, softmax cross-entropy, plain SGD, batch 100,
//! lr 0.1, f32, pixel/255, Fashion-MNIST (`FMNIST_DIR`, default
//! `/usr/share/datasets/fashion-mnist`). The He init and the epoch orders come
//! from the peers' portable RNG (SplitMix64, Box-Muller, Fisher-Yates),
//! reimplemented here bit for bit, so the run starts from the peers' exact
//! weights (`init` fingerprint) and sees their batch order. As in the peers,
//! the permutation is drawn untimed; `epoch_s` times the 600 steps (scaling
//! each batch from `u8` included), `eval_s` the 10k test evaluation.
//!
//! ```sh
//! cargo run --release --example epoch_bench -- --epochs 5 [--parts 2] [--seed 42]
//! ```

use gradverify::data::load_dir;
use gradverify::train::Engine;
use gradverify::{Activation, Affine, Mlp};
use ndarray::{Array1, Array2};
use std::path::PathBuf;
use std::time::Instant;

/// The peers' SplitMix64 (`peer_common.py`).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1), never 0.
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Box-Muller, cosine branch only.
    fn normal(&mut self) -> f64 {
        let u1 = self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Fisher-Yates from the end, `j = next % (i + 1)`.
    fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            p.swap(i, j);
        }
        p
    }
}

/// The peers' He init: `W` row-major from `normal() * sqrt(2 / fan_in)` in
/// f64, rounded to f32; zero biases.
fn he_init(rng: &mut SplitMix64, sizes: &[usize]) -> Mlp<f32> {
    let affines = sizes
        .windows(2)
        .map(|p| {
            let std = (2.0 / p[0] as f64).sqrt();
            let w = Array2::from_shape_simple_fn((p[0], p[1]), || (rng.normal() * std) as f32);
            Affine::new(w, Array1::zeros(p[1])).expect("consistent shapes")
        })
        .collect();
    Mlp::from_affines(affines, Activation::Relu).expect("layers chain")
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap_or_else(|_| panic!("bad value for {name}")))
        .unwrap_or(default)
}

fn main() -> gradverify::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let epochs: usize = arg(&args, "--epochs", 5);
    let seed: u64 = arg(&args, "--seed", 42);
    let batch: usize = arg(&args, "--batch", 100);
    let lr: f32 = arg(&args, "--lr", 0.1);
    let parts: usize = arg(&args, "--parts", gradverify::train::engine::DEFAULT_PARTS);
    let eval_chunk: usize = arg(&args, "--eval-chunk", 1000);
    let dir = PathBuf::from(
        std::env::var("FMNIST_DIR").unwrap_or_else(|_| "/usr/share/datasets/fashion-mnist".into()),
    );
    let sets = load_dir(&dir)?;
    let (train, test) = (sets.train, sets.test);

    let mut rng = SplitMix64(seed);
    let mut model = he_init(&mut rng, &[784, 100, 64, 32, 10]);
    let sum_w: f64 = model
        .affines()
        .iter()
        .map(|a| a.w().iter().map(|&v| f64::from(v)).sum::<f64>())
        .sum();
    let w1 = model.affines()[0].w();
    let fingerprint = serde_json::json!({
        "sum_W": (sum_w * 1e6).round() / 1e6,
        "W1[0,0:3]": [w1[[0, 0]], w1[[0, 1]], w1[[0, 2]]],
    });

    let mut engine = Engine::new(&model, batch.max(eval_chunk))?;
    engine.set_parts(parts)?;
    let mut xbuf = Array2::<f32>::zeros((batch, train.features()));
    let mut ebuf = Array2::<f32>::zeros((eval_chunk, train.features()));
    let mut labels = Vec::with_capacity(batch.max(eval_chunk));
    let steps = train.len() / batch;
    let (mut epoch_s, mut eval_s, mut accs, mut losses) = (vec![], vec![], vec![], vec![]);
    for ep in 0..epochs {
        let perm = rng.permutation(train.len()); // untimed, as in the peers
        let t0 = Instant::now();
        let mut loss = 0.0;
        // On one of rayon's threads, as `train::fit::train` runs its steps.
        rayon::scope(|_| -> gradverify::Result<()> {
            for idx in perm.chunks_exact(batch).take(steps) {
                train.fill_batch(idx, xbuf.view_mut(), &mut labels)?;
                loss = engine.step(&mut model, xbuf.view(), &labels, lr)?;
            }
            Ok(())
        })?;
        let t1 = Instant::now();
        let acc = engine.accuracy(&model, &test, &mut ebuf, &mut labels)?;
        let t2 = Instant::now();
        let (e, v) = ((t1 - t0).as_secs_f64(), (t2 - t1).as_secs_f64());
        eprintln!(
            "# epoch {}: train {e:.3}s eval {v:.4}s last-batch loss {loss:.4} test acc {acc:.4}",
            ep + 1
        );
        epoch_s.push(e);
        eval_s.push(v);
        accs.push(acc);
        losses.push(loss);
    }
    println!(
        "{}",
        serde_json::json!({
            "peer": "gradverify", "epochs": epochs, "seed": seed, "parts": parts,
            "rayon_threads": rayon::current_num_threads(),
            "epoch_s": epoch_s, "eval_s": eval_s, "test_acc": accs,
            "last_batch_loss": losses, "init": fingerprint,
        })
    );
    Ok(())
}
