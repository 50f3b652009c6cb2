//! Times the full- and fast-mode checks of the tutorial's MLP
//! 784-100-64-32-10 on a batch of 3 (87,374 parameters), once each.
//!
//! `cargo run --release --example check_timing [fast|full]`
use gradverify::check::{CheckConfig, Mode, Richardson, check_parallel};
use gradverify::{Activation, Mlp};
use ndarray::{Array2, ArrayD, IxDyn};
use std::time::Instant;

fn main() -> gradverify::Result<()> {
    let mut mlp = Mlp::<f64>::new(784, &[100, 64, 32], 10, Activation::Relu, 42)?;
    let x =
        Array2::from_shape_fn((3, 784), |(i, j)| ((i * 31 + j * 7) % 17) as f64 / 17.0).into_dyn();
    let t = ArrayD::from_shape_vec(IxDyn(&[3]), vec![3.0, 7.0, 1.0]).expect("3 labels");
    let inputs = [x, t];
    // An optional argument runs only the modes whose name starts with it.
    let only = std::env::args().nth(1);
    for (name, mode, richardson, contracts) in [
        (
            "fast",
            Mode::Fast { directions: 4 },
            Richardson::OnDemand,
            true,
        ),
        (
            "fast, no contracts",
            Mode::Fast { directions: 4 },
            Richardson::OnDemand,
            false,
        ),
        (
            "full, Richardson on demand",
            Mode::Full,
            Richardson::OnDemand,
            true,
        ),
        (
            "full, Richardson always",
            Mode::Full,
            Richardson::Always,
            true,
        ),
    ] {
        if !only.as_deref().is_none_or(|o| name.starts_with(o)) {
            continue;
        }
        let cfg = CheckConfig::default()
            .with_mode(mode)
            .with_richardson(richardson)
            .with_contracts(contracts);
        let start = Instant::now();
        let report = check_parallel(&mut mlp, &inputs, &cfg)?;
        let secs = start.elapsed().as_secs_f64();
        println!("{report}");
        let checked: usize = report.tensors.iter().map(|t| t.checked).sum();
        let both: usize = report.tensors.iter().map(|t| t.both_stencils).sum();
        println!(
            "{name} mode: {secs:.3} s, passed: {}, {both} of {checked} elements/directions with both stencils",
            report.passed
        );
    }
    Ok(())
}
