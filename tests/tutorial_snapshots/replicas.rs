//! Faithful replicas of the tutorial's buggy code, for the snapshot tests
//! only. Each type is named `Tutorial*` and reproduces exactly one
//! documented bug, everything else being the fixed behaviour, so a test can
//! put the replica beside the crate's fixed layer and show the difference.
//!
//! Python exceptions are modelled as errors: reading an attribute that does
//! not exist (`self.dout`, `dx.reshpae`) becomes
//! [`Error::UnknownParam`] naming that attribute, the closest of the crate's
//! errors ("no parameter named \"dout\"").

use crate::check_common::param;
use gradverify::loss::cross_entropy_error;
use gradverify::{Error, Layer, Param, Result, softmax};
use ndarray::{Array1, Array2, ArrayD, ArrayViewD, Axis, Ix2, Zip};

/// Bug 1: the tutorial's Sigmoid.
///
/// ```python
/// def forward(self, x):
///     out = 1 / (1 + np.exp(-x))     # computed, never stored
///     return out
/// def backward(self, dout):
///     dx = dout * (1.0 - self.dout) * self.dout   # self.dout: never set
/// ```
#[derive(Debug, Default)]
pub struct TutorialSigmoid {
    /// The attribute backward reads; no code ever assigns it.
    dout: Option<ArrayD<f64>>,
}

impl Layer<f64> for TutorialSigmoid {
    fn name(&self) -> String {
        "TutorialSigmoid".into()
    }
    fn num_inputs(&self) -> usize {
        1
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
        Ok(inputs[0].mapv(|v| 1.0 / (1.0 + (-v).exp())))
    }
    fn backward(&mut self, dout: ArrayViewD<'_, f64>) -> Result<Vec<ArrayD<f64>>> {
        // AttributeError: 'Sigmoid' object has no attribute 'dout'.
        let cached = self.dout.as_ref().ok_or_else(|| Error::UnknownParam {
            op: "TutorialSigmoid.backward".into(),
            name: "dout".into(),
        })?;
        Ok(vec![&dout * &cached.mapv(|y| (1.0 - y) * y)])
    }
}

/// Bug 1, the silent variant: the same forward that never stores `out`,
/// with backward reading an output cache that was initialised to zeros and
/// never updated (what the tutorial's code does once the attribute error is
/// "fixed" by initialising the attribute in `__init__`). No error, but
/// `dx = dout · (1 − 0) · 0 = 0` for every input.
#[derive(Debug, Default)]
pub struct TutorialSigmoidZeroCache {
    out: Option<ArrayD<f64>>,
}

impl Layer<f64> for TutorialSigmoidZeroCache {
    fn name(&self) -> String {
        "TutorialSigmoidZeroCache".into()
    }
    fn num_inputs(&self) -> usize {
        1
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
        if self.out.is_none() {
            // `self.out = np.zeros_like(x)` in __init__; forward never updates it.
            self.out = Some(ArrayD::zeros(inputs[0].raw_dim()));
        }
        Ok(inputs[0].mapv(|v| 1.0 / (1.0 + (-v).exp())))
    }
    fn backward(&mut self, dout: ArrayViewD<'_, f64>) -> Result<Vec<ArrayD<f64>>> {
        let out = self.out.as_ref().expect("forward ran");
        Ok(vec![&dout * &out.mapv(|y| (1.0 - y) * y)])
    }
}

/// Which of the tutorial Affine's three bugs a [`TutorialAffine`] has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AffineBug {
    /// `self.b = B`: the bias is the notebook's global `B`, the argument is ignored.
    GlobalB,
    /// `dx = dx.reshpae(*self.original_x_shape)`: a misspelled method.
    Reshpae,
    /// `self.sb = np.sum(dout, axis=0)`: `db` is never assigned.
    Sb,
}

/// The notebook's global `B` that `self.b = B` picks up (the tutorial
/// defines `B` for its matrix example, before the `Layer` class).
pub const TUTORIAL_GLOBAL_B: [f64; 2] = [0.25, -0.75];

