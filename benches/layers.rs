//! Layer forward/backward at the MNIST shapes (batch 100): Affine 784→100,
//! ReLU and Sigmoid on (100, 100), SoftmaxWithLoss on (100, 10). These are the
//! checkable, allocating layers; `benches/train.rs` times the engine.
//!
//! `cargo bench --bench layers -- --quick`

use criterion::{Criterion, criterion_group, criterion_main};
use gradverify::{Affine, Layer, Relu, Sigmoid, SoftmaxWithLoss};
use ndarray::{Array, Array1, Array2, ArrayD};
use std::hint::black_box;

fn data(shape: (usize, usize), k: usize) -> Array2<f32> {
    Array::from_shape_fn(shape, |(i, j)| {
        ((i * 31 + j * 17 + k) % 23) as f32 / 11.0 - 1.0
    })
}

fn layers(c: &mut Criterion) {
    let mut g = c.benchmark_group("layers");
    let x: ArrayD<f32> = data((100, 784), 0).mapv(|v| (v + 1.0) / 2.0).into_dyn();
    let mut fc = Affine::new(data((784, 100), 1) * 0.05, Array1::zeros(100)).unwrap();
    let dy = data((100, 100), 2).into_dyn();
    g.bench_function("affine_784x100_b100_forward", |b| {
        b.iter(|| black_box(fc.forward(&[x.view()]).unwrap()))
    });
    g.bench_function("affine_784x100_b100_forward_backward", |b| {
        b.iter(|| {
            fc.forward(&[x.view()]).unwrap();
            black_box(fc.backward(dy.view()).unwrap())
        })
    });
    let h = data((100, 100), 3).into_dyn();
    let mut relu = Relu::<f32>::new();
    g.bench_function("relu_100x100_forward_backward", |b| {
        b.iter(|| {
            relu.forward(&[h.view()]).unwrap();
            black_box(relu.backward(dy.view()).unwrap())
        })
    });
    let mut sig = Sigmoid::<f32>::new();
    g.bench_function("sigmoid_100x100_forward_backward", |b| {
        b.iter(|| {
            sig.forward(&[h.view()]).unwrap();
            black_box(sig.backward(dy.view()).unwrap())
        })
    });
    let logits = data((100, 10), 4).into_dyn();
    let t = Array::from_iter((0..100).map(|i| (i % 10) as f32)).into_dyn();
    let one = ArrayD::from_elem(ndarray::IxDyn(&[]), 1.0f32);
    let mut loss = SoftmaxWithLoss::<f32>::new();
    g.bench_function("softmax_with_loss_100x10_forward_backward", |b| {
        b.iter(|| {
            loss.forward(&[logits.view(), t.view()]).unwrap();
            black_box(loss.backward(one.view()).unwrap())
        })
    });
    g.finish();
}

// No plots: criterion's plotters backend finds no system font here.
criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = layers
}
criterion_main!(benches);
