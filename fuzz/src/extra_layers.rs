//! Fuzz case for the layers beyond the tutorial (issue 8): Tanh, LeakyReLU,
//! Softplus, Dropout, BatchNormalization, Convolution, Max/AveragePooling,
//! and the models MlpBn and ConvNet (their losses with bad labels and batch
//! sizes), forward and backward in `f32` and `f64`.
//!
//! The `layers` fuzz target decodes every input twice: as a
//! [`super::layers::Case`] (the tutorial's layers, whose input format is
//! unchanged so old seeds and findings keep their meaning) and as this
//! [`Case`].
//!
//! Properties asserted (a violation panics):
//! - nothing panics inside the library; constructors and forward either
//!   succeed or return a typed error (a forward with other than the layer's
//!   input count is `InputCount`; an empty batch for the batch-statistics
//!   and image layers is `EmptyBatch`/`BadShape`/`ShapeMismatch`);
//! - element-wise layers keep the shape; Tanh stays in `[-1, 1]`;
//! - on finite inputs of magnitude at most [`SMALL`] (and such weights),
//!   every output and every gradient is finite;
//! - backward after a failed (or no) forward is `BackwardBeforeForward`,
//!   a `dout` of the wrong shape is an error, and otherwise there is one
//!   gradient per differentiable input with that input's shape; calling
//!   backward twice gives bit-identical input and parameter gradients.

use super::common::{OpsCase, Target, Tensor, Val, same_bits};
use arbitrary::Arbitrary;
use gradverify::layers::{
    AveragePooling, BatchNormalization, Convolution, Dropout, LeakyRelu, MaxPooling, Softplus, Tanh,
};
use gradverify::models::{ConvNet, ConvNetConfig, MlpBn};
use gradverify::{Error, Float, Layer};
use ndarray::{Array1, Array4, ArrayD, IxDyn};

/// Inputs, weights and `dout` at most this large in magnitude must give
/// finite outputs and gradients.
pub const SMALL: f64 = 1e3;
/// Largest number of operations in one case.
pub const MAX_OPS: usize = 6;

/// Which layer (or model) is under test.
#[derive(Arbitrary, Debug, Clone)]
pub enum Kind {
    /// `Tanh`.
    Tanh,
    /// `LeakyRelu(α)`, `α` from the value (invalid ones must be `Config`).
    LeakyRelu(Val),
    /// `Softplus`.
    Softplus,
    /// `Dropout(p = k / 256)` with a seed; optionally frozen, optionally in
    /// evaluation mode.
    Dropout {
        /// `p = k / 256`.
        p: u8,
        /// Mask seed.
        seed: u8,
        /// Freeze the mask after the first forward.
        frozen: bool,
        /// Evaluation mode.
        eval: bool,
    },
    /// `BatchNormalization` with `features % 5` features and `γ` cycled from
    /// the values; optionally in evaluation mode.
    BatchNorm {
        /// Features, modulo 5 (0 must be a `Config` error).
        features: u8,
        /// γ's values, cycled (β = γ / 2).
        gamma: Vec<Val>,
        /// Evaluation mode.
        eval: bool,
    },
    /// `Convolution` with `W (fn, c, kh, kw)` (each modulo 4) cycled from the
    /// values, `b` of `b_len % 4`, stride and pad modulo 3.
    Conv {
        /// Filters, channels, kernel height and width, each modulo 4.
        dims: [u8; 4],
        /// W's values, cycled.
        w: Vec<Val>,
        /// Length of b, modulo 4.
        b_len: u8,
        /// Stride, modulo 3 (0 must be a `Config` error).
        stride: u8,
        /// Zero padding, modulo 3.
        pad: u8,
    },
    /// `MaxPooling` with window, stride, pad each modulo 4.
    MaxPool([u8; 4]),
    /// `AveragePooling` with window, stride, pad each modulo 4.
    AvgPool([u8; 4]),
    /// `MlpBn` `input % 6 → hidden % 6 → output % 6` with dropout `p / 256`.
    MlpBn {
        /// Input, hidden and output sizes, each modulo 6.
        sizes: [u8; 3],
        /// Dropout `p = k / 256`.
        p: u8,
        /// Evaluation mode.
        eval: bool,
    },
    /// A small `ConvNet` on `(c % 3, hw % 8, hw % 8)` images, kernel
    /// `k % 4`, pool `pool % 3`, 2 filters, 3 hidden units, `classes % 4`.
    ConvNet {
        /// Channels, image side, kernel, pool, classes (each modulo as above).
        dims: [u8; 5],
    },
}

