//! Fuzz case `model`: the MLP built from arbitrary size lists, fed arbitrary
//! batches and labels (out of range, wrong length, rows that are not
//! one-hot) through `loss`, `gradient`, `accuracy`, `predict`, `backward` and
//! an SGD step.
//!
//! Properties asserted:
//! - `Mlp::new` fails, with `Config`, exactly when a size is 0;
//! - every entry point succeeds exactly when an independent oracle says the
//!   batch and labels are valid, and otherwise returns the typed error the
//!   oracle expects; nothing panics;
//! - on moderate inputs the loss is finite and non-negative, gradients are
//!   finite with the parameters' names and shapes, and the last bias's
//!   gradient equals the mean of `softmax(predict(x)) - onehot(t)`;
//! - accuracy lies in `[0, 1]` and equals the first-maximum argmax of
//!   `predict(x)` compared with the labels;
//! - `backward` is `BackwardBeforeForward` unless the latest forward-like call
//!   succeeded; an SGD step is `MissingGradient` before any backward and
//!   otherwise moves every parameter by exactly `-lr * grad`.

use super::common::{Layout, Tensor, Val, oracle_labels, promoted};
use arbitrary::Arbitrary;
use gradverify::{Activation, Error, Float, Layer, Mlp, Sgd};
use ndarray::{ArrayD, IxDyn};
use std::fmt;

/// Largest number of hidden layers.
pub const MAX_HIDDEN: usize = 4;
/// Layer sizes are taken modulo this (so 0 is possible).
pub const SIZE_MOD: u8 = 6;
/// Largest number of operations in one case.
pub const MAX_OPS: usize = 6;
/// Inputs at most this large keep every logit finite in `f32`.
pub const MODERATE: f64 = 1e6;

/// The batch `x`.
#[derive(Arbitrary, Debug, Clone)]
pub enum X {
    /// `(n % 6, input_size)`: the right width, any batch size (0 included).
    Batch {
        /// Batch size, modulo 6.
        n: u8,
        /// Values, cycled.
        vals: Vec<Val>,
        /// Memory layout.
        layout: Layout,
    },
    /// A single example `(input_size,)`.
    Single(Vec<Val>),
    /// Any tensor at all.
    Raw(Tensor),
}

/// The labels `t`.
#[derive(Arbitrary, Debug, Clone)]
pub enum Labels {
    /// Class indices `k % 12` (10 and 11 are out of range for most models).
    Indices(Vec<u8>),
    /// One-hot rows over the model's classes, hot at `k % classes`, with one
    /// element optionally overwritten (making the row not one-hot, or not).
    OneHot {
        /// The hot class of each row.
        hot: Vec<u8>,
        /// An element (flat index) and its new value.
        corrupt: Option<(u8, Val)>,
    },
    /// Any tensor at all.
    Raw(Tensor),
}

/// One step.
#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    /// `loss(x, t)`.
    Loss(X, Labels),
    /// `gradient(x, t)`.
    Gradient(X, Labels),
    /// `accuracy(x, t)`.
    Accuracy(X, Labels),
    /// `predict(x)`.
    Predict(X),
    /// `Layer::backward` with this `dout`.
    Backward(Tensor),
    /// One SGD step with this learning rate.
    Sgd(Val),
}

/// A whole case.
#[derive(Arbitrary, Clone)]
pub struct Case {
    /// Run in `f64` (else `f32`).
    pub f64: bool,
    /// Input size, modulo 6.
    pub input: u8,
    /// Hidden sizes, each modulo 6.
    pub hidden: Vec<u8>,
    /// Number of classes, modulo 6.
    pub output: u8,
    /// Sigmoid (else ReLU) activations.
    pub sigmoid: bool,
    /// Weight-initialisation seed.
    pub seed: u64,
    /// The steps.
    pub ops: Vec<Op>,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (input, hidden, output) = self.sizes();
        writeln!(
            f,
            "// model case\nlet mut m = Mlp::<{}>::new({input}, &{hidden:?}, {output}, Activation::{}, {})?;",
            if self.f64 { "f64" } else { "f32" },
            if self.sigmoid { "Sigmoid" } else { "Relu" },
            self.seed
        )?;
        for (i, op) in self.ops.iter().enumerate() {
            writeln!(f, "op {i}: {op:?}")?;
        }
        Ok(())
    }
}

