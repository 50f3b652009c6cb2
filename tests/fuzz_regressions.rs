//! Fuzz findings, replayed as ordinary tests.
//!
//! Every file under `tests/fuzz_inputs/<target>/` is an input that once made
//! a fuzz target in `fuzz/` crash. The cases are decoded exactly as
//! libFuzzer decodes them (`arbitrary_take_rest`) and run through the same
//! property checks (the `fuzz/src/*.rs` files are compiled into this test
//! binary), so a replay fails whenever the bug, or any other property
//! violation on that input, comes back. The committed seeds under
//! `fuzz/seeds/<target>/` are replayed the same way. Each named test below
//! also states the bug in plain code, independent of the fuzz encoding.

#[allow(dead_code)]
#[path = "../fuzz/src/check.rs"]
mod check;
#[allow(dead_code)]
#[path = "../fuzz/src/common.rs"]
mod common;
#[allow(dead_code)]
#[path = "../fuzz/src/extra_layers.rs"]
mod extra_layers;
#[allow(dead_code)]
#[path = "../fuzz/src/idx.rs"]
mod idx;
#[allow(dead_code)]
#[path = "../fuzz/src/layers.rs"]
mod layers;
#[allow(dead_code)]
#[path = "../fuzz/src/model.rs"]
mod model;

use arbitrary::{Arbitrary, Unstructured};
use gradverify::{Activation, Affine, Layer, Mlp, SoftmaxWithLoss, cross_entropy_error, softmax};
use ndarray::{ArrayD, Axis, IxDyn, ShapeBuilder, Slice, arr1, arr2};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Decodes `bytes` as libFuzzer does for `fuzz_target!(|c: C| ...)`;
/// `None` for inputs the target would skip.
fn decode<C: for<'a> Arbitrary<'a>>(bytes: &[u8]) -> Option<C> {
    C::arbitrary_take_rest(Unstructured::new(bytes)).ok()
}

/// Replays one committed input through a target's checks.
fn replay<C: for<'a> Arbitrary<'a> + std::fmt::Debug>(path: &Path, run: fn(&C)) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let case: C = decode(&bytes).unwrap_or_else(|| panic!("{} does not decode", path.display()));
    eprintln!("replaying {}:\n{case:?}", path.display());
    run(&case);
}

/// Replays every file in a directory; returns how many there were.
fn replay_dir<C: for<'a> Arbitrary<'a> + std::fmt::Debug>(dir: &Path, run: fn(&C)) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut paths: Vec<PathBuf> = entries.map(|e| e.expect("dir entry").path()).collect();
    paths.sort();
    for p in &paths {
        replay(p, run);
    }
    paths.len()
}

fn input(target: &str, name: &str) -> PathBuf {
    root().join("tests/fuzz_inputs").join(target).join(name)
}

#[test]
fn every_committed_layers_input_and_seed_passes() {
    let n = replay_dir(&root().join("tests/fuzz_inputs/layers"), layers::Case::run)
        + replay_dir(&root().join("fuzz/seeds/layers"), layers::Case::run);
    // The layers target decodes every input a second time as an
    // extra-layers case (issue 8's layers and models).
    replay_dir(
        &root().join("tests/fuzz_inputs/layers"),
        extra_layers::Case::run,
    );
    replay_dir(&root().join("fuzz/seeds/layers"), extra_layers::Case::run);
    assert!(n >= 2, "expected committed layers inputs, found {n}");
}

#[test]
fn every_committed_model_input_and_seed_passes() {
    let n = replay_dir(&root().join("tests/fuzz_inputs/model"), model::Case::run)
        + replay_dir(&root().join("fuzz/seeds/model"), model::Case::run);
    // The model target decodes every input a second time; its MlpBn and
    // ConvNet cases run.
    let models = |c: &extra_layers::Case| {
        if c.is_model() {
            c.run()
        }
    };
    replay_dir(&root().join("tests/fuzz_inputs/model"), models);
    replay_dir(&root().join("fuzz/seeds/model"), models);
    assert!(n >= 2, "expected committed model inputs, found {n}");
}

#[test]
fn every_committed_idx_input_and_seed_passes() {
    let n = replay_dir(&root().join("tests/fuzz_inputs/idx"), idx::Case::run)
        + replay_dir(&root().join("fuzz/seeds/idx"), idx::Case::run);
    assert!(n >= 1, "expected committed idx inputs, found {n}");
}

