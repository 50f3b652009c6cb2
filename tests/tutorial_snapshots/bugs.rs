//! Each documented bug of the tutorial's code: a faithful replica (in
//! [`super::replicas`]) beside the crate's fixed layer, with both
//! outcomes and what a gradient check says about each, snapshotted together.
//! Every test asserts the replica's failure and the fix's success before it
//! snapshots them, so a regression fails with a named fact even with
//! `INSTA_FORCE_PASS`.
//!
//! The last two bugs of the list are not layer behaviour and are carried by
//! the reference run: `epochs = 1000` that are really iterations (the run
//! counts epochs as full passes over the training set) and
//! `plt.xlabel(loc=5)` meant as `plt.legend(loc=5)` (the run's plots have a
//! legend).

use super::replicas::*;
use super::support::gradcheck::{CheckOutcome, check};
use super::support::{array, array_dec, num, num_dec, shape, snap};
use gradverify::data::embedded_digits;
use gradverify::numpy_rng::RandomState;
use gradverify::{
    Activation, Affine, Layer, MeanSquaredError, Mlp, Relu, Sgd, Sigmoid, SoftmaxWithLoss,
    mean_squared_error,
};
use ndarray::{Array2, ArrayD, Ix1, Ix2, arr1, arr2};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use std::fmt::Write;

/// Asserts the outcome passed (or failed) and returns its rendering.
#[track_caller]
fn expect(outcome: &CheckOutcome, pass: bool) -> String {
    let text = outcome.render();
    assert_eq!(outcome.passed(), pass, "{text}");
    text
}

/// Bug 1: Sigmoid forward never stores `out`, backward reads `self.dout`.
/// The replica's backward fails (the attribute does not exist); its silent
/// variant with a never-updated zero cache returns `dx = 0`, which the
/// gradient check rejects; the fixed Sigmoid passes.
#[test]
fn bug_sigmoid_forward_not_storing_out() {
    let x = RandomState::new(1).randn(&[2, 3]);
    let fixed = expect(
        &check(&mut Sigmoid::new(), std::slice::from_ref(&x), 7),
        true,
    );
    let mut replica = TutorialSigmoid::default();
    let outcome = check(&mut replica, std::slice::from_ref(&x), 7);
    let replica_text = expect(&outcome, false);
    assert!(
        outcome.error.as_deref().unwrap().contains("\"dout\""),
        "{replica_text}"
    );
    let zero = check(
        &mut TutorialSigmoidZeroCache::default(),
        std::slice::from_ref(&x),
        7,
    );
    let zero_text = expect(&zero, false);
    assert_eq!(zero.tensor("input 0").unwrap().max_rel_err, Some(1.0));
    snap!(
        "bug_sigmoid_out_not_stored",
        "Bug 1: the tutorial's Sigmoid forward never stores out and backward reads self.dout. Replica fails (error; zero-cache variant: dx = 0), fix passes.",
        &format!(
            "fixed Sigmoid:\n{fixed}\ntutorial Sigmoid (backward reads self.dout):\n{replica_text}\ntutorial Sigmoid with a zero cache never updated:\n{zero_text}"
        ),
    );
}