impl Case {
    fn sizes(&self) -> (usize, Vec<usize>, usize) {
        let m = |v: u8| usize::from(v % SIZE_MOD);
        (
            m(self.input),
            self.hidden.iter().map(|&h| m(h)).collect(),
            m(self.output),
        )
    }

    /// `false` if the case exceeds the caps; such cases are skipped.
    pub fn within_caps(&self) -> bool {
        let x_ok = |x: &X| match x {
            X::Batch { vals, .. } | X::Single(vals) => vals.len() <= 64,
            X::Raw(t) => t.within_caps(),
        };
        let t_ok = |t: &Labels| match t {
            Labels::Indices(v) => v.len() <= 8,
            Labels::OneHot { hot, .. } => hot.len() <= 8,
            Labels::Raw(t) => t.within_caps(),
        };
        self.hidden.len() <= MAX_HIDDEN
            && self.ops.len() <= MAX_OPS
            && self.ops.iter().all(|op| match op {
                Op::Loss(x, t) | Op::Gradient(x, t) | Op::Accuracy(x, t) => x_ok(x) && t_ok(t),
                Op::Predict(x) => x_ok(x),
                Op::Backward(t) => t.within_caps(),
                Op::Sgd(_) => true,
            })
    }

    /// Runs the case, panicking on any violated property.
    pub fn run(&self) {
        if !self.within_caps() {
            return;
        }
        if self.f64 {
            run_typed::<f64>(self);
        } else {
            run_typed::<f32>(self);
        }
    }
}

fn make_x<F: Float>(x: &X, input: usize) -> ArrayD<F> {
    let t = match x {
        X::Batch { n, vals, layout } => Tensor {
            dims: vec![n % 6, input as u8],
            vals: vals.clone(),
            layout: *layout,
        },
        X::Single(vals) => Tensor {
            dims: vec![input as u8],
            vals: vals.clone(),
            layout: Layout::Standard,
        },
        X::Raw(t) => t.clone(),
    };
    t.array()
}

fn make_t<F: Float>(t: &Labels, classes: usize) -> ArrayD<F> {
    match t {
        Labels::Indices(v) => {
            ArrayD::from_shape_fn(IxDyn(&[v.len()]), |i| F::of(f64::from(v[i[0]] % 12)))
        }
        Labels::OneHot { hot, corrupt } => {
            let mut a = ArrayD::zeros(IxDyn(&[hot.len(), classes]));
            if classes > 0 {
                for (i, &k) in hot.iter().enumerate() {
                    a[[i, usize::from(k) % classes]] = F::one();
                }
            }
            if let Some((at, v)) = corrupt
                && !a.is_empty()
            {
                let n = a.len();
                a.as_slice_mut().expect("standard layout")[usize::from(*at) % n] = v.get();
            }
            a
        }
        Labels::Raw(t) => t.array(),
    }
}

/// What a batch must produce: `Ok(logits shape)` or the expected error class.
fn x_oracle(shape: &[usize], input: usize, classes: usize) -> Result<Vec<usize>, &'static str> {
    match shape {
        [] => Err("BadShape"),
        &[d] if d == input => Ok(vec![classes]),
        [_] => Err("ShapeMismatch"),
        &[n, ref rest @ ..] => {
            if n == 0 {
                Err("EmptyBatch")
            } else if rest.iter().product::<usize>() == input {
                Ok(vec![n, classes])
            } else {
                Err("ShapeMismatch")
            }
        }
    }
}

/// The labels' class indices for logits of shape `logits`, or `None`.
fn label_oracle<F: Float>(logits: &[usize], t: &ArrayD<F>) -> Option<Vec<usize>> {
    match *logits {
        [c] => oracle_labels(&promoted(t, c), 1, c),
        [n, c] => oracle_labels(t, n, c),
        _ => unreachable!("logits are 1-D or 2-D"),
    }
}