/// Bug: `softmax` (via `as_batch`) reshaped a 1-D input with
/// `into_shape_with_order`, which fails on a strided or reversed view, and
/// `.expect`ed it: a panic on `softmax(x.slice(s![..;-1]))`.
#[test]
fn softmax_of_reversed_1d_view_does_not_panic() {
    replay(
        &input("layers", "softmax-1d-reversed-view.bin"),
        layers::Case::run,
    );
    let x = arr1(&[1.0f64, 2.0, 3.0]);
    let rev = x.slice_axis(Axis(0), Slice::new(0, None, -1)).into_dyn();
    let y = softmax(rev).unwrap();
    let e: f64 = [1.0f64, 2.0, 3.0].iter().map(|v| v.exp()).sum();
    assert_eq!(y.shape(), &[3]);
    assert!((y[0] - 3f64.exp() / e).abs() < 1e-15, "{y}");
    let strided = arr1(&[0.0f32, 9.0, 0.0, 9.0]);
    let s = strided
        .slice_axis(Axis(0), Slice::new(0, None, 2))
        .into_dyn();
    let y = softmax(s).unwrap();
    assert_eq!(y.as_slice().unwrap(), &[0.5f32, 0.5]);
}

/// Same bug, in `promote_labels` and `softmax_rows`: a one-hot label row
/// given as a strided view, and column-major logits (whose `to_owned` copy
/// kept the column-major layout that the final reshape rejected).
#[test]
fn softmax_with_loss_accepts_any_memory_layout() {
    let mut l = SoftmaxWithLoss::<f64>::new();
    let x = arr1(&[0.0, 0.0]).into_dyn();
    let t = arr1(&[1.0, 7.0, 0.0, 7.0]);
    let t = t.slice_axis(Axis(0), Slice::new(0, None, 2)).into_dyn();
    let loss = l.forward(&[x.view(), t]).unwrap();
    assert!((loss[[]] - 2f64.ln()).abs() < 1e-15);

    let xc = arr2(&[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]);
    let mut xf = ndarray::Array2::zeros((2, 3).f());
    xf.assign(&xc);
    let labels = arr1(&[2.0, 0.0]).into_dyn();
    let mut a = SoftmaxWithLoss::<f64>::new();
    let mut b = SoftmaxWithLoss::<f64>::new();
    let la = a.forward(&[xc.view().into_dyn(), labels.view()]).unwrap();
    let lb = b.forward(&[xf.view().into_dyn(), labels.view()]).unwrap();
    assert_eq!(la, lb);
    assert_eq!(a.y().unwrap(), b.y().unwrap());
    let one = ArrayD::from_elem(IxDyn(&[]), 1.0);
    assert_eq!(
        a.backward(one.view()).unwrap(),
        b.backward(one.view()).unwrap()
    );
    assert_eq!(
        cross_entropy_error(xf.view().into_dyn(), labels.view()).unwrap(),
        cross_entropy_error(xc.view().into_dyn(), labels.view()).unwrap()
    );
}