/// Bug 2: `dx.reshpae(self.origin_x_shape)`. An image batch `(N, 1, H, W)`
/// (the tutorial's `(N, 1, 28, 28)` scaled down to `(2, 1, 4, 4)`) gets its
/// dx back in that shape from the fixed Affine; the replica raises at the
/// misspelled method, with dx still flattened to `(N, H·W)`.
#[test]
fn bug_affine_reshpae_dx_in_input_shape() {
    let mut rng = RandomState::new(2);
    let x = rng.rand(&[2, 1, 4, 4]);
    let w = rng.randn(&[16, 3]).into_dimensionality::<Ix2>().unwrap();
    let b = rng.randn(&[3]).into_dimensionality::<Ix1>().unwrap();
    let dout = rng.rand(&[2, 3]);

    let mut fixed = Affine::new(w.clone(), b.clone()).unwrap();
    fixed.forward(&[x.view()]).unwrap();
    let dx = fixed.backward(dout.view()).unwrap().remove(0);
    assert_eq!(dx.shape(), &[2, 1, 4, 4]);

    let mut replica = TutorialAffine::new(w.clone(), b.clone(), AffineBug::Reshpae);
    replica.forward(&[x.view()]).unwrap();
    let err = replica.backward(dout.view()).unwrap_err().to_string();
    assert!(err.contains("\"reshpae\""), "{err}");
    let flat = replica.dx_before_reshape.as_ref().unwrap();
    assert_eq!(flat.shape(), &[2, 16]);
    // Same numbers, only the shape is lost.
    assert_eq!(flat.as_slice().unwrap(), dx.as_slice().unwrap());

    let fixed_check = expect(&check(&mut fixed, std::slice::from_ref(&x), 3), true);
    let mut replica = TutorialAffine::new(w, b, AffineBug::Reshpae);
    let replica_check = expect(&check(&mut replica, std::slice::from_ref(&x), 3), false);
    snap!(
        "bug_affine_reshpae",
        "Bug 2: dx.reshpae(...). Input (2,1,4,4): the fixed Affine returns dx (2,1,4,4); the replica raises, dx left (2,16).",
        &format!(
            "input X {}, W (16, 3), dout {}\nfixed Affine: dx {}\ntutorial Affine: backward error: {err}; dx before the reshape {}\n\n{fixed_check}\n{replica_check}",
            shape(&x),
            shape(&dout),
            shape(&dx),
            shape(flat),
        ),
    );
}