fn x_error_matches(e: &Error, why: &str) -> bool {
    matches!(
        (e, why),
        (Error::BadShape { .. }, "BadShape")
            | (Error::ShapeMismatch { .. }, "ShapeMismatch")
            | (Error::EmptyBatch { .. }, "EmptyBatch")
    )
}

fn label_error(e: &Error) -> bool {
    matches!(
        e,
        Error::BadShape { .. }
            | Error::LabelCount { .. }
            | Error::LabelOutOfRange { .. }
            | Error::InvalidLabels { .. }
    )
}

/// Accepts the errors an invalid call may return.
type ErrorCheck = Box<dyn Fn(&Error) -> bool>;

/// What an (x, t) call must do: `Ok((logits shape, labels))`, or a check
/// that the error is the right one.
fn xt_oracle<F: Float>(
    x: &ArrayD<F>,
    t: &ArrayD<F>,
    input: usize,
    classes: usize,
) -> Result<(Vec<usize>, Vec<usize>), ErrorCheck> {
    let logits = match x_oracle(x.shape(), input, classes) {
        Ok(l) => l,
        Err(why) => return Err(Box::new(move |e| x_error_matches(e, why))),
    };
    match label_oracle(&logits, t) {
        Some(labels) => Ok((logits, labels)),
        None => Err(Box::new(label_error)),
    }
}

fn bounded<F: Float>(a: &ArrayD<F>, bound: f64) -> bool {
    a.iter().all(|v| v.is_finite() && v.f64().abs() <= bound)
}

/// First-maximum argmax of each row of `(n, c)` logits, as `accuracy` uses.
fn argmax_rows<F: Float>(logits: &ArrayD<F>, c: usize) -> Vec<usize> {
    let v: Vec<F> = logits.iter().copied().collect();
    v.chunks(c)
        .map(|row| {
            let mut best = (0, F::neg_infinity());
            for (i, &x) in row.iter().enumerate() {
                if x > best.1 {
                    best = (i, x);
                }
            }
            best.0
        })
        .collect()
}

/// Every parameter finite and at most `PARAM_BOUND` in magnitude (true of a
/// fresh model: the initial weights are a few standard deviations of at most
/// `sqrt(2)`), so moderate batches give finite logits even in `f32`.
fn params_bounded<F: Float>(m: &mut Mlp<F>) -> bool {
    m.params().iter().all(|p| {
        p.value
            .iter()
            .all(|v| v.is_finite() && v.f64().abs() <= PARAM_BOUND)
    })
}

/// See [`params_bounded`].
pub const PARAM_BOUND: f64 = 10.0;

fn param_snapshot<F: Float>(m: &mut Mlp<F>) -> Vec<(String, ArrayD<F>, Option<ArrayD<F>>)> {
    m.params()
        .into_iter()
        .map(|p| (p.name, p.value.to_owned(), p.grad.map(|g| g.to_owned())))
        .collect()
}