/// The tutorial's Affine (`Layer`) with one of its bugs; otherwise it is
/// the fixed computation (inputs `(N, ...)` flattened to `(N, in)`).
#[derive(Debug)]
pub struct TutorialAffine {
    bug: AffineBug,
    w: Array2<f64>,
    /// What `self.b` holds: the argument, or the global `B`.
    b: Array1<f64>,
    dw: Option<Array2<f64>>,
    db: Option<Array1<f64>>,
    /// Where the `Sb` bug stores the bias gradient instead of `db`.
    pub sb: Option<Array1<f64>>,
    /// `dx` as computed by the last backward, before its (failing) reshape.
    pub dx_before_reshape: Option<Array2<f64>>,
    x: Option<(Array2<f64>, Vec<usize>)>,
}

impl TutorialAffine {
    /// `Layer(W, b)` with the given bug.
    pub fn new(w: Array2<f64>, b: Array1<f64>, bug: AffineBug) -> Self {
        let b = match bug {
            AffineBug::GlobalB => Array1::from(TUTORIAL_GLOBAL_B.to_vec()),
            _ => b,
        };
        TutorialAffine {
            bug,
            w,
            b,
            dw: None,
            db: None,
            sb: None,
            dx_before_reshape: None,
            x: None,
        }
    }
}

impl Layer<f64> for TutorialAffine {
    fn name(&self) -> String {
        format!("TutorialAffine({:?})", self.bug)
    }
    fn num_inputs(&self) -> usize {
        1
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
        let x = &inputs[0];
        let shape = x.shape().to_vec();
        let n = shape[0];
        let x2 = x
            .to_shape((n, x.len() / n))
            .expect("rank >= 2 input")
            .to_owned();
        let out = x2.dot(&self.w) + &self.b;
        self.x = Some((x2, shape));
        Ok(out.into_dyn())
    }
    fn backward(&mut self, dout: ArrayViewD<'_, f64>) -> Result<Vec<ArrayD<f64>>> {
        let (x, shape) = self.x.as_ref().expect("forward ran");
        let dout = dout.into_dimensionality::<Ix2>().expect("(N, out)");
        let dx = dout.dot(&self.w.t());
        self.dw = Some(x.t().dot(&dout));
        let db = dout.sum_axis(Axis(0));
        match self.bug {
            AffineBug::Sb => self.sb = Some(db),
            _ => self.db = Some(db),
        }
        if self.bug == AffineBug::Reshpae {
            // AttributeError: 'numpy.ndarray' object has no attribute 'reshpae'.
            self.dx_before_reshape = Some(dx);
            return Err(Error::UnknownParam {
                op: "TutorialAffine.backward".into(),
                name: "reshpae".into(),
            });
        }
        Ok(vec![
            dx.into_shape_with_order(shape.clone())
                .expect("same element count"),
        ])
    }
    fn params(&mut self) -> Vec<Param<'_, f64>> {
        vec![
            param("W", &mut self.w, self.dw.as_ref()),
            param("b", &mut self.b, self.db.as_ref()),
        ]
    }
}

/// Bug 3: `np.sum((pred_y, true_y)**2)`, as Python evaluates it: `**` on a
/// tuple raises before numpy is involved.
pub fn tutorial_mse(_pred_y: &[f64], _true_y: &[f64]) -> std::result::Result<f64, String> {
    Err("TypeError: unsupported operand type(s) for ** or pow(): 'tuple' and 'int'".into())
}

/// Bug 3 as readers usually "repair" it, `np.sum(np.array((pred_y,
/// true_y))**2)`: the sum of the squares of **both** vectors, which never
/// looks at their difference.
pub fn tutorial_mse_as_array(pred_y: &[f64], true_y: &[f64]) -> f64 {
    pred_y.iter().chain(true_y).map(|v| v * v).sum()
}