/// One step.
#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    /// `forward` on these inputs (models take `(x, labels)`).
    Forward(Vec<Tensor>),
    /// `backward` with this `dout`.
    Backward(Tensor),
    /// `backward` twice with the same `dout`; both must agree bit for bit.
    BackwardTwice(Tensor),
    /// `backward` with a `dout` of the last output's shape filled with `v`.
    BackwardLike(Val),
}

/// A whole case: float type, layer, and a sequence of operations on it.
pub type Case = OpsCase<Kind, Op>;

impl Target for Kind {
    const NAME: &'static str = "extra_layers";
}

impl Case {
    /// Whether the case is about a model (MlpBn or ConvNet).
    pub fn is_model(&self) -> bool {
        matches!(self.kind, Kind::MlpBn { .. } | Kind::ConvNet { .. })
    }

    /// `false` if the case exceeds the caps; such cases are skipped.
    pub fn within_caps(&self) -> bool {
        let ok = |t: &Tensor| t.within_caps();
        self.ops.len() <= MAX_OPS
            && self.ops.iter().all(|op| match op {
                Op::Forward(ts) => ts.len() <= 3 && ts.iter().all(ok),
                Op::Backward(t) | Op::BackwardTwice(t) => ok(t),
                Op::BackwardLike(_) => true,
            })
            && match &self.kind {
                Kind::BatchNorm { gamma, .. } => gamma.len() <= 64,
                Kind::Conv { w, .. } => w.len() <= 64,
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

fn cycled<F: Float>(vals: &[Val], i: usize) -> F {
    if vals.is_empty() {
        F::one()
    } else {
        vals[i % vals.len()].get()
    }
}

fn small<F: Float>(a: &ArrayD<F>) -> bool {
    a.iter().all(|v| v.is_finite() && v.f64().abs() <= SMALL)
}

/// The layer under test and what the checks need to know about it.
struct Built<F: Float> {
    layer: Box<dyn Layer<F>>,
    small_params: bool,
    elementwise: bool,
    tanh: bool,
    model: bool,
}

fn expect_config<T>(what: &str, r: Result<T, Error>, valid: bool) -> Option<T> {
    match r {
        Ok(v) => {
            assert!(valid, "{what}: accepted invalid arguments");
            Some(v)
        }
        Err(e) => {
            assert!(
                matches!(e, Error::Config(_) | Error::ShapeMismatch { .. }),
                "{what}: unexpected error {e}"
            );
            assert!(!valid, "{what}: rejected valid arguments: {e}");
            None
        }
    }
}

fn build<F: Float>(kind: &Kind) -> Option<Built<F>> {
    let plain = |layer: Box<dyn Layer<F>>, elementwise: bool| Built {
        layer,
        small_params: true,
        elementwise,
        tanh: false,
        model: false,
    };
    Some(match kind {
        Kind::Tanh => Built {
            tanh: true,
            ..plain(Box::new(Tanh::new()), true)
        },
        Kind::Softplus => plain(Box::new(Softplus::new()), true),
        Kind::LeakyRelu(a) => {
            let alpha: F = a.get();
            match LeakyRelu::new(alpha) {
                Ok(l) => Built {
                    small_params: alpha.f64().abs() <= SMALL,
                    ..plain(Box::new(l), true)
                },
                Err(e) => {
                    assert!(matches!(e, Error::Config(_)), "LeakyRelu::new: {e}");
                    return None;
                }
            }
        }
        Kind::Dropout {
            p,
            seed,
            frozen,
            eval,
        } => {
            let mut d = Dropout::new(F::of(f64::from(*p) / 256.0), u64::from(*seed))
                .expect("p in [0, 1) is valid");
            d.set_training(!eval);
            // Frozen before the first forward: that one draws the mask, the
            // later ones (of the same shape) reuse it.
            d.freeze_mask(*frozen);
            plain(Box::new(d), true)
        }
        Kind::BatchNorm {
            features,
            gamma,
            eval,
        } => {
            let d = usize::from(features % 5);
            let g = Array1::from_shape_fn(d, |i| cycled::<F>(gamma, i));
            let b = g.mapv(|v| v / F::of(2.0));
            let small_params = g.iter().all(|v| v.is_finite() && v.f64().abs() <= SMALL);
            let mut bn = match BatchNormalization::with_params(g, b) {
                Ok(bn) => {
                    assert!(d > 0, "BatchNormalization accepted 0 features");
                    bn
                }
                Err(e) => {
                    // 0 features must be refused; non-finite γ may be.
                    assert!(matches!(e, Error::Config(_)), "with_params: {e}");
                    return None;
                }
            };
            bn.set_training(!eval);
            Built {
                small_params,
                ..plain(Box::new(bn), false)
            }
        }
        Kind::Conv {
            dims,
            w,
            b_len,
            stride,
            pad,
        } => {
            let [f, c, kh, kw] = dims.map(|d| usize::from(d % 4));
            let wa = Array4::from_shape_fn((f, c, kh, kw), |(a, b, i, j)| {
                cycled::<F>(w, ((a * c + b) * kh + i) * kw + j)
            });
            let bl = usize::from(b_len % 4);
            let ba = Array1::from_shape_fn(bl, |i| cycled::<F>(w, i + 1));
            let small_params = small(&wa.clone().into_dyn()) && small(&ba.clone().into_dyn());
            let r = Convolution::new(wa, ba, usize::from(stride % 3), usize::from(pad % 3));
            let l = match r {
                Ok(l) => l,
                Err(e) => {
                    assert!(
                        matches!(e, Error::Config(_) | Error::ShapeMismatch { .. }),
                        "Convolution::new: {e}"
                    );
                    return None;
                }
            };
            Built {
                small_params,
                ..plain(Box::new(l), false)
            }
        }
        Kind::MaxPool(w) | Kind::AvgPool(w) => {
            let [ph, pw, s, p] = w.map(|d| usize::from(d % 4));
            let r: Result<Box<dyn Layer<F>>, Error> = if matches!(kind, Kind::MaxPool(_)) {
                MaxPooling::new(ph, pw, s, p).map(|l| Box::new(l) as Box<dyn Layer<F>>)
            } else {
                AveragePooling::new(ph, pw, s, p).map(|l| Box::new(l) as Box<dyn Layer<F>>)
            };
            match r {
                Ok(l) => plain(l, false),
                Err(e) => {
                    assert!(matches!(e, Error::Config(_)), "pooling new: {e}");
                    return None;
                }
            }
        }
        Kind::MlpBn { sizes, p, eval } => {
            let [i, h, o] = sizes.map(|d| usize::from(d % 6));
            let mut m = expect_config(
                "MlpBn::new",
                MlpBn::<F>::new(i, &[h], o, F::of(f64::from(*p) / 256.0), 1),
                i > 0 && h > 0 && o > 0,
            )?;
            m.set_training(!eval);
            Built {
                model: true,
                ..plain(Box::new(m), false)
            }
        }
        Kind::ConvNet { dims } => {
            let [c, hw, k, pool, classes] = *dims;
            let cfg = ConvNetConfig {
                image: (usize::from(c % 3), usize::from(hw % 8), usize::from(hw % 8)),
                filters: 2,
                kernel: usize::from(k % 4),
                stride: 1,
                pad: 0,
                pool: usize::from(pool % 3),
                hidden: 3,
                classes: usize::from(classes % 4),
            };
            match ConvNet::<F>::new(cfg, 1) {
                Ok(m) => Built {
                    model: true,
                    ..plain(Box::new(m), false)
                },
                Err(e) => {
                    assert!(matches!(e, Error::Config(_)), "ConvNet::new: {e}");
                    return None;
                }
            }
        }
    })
}

fn param_grads<F: Float>(layer: &mut dyn Layer<F>) -> Vec<Option<ArrayD<F>>> {
    layer
        .params()
        .into_iter()
        .map(|p| p.grad.map(|g| g.to_owned()))
        .collect()
}

fn run_typed<F: Float>(case: &Case) {
    let Some(mut b) = build::<F>(&case.kind) else {
        return;
    };
    let mut last: Option<(Vec<ArrayD<F>>, ArrayD<F>)> = None;
    for op in &case.ops {
        match op {
            Op::Forward(ts) => {
                let xs: Vec<ArrayD<F>> = ts.iter().map(|t| t.array::<F>()).collect();
                let views: Vec<_> = xs.iter().map(|x| x.view()).collect();
                let r = b.layer.forward(&views);
                last = None;
                match r {
                    Ok(y) => {
                        assert_eq!(xs.len(), b.layer.num_inputs(), "accepted an input count");
                        if b.elementwise {
                            assert_eq!(y.shape(), xs[0].shape(), "element-wise keeps the shape");
                        }
                        if b.tanh {
                            assert!(
                                y.iter().all(|v| v.is_nan() || v.abs() <= F::one()),
                                "Tanh outside [-1, 1]"
                            );
                        }
                        if b.model {
                            assert!(y.ndim() == 0, "a model's output is its 0-d loss");
                        }
                        let inputs_small = if b.model {
                            small(&xs[0])
                        } else {
                            xs.iter().all(small)
                        };
                        if inputs_small && b.small_params {
                            assert!(
                                y.iter().all(|v| v.is_finite()),
                                "non-finite output on small inputs: {y:?}"
                            );
                        }
                        last = Some((xs, y));
                    }
                    Err(e) => {
                        if xs.len() != b.layer.num_inputs() {
                            assert!(
                                matches!(e, Error::InputCount { .. }),
                                "wrong input count gave {e}"
                            );
                        }
                        let _ = e.to_string();
                    }
                }
            }
            Op::Backward(t) => {
                backward(&mut b, &last, &t.array::<F>(), false);
            }
            Op::BackwardTwice(t) => {
                backward(&mut b, &last, &t.array::<F>(), true);
            }
            Op::BackwardLike(v) => {
                let shape = last
                    .as_ref()
                    .map_or_else(Vec::new, |(_, y)| y.shape().to_vec());
                let d = ArrayD::from_elem(IxDyn(&shape), v.get::<F>());
                backward(&mut b, &last, &d, true);
            }
        }
    }
}

fn backward<F: Float>(
    b: &mut Built<F>,
    last: &Option<(Vec<ArrayD<F>>, ArrayD<F>)>,
    dout: &ArrayD<F>,
    twice: bool,
) {
    let r = b.layer.backward(dout.view());
    let Some((xs, y)) = last else {
        let e = r.expect_err("backward without a successful forward");
        assert!(
            matches!(e, Error::BackwardBeforeForward { .. }),
            "backward before forward gave {e}"
        );
        return;
    };
    if dout.shape() != y.shape() {
        let e = r.expect_err("backward accepted a dout of the wrong shape");
        let _ = e.to_string();
        return;
    }
    let grads = r.unwrap_or_else(|e| panic!("backward failed on a valid dout: {e}"));
    let nd = b.layer.num_differentiable();
    assert_eq!(grads.len(), nd, "one gradient per differentiable input");
    for (g, x) in grads.iter().zip(xs) {
        assert_eq!(g.shape(), x.shape(), "a gradient has its input's shape");
    }
    let inputs_small = if b.model {
        small(&xs[0])
    } else {
        xs.iter().all(small)
    };
    if inputs_small && b.small_params && small(dout) {
        for g in &grads {
            assert!(g.iter().all(|v| v.is_finite()), "non-finite gradient {g:?}");
        }
        for p in param_grads(&mut *b.layer).into_iter().flatten() {
            assert!(
                p.iter().all(|v| v.is_finite()),
                "non-finite param grad {p:?}"
            );
        }
    }
    if twice {
        let params1 = param_grads(&mut *b.layer);
        let again = b
            .layer
            .backward(dout.view())
            .unwrap_or_else(|e| panic!("second backward failed: {e}"));
        for (g1, g2) in grads.iter().zip(&again) {
            assert!(same_bits(g1, g2), "backward twice differs");
        }
        let params2 = param_grads(&mut *b.layer);
        for (p1, p2) in params1.iter().zip(&params2) {
            match (p1, p2) {
                (Some(a), Some(c)) => assert!(same_bits(a, c), "param grads differ"),
                (None, None) => {}
                _ => panic!("a parameter gradient appeared or vanished"),
            }
        }
    }
}