fn run_typed<F: Float>(case: &Case) {
    let (input, hidden, classes) = case.sizes();
    let act = if case.sigmoid {
        Activation::Sigmoid
    } else {
        Activation::Relu
    };
    let valid = input > 0 && classes > 0 && hidden.iter().all(|&h| h > 0);
    let mut m = match Mlp::<F>::new(input, &hidden, classes, act, case.seed) {
        Ok(m) => {
            assert!(valid, "Mlp::new accepted a zero size");
            m
        }
        Err(e) => {
            assert!(!valid, "Mlp::new rejected valid sizes: {e}");
            assert!(matches!(e, Error::Config(_)), "Mlp::new: {e}");
            return;
        }
    };
    let mut sizes = vec![input];
    sizes.extend(&hidden);
    sizes.push(classes);
    assert_eq!(m.layer_sizes(), sizes.as_slice());
    let names = m.param_names();
    // Shape of the input of the latest successful forward, if it is still
    // the one backward would use.
    let mut ready: Option<Vec<usize>> = None;
    let mut has_grads = false;
    for op in &case.ops {
        match op {
            Op::Loss(x, t) | Op::Gradient(x, t) | Op::Accuracy(x, t) => {
                let (x, t) = (make_x::<F>(x, input), make_t::<F>(t, classes));
                let oracle = xt_oracle(&x, &t, input, classes);
                // Moderate: the batch and the parameters (an SGD step on
                // huge or non-finite gradients may have spoilt them).
                let moderate = bounded(&x, MODERATE) && params_bounded(&mut m);
                match op {
                    Op::Loss(..) => match (m.loss(x.view(), t.view()), oracle) {
                        (Ok(loss), Ok(_)) => {
                            if moderate {
                                assert!(loss.is_finite() && loss >= F::zero(), "loss {loss:?}");
                            }
                            ready = Some(x.shape().to_vec());
                        }
                        (Ok(loss), Err(_)) => panic!("loss accepted invalid input: {loss:?}"),
                        (Err(e), Ok(_)) => panic!("loss rejected valid input: {e}"),
                        (Err(e), Err(ok)) => {
                            assert!(ok(&e), "loss: unexpected error {e}");
                            ready = None;
                        }
                    },
                    Op::Gradient(..) => match (m.gradient(x.view(), t.view()), oracle) {
                        (Ok(grads), Ok((logits, labels))) => {
                            ready = Some(x.shape().to_vec());
                            has_grads = true;
                            check_gradient(&mut m, &x, &logits, &labels, &grads, &names, moderate);
                        }
                        (Ok(_), Err(_)) => panic!("gradient accepted invalid input"),
                        (Err(e), Ok(_)) => panic!("gradient rejected valid input: {e}"),
                        (Err(e), Err(ok)) => {
                            assert!(ok(&e), "gradient: unexpected error {e}");
                            ready = None;
                        }
                    },
                    _ => {
                        ready = None;
                        match (m.accuracy(x.view(), t.view()), oracle) {
                            (Ok(acc), Ok((logits, labels))) => {
                                assert!((0.0..=1.0).contains(&acc), "accuracy {acc}");
                                let y = m.predict(x.view()).expect("predict after accuracy");
                                assert_eq!(y.shape(), logits.as_slice());
                                let best = argmax_rows(&y, classes);
                                let hits = best.iter().zip(&labels).filter(|(a, b)| a == b).count();
                                let want = hits as f64 / labels.len() as f64;
                                assert!(acc == want, "accuracy {acc}, want {want}");
                            }
                            (Ok(acc), Err(_)) => panic!("accuracy accepted invalid input: {acc}"),
                            (Err(e), Ok(_)) => panic!("accuracy rejected valid input: {e}"),
                            (Err(e), Err(ok)) => assert!(ok(&e), "accuracy: unexpected error {e}"),
                        }
                    }
                }
            }
            Op::Predict(x) => {
                ready = None;
                let x = make_x::<F>(x, input);
                match (m.predict(x.view()), x_oracle(x.shape(), input, classes)) {
                    (Ok(y), Ok(shape)) => {
                        assert_eq!(y.shape(), shape.as_slice(), "predict shape");
                        if bounded(&x, MODERATE) && params_bounded(&mut m) {
                            assert!(bounded(&y, 1e30), "predict: non-finite logits {y:?}");
                        }
                    }
                    (Ok(_), Err(why)) => panic!("predict accepted invalid input ({why})"),
                    (Err(e), Ok(_)) => panic!("predict rejected valid input: {e}"),
                    (Err(e), Err(why)) => assert!(x_error_matches(&e, why), "predict: {e}"),
                }
            }
            Op::Backward(d) => {
                let dout = d.array::<F>();
                let r = m.backward(dout.view());
                match &ready {
                    None => {
                        let e = r.expect_err("Mlp.backward without a ready forward succeeded");
                        assert!(matches!(e, Error::BackwardBeforeForward { .. }), "{e}");
                    }
                    Some(_) if !dout.shape().is_empty() => {
                        let e = r.expect_err("Mlp.backward accepted a non-scalar dout");
                        assert!(matches!(e, Error::DoutShape { .. }), "{e}");
                    }
                    Some(xshape) => {
                        let g = r.unwrap_or_else(|e| panic!("Mlp.backward failed: {e}"));
                        assert_eq!(g.len(), 1, "one gradient, for x");
                        assert_eq!(g[0].shape(), xshape.as_slice(), "dx has x's shape");
                        has_grads = true;
                    }
                }
            }
            Op::Sgd(lr) => {
                let lr: F = lr.get();
                let sgd = Sgd::new(lr);
                if !(lr.is_finite() && lr > F::zero()) {
                    let Err(e) = sgd else {
                        panic!("Sgd accepted a bad learning rate {lr:?}")
                    };
                    assert!(matches!(e, Error::Config(_)), "{e}");
                    continue;
                }
                let mut sgd = sgd.expect("valid learning rate");
                let before = param_snapshot(&mut m);
                match sgd.step(&mut m) {
                    Ok(()) => {
                        assert!(has_grads, "Sgd.step succeeded with no gradients");
                        for ((name, w0, g), (_, w1, _)) in before.iter().zip(param_snapshot(&mut m))
                        {
                            let g = g.as_ref().expect("step needs every gradient");
                            let want = w0 - &g.mapv(|v| lr * v);
                            let same = want
                                .iter()
                                .zip(w1.iter())
                                .all(|(a, b)| a == b || (a.is_nan() && b.is_nan()));
                            assert!(same, "Sgd moved {name} wrongly");
                        }
                    }
                    Err(e) => {
                        assert!(!has_grads, "Sgd.step failed with gradients: {e}");
                        assert!(matches!(e, Error::MissingGradient { .. }), "{e}");
                        for ((_, w0, _), (_, w1, _)) in before.iter().zip(param_snapshot(&mut m)) {
                            assert!(
                                w0.iter().zip(w1.iter()).all(|(a, b)| a.to_bits_eq(b)),
                                "a failed Sgd.step changed parameters"
                            );
                        }
                    }
                }
            }
        }
    }
}

