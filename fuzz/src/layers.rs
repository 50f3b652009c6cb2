//! Fuzz case `layers`: every layer's forward and backward (and the free loss
//! functions) on arbitrary shapes, values and memory layouts, in `f32` and
//! `f64`.
//!
//! Properties asserted (a violation panics, which libFuzzer reports):
//! - nothing panics inside the library;
//! - forward succeeds exactly when an independent oracle says the inputs are
//!   valid, with the oracle's output shape; otherwise the error is the typed
//!   one the oracle expects (`InputCount` first, then shape/label errors);
//! - Sigmoid maps every non-NaN input into `[0, 1]` and agrees with an `f64`
//!   reference; softmax, softmax-with-loss and cross-entropy (with its
//!   guard) are finite on finite moderate inputs and agree with references;
//! - backward after a failed (or no) forward is `BackwardBeforeForward`,
//!   a `dout` of the wrong shape is `DoutShape`, and otherwise gradients have
//!   the inputs' shapes and the right values; calling backward twice gives
//!   bit-identical input and parameter gradients (overwrite, not accumulate).

use super::common::{
    MODERATE, OpsCase, Target, Tensor, Val, close, oracle_labels, promoted, same_bits,
};
use arbitrary::Arbitrary;
use gradverify::loss::{MeanSquaredError, cross_entropy_error, mean_squared_error, softmax};
use gradverify::{Add, Affine, Error, Float, Layer, Mul, Relu, Sigmoid, SoftmaxWithLoss};
use ndarray::{Array1, Array2, ArrayD, IxDyn, ShapeBuilder};

/// Largest number of operations in one case.
pub const MAX_OPS: usize = 8;
/// Largest number of inputs passed to one forward.
pub const MAX_INPUTS: usize = 3;

/// Which layer is under test.
#[derive(Arbitrary, Debug, Clone)]
pub enum Kind {
    /// `Add`.
    Add,
    /// `Mul`.
    Mul,
    /// `Sigmoid`.
    Sigmoid,
    /// `Relu`.
    Relu,
    /// `Affine` built from `W` of `rows x cols` and `b` of `b_len` values
    /// (extents modulo 6; a mismatch must be a typed error from `new`).
    Affine {
        /// Rows of W (input size).
        rows: u8,
        /// Columns of W (output size).
        cols: u8,
        /// W's values, cycled.
        w: Vec<Val>,
        /// Length of b.
        b_len: u8,
        /// b's values, cycled.
        b: Vec<Val>,
        /// Store W column-major (a user may pass a transposed array).
        w_fortran: bool,
    },
    /// `SoftmaxWithLoss`.
    SoftmaxWithLoss,
    /// `MeanSquaredError`.
    MeanSquaredError,
}

/// One step.
#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    /// `forward` on these inputs.
    Forward(Vec<Tensor>),
    /// `backward` with this `dout`.
    Backward(Tensor),
    /// `backward` twice with the same `dout`; both must agree bit for bit.
    BackwardTwice(Tensor),
    /// The free `softmax` function.
    Softmax(Tensor),
    /// The free `cross_entropy_error(y, t)`.
    CrossEntropy(Tensor, Tensor),
    /// The free `mean_squared_error(y, t)`.
    MeanSquared(Tensor, Tensor),
}

/// A whole case: float type, layer, and a sequence of operations on it.
pub type Case = OpsCase<Kind, Op>;

impl Target for Kind {
    const NAME: &'static str = "layers";
}