/// Bug 4: the tutorial network's `predict` runs every layer and then
/// returns its argument `X` instead of the last layer's output.
#[derive(Debug)]
pub struct TutorialPredictNet {
    /// The (fixed) model whose layers the replica runs.
    pub mlp: gradverify::Mlp<f64>,
}

impl TutorialPredictNet {
    /// `for layer in self.layers.values(): x = layer.forward(x)`, then `return X`.
    pub fn predict(&mut self, x: ArrayViewD<'_, f64>) -> Result<ArrayD<f64>> {
        let _logits = self.mlp.predict(x.view())?;
        Ok(x.to_owned())
    }
}

/// `X_train /= .255`: divides by 0.255 instead of 255.
pub fn tutorial_scale(pixels: &[u8]) -> Vec<f64> {
    pixels.iter().map(|&p| f64::from(p) / 0.255).collect()
}

/// The tutorial's weight init: `np.sqrt(k / input_size)` (k = 2 for He,
/// 1 for Xavier) for **every** layer, where each layer's own fan-in is meant.
pub fn tutorial_init_std(activation: gradverify::Activation, sizes: &[usize]) -> Vec<f64> {
    let input_size = sizes[0];
    sizes
        .windows(2)
        .map(|_| activation.init_std(input_size))
        .collect()
}

/// The tutorial's SoftmaxWithLoss with `self.x = x` where `self.t = t` was
/// meant: backward computes `(y − self.t) / N` with the logits as labels.
/// Labels are one-hot `(N, C)`, as in the tutorial.
#[derive(Debug, Default)]
pub struct TutorialSoftmaxWithLoss {
    y: Option<ArrayD<f64>>,
    /// What backward reads as the labels: the logits `x`.
    t: Option<ArrayD<f64>>,
}

impl Layer<f64> for TutorialSoftmaxWithLoss {
    fn name(&self) -> String {
        "TutorialSoftmaxWithLoss".into()
    }
    fn num_inputs(&self) -> usize {
        2
    }
    fn num_differentiable(&self) -> usize {
        1
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
        let (x, t) = (&inputs[0], &inputs[1]);
        let y = softmax(x.view())?;
        let loss = cross_entropy_error(y.view(), t.view())?;
        self.t = Some(x.to_owned()); // the bug: stores x where t belongs
        self.y = Some(y);
        Ok(ndarray::arr0(loss).into_dyn())
    }
    fn backward(&mut self, dout: ArrayViewD<'_, f64>) -> Result<Vec<ArrayD<f64>>> {
        let (y, t) = (self.y.as_ref().unwrap(), self.t.as_ref().unwrap());
        let n = y.shape()[0] as f64;
        let d = dout.iter().next().copied().unwrap_or(1.0);
        Ok(vec![(y - t) * (d / n)])
    }
}

/// The tutorial's ReLU, whose backward writes into the caller's `dout`:
///
/// ```python
/// def backward(self, dout):
///     dout[self.mask] = 0
///     dx = dout
///     return dx
/// ```
///
/// The mutation cannot go through [`Layer::backward`] (it takes a read-only
/// view), so the replica has its own method taking `&mut`.
#[derive(Debug, Default)]
pub struct TutorialRelu {
    mask: Option<ArrayD<bool>>,
}

impl TutorialRelu {
    /// `self.mask = (x <= 0); out = x.copy(); out[self.mask] = 0`.
    pub fn forward(&mut self, x: &ArrayD<f64>) -> ArrayD<f64> {
        let mask = x.mapv(|v| v <= 0.0);
        let out = Zip::from(x)
            .and(&mask)
            .map_collect(|&v, &m| if m { 0.0 } else { v });
        self.mask = Some(mask);
        out
    }

    /// Zeroes the caller's `dout` where the mask is set and returns it.
    pub fn backward(&mut self, dout: &mut ArrayD<f64>) -> ArrayD<f64> {
        let mask = self.mask.as_ref().expect("forward ran");
        Zip::from(&mut *dout).and(mask).for_each(|d, &m| {
            if m {
                *d = 0.0;
            }
        });
        dout.clone()
    }
}