/// Bitwise equality for floats, NaN-aware.
trait BitsEq {
    fn to_bits_eq(&self, other: &Self) -> bool;
}

impl<F: Float> BitsEq for F {
    fn to_bits_eq(&self, other: &Self) -> bool {
        self.f64().to_bits() == other.f64().to_bits() || (self.is_nan() && other.is_nan())
    }
}

fn check_gradient<F: Float>(
    m: &mut Mlp<F>,
    x: &ArrayD<F>,
    logits: &[usize],
    labels: &[usize],
    grads: &[(String, ArrayD<F>)],
    names: &[String],
    moderate: bool,
) {
    let got: Vec<&str> = grads.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(got, names, "gradient names");
    for ((name, g), a) in grads
        .chunks(2)
        .map(|p| (&p[0], &p[1]))
        .zip(m.affines().to_vec())
    {
        assert_eq!(name.1.shape(), a.w().shape(), "{} has W's shape", name.0);
        assert_eq!(g.1.shape(), a.b().shape(), "{} has b's shape", g.0);
    }
    if !moderate {
        return;
    }
    for (name, g) in grads {
        assert!(
            g.iter().all(|v| v.is_finite()),
            "{name} not finite on moderate input"
        );
    }
    // The last bias's gradient is mean over the batch of softmax - onehot.
    // On a clone: `predict` ends the model's readiness for `backward`.
    let y = m.clone().predict(x.view()).expect("predict after gradient");
    let c = *logits.last().expect("logits have classes");
    let n = labels.len();
    let yv: Vec<f64> = y.iter().map(|v| v.f64()).collect();
    let mut want = vec![0.0; c];
    for (i, row) in yv.chunks(c).enumerate() {
        let mx = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = row.iter().map(|v| (v - mx).exp()).collect();
        let s: f64 = e.iter().sum();
        for j in 0..c {
            want[j] += (e[j] / s - if j == labels[i] { 1.0 } else { 0.0 }) / n as f64;
        }
    }
    let db = &grads.last().expect("at least one bias").1;
    let tol = 64.0 * F::EPSILON.f64();
    for (j, (&g, &w)) in db.iter().zip(&want).enumerate() {
        assert!(
            (g.f64() - w).abs() <= tol,
            "last bias gradient[{j}] = {g:?}, want {w}"
        );
    }
}