/// Bug: `Affine` reshaped `dout . W^T` (and `x . W`) with
/// `into_shape_with_order`, but `dot` returns a column-major matrix when its
/// operands are column-major (a reversed `dout`, a transposed `W`): a panic
/// in `Mlp::gradient` on a batch stored backwards.
#[test]
fn affine_with_column_major_operands_does_not_panic() {
    replay(
        &input("model", "affine-backward-column-major-product.bin"),
        model::Case::run,
    );
    let w = arr2(&[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    let mut wf = ndarray::Array2::zeros((2, 3).f());
    wf.assign(&w);
    let b = arr1(&[0.5, 0.0, -0.5]);
    let x = arr2(&[[1.0, -1.0], [2.0, 0.5]]);
    let mut xf = ndarray::Array2::zeros((2, 2).f());
    xf.assign(&x);
    let mut c = Affine::new(w, b.clone()).unwrap();
    let mut f = Affine::new(wf, b).unwrap();
    let yc = c.forward(&[x.view().into_dyn()]).unwrap();
    let yf = f.forward(&[xf.view().into_dyn()]).unwrap();
    assert_eq!(yc, yf);
    assert_eq!(yc, arr2(&[[-2.5, -3.0, -3.5], [4.5, 6.5, 8.5]]).into_dyn());
    let d = arr2(&[[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]]);
    let mut df = ndarray::Array2::zeros((2, 3).f());
    df.assign(&d);
    let gc = c.backward(d.view().into_dyn()).unwrap();
    let gf = f.backward(df.view().into_dyn()).unwrap();
    assert_eq!(gc, gf);
    assert_eq!(gc[0], arr2(&[[-2.0, -2.0], [4.0, 13.0]]).into_dyn());
    assert_eq!(c.dw(), f.dw());

    // The fuzz case itself: a gradient on a batch whose axis 0 runs backwards.
    let mut m = Mlp::<f32>::new(4, &[], 1, Activation::Relu, 1).unwrap();
    let xs = ndarray::Array2::from_shape_fn((3, 4), |(i, j)| (i + j) as f32);
    let rev = xs.slice_axis(Axis(0), Slice::new(0, None, -1)).into_dyn();
    let t = arr1(&[0.0f32, 0.0, 0.0]).into_dyn();
    let g = m.gradient(rev, t.view()).unwrap();
    assert_eq!(g[0].1.shape(), &[4, 1]);
}

#[test]
fn every_committed_check_input_and_seed_passes() {
    let n = replay_dir(&root().join("tests/fuzz_inputs/check"), check::Case::run)
        + replay_dir(&root().join("fuzz/seeds/check"), check::Case::run);
    assert!(n >= 2, "expected committed check inputs, found {n}");
}

/// Harness finding (not a library bug): a correct layer checked at a
/// subnormal input. The loss moves by less than its rounding, and the
/// checker reports the element as a kink and the check as not meaningful
/// (a FAIL, never a silent pass). The case now treats such inputs as not
/// moderate; the replay guards that the checker still never passes them
/// with a non-finite or meaningless comparison.
#[test]
fn check_at_subnormal_input_is_not_a_silent_pass() {
    replay(
        &input("check", "probe-subnormal-x-harness.bin"),
        check::Case::run,
    );
}

/// The hand-made extra-layers seeds decode to the layers (and float types)
/// they were written for, and print as such (the encoder in `fuzz/seeds/make_seeds.py` mirrors the enum orders).
#[test]
fn extra_layer_seeds_decode_as_written() {
    // (seed, layer, float type), as `make_seeds.py` writes them.
    for (name, kind, ty) in [
        ("extra-batchnorm-train-nan", "layer = BatchNorm", "f64"),
        ("extra-conv-stride-pad-f32", "layer = Conv", "f32"),
        ("extra-maxpool-ties-and-empty", "layer = MaxPool", "f64"),
        ("extra-dropout-frozen-inf", "layer = Dropout", "f32"),
        ("extra-mlpbn-bad-labels", "layer = MlpBn", "f64"),
        (
            "extra-convnet-flat-then-empty-f32",
            "layer = ConvNet",
            "f32",
        ),
    ] {
        let bytes = std::fs::read(root().join("fuzz/seeds/layers").join(name)).unwrap();
        let case: extra_layers::Case = decode(&bytes).expect("decodes");
        let shown = format!("{case:?}");
        let head = format!("// extra_layers case, in {ty}\n");
        assert!(shown.starts_with(&head), "{name}: {shown}");
        assert!(shown.contains(kind), "{name}: {shown}");
        assert!(shown.contains("op 1:"), "{name} has its ops: {shown}");
    }
}

/// A tutorial-layers case prints under its own decoder's name and float
/// type, so a finding's printout says which decoder to read it with.
#[test]
fn layer_case_printouts_name_their_decoder() {
    let bytes = std::fs::read(root().join("fuzz/seeds/layers/add-mismatch-and-empty")).unwrap();
    let case: layers::Case = decode(&bytes).expect("decodes");
    let ty = if case.f64 { "f64" } else { "f32" };
    let shown = format!("{case:?}");
    assert!(
        shown.starts_with(&format!("// layers case, in {ty}\nlayer = ")),
        "{shown}"
    );
    assert!(shown.contains("op 0:"), "{shown}");
}