/// Bug 3: `np.sum((pred_y, true_y)**2)`. On the tutorial's two predictions
/// of the digit 2 the fixed loss is 0.0975 (right) and 0.5975 (wrong); the
/// tuple version raises in Python, and its array reading `Σ y² + Σ t²`
/// gives 1.395 for **both** and 2 for a perfect prediction: it never looks
/// at the difference.
#[test]
fn bug_mse_squares_a_tuple() {
    let t = [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    let right = [0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0];
    let wrong = [0.1, 0.05, 0.1, 0.0, 0.05, 0.1, 0.0, 0.6, 0.0, 0.0];
    let fixed = |y: &[f64]| {
        mean_squared_error(arr1(y).into_dyn().view(), arr1(&t).into_dyn().view()).unwrap()
    };
    let cases = [
        ("right (argmax 2)", &right),
        ("wrong (argmax 7)", &wrong),
        ("perfect (y = t)", &t),
    ];
    let mut s = String::new();
    writeln!(s, "t     = {}", array_dec(&arr1(&t), 2)).unwrap();
    writeln!(s, "right = {}", array_dec(&arr1(&right), 2)).unwrap();
    writeln!(s, "wrong = {}", array_dec(&arr1(&wrong), 2)).unwrap();
    writeln!(
        s,
        "tutorial np.sum((pred_y, true_y)**2): {}",
        tutorial_mse(&right, &t).unwrap_err()
    )
    .unwrap();
    for (name, y) in cases {
        writeln!(
            s,
            "{name}: fixed 0.5*sum((y-t)^2) = {}, tuple read as array sum(y^2)+sum(t^2) = {}",
            num(fixed(y)),
            num(tutorial_mse_as_array(y, &t))
        )
        .unwrap();
    }
    assert!((fixed(&right) - 0.0975).abs() < 1e-12);
    assert!((fixed(&wrong) - 0.5975).abs() < 1e-12);
    assert_eq!(fixed(&t), 0.0);
    assert!(fixed(&right) < fixed(&wrong));
    assert!(tutorial_mse(&right, &t).is_err());
    assert_eq!(
        tutorial_mse_as_array(&right, &t),
        tutorial_mse_as_array(&wrong, &t),
        "the tuple version cannot tell a right prediction from a wrong one"
    );
    assert!(tutorial_mse_as_array(&t, &t) > 1.0);
    let y = arr2(&[[0.2, 0.7, 0.1], [0.5, 0.1, 0.4]]).into_dyn();
    let tt = arr2(&[[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]).into_dyn();
    let layer_check = expect(&check(&mut MeanSquaredError::new(), &[y, tt], 4), true);
    snap!(
        "bug_mse_tuple",
        "Bug 3: np.sum((pred_y, true_y)**2). The fixed loss on the tutorial's vectors, the tuple version's TypeError and its array reading, which ignores the difference.",
        &format!("{s}\n{layer_check}"),
    );
}

/// Bug 4: `predict` returning `X`. The fixed model's predict returns logits
/// `(N, classes)`; the replica returns its input `(N, features)`.
#[test]
fn bug_predict_returns_logits_not_input() {
    let x = RandomState::new(4).rand(&[3, 6]);
    let mut fixed = Mlp::<f64>::new(6, &[5], 4, Activation::Relu, 9).unwrap();
    let logits = fixed.predict(x.view()).unwrap();
    assert_eq!(logits.shape(), &[3, 4]);
    let mut replica = TutorialPredictNet {
        mlp: Mlp::<f64>::new(6, &[5], 4, Activation::Relu, 9).unwrap(),
    };
    let returned = replica.predict(x.view()).unwrap();
    assert_eq!(returned, x, "the replica hands back its input");
    assert_ne!(returned.shape(), logits.shape());
    snap!(
        "bug_predict_returns_x",
        "Bug 4: predict returning X. Fixed predict gives logits (N, classes); the replica returns the input.",
        &format!(
            "X {}\nfixed predict -> {} (N, classes)\ntutorial predict -> {} (the input itself)\nlogits =\n{}\n",
            shape(&x),
            shape(&logits),
            shape(&returned),
            array(&logits)
        ),
    );
}

/// `self.b = B`: the tutorial's Affine ignores its `b` argument and takes
/// the notebook's global `B`. The fixed Affine uses the argument; the
/// replica gives the same output whatever `b` it is passed. Both are
/// internally consistent, so the gradient check passes both: only this
/// snapshot catches the bug.
#[test]
fn bug_affine_bias_from_global_not_argument() {
    let x = arr2(&[[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]]).into_dyn();
    let w = arr2(&[[0.1, -0.2], [0.3, 0.4], [-0.5, 0.6]]);
    let (b1, b2) = (arr1(&[1.0, 2.0]), arr1(&[-3.0, 5.0]));
    let xw = x.view().into_dimensionality::<Ix2>().unwrap().dot(&w);
    let mut s = String::new();
    for b in [&b1, &b2] {
        let yf = Affine::new(w.clone(), b.clone())
            .unwrap()
            .forward(&[x.view()])
            .unwrap();
        let yr = TutorialAffine::new(w.clone(), b.clone(), AffineBug::GlobalB)
            .forward(&[x.view()])
            .unwrap();
        assert_eq!(yf, (&xw + b).into_dyn());
        assert_eq!(yr, (&xw + &arr1(&TUTORIAL_GLOBAL_B)).into_dyn());
        assert_ne!(yf, yr);
        writeln!(
            s,
            "b = {}:\n fixed Y =\n{}\n tutorial Y (uses global B = {}) =\n{}",
            array(b),
            array(&yf),
            array(&arr1(&TUTORIAL_GLOBAL_B)),
            array(&yr)
        )
        .unwrap();
    }
    let fixed_check = expect(
        &check(
            &mut Affine::new(w.clone(), b1.clone()).unwrap(),
            std::slice::from_ref(&x),
            5,
        ),
        true,
    );
    let replica_check = expect(
        &check(&mut TutorialAffine::new(w, b1, AffineBug::GlobalB), &[x], 5),
        true,
    );
    snap!(
        "bug_affine_global_b",
        "self.b = B: the fixed Affine uses its b argument; the replica uses the global B whatever it is passed. The gradient check cannot see this bug.",
        &format!("{s}\n{fixed_check}\n{replica_check}"),
    );
}

/// `X_train /= .255`: dividing by 0.255 puts pixels in `[0, 1000]`; the
/// fix, the data loader's `Dataset::batch`, divides by 255, giving `[0, 1]`.
/// Checked on all 10,000 embedded MNIST digits.
#[test]
fn bug_pixels_divided_by_0_255() {
    let data = embedded_digits().unwrap();
    let n = data.len();
    let raw = data.images().pixels();
    let raw_max = raw.iter().copied().max().unwrap();
    assert_eq!(raw_max, 255);
    let (mut fmin, mut fmax, mut fsum) = (f64::MAX, f64::MIN, 0.0);
    let all: Vec<usize> = (0..n).collect();
    for chunk in all.chunks(1000) {
        let (x, _) = data.batch::<f64>(chunk).unwrap();
        fmin = x.iter().fold(fmin, |m, &v| m.min(v));
        fmax = x.iter().fold(fmax, |m, &v| m.max(v));
        fsum += x.sum();
    }
    let replica = tutorial_scale(raw);
    let rmin = replica.iter().fold(f64::MAX, |m, &v| m.min(v));
    let rmax = replica.iter().fold(f64::MIN, |m, &v| m.max(v));
    let rsum: f64 = replica.iter().sum();
    assert_eq!((fmin, fmax), (0.0, 1.0));
    assert!((rmax - 1000.0).abs() < 1e-9, "{rmax}");
    let count = raw.len() as f64;
    let (fmean, rmean) = (fsum / count, rsum / count);
    assert!((rmean / fmean - 1000.0).abs() < 1e-6);
    snap!(
        "bug_pixels_divided_by_0_255",
        "X_train /= .255: on the embedded digits the replica's pixels reach 1000; the data loader's scaling (p / 255) stays in [0, 1].",
        &format!(
            "embedded digits: {n} images of {} pixels, raw u8 max {raw_max}\nfixed Dataset::batch (p/255): min {}, max {}, mean {}\ntutorial X_train /= .255: min {}, max {}, mean {}\n",
            data.features(),
            num(fmin),
            num(fmax),
            num_dec(fmean, 6),
            num(rmin),
            num(rmax),
            num_dec(rmean, 3),
        ),
    );
}

/// Sample standard deviation of an array's elements.
fn std_of(a: &Array2<f64>) -> f64 {
    let n = a.len() as f64;
    let mean = a.sum() / n;
    (a.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt()
}

/// He/Xavier std from `input_size` for every layer: for a 784-100-64-32-10
/// model the fix uses each layer's fan-in, `sqrt(k / fan_in)`; the tutorial
/// used `sqrt(k / 784)` everywhere, shrinking the later layers' weights by
/// up to 5x. Per layer: expected and measured std of the fixed `Mlp::new`
/// weights, and of weights drawn the tutorial's way, to 3 decimals.
#[test]
fn bug_init_std_from_input_size_for_every_layer() {
    let sizes = [784usize, 100, 64, 32, 10];
    let mut s = String::new();
    for act in [Activation::Relu, Activation::Sigmoid] {
        let seed = 17;
        let fixed = Mlp::<f64>::new(784, &sizes[1..4], 10, act, seed).unwrap();
        let tutorial_std = tutorial_init_std(act, &sizes);
        // Drawn exactly as Mlp::new draws, with the tutorial's std.
        let mut rng = StdRng::seed_from_u64(seed);
        writeln!(
            s,
            "{} ({}):\nlayer  fan_in  fixed std: expected  measured  tutorial std: expected  measured",
            act.name(),
            if act == Activation::Relu { "He, sqrt(2/fan_in)" } else { "Xavier, sqrt(1/fan_in)" }
        )
        .unwrap();
        for (i, (p, fc)) in sizes.windows(2).zip(fixed.affines()).enumerate() {
            let want = act.init_std(p[0]);
            let got = std_of(fc.w());
            assert!(
                (got / want - 1.0).abs() < 0.15,
                "layer {i}: {got} vs {want}"
            );
            let tw = Array2::from_shape_simple_fn((p[0], p[1]), || {
                rng.sample::<f64, _>(StandardNormal) * tutorial_std[i]
            });
            let tgot = std_of(&tw);
            if i > 0 {
                assert!(
                    tgot < 0.6 * want,
                    "layer {i}: tutorial std {tgot} vs {want}"
                );
            }
            writeln!(
                s,
                "{:>5}  {:>6}  {:>19}  {:>8}  {:>22}  {:>8}",
                i + 1,
                p[0],
                num_dec(want, 3),
                num_dec(got, 3),
                num_dec(tutorial_std[i], 3),
                num_dec(tgot, 3)
            )
            .unwrap();
        }
        s.push('\n');
    }
    snap!(
        "bug_init_std_from_input_size",
        "He/Xavier std from input_size for every layer: per-layer std of the fixed Mlp (own fan-in) vs the tutorial's (784 everywhere), 784-100-64-32-10.",
        &s,
    );
}

/// `self.sb = None`/`self.sb = np.sum(dout, axis=0)`: the tutorial never
/// assigns `db`. The fixed Affine exposes parameters "W" and "b", both with
/// gradients after backward; the replica's "b" has none, the gradient check
/// fails on it and an SGD step refuses to run.
#[test]
fn bug_affine_db_never_named() {
    let x = arr2(&[[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]]).into_dyn();
    let w = arr2(&[[0.1, -0.2], [0.3, 0.4], [-0.5, 0.6]]);
    let b = arr1(&[0.5, -0.5]);
    let dout = arr2(&[[1.0, -2.0], [0.5, 3.0]]).into_dyn();
    let describe = |layer: &mut dyn Layer<f64>| {
        layer.forward(&[x.view()]).unwrap();
        layer.backward(dout.view()).unwrap();
        layer
            .params()
            .iter()
            .map(|p| match &p.grad {
                Some(g) => format!("{} grad = {}", p.name, array(&g.to_owned())),
                None => format!("{} grad = None", p.name),
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let mut fixed = Affine::new(w.clone(), b.clone()).unwrap();
    let fixed_params = describe(&mut fixed);
    assert_eq!(fixed.db().unwrap(), arr1(&[1.5, 1.0]));
    Sgd::new(0.1).unwrap().step(&mut fixed).unwrap();
    let mut replica = TutorialAffine::new(w.clone(), b.clone(), AffineBug::Sb);
    let replica_params = describe(&mut replica);
    assert_eq!(replica.sb.as_ref().unwrap(), arr1(&[1.5, 1.0]));
    let sgd_err = Sgd::new(0.1)
        .unwrap()
        .step(&mut replica)
        .unwrap_err()
        .to_string();
    assert!(sgd_err.contains("\"b\""), "{sgd_err}");

    let fixed_check = expect(
        &check(
            &mut Affine::new(w.clone(), b.clone()).unwrap(),
            std::slice::from_ref(&x),
            6,
        ),
        true,
    );
    let outcome = check(&mut TutorialAffine::new(w, b, AffineBug::Sb), &[x], 6);
    let replica_check = expect(&outcome, false);
    assert!(outcome.tensor("param W").unwrap().passed);
    assert!(!outcome.tensor("param b").unwrap().passed);
    snap!(
        "bug_affine_sb",
        "self.sb: the tutorial never assigns db. The fixed Affine names both gradients; the replica's b has none (sb holds it), so SGD and the gradient check fail.",
        &format!(
            "fixed Affine: {fixed_params}\ntutorial Affine: {replica_params}; sb = {}\nSGD step on the tutorial Affine: {sgd_err}\n\n{fixed_check}\n{replica_check}",
            array(replica.sb.as_ref().unwrap())
        ),
    );
}

/// Softmax storing `self.x` where `self.t` belongs: backward computes
/// `(y − x) / N`, using the logits as the labels. The gradient check fails
/// the replica's dx and passes the fixed layer's `(y − t) / N`.
#[test]
fn bug_softmax_stores_x_instead_of_t() {
    let x = RandomState::new(8).randn(&[3, 4]);
    let t = arr2(&[
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
        [1.0, 0.0, 0.0, 0.0],
    ])
    .into_dyn();
    let d1 = ndarray::arr0(1.0).into_dyn();
    let mut fixed = SoftmaxWithLoss::new();
    fixed.forward(&[x.view(), t.view()]).unwrap();
    let dx_fixed = fixed.backward(d1.view()).unwrap().remove(0);
    let mut replica = TutorialSoftmaxWithLoss::default();
    replica.forward(&[x.view(), t.view()]).unwrap();
    let dx_replica = replica.backward(d1.view()).unwrap().remove(0);
    let y = fixed.y().unwrap().clone();
    let want: ArrayD<f64> = (&y - &t) / 3.0;
    let wrong: ArrayD<f64> = (&y - &x) / 3.0;
    for (a, b) in dx_fixed.iter().zip(&want) {
        assert!((a - b).abs() < 1e-15);
    }
    for (a, b) in dx_replica.iter().zip(&wrong) {
        assert!((a - b).abs() < 1e-15);
    }
    let fixed_check = expect(
        &check(&mut SoftmaxWithLoss::new(), &[x.clone(), t.clone()], 9),
        true,
    );
    let replica_check = expect(
        &check(
            &mut TutorialSoftmaxWithLoss::default(),
            &[x.clone(), t.clone()],
            9,
        ),
        false,
    );
    snap!(
        "bug_softmax_stores_x",
        "Softmax storing self.x instead of self.t: the replica's backward uses the logits as labels, (y - x)/N; the gradient check fails it and passes the fix, (y - t)/N.",
        &format!(
            "x =\n{}\nt =\n{}\nfixed dx = (y - t)/N =\n{}\ntutorial dx = (y - x)/N =\n{}\n\n{fixed_check}\n{replica_check}",
            array(&x),
            array(&t),
            array(&dx_fixed),
            array(&dx_replica)
        ),
    );
}

/// ReLU backward writing into the caller's `dout` (`dout[self.mask] = 0`).
/// The replica zeroes the caller's array; the fixed layer leaves it alone.
/// Where it hurts: in `h = relu(x) + x` the same upstream gradient `g` feeds
/// both branches, and after the replica's backward the identity branch
/// receives the zeroed `g`, so `dx` loses `g` wherever `x <= 0`.
#[test]
fn bug_relu_backward_mutates_callers_dout() {
    let x = arr2(&[[1.0, -0.5], [-2.0, 3.0]]).into_dyn();
    let g0 = arr2(&[[5.0, 6.0], [7.0, 8.0]]).into_dyn();

    let mut fixed = Relu::new();
    fixed.forward(&[x.view()]).unwrap();
    let g = g0.clone();
    let relu_dx = fixed.backward(g.view()).unwrap().remove(0);
    assert_eq!(g, g0, "the fixed ReLU leaves dout alone");
    let dx_fixed = &relu_dx + &g; // relu branch + identity branch

    let mut replica = TutorialRelu::default();
    replica.forward(&x);
    let mut g_shared = g0.clone();
    let relu_dx_r = replica.backward(&mut g_shared);
    assert_eq!(relu_dx_r, relu_dx);
    assert_ne!(g_shared, g0, "the replica zeroed the caller's array");
    let dx_replica = &relu_dx_r + &g_shared;
    assert_ne!(dx_replica, dx_fixed);
    assert_eq!(dx_fixed, arr2(&[[10.0, 6.0], [7.0, 16.0]]).into_dyn());

    let xc = RandomState::new(10).randn(&[3, 3]);
    assert!(xc.iter().all(|v| v.abs() > 1e-3), "no kinks within h");
    let fixed_check = expect(&check(&mut Relu::new(), &[xc], 11), true);
    snap!(
        "bug_relu_mutates_dout",
        "ReLU backward writing into the caller's dout: the replica zeroes it, the fixed layer does not; in h = relu(x) + x the replica's dx loses the identity branch where x <= 0.",
        &format!(
            "x =\n{}\ndout =\n{}\nafter fixed backward, caller's dout =\n{}\nafter tutorial backward, caller's dout =\n{}\nh = relu(x) + x: fixed dx =\n{}\nh = relu(x) + x: tutorial dx =\n{}\n\n{fixed_check}",
            array(&x),
            array(&g0),
            array(&g),
            array(&g_shared),
            array(&dx_fixed),
            array(&dx_replica)
        ),
    );
}