impl Case {
    /// `false` if the case exceeds the caps; such cases are skipped.
    pub fn within_caps(&self) -> bool {
        let tensor_ok = |t: &Tensor| t.within_caps();
        self.ops.len() <= MAX_OPS
            && self.ops.iter().all(|op| match op {
                Op::Forward(ts) => ts.len() <= MAX_INPUTS && ts.iter().all(tensor_ok),
                Op::Backward(t) | Op::BackwardTwice(t) | Op::Softmax(t) => tensor_ok(t),
                Op::CrossEntropy(a, b) | Op::MeanSquared(a, b) => tensor_ok(a) && tensor_ok(b),
            })
            && match &self.kind {
                Kind::Affine { w, b, .. } => w.len() <= 64 && b.len() <= 64,
                _ => true,
            }
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

/// The layer under test, with what the checks need to know about it.
#[allow(clippy::large_enum_variant)]
enum Built<F: Float> {
    Add(Add<F>),
    Mul(Mul<F>),
    Sigmoid(Sigmoid<F>),
    Relu(Relu<F>),
    Affine(Affine<F>, Array2<F>, Array1<F>),
    Softmax(SoftmaxWithLoss<F>),
    Mse(MeanSquaredError<F>),
}

impl<F: Float> Built<F> {
    fn layer(&mut self) -> &mut dyn Layer<F> {
        match self {
            Built::Add(l) => l,
            Built::Mul(l) => l,
            Built::Sigmoid(l) => l,
            Built::Relu(l) => l,
            Built::Affine(l, ..) => l,
            Built::Softmax(l) => l,
            Built::Mse(l) => l,
        }
    }
}

fn cycled<F: Float>(vals: &[Val], i: usize) -> F {
    if vals.is_empty() {
        F::zero()
    } else {
        vals[i % vals.len()].get()
    }
}

fn build<F: Float>(kind: &Kind) -> Option<Built<F>> {
    Some(match kind {
        Kind::Add => Built::Add(Add::new()),
        Kind::Mul => Built::Mul(Mul::new()),
        Kind::Sigmoid => Built::Sigmoid(Sigmoid::new()),
        Kind::Relu => Built::Relu(Relu::new()),
        Kind::SoftmaxWithLoss => Built::Softmax(SoftmaxWithLoss::new()),
        Kind::MeanSquaredError => Built::Mse(MeanSquaredError::new()),
        Kind::Affine {
            rows,
            cols,
            w,
            b_len,
            b,
            w_fortran,
        } => {
            let (r, c, bl) = (
                usize::from(rows % 6),
                usize::from(cols % 6),
                usize::from(b_len % 6),
            );
            let wa = Array2::from_shape_fn((r, c), |(i, j)| cycled::<F>(w, i * c + j));
            let wa = if *w_fortran {
                let mut f = Array2::zeros((r, c).f());
                f.assign(&wa);
                f
            } else {
                wa
            };
            let ba = Array1::from_shape_fn(bl, |i| cycled::<F>(b, i));
            match Affine::new(wa.clone(), ba.clone()) {
                Ok(a) => {
                    assert!(
                        bl == c && r > 0 && c > 0,
                        "Affine::new accepted W {r}x{c}, b {bl}"
                    );
                    Built::Affine(a, wa, ba)
                }
                Err(e) => {
                    let ok = match e {
                        Error::ShapeMismatch { .. } => bl != c,
                        Error::Config(_) => bl == c && (r == 0 || c == 0),
                        _ => false,
                    };
                    assert!(ok, "Affine::new(W {r}x{c}, b {bl}): unexpected error {e}");
                    return None;
                }
            }
        }
    })
}

/// What forward must do: `Ok(output shape)` or `Err(description)`.
fn forward_oracle<F: Float>(built: &Built<F>, xs: &[ArrayD<F>]) -> Result<Vec<usize>, String> {
    let want = match built {
        Built::Add(_) | Built::Mul(_) | Built::Softmax(_) | Built::Mse(_) => 2,
        _ => 1,
    };
    if xs.len() != want {
        return Err("InputCount".into());
    }
    match built {
        Built::Add(_) | Built::Mul(_) => {
            if xs[0].shape() == xs[1].shape() {
                Ok(xs[0].shape().to_vec())
            } else {
                Err("ShapeMismatch".into())
            }
        }
        Built::Sigmoid(_) | Built::Relu(_) => Ok(xs[0].shape().to_vec()),
        Built::Affine(_, w, _) => {
            let (din, dout) = w.dim();
            match xs[0].shape() {
                [] => Err("BadShape".into()),
                &[d] if d == din => Ok(vec![dout]),
                [_] => Err("ShapeMismatch".into()),
                &[n, ref rest @ ..] => {
                    if n == 0 {
                        Err("EmptyBatch".into())
                    } else if rest.iter().product::<usize>() == din {
                        Ok(vec![n, dout])
                    } else {
                        Err("ShapeMismatch".into())
                    }
                }
            }
        }
        Built::Softmax(_) => softmax_labels(&xs[0], &xs[1]).map(|_| vec![]),
        Built::Mse(_) => {
            if xs[0].shape() != xs[1].shape() {
                Err("ShapeMismatch".into())
            } else if xs[0].is_empty() {
                Err("EmptyBatch".into())
            } else {
                Ok(vec![])
            }
        }
    }
}

/// The oracle for (scores, labels) pairs: `(n, c, class indices)`.
fn softmax_labels<F: Float>(
    x: &ArrayD<F>,
    t: &ArrayD<F>,
) -> Result<(usize, usize, Vec<usize>), String> {
    let (n, c, t) = match *x.shape() {
        [c] => (1, c, promoted(t, c)),
        [n, c] => (n, c, t.clone()),
        _ => return Err("BadShape".into()),
    };
    if n * c == 0 {
        return Err("EmptyBatch".into());
    }
    oracle_labels(&t, n, c)
        .map(|l| (n, c, l))
        .ok_or_else(|| "invalid labels".into())
}

fn error_matches(e: &Error, expected: &str) -> bool {
    match e {
        Error::InputCount { .. } => expected == "InputCount",
        Error::ShapeMismatch { .. } => expected == "ShapeMismatch",
        Error::EmptyBatch { .. } => expected == "EmptyBatch",
        Error::BadShape { .. } => expected == "BadShape" || expected == "invalid labels",
        Error::LabelCount { .. } | Error::LabelOutOfRange { .. } | Error::InvalidLabels { .. } => {
            expected == "invalid labels"
        }
        _ => false,
    }
}

/// The `f64` log-sum-exp minus the label's score, averaged: the reference
/// loss for scores `x` (as an `(n, c)` row-major list).
fn ref_softmax_loss(x: &[f64], n: usize, c: usize, labels: &[usize]) -> f64 {
    let mut total = 0.0;
    for (i, &k) in labels.iter().enumerate() {
        let row = &x[i * c..(i + 1) * c];
        let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
        total += (m - row[k]) + s.ln();
    }
    total / n as f64
}

fn ref_softmax_row(row: &[f64]) -> Vec<f64> {
    let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = row.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

fn logical<F: Float>(a: &ArrayD<F>) -> Vec<f64> {
    a.iter().map(|v| v.f64()).collect()
}

fn eps<F: Float>() -> f64 {
    F::EPSILON.f64()
}

fn all_bounded<F: Float>(a: &ArrayD<F>, bound: f64) -> bool {
    a.iter().all(|v| v.is_finite() && v.f64().abs() <= bound)
}

/// Checks a successful forward's values against references.
fn check_forward_values<F: Float>(built: &Built<F>, xs: &[ArrayD<F>], out: &ArrayD<F>) {
    match built {
        Built::Add(_) => assert!(same_bits(out, &(&xs[0] + &xs[1])), "Add.forward values"),
        Built::Mul(_) => assert!(same_bits(out, &(&xs[0] * &xs[1])), "Mul.forward values"),
        Built::Relu(_) => {
            for (&x, &y) in xs[0].iter().zip(out.iter()) {
                if x > F::zero() || x.is_nan() {
                    assert!(same_bits(&arr0(x), &arr0(y)), "Relu({x:?}) = {y:?}");
                } else {
                    assert!(y == F::zero(), "Relu({x:?}) = {y:?}, want 0");
                }
            }
        }
        Built::Sigmoid(_) => {
            for (&x, &y) in xs[0].iter().zip(out.iter()) {
                if x.is_nan() {
                    assert!(y.is_nan(), "Sigmoid(NaN) = {y:?}");
                    continue;
                }
                assert!(
                    y >= F::zero() && y <= F::one(),
                    "Sigmoid({x:?}) = {y:?} outside [0, 1]"
                );
                let want = 1.0 / (1.0 + (-x.f64()).exp());
                assert!(
                    (y.f64() - want).abs() <= 4.0 * eps::<F>(),
                    "Sigmoid({x:?}) = {y:?}, want {want}"
                );
            }
        }
        Built::Affine(_, w, b) => {
            let (din, dout) = w.dim();
            let x = logical(&xs[0]);
            let n = x.len() / din;
            let y = logical(out);
            for i in 0..n {
                for j in 0..dout {
                    let terms: Vec<f64> = (0..din)
                        .map(|k| x[i * din + k] * w[[k, j]].f64())
                        .chain(std::iter::once(b[j].f64()))
                        .collect();
                    let scale: f64 = terms.iter().map(|t| t.abs()).sum();
                    if !scale.is_finite() || scale > 1e30 {
                        continue;
                    }
                    let want: f64 = terms.iter().sum();
                    let tol = 4.0 * (din as f64 + 1.0) * eps::<F>() * scale
                        + F::min_positive_value().f64() * 8.0;
                    assert!(
                        (y[i * dout + j] - want).abs() <= tol,
                        "Affine.forward[{i}, {j}] = {}, want {want}",
                        y[i * dout + j]
                    );
                }
            }
        }
        Built::Softmax(layer) => {
            let (n, c, labels) = softmax_labels(&xs[0], &xs[1]).expect("oracle said valid");
            let loss = out[[]];
            let probs = layer.y().expect("forward succeeded, y cached");
            assert_eq!(probs.shape(), xs[0].shape(), "softmax y keeps x's shape");
            assert_eq!(layer.labels(), Some(labels.as_slice()), "cached labels");
            if all_bounded(&xs[0], MODERATE) {
                assert!(
                    loss.is_finite() && loss >= F::zero(),
                    "SoftmaxWithLoss on moderate scores gave {loss:?}"
                );
                let x = logical(&xs[0]);
                let scale = x.iter().fold(1.0f64, |a, v| a.max(v.abs()));
                let want = ref_softmax_loss(&x, n, c, &labels);
                assert!(
                    (loss.f64() - want).abs() <= 16.0 * eps::<F>() * (scale + want.abs()),
                    "SoftmaxWithLoss loss {loss:?}, want {want}"
                );
                check_probs(probs, n, c, &x);
            }
        }
        Built::Mse(_) => {
            let loss = out[[]];
            if all_bounded(&xs[0], 1e15) && all_bounded(&xs[1], 1e15) {
                assert!(loss.is_finite() && loss >= F::zero(), "MSE gave {loss:?}");
            }
        }
    }
}

/// Softmax probabilities of moderate scores: in `[0, 1]`, rows summing to
/// one, agreeing with the `f64` reference.
fn check_probs<F: Float>(probs: &ArrayD<F>, n: usize, c: usize, x: &[f64]) {
    let p = logical(probs);
    for i in 0..n {
        let row = &p[i * c..(i + 1) * c];
        let want = ref_softmax_row(&x[i * c..(i + 1) * c]);
        for (j, (&got, &w)) in row.iter().zip(&want).enumerate() {
            assert!(
                (0.0..=1.0).contains(&got) && (got - w).abs() <= 8.0 * c as f64 * eps::<F>(),
                "softmax[{i}, {j}] = {got}, want {w}"
            );
        }
        let s: f64 = row.iter().sum();
        assert!(
            close(s, 1.0, 8.0 * c as f64 * eps::<F>()),
            "softmax row {i} sums to {s}"
        );
    }
}

fn arr0<F: Float>(v: F) -> ArrayD<F> {
    ArrayD::from_elem(IxDyn(&[]), v)
}

/// Checks a successful backward's gradients.
fn check_backward_values<F: Float>(
    built: &mut Built<F>,
    xs: &[ArrayD<F>],
    out: &ArrayD<F>,
    dout: &ArrayD<F>,
    grads: &[ArrayD<F>],
) {
    let nd = built.layer().num_differentiable();
    assert_eq!(grads.len(), nd, "one gradient per differentiable input");
    for (i, g) in grads.iter().enumerate() {
        assert_eq!(
            g.shape(),
            xs[i].shape(),
            "gradient {i} has its input's shape"
        );
    }
    match built {
        Built::Add(_) => {
            assert!(
                same_bits(&grads[0], dout) && same_bits(&grads[1], dout),
                "Add.backward"
            )
        }
        Built::Mul(_) => {
            assert!(same_bits(&grads[0], &(dout * &xs[1])), "Mul.backward dx");
            assert!(same_bits(&grads[1], &(dout * &xs[0])), "Mul.backward dy");
        }
        Built::Relu(_) => {
            for ((&x, &d), &g) in xs[0].iter().zip(dout.iter()).zip(grads[0].iter()) {
                if x > F::zero() || x.is_nan() {
                    assert!(
                        same_bits(&arr0(d), &arr0(g)),
                        "Relu' at {x:?}: {g:?} vs {d:?}"
                    );
                } else {
                    assert!(g == F::zero(), "Relu' at {x:?} must be 0, got {g:?}");
                }
            }
        }
        Built::Sigmoid(_) => {
            for ((&y, &d), &g) in out.iter().zip(dout.iter()).zip(grads[0].iter()) {
                let want = d * (F::one() - y) * y;
                assert!(
                    close(g.f64(), want.f64(), 4.0 * eps::<F>()),
                    "Sigmoid' with y {y:?}, dout {d:?}: {g:?}, want {want:?}"
                );
            }
        }
        Built::Affine(layer, w, _) => {
            let (din, dcols) = w.dim();
            let x = logical(&xs[0]);
            let d = logical(dout);
            let n = x.len() / din;
            let dx = logical(&grads[0]);
            let params = layer.params();
            assert_eq!(params.len(), 2, "Affine has W and b");
            let dw = params[0].grad.as_ref().expect("dW set by backward");
            let db = params[1].grad.as_ref().expect("db set by backward");
            assert_eq!(dw.shape(), [din, dcols], "dW has W's shape");
            assert_eq!(db.shape(), [dcols], "db has b's shape");
            let check = |what: &str, got: f64, terms: &[f64]| {
                let scale: f64 = terms.iter().map(|t| t.abs()).sum();
                if scale.is_finite() && scale <= 1e30 {
                    let want: f64 = terms.iter().sum();
                    let tol = 4.0 * (terms.len() as f64 + 1.0) * eps::<F>() * scale
                        + F::min_positive_value().f64() * 8.0;
                    assert!(
                        (got - want).abs() <= tol,
                        "Affine {what} = {got}, want {want}"
                    );
                }
            };
            for i in 0..n {
                for k in 0..din {
                    let terms: Vec<f64> = (0..dcols)
                        .map(|j| d[i * dcols + j] * w[[k, j]].f64())
                        .collect();
                    check(&format!("dx[{i}, {k}]"), dx[i * din + k], &terms);
                }
            }
            for k in 0..din {
                for j in 0..dcols {
                    let terms: Vec<f64> =
                        (0..n).map(|i| x[i * din + k] * d[i * dcols + j]).collect();
                    check(&format!("dW[{k}, {j}]"), dw[[k, j]].f64(), &terms);
                }
            }
            for j in 0..dcols {
                let terms: Vec<f64> = (0..n).map(|i| d[i * dcols + j]).collect();
                check(&format!("db[{j}]"), db[[j]].f64(), &terms);
            }
        }
        Built::Softmax(layer) => {
            let (n, c, labels) = softmax_labels(&xs[0], &xs[1]).expect("oracle said valid");
            let probs = logical(layer.y().expect("cached"));
            let g = logical(&grads[0]);
            let scale = dout[[]].f64() / n as f64;
            for i in 0..n {
                for j in 0..c {
                    let hot = if j == labels[i] { 1.0 } else { 0.0 };
                    let want = (probs[i * c + j] - hot) * scale;
                    assert!(
                        close(g[i * c + j], want, 8.0 * eps::<F>()),
                        "SoftmaxWithLoss dx[{i}, {j}] = {}, want {want}",
                        g[i * c + j]
                    );
                }
            }
        }
        Built::Mse(_) => {
            let want = (&xs[0] - &xs[1]).mapv(|v| dout[[]] * v);
            assert!(same_bits(&grads[0], &want), "MSE.backward");
        }
    }
}

fn param_grads<F: Float>(built: &mut Built<F>) -> Vec<Option<ArrayD<F>>> {
    built
        .layer()
        .params()
        .into_iter()
        .map(|p| p.grad.map(|g| g.to_owned()))
        .collect()
}

fn run_free_softmax<F: Float>(x: &ArrayD<F>) {
    let r = softmax(x.view());
    let valid = matches!(x.ndim(), 1 | 2) && !x.is_empty();
    match r {
        Ok(y) => {
            assert!(valid, "softmax accepted shape {:?}", x.shape());
            assert_eq!(y.shape(), x.shape(), "softmax keeps the shape");
            if all_bounded(x, MODERATE) {
                let c = *x.shape().last().expect("rank >= 1");
                check_probs(&y, x.len() / c, c, &logical(x));
            }
        }
        Err(e) => {
            assert!(!valid, "softmax rejected valid shape {:?}: {e}", x.shape());
            assert!(
                matches!(e, Error::BadShape { .. } | Error::EmptyBatch { .. }),
                "softmax: unexpected error {e}"
            );
        }
    }
}

fn run_free_cross_entropy<F: Float>(y: &ArrayD<F>, t: &ArrayD<F>) {
    let oracle = softmax_labels(y, t);
    match (cross_entropy_error(y.view(), t.view()), oracle) {
        (Ok(loss), Ok((n, c, labels))) => {
            let yl = logical(y);
            let in_unit = yl.iter().all(|v| (0.0..=1.0).contains(v));
            if in_unit {
                // The guard: -ln(y + 1e-7) lies in [-ln(1 + 1e-7), -ln(1e-7)]
                // = [-1e-7, 16.12] (slightly negative at y = 1, by the formula).
                assert!(
                    loss.is_finite() && loss.f64() >= -2e-7 && loss.f64() <= 16.2,
                    "cross_entropy_error on probabilities gave {loss:?}"
                );
                let delta = F::of(1e-7).f64();
                let want: f64 = labels
                    .iter()
                    .enumerate()
                    .map(|(i, &k)| -(yl[i * c + k] + delta).ln())
                    .sum::<f64>()
                    / n as f64;
                assert!(
                    (loss.f64() - want).abs() <= 1e-5 * (1.0 + want) + 64.0 * eps::<F>() * 16.2,
                    "cross_entropy_error {loss:?}, want {want}"
                );
            }
        }
        (Ok(loss), Err(why)) => panic!("cross_entropy_error accepted ({why}): {loss:?}"),
        (Err(e), Ok(_)) => panic!("cross_entropy_error rejected valid input: {e}"),
        (Err(e), Err(why)) => {
            assert!(
                error_matches(&e, &why),
                "cross_entropy_error: {e}, expected {why}"
            )
        }
    }
}

fn run_free_mse<F: Float>(y: &ArrayD<F>, t: &ArrayD<F>) {
    match mean_squared_error(y.view(), t.view()) {
        Ok(loss) => {
            assert!(
                y.shape() == t.shape() && !y.is_empty(),
                "mse accepted bad shapes"
            );
            let want: f64 = y
                .iter()
                .zip(t.iter())
                .map(|(a, b)| (a.f64() - b.f64()).powi(2))
                .sum::<f64>()
                * 0.5;
            if want.is_finite() && want < 1e30 {
                assert!(
                    close(loss.f64(), want, 64.0 * eps::<F>()),
                    "mse {loss:?}, want {want}"
                );
            }
        }
        Err(e) => assert!(
            matches!(e, Error::ShapeMismatch { .. } | Error::EmptyBatch { .. })
                && (y.shape() != t.shape() || y.is_empty()),
            "mse: unexpected error {e}"
        ),
    }
}

fn run_typed<F: Float>(case: &Case) {
    let Some(mut built) = build::<F>(&case.kind) else {
        return;
    };
    // The inputs and output of the latest successful forward, if any.
    let mut last: Option<(Vec<ArrayD<F>>, ArrayD<F>)> = None;
    for op in &case.ops {
        match op {
            Op::Forward(ts) => {
                let xs: Vec<ArrayD<F>> = ts.iter().map(|t| t.array()).collect();
                let views: Vec<_> = xs.iter().map(|x| x.view()).collect();
                let oracle = forward_oracle(&built, &xs);
                let got = built.layer().forward(&views);
                match (got, oracle) {
                    (Ok(out), Ok(shape)) => {
                        assert_eq!(out.shape(), shape.as_slice(), "forward output shape");
                        check_forward_values(&built, &xs, &out);
                        last = Some((xs, out));
                    }
                    (Ok(out), Err(why)) => {
                        panic!("forward accepted invalid inputs ({why}), gave {out:?}")
                    }
                    (Err(e), Ok(_)) => panic!("forward rejected valid inputs: {e}"),
                    (Err(e), Err(why)) => {
                        assert!(!e.to_string().is_empty());
                        assert!(error_matches(&e, &why), "forward: {e}, expected {why}");
                        if let Built::Softmax(l) = &built {
                            assert!(l.y().is_none(), "a failed forward left a stale y cached");
                        }
                        last = None;
                    }
                }
            }
            Op::Backward(t) | Op::BackwardTwice(t) => {
                let dout = t.array::<F>();
                let got = built.layer().backward(dout.view());
                let Some((xs, out)) = &last else {
                    let e = got.expect_err("backward without a successful forward succeeded");
                    assert!(
                        matches!(e, Error::BackwardBeforeForward { .. }),
                        "backward without forward: {e}"
                    );
                    continue;
                };
                if dout.shape() != out.shape() {
                    let e = got.expect_err("backward accepted a dout of the wrong shape");
                    assert!(matches!(e, Error::DoutShape { .. }), "wrong dout: {e}");
                    continue;
                }
                let grads = got.unwrap_or_else(|e| panic!("backward failed: {e}"));
                check_backward_values(&mut built, xs, out, &dout, &grads);
                if let Op::BackwardTwice(_) = op {
                    let pg = param_grads(&mut built);
                    let again = built
                        .layer()
                        .backward(dout.view())
                        .unwrap_or_else(|e| panic!("second backward failed: {e}"));
                    assert_eq!(again.len(), grads.len());
                    for (a, b) in again.iter().zip(&grads) {
                        assert!(same_bits(a, b), "backward is not repeatable");
                    }
                    for (a, b) in param_grads(&mut built).iter().zip(&pg) {
                        match (a, b) {
                            (Some(a), Some(b)) => {
                                assert!(same_bits(a, b), "parameter gradients accumulated")
                            }
                            _ => panic!("parameter gradient vanished"),
                        }
                    }
                }
            }
            Op::Softmax(t) => run_free_softmax(&t.array::<F>()),
            Op::CrossEntropy(y, t) => run_free_cross_entropy(&y.array::<F>(), &t.array::<F>()),
            Op::MeanSquared(y, t) => run_free_mse(&y.array::<F>(), &t.array::<F>()),
        }
    }
}
