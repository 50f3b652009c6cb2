//! Training and evaluation speed on synthetic 60k-like data (784 features,
//! 10 classes, `u8` pixels): one SGD step of the reference 784-100-64-32-10
//! ReLU network at batch 100 through the layers ([`Mlp`] + [`Sgd`]) and
//! through the [`Engine`] (1 and 2 row blocks), 60 steps including the
//! `u8 → f32` batch scaling (a tenth of an epoch), and a 10k evaluation.
//!
//! `cargo bench --bench train -- --quick`

use criterion::{Criterion, criterion_group, criterion_main};
use gradverify::data::{Dataset, Images};
use gradverify::train::Engine;
use gradverify::{Activation, Layer, Mlp, Sgd};
use ndarray::{Array, Array2, ArrayD};
use std::hint::black_box;

/// `n` pseudo-random 28×28 images with labels (xorshift; not learnable,
/// but with the value range and sparsity-free cost of real pixels).
fn synthetic(n: usize) -> Dataset {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let pixels = (0..n * 784).map(|_| (next() >> 56) as u8).collect();
    let labels = (0..n).map(|_| (next() % 10) as u8).collect();
    Dataset::new("synthetic", Images::new(n, 28, 28, pixels).unwrap(), labels).unwrap()
}

fn model() -> Mlp<f32> {
    Mlp::new(784, &[100, 64, 32], 10, Activation::Relu, 42).unwrap()
}

fn step(c: &mut Criterion) {
    let data = synthetic(1000);
    let idx: Vec<usize> = (0..100).collect();
    let (x, t) = data.batch::<f32>(&idx).unwrap();
    let tf: ArrayD<f32> = Array::from_iter(t.iter().map(|&l| l as f32)).into_dyn();
    let one = ArrayD::from_elem(ndarray::IxDyn(&[]), 1.0f32);
    let mut g = c.benchmark_group("step_b100");
    let mut m = model();
    let mut sgd = Sgd::new(0.01f32).unwrap();
    g.bench_function("layers_mlp_forward_backward_sgd", |b| {
        b.iter(|| {
            m.forward(&[x.view().into_dyn(), tf.view()]).unwrap();
            m.backward(one.view()).unwrap();
            sgd.step(&mut m).unwrap();
        })
    });
    for parts in [1, 2] {
        let mut m = model();
        let mut e = Engine::new(&m, 100).unwrap();
        e.set_parts(parts).unwrap();
        g.bench_function(format!("engine_step_parts{parts}"), |b| {
            b.iter(|| black_box(e.step(&mut m, x.view(), &t, 0.01).unwrap()))
        });
    }
    g.finish();
}

fn epoch_and_eval(c: &mut Criterion) {
    let train = synthetic(60_000);
    let test = synthetic(10_000);
    let mut g = c.benchmark_group("epoch");
    g.sample_size(10);
    let mut m = model();
    let mut e = Engine::new(&m, 1000).unwrap();
    let mut xbuf = Array2::<f32>::zeros((100, 784));
    let mut labels = Vec::new();
    let order: Vec<usize> = (0..60_000).map(|i| (i * 7919) % 60_000).collect();
    g.bench_function("engine_60_steps_with_u8_scaling", |b| {
        b.iter(|| {
            for idx in order.chunks_exact(100).take(60) {
                train.fill_batch(idx, xbuf.view_mut(), &mut labels).unwrap();
                black_box(e.step(&mut m, xbuf.view(), &labels, 0.01).unwrap());
            }
        })
    });
    let mut ebuf = Array2::<f32>::zeros((1000, 784));
    g.bench_function("engine_eval_10k", |b| {
        b.iter(|| black_box(e.accuracy(&m, &test, &mut ebuf, &mut labels).unwrap()))
    });
    // The same evaluation through the layers (`Mlp::predict`, allocating).
    g.bench_function("layers_mlp_eval_10k", |b| {
        b.iter(|| {
            let mut correct = 0;
            for start in (0..10_000).step_by(1000) {
                let idx: Vec<usize> = (start..start + 1000).collect();
                test.fill_batch(&idx, ebuf.view_mut(), &mut labels).unwrap();
                let y = m.predict(ebuf.view().into_dyn()).unwrap();
                let y = y.into_dimensionality::<ndarray::Ix2>().unwrap();
                for (row, &l) in y.outer_iter().zip(&labels) {
                    let best =
                        row.iter()
                            .enumerate()
                            .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                                if v > bv { (i, v) } else { (bi, bv) }
                            });
                    correct += usize::from(best.0 == l);
                }
            }
            black_box(correct)
        })
    });
    let mut chunk = Array2::<f32>::zeros((1000, 784));
    let idx: Vec<usize> = (0..1000).collect();
    g.bench_function("fill_batch_u8_to_f32_1000x784", |b| {
        b.iter(|| {
            test.fill_batch(&idx, chunk.view_mut(), &mut labels)
                .unwrap()
        })
    });
    g.finish();
}

// No plots: criterion's plotters backend finds no system font here.
criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = step, epoch_and_eval
}
criterion_main!(benches);
