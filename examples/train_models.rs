//! Trains the reference models (`mlp`, `mlp-bn`, `convnet`) with a chosen
//! optimizer and prints the test accuracy after every epoch, for the figures
//! of the README. (The main CLI gets the same choices as `--model` and
//! `--optimizer`; this example only needs the library.)
//!
//! ```text
//! cargo run --release --example train_models -- --model convnet --optimizer adam --epochs 3
//! cargo run --release --example train_models -- --data /usr/share/datasets/fashion-mnist --model mlp-bn
//! ```
//! Without `--data` it uses the 10,000 embedded digits (8,000 / 2,000 split).

use clap::Parser;
use gradverify::data::{DEFAULT_SPLIT_SEED, TrainTest, embedded_split, load_dir};
use gradverify::{Classifier, ModelKind, OptimizerKind};
use ndarray::{Array1, ArrayD, IxDyn};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser, Debug)]
struct Args {
    /// mlp, mlp-bn or convnet.
    #[arg(long, default_value = "mlp-bn")]
    model: String,
    /// sgd, momentum, nesterov, adagrad, rmsprop or adam.
    #[arg(long, default_value = "adam")]
    optimizer: String,
    /// Learning rate (default: the optimizer's, see OptimizerKind::default_lr).
    #[arg(long)]
    lr: Option<f64>,
    /// A folder with the four (gzipped) IDX files; the embedded digits if absent.
    #[arg(long)]
    data: Option<PathBuf>,
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Hidden sizes of the MLPs (the ConvNet uses the first).
    #[arg(long, value_delimiter = ',', default_value = "100,100")]
    hidden: Vec<usize>,
    /// Dropout probability of mlp-bn.
    #[arg(long, default_value_t = 0.2)]
    dropout: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    let kind: ModelKind = args.model.parse()?;
    let okind: OptimizerKind = args.optimizer.parse()?;
    let lr = args.lr.unwrap_or(okind.default_lr());
    let TrainTest { train, test } = match &args.data {
        Some(dir) => load_dir(dir)?,
        None => embedded_split(DEFAULT_SPLIT_SEED)?,
    };
    let image = (1, train.rows(), train.cols());
    let mut model = kind.build::<f32>(image, 10, &args.hidden, args.dropout, args.seed)?;
    let mut opt = okind.build::<f32>(lr as f32)?;
    println!(
        "{kind} / {okind} (lr {lr}) on {} ({} train, {} test), batch {}, seed {}",
        train.name(),
        train.len(),
        test.len(),
        args.batch,
        args.seed
    );
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let one = ArrayD::from_elem(IxDyn(&[]), 1.0f32);
    for epoch in 1..=args.epochs {
        let start = Instant::now();
        order.shuffle(&mut rng);
        model.set_training(true);
        let mut loss_sum = 0.0f64;
        let mut batches = 0usize;
        for chunk in order.chunks(args.batch) {
            let (x, y) = train.batch::<f32>(chunk)?;
            let t = Array1::from_iter(y.iter().map(|&k| k as f32)).into_dyn();
            let loss = model.forward(&[x.view().into_dyn(), t.view()])?;
            model.backward(one.view())?;
            opt.step(&mut *model)?;
            loss_sum += f64::from(loss[[]]);
            batches += 1;
        }
        let acc = accuracy(&mut *model, &test)?;
        println!(
            "epoch {epoch}: train loss {:.4}, test accuracy {:.4} ({:.1} s)",
            loss_sum / batches as f64,
            acc,
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Accuracy over a whole set, in batches of 500 (evaluation mode).
fn accuracy(
    model: &mut (dyn Classifier<f32> + Send),
    set: &gradverify::data::Dataset,
) -> Result<f64, Box<dyn Error>> {
    let idx: Vec<usize> = (0..set.len()).collect();
    let mut correct = 0.0;
    for chunk in idx.chunks(500) {
        let (x, y) = set.batch::<f32>(chunk)?;
        let t = Array1::from_iter(y.iter().map(|&k| k as f32)).into_dyn();
        correct += model.accuracy(x.view().into_dyn(), t.view())? * chunk.len() as f64;
    }
    Ok(correct / set.len() as f64)
}
