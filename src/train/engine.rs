//! An allocation-free training engine for an [`Mlp<f32>`]: one SGD step, one
//! gradient or one evaluation of a batch without allocating.
//!
//! [`Mlp`]'s layers allocate their outputs and caches on every call, which
//! keeps each of them small and checkable. The engine runs the same
//! arithmetic on buffers sized once for a largest batch (`capacity` rows):
//! - **forward**: `Z = H·W` by GEMM into the layer's output buffer, then one
//!   pass adds the bias and applies the activation in place (fused);
//! - **loss**: one pass per row writes the softmax, the row's loss and
//!   `dZ = (Y - T) / N`;
//! - **backward**: each hidden `dZ = (dZ_next·Wᵀ) ⊙ act'(H)`, with `act'`
//!   from the layer's *output* (ReLU: `h > 0`; sigmoid: `h(1 - h)`), so no
//!   masks are stored; the first layer's input gradient is never computed
//!   (nothing uses it);
//! - **SGD** ([`Engine::step`]) is fused into the weight-gradient GEMM:
//!   `W ← W - lr·(Hᵀ·dZ)` is written straight into the model's own `W`
//!   after `W`'s last use in the step, so each parameter exists exactly once
//!   (in its [`crate::Affine`] layer) and no `dW` buffer is needed.
//!
//! The arithmetic is that of the layers (the same GEMM as ndarray's `dot`,
//! matrixmultiply, and the same order of the bias, activation, softmax and
//! sums), so [`Engine::gradient`] equals [`Mlp::gradient`] bit for bit (the
//! tests check it). [`Engine::step`] differs from `Mlp::gradient` +
//! [`crate::Sgd`] only in the last rounding of `W - lr·dW` (the GEMM applies
//! `-lr` to its accumulator and adds `W` itself), i.e. by about an ulp per
//! step.
//!
//! # Threads and determinism
//! A batch's rows are split into [`Engine::parts`] contiguous blocks that
//! run forward and backward in parallel (rayon): rows do not interact until
//! the weight gradient. Then the rows of every `W` are split the same way for
//! the fused update. Every number is produced by the same operations in the
//! same order whichever block computes it, so results are bit-identical for
//! any number of parts and threads (tested).
//!
//! # Shapes
//! `x (rows, input_size)` with `1 <= rows <= capacity`, any strides;
//! `labels`: `rows` class indices.

use super::examples::Examples;
use crate::error::{Error, Result, Shape};
use crate::layers::sigmoid::sigmoid;
use crate::model::{Activation, Mlp};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, s};
use rayon::prelude::*;

/// Row blocks a batch is split into by default (this machine type has 2 cores).
pub const DEFAULT_PARTS: usize = 2;

/// Raw pointers to one layer's parameters and the engine's buffers for it,
/// refreshed at the start of every call (the buffers never move).
#[derive(Debug, Clone, Copy)]
struct LayerPtrs {
    /// `W (fan_in, fan_out)`, with its strides.
    w: *mut f32,
    rsw: isize,
    csw: isize,
    /// `b (fan_out,)`, contiguous.
    b: *mut f32,
    /// The output `(capacity, fan_out)`, row-major: after the activation for
    /// a hidden layer, the logits and then the softmax for the last.
    out: *mut f32,
    /// `dZ (capacity, fan_out)`, row-major.
    dz: *mut f32,
    /// `dW (fan_in, fan_out)` and `db (fan_out,)` for [`Engine::gradient`].
    dw: *mut f32,
    db: *mut f32,
    fan_in: usize,
    fan_out: usize,
}

// SAFETY: the pointers are only dereferenced inside `Engine`'s calls, while
// the engine (and the model, mutably for `step`) is borrowed; the parallel
// sections write disjoint row blocks (see `rows_pass` and `weights_pass`).
unsafe impl Send for LayerPtrs {}
unsafe impl Sync for LayerPtrs {}

/// The input batch as a strided matrix.
#[derive(Debug, Clone, Copy)]
struct Input {
    x: *const f32,
    rs: isize,
    cs: isize,
}

// SAFETY: only read, while the caller's view is borrowed.
unsafe impl Send for Input {}
unsafe impl Sync for Input {}

/// What one call computes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// Logits and the count of correct argmaxes only.
    Eval,
    /// Loss and `dW`, `db` into the engine's buffers.
    Gradient,
    /// Loss and the fused update with this learning rate.
    Step(f32),
}

/// Preallocated buffers for running an [`Mlp<f32>`] of one architecture on
/// batches of up to `capacity` rows. See the module docs.
#[derive(Debug)]
pub struct Engine {
    sizes: Vec<usize>,
    activation: Activation,
    capacity: usize,
    parts: usize,
    outs: Vec<Vec<f32>>,
    dzs: Vec<Vec<f32>>,
    row_loss: Vec<f32>,
    dw: Vec<Array2<f32>>,
    db: Vec<Array1<f32>>,
    ptrs: Vec<LayerPtrs>,
}

impl Engine {
    /// Buffers for `model`'s architecture and batches of up to `capacity`
    /// rows, split into [`DEFAULT_PARTS`] row blocks.
    ///
    /// **Errors** with [`Error::Config`] if `capacity` is 0.
    pub fn new(model: &Mlp<f32>, capacity: usize) -> Result<Self> {
        if capacity == 0 {
            return Err(Error::Config(
                "Engine: the batch capacity must be at least 1 row".into(),
            ));
        }
        let sizes = model.layer_sizes().to_vec();
        let widths = &sizes[1..];
        let ptr = LayerPtrs {
            w: std::ptr::null_mut(),
            rsw: 0,
            csw: 0,
            b: std::ptr::null_mut(),
            out: std::ptr::null_mut(),
            dz: std::ptr::null_mut(),
            dw: std::ptr::null_mut(),
            db: std::ptr::null_mut(),
            fan_in: 0,
            fan_out: 0,
        };
        Ok(Engine {
            outs: widths.iter().map(|&w| vec![0.0; capacity * w]).collect(),
            dzs: widths.iter().map(|&w| vec![0.0; capacity * w]).collect(),
            row_loss: vec![0.0; capacity],
            dw: sizes
                .windows(2)
                .map(|p| Array2::zeros((p[0], p[1])))
                .collect(),
            db: widths.iter().map(|&w| Array1::zeros(w)).collect(),
            ptrs: vec![ptr; widths.len()],
            activation: model.activation(),
            capacity,
            parts: DEFAULT_PARTS,
            sizes,
        })
    }

    /// The largest batch (rows) a call accepts.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The number of row blocks a batch is split into (run in parallel).
    pub fn parts(&self) -> usize {
        self.parts
    }

    /// Sets the number of row blocks. Results do not depend on it.
    ///
    /// **Errors** with [`Error::Config`] if `parts` is 0.
    pub fn set_parts(&mut self, parts: usize) -> Result<()> {
        if parts == 0 {
            return Err(Error::Config("Engine: parts must be at least 1".into()));
        }
        self.parts = parts;
        Ok(())
    }

    /// The weight gradients `dW1, dW2, …` of the last [`Engine::gradient`]
    /// (zeros before any).
    pub fn dw(&self) -> &[Array2<f32>] {
        &self.dw
    }

    /// The bias gradients `db1, db2, …` of the last [`Engine::gradient`] or
    /// [`Engine::step`] (zeros before any).
    pub fn db(&self) -> &[Array1<f32>] {
        &self.db
    }

    /// One SGD step: the mean softmax cross-entropy loss of `x` against
    /// `labels` (before the update), then `W -= lr·dW`, `b -= lr·db` for
    /// every layer, in place in `model`.
    ///
    /// **Errors** with [`Error::Config`] if `lr` is not finite and positive
    /// or `model` is not the architecture the engine was built for,
    /// [`Error::ShapeMismatch`] / [`Error::BadShape`] / [`Error::EmptyBatch`]
    /// for a batch of the wrong width, more than `capacity` rows or none,
    /// and [`Error::LabelCount`] / [`Error::LabelOutOfRange`] for bad labels.
    /// Nothing is changed on an error.
    pub fn step(
        &mut self,
        model: &mut Mlp<f32>,
        x: ArrayView2<'_, f32>,
        labels: &[usize],
        lr: f32,
    ) -> Result<f32> {
        const OP: &str = "Engine.step";
        if !(lr.is_finite() && lr > 0.0) {
            return Err(Error::Config(format!(
                "{OP}: learning rate must be finite and positive, got {lr}"
            )));
        }
        self.check(OP, model, x, labels)?;
        for (p, a) in self.ptrs.iter_mut().zip(model.affines_mut()) {
            let (w, b) = a.w_b_mut();
            p.rsw = w.strides()[0];
            p.csw = w.strides()[1];
            p.w = w.as_mut_ptr();
            p.b = b.as_mut_ptr();
        }
        Ok(self.run(x, labels, Mode::Step(lr)).0)
    }

    /// The loss of `x` against `labels` and its gradients, stored in
    /// [`Engine::dw`] and [`Engine::db`]; `model` is not changed.
    ///
    /// **Errors** as [`Engine::step`] (except for `lr`).
    pub fn gradient(
        &mut self,
        model: &Mlp<f32>,
        x: ArrayView2<'_, f32>,
        labels: &[usize],
    ) -> Result<f32> {
        self.check("Engine.gradient", model, x, labels)?;
        self.bind_read_only(model);
        Ok(self.run(x, labels, Mode::Gradient).0)
    }

    /// How many rows of `x` have their highest logit at their label (ties
    /// to the lowest class, NaNs never win, as [`Mlp::accuracy`]).
    ///
    /// **Errors** as [`Engine::gradient`].
    pub fn count_correct(
        &mut self,
        model: &Mlp<f32>,
        x: ArrayView2<'_, f32>,
        labels: &[usize],
    ) -> Result<usize> {
        self.check("Engine.count_correct", model, x, labels)?;
        self.bind_read_only(model);
        Ok(self.run(x, labels, Mode::Eval).1)
    }

    /// The fraction of `data` classified correctly, in chunks of
    /// `buf.nrows()` rows (at most `capacity`) scaled into the reused buffer
    /// `buf (rows, features)`: no float copy of the whole set.
    ///
    /// **Errors** with [`Error::Config`] if `buf` has no rows or more than
    /// `capacity`, and as `fill_batch` and [`Engine::count_correct`].
    pub fn accuracy<D: Examples + ?Sized>(
        &mut self,
        model: &Mlp<f32>,
        data: &D,
        buf: &mut Array2<f32>,
        labels: &mut Vec<usize>,
    ) -> Result<f64> {
        let step = buf.nrows();
        if step == 0 || step > self.capacity {
            return Err(Error::Config(format!(
                "accuracy: the evaluation buffer needs 1..={} rows, got {step}",
                self.capacity
            )));
        }
        let mut correct = 0usize;
        let mut idx = Vec::with_capacity(step);
        for start in (0..data.len()).step_by(step) {
            idx.clear();
            idx.extend(start..(start + step).min(data.len()));
            let k = idx.len();
            data.fill_batch(&idx, buf.slice_mut(s![..k, ..]), labels)?;
            correct += self.count_correct(model, buf.slice(s![..k, ..]), labels)?;
        }
        Ok(correct as f64 / data.len().max(1) as f64)
    }

    /// Checks the model, the batch and the labels before anything is written.
    fn check(
        &self,
        op: &str,
        model: &Mlp<f32>,
        x: ArrayView2<'_, f32>,
        labels: &[usize],
    ) -> Result<()> {
        if model.layer_sizes() != self.sizes.as_slice() || model.activation() != self.activation {
            return Err(Error::Config(format!(
                "{op}: the engine was built for layer sizes {:?} ({}) but the model has {:?} ({})",
                self.sizes,
                self.activation.name(),
                model.layer_sizes(),
                model.activation().name()
            )));
        }
        let (rows, cols) = x.dim();
        if cols != self.sizes[0] {
            return Err(Error::ShapeMismatch {
                op: op.into(),
                lhs: Shape::of(x.shape()),
                rhs: Shape::of(model.affines()[0].w().shape()),
                detail: format!("{cols} (dim 1) != {} (dim 0)", self.sizes[0]),
            });
        }
        if rows == 0 {
            return Err(Error::EmptyBatch {
                op: op.into(),
                shape: Shape::of(x.shape()),
            });
        }
        if rows > self.capacity {
            return Err(Error::BadShape {
                op: op.into(),
                input: 0,
                got: Shape::of(x.shape()),
                expected: format!("at most {} row(s) (the engine's capacity)", self.capacity),
            });
        }
        if labels.len() != rows {
            return Err(Error::LabelCount {
                op: op.into(),
                expected: rows,
                got: labels.len(),
            });
        }
        let classes = *self.sizes.last().expect("at least two sizes");
        if let Some(index) = labels.iter().position(|&l| l >= classes) {
            return Err(Error::LabelOutOfRange {
                op: op.into(),
                index,
                label: labels[index] as f64,
                classes,
            });
        }
        Ok(())
    }

    /// Points `ptrs` at `model`'s parameters for a call that only reads them.
    fn bind_read_only(&mut self, model: &Mlp<f32>) {
        for (p, a) in self.ptrs.iter_mut().zip(model.affines()) {
            p.rsw = a.w().strides()[0];
            p.csw = a.w().strides()[1];
            // Never written through in `Mode::Eval` and `Mode::Gradient`.
            p.w = a.w().as_ptr().cast_mut();
            p.b = a.b().as_ptr().cast_mut();
        }
    }

    /// Runs a checked, bound call: returns the mean loss (0 in `Eval`) and
    /// the number of correct argmaxes (0 unless `Eval`).
    fn run(&mut self, x: ArrayView2<'_, f32>, labels: &[usize], mode: Mode) -> (f32, usize) {
        let rows = x.nrows();
        for (i, p) in self.ptrs.iter_mut().enumerate() {
            p.fan_in = self.sizes[i];
            p.fan_out = self.sizes[i + 1];
            p.out = self.outs[i].as_mut_ptr();
            p.dz = self.dzs[i].as_mut_ptr();
            p.dw = self.dw[i].as_mut_ptr();
            p.db = self.db[i].as_mut_ptr();
        }
        let input = Input {
            x: x.as_ptr(),
            rs: x.strides()[0],
            cs: x.strides()[1],
        };
        let parts = self.parts.min(rows);
        let (layers, act) = (self.ptrs.as_slice(), self.activation);
        let row_loss = SendPtr(self.row_loss.as_mut_ptr());
        let correct = for_parts(parts, |p| {
            let (r0, r1) = (rows * p / parts, rows * (p + 1) / parts);
            // SAFETY: `check` validated the shapes; block `p` reads rows
            // r0..r1 of `x` and reads and writes only rows r0..r1 of the
            // engine's buffers; parameters are only read here.
            unsafe { rows_pass(layers, input, act, labels, row_loss, r0, r1, rows, mode) }
        });
        if mode == Mode::Eval {
            return (0.0, correct);
        }
        let parts = self.parts.min(self.sizes[0]);
        for_parts(parts, |p| {
            // SAFETY: block `p` writes only its own rows of every `W` (or
            // `dW`) and the biases of layers `i` with `i % parts == p`; all
            // reads of `W` (in `rows_pass`) have finished.
            unsafe { weights_pass(layers, input, rows, mode, p, parts) };
            0
        });
        let total: f32 = self.row_loss[..rows].iter().copied().sum();
        (total / rows as f32, 0)
    }
}

/// A pointer handed to the row blocks, each writing its own elements.
#[derive(Debug, Clone, Copy)]
struct SendPtr(*mut f32);

// SAFETY: each block writes a disjoint range (see `rows_pass`).
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

/// Runs `f(0..parts)` on the rayon pool and sums the results.
fn for_parts(parts: usize, f: impl Fn(usize) -> usize + Sync + Send) -> usize {
    if parts == 1 {
        f(0)
    } else {
        (0..parts).into_par_iter().map(f).sum()
    }
}

/// `C = α·A·B + β·C` for strided `A (m, k)`, `B (k, n)`, `C (m, n)`.
///
/// # Safety
/// The pointers and strides must address valid `m×k`, `k×n` and `m×n`
/// matrices, and `C` must not be written by anyone else meanwhile.
#[allow(clippy::too_many_arguments)]
unsafe fn sgemm(
    (m, k, n): (usize, usize, usize),
    alpha: f32,
    (a, rsa, csa): (*const f32, isize, isize),
    (b, rsb, csb): (*const f32, isize, isize),
    beta: f32,
    (c, rsc, csc): (*mut f32, isize, isize),
) {
    // SAFETY: forwarded from the caller.
    unsafe { matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
}

/// Forward (and unless `Eval`, the loss and backward down to `dZ1`) for
/// rows `r0..r1` of a batch of `rows`. Returns the number of correct
/// argmaxes in `Eval`, else 0.
///
/// # Safety
/// `layers` and `input` must describe valid, checked buffers for `rows`
/// rows; no one else may access rows `r0..r1` of the buffers meanwhile, nor
/// write any parameter.
#[allow(clippy::too_many_arguments)]
unsafe fn rows_pass(
    layers: &[LayerPtrs],
    input: Input,
    act: Activation,
    labels: &[usize],
    row_loss: SendPtr,
    r0: usize,
    r1: usize,
    rows: usize,
    mode: Mode,
) -> usize {
    let k = r1 - r0;
    let last = layers.len() - 1;
    for (i, l) in layers.iter().enumerate() {
        let a = if i == 0 {
            // SAFETY: row r0 of the checked input.
            (
                unsafe { input.x.offset(r0 as isize * input.rs) },
                input.rs,
                input.cs,
            )
        } else {
            let prev = &layers[i - 1];
            // SAFETY: row r0 of the previous layer's output buffer.
            let p = unsafe { prev.out.add(r0 * prev.fan_out) };
            (p.cast_const(), prev.fan_out as isize, 1)
        };
        // SAFETY: rows r0..r1 of this layer's output, (k, fan_out).
        let out =
            unsafe { std::slice::from_raw_parts_mut(l.out.add(r0 * l.fan_out), k * l.fan_out) };
        // SAFETY: shapes checked; `out` is this block's own.
        unsafe {
            sgemm(
                (k, l.fan_in, l.fan_out),
                1.0,
                a,
                (l.w.cast_const(), l.rsw, l.csw),
                0.0,
                (out.as_mut_ptr(), l.fan_out as isize, 1),
            )
        };
        // SAFETY: `b` has fan_out elements and is only read here.
        let b = unsafe { std::slice::from_raw_parts(l.b, l.fan_out) };
        let hidden = i < last;
        for row in out.chunks_exact_mut(l.fan_out) {
            for (v, &bj) in row.iter_mut().zip(b) {
                let z = *v + bj;
                *v = match (hidden, act) {
                    (false, _) => z,
                    (true, Activation::Relu) => {
                        if z <= 0.0 {
                            0.0
                        } else {
                            z
                        }
                    }
                    (true, Activation::Sigmoid) => sigmoid(z),
                };
            }
        }
    }
    let l = &layers[last];
    let c = l.fan_out;
    // SAFETY: rows r0..r1 of the last layer's output and dZ.
    let logits = unsafe { std::slice::from_raw_parts_mut(l.out.add(r0 * c), k * c) };
    let labels = &labels[r0..r1];
    if mode == Mode::Eval {
        return logits
            .chunks_exact(c)
            .zip(labels)
            .filter(|(row, t)| argmax(row) == **t)
            .count();
    }
    // SAFETY: this block's rows of dZ_L and of the per-row losses.
    let dz = unsafe { std::slice::from_raw_parts_mut(l.dz.add(r0 * c), k * c) };
    let losses = unsafe { std::slice::from_raw_parts_mut(row_loss.0.add(r0), k) };
    let scale = 1.0 / rows as f32;
    for (((row, d), &t), loss) in logits
        .chunks_exact_mut(c)
        .zip(dz.chunks_exact_mut(c))
        .zip(labels)
        .zip(losses.iter_mut())
    {
        // As `loss::softmax_rows` and `SoftmaxWithLoss`: lse = m + ln Σ exp(x - m).
        let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let xt = row[t];
        for v in row.iter_mut() {
            *v = (*v - m).exp();
        }
        let sum = ArrayView1::from(&*row).sum();
        for v in row.iter_mut() {
            *v /= sum;
        }
        *loss = m + sum.ln() - xt;
        for (dj, &y) in d.iter_mut().zip(row.iter()) {
            *dj = y;
        }
        d[t] -= 1.0;
        for dj in d.iter_mut() {
            *dj *= scale;
        }
    }
    for i in (1..=last).rev() {
        let (l, prev) = (&layers[i], &layers[i - 1]);
        // SAFETY: this block's rows of dZ_{i-1}, (k, prev.fan_out).
        let dh = unsafe {
            std::slice::from_raw_parts_mut(prev.dz.add(r0 * prev.fan_out), k * prev.fan_out)
        };
        // dH = dZ · Wᵀ: Wᵀ has W's strides swapped.
        // SAFETY: shapes checked; `dh` is this block's own.
        unsafe {
            sgemm(
                (k, l.fan_out, prev.fan_out),
                1.0,
                (l.dz.add(r0 * l.fan_out).cast_const(), l.fan_out as isize, 1),
                (l.w.cast_const(), l.csw, l.rsw),
                0.0,
                (dh.as_mut_ptr(), prev.fan_out as isize, 1),
            )
        };
        // SAFETY: this block's rows of the previous output, read only.
        let h = unsafe {
            std::slice::from_raw_parts(prev.out.add(r0 * prev.fan_out), k * prev.fan_out)
        };
        match act {
            Activation::Relu => {
                for (d, &y) in dh.iter_mut().zip(h) {
                    // The Relu layer's mask is `z <= 0`, i.e. `y <= 0`.
                    if y <= 0.0 {
                        *d = 0.0;
                    }
                }
            }
            Activation::Sigmoid => {
                for (d, &y) in dh.iter_mut().zip(h) {
                    *d = *d * (1.0 - y) * y;
                }
            }
        }
    }
    0
}

/// Block `p` of `parts` of the weight pass: `dW = Hᵀ·dZ` over all `rows`
/// for its share of every `W`'s rows, written into `W` (`Step`: `W -= lr·dW`)
/// or `dW` (`Gradient`), and `db` for the layers `i % parts == p`.
///
/// # Safety
/// As [`rows_pass`], after every row block has finished; no one else may
/// access block `p`'s rows of the `W`s (or `dW`s) nor its biases meanwhile.
unsafe fn weights_pass(
    layers: &[LayerPtrs],
    input: Input,
    rows: usize,
    mode: Mode,
    p: usize,
    parts: usize,
) {
    for (i, l) in layers.iter().enumerate() {
        let (j0, j1) = (l.fan_in * p / parts, l.fan_in * (p + 1) / parts);
        if j0 < j1 {
            // Aᵀ rows j0..j1: columns j0..j1 of the layer's input.
            let a = if i == 0 {
                // SAFETY: column j0 of the checked input.
                (
                    unsafe { input.x.offset(j0 as isize * input.cs) },
                    input.cs,
                    input.rs,
                )
            } else {
                let prev = &layers[i - 1];
                // SAFETY: column j0 of the previous output.
                (
                    unsafe { prev.out.add(j0) }.cast_const(),
                    1,
                    prev.fan_out as isize,
                )
            };
            let b = (l.dz.cast_const(), l.fan_out as isize, 1);
            let shape = (j1 - j0, rows, l.fan_out);
            match mode {
                // SAFETY: rows j0..j1 of W are this block's.
                Mode::Step(lr) => unsafe {
                    sgemm(
                        shape,
                        -lr,
                        a,
                        b,
                        1.0,
                        (l.w.offset(j0 as isize * l.rsw), l.rsw, l.csw),
                    )
                },
                // SAFETY: rows j0..j1 of dW are this block's.
                Mode::Gradient => unsafe {
                    sgemm(
                        shape,
                        1.0,
                        a,
                        b,
                        0.0,
                        (l.dw.add(j0 * l.fan_out), l.fan_out as isize, 1),
                    )
                },
                Mode::Eval => {}
            }
        }
        if i % parts == p {
            // SAFETY: layer i's db and b are this block's; dZ is read only.
            let db = unsafe { std::slice::from_raw_parts_mut(l.db, l.fan_out) };
            let dz = unsafe { std::slice::from_raw_parts(l.dz, rows * l.fan_out) };
            db.fill(0.0);
            for row in dz.chunks_exact(l.fan_out) {
                for (s, &d) in db.iter_mut().zip(row) {
                    *s += d;
                }
            }
            if let Mode::Step(lr) = mode {
                // SAFETY: as above.
                let b = unsafe { std::slice::from_raw_parts_mut(l.b, l.fan_out) };
                for (v, &d) in b.iter_mut().zip(db.iter()) {
                    *v -= lr * d;
                }
            }
        }
    }
}

/// Index of the largest value; ties and NaNs go to the lowest index.
fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv { (i, v) } else { (bi, bv) }
        })
        .0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::Sgd;
    use ndarray::{Array, Ix2};

    /// A deterministic batch in [0, 1] (like scaled pixels) and its labels.
    fn batch(n: usize, d: usize, classes: usize, seed: usize) -> (Array2<f32>, Vec<usize>) {
        let x = Array::from_shape_fn((n, d), |(i, j)| {
            ((i * 31 + j * 17 + seed * 7) % 23) as f32 / 22.0
        });
        let t = (0..n).map(|i| (i * 3 + seed) % classes).collect();
        (x, t)
    }

    fn labels_f32(t: &[usize]) -> ndarray::ArrayD<f32> {
        Array::from_iter(t.iter().map(|&l| l as f32)).into_dyn()
    }

    /// `|a - b| <= tol * max(1, |b|)` element-wise, with equal shapes.
    fn assert_near(a: &[f32], b: &[f32], tol: f32, what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= tol * y.abs().max(1.0),
                "{what}[{i}]: {x} vs {y}"
            );
        }
    }

    /// The engine repeats the layers' arithmetic exactly (same GEMM).
    const SAME: f32 = 0.0;

    fn flat(a: &Array2<f32>) -> Vec<f32> {
        a.iter().copied().collect()
    }

    #[test]
    fn gradient_agrees_with_mlp_gradient_for_both_activations() {
        for act in [Activation::Relu, Activation::Sigmoid] {
            let mut mlp = Mlp::<f32>::new(40, &[24, 16, 8], 6, act, 3).unwrap();
            let (x, t) = batch(13, 40, 6, 1);
            let want = mlp
                .gradient(x.view().into_dyn(), labels_f32(&t).view())
                .unwrap();
            let want_loss = mlp
                .loss(x.view().into_dyn(), labels_f32(&t).view())
                .unwrap();
            let mut e = Engine::new(&mlp, 16).unwrap();
            let loss = e.gradient(&mlp, x.view(), &t).unwrap();
            assert!((loss - want_loss).abs() <= SAME * want_loss, "{act:?} loss");
            assert_eq!(e.dw().len(), 4);
            for (i, (dw, db)) in e.dw().iter().zip(e.db()).enumerate() {
                let (gw, gb) = (&want[2 * i].1, &want[2 * i + 1].1);
                assert_eq!(dw.shape(), gw.shape());
                assert_eq!(db.shape(), gb.shape());
                let gw: Vec<f32> = gw.iter().copied().collect();
                let gb: Vec<f32> = gb.iter().copied().collect();
                assert_near(&flat(dw), &gw, SAME, &format!("{act:?} dW{}", i + 1));
                assert_near(
                    db.as_slice().unwrap(),
                    &gb,
                    SAME,
                    &format!("{act:?} db{}", i + 1),
                );
                assert!(
                    dw.iter().any(|&v| v.abs() > 1e-4),
                    "{act:?} dW{} is not trivial",
                    i + 1
                );
            }
        }
    }

    #[test]
    fn gradient_agrees_at_the_reference_shapes() {
        let mut mlp = Mlp::<f32>::new(784, &[100, 64, 32], 10, Activation::Relu, 42).unwrap();
        let (x, t) = batch(100, 784, 10, 5);
        let want = mlp
            .gradient(x.view().into_dyn(), labels_f32(&t).view())
            .unwrap();
        let mut e = Engine::new(&mlp, 100).unwrap();
        e.gradient(&mlp, x.view(), &t).unwrap();
        for (i, dw) in e.dw().iter().enumerate() {
            let gw: Vec<f32> = want[2 * i].1.iter().copied().collect();
            assert_near(&flat(dw), &gw, SAME, &format!("dW{}", i + 1));
        }
    }

    #[test]
    fn step_is_gradient_then_sgd_in_the_models_own_parameters() {
        let mut a = Mlp::<f32>::new(30, &[20, 10], 4, Activation::Relu, 9).unwrap();
        let mut b = a.clone();
        let mut e = Engine::new(&a, 32).unwrap();
        let mut sgd = Sgd::new(0.1f32).unwrap();
        for s in 0..5 {
            let (x, t) = batch(32, 30, 4, s);
            let loss_b = b.loss(x.view().into_dyn(), labels_f32(&t).view()).unwrap();
            b.gradient(x.view().into_dyn(), labels_f32(&t).view())
                .unwrap();
            sgd.step(&mut b).unwrap();
            let loss_a = e.step(&mut a, x.view(), &t, 0.1).unwrap();
            assert!((loss_a - loss_b).abs() <= 1e-5, "step {s}");
        }
        for (fa, fb) in a.affines().iter().zip(b.affines()) {
            assert_near(&flat(fa.w()), &flat(fb.w()), 1e-5, "W after 5 steps");
            assert_near(
                fa.b().as_slice().unwrap(),
                fb.b().as_slice().unwrap(),
                1e-5,
                "b",
            );
        }
        // The update really happened (the weights moved from their init).
        let fresh = Mlp::<f32>::new(30, &[20, 10], 4, Activation::Relu, 9).unwrap();
        assert!(a.affines()[0].w() != fresh.affines()[0].w());
        assert!(a.affines()[2].b().iter().any(|&v| v != 0.0));
    }

    #[test]
    fn results_are_bit_identical_for_any_number_of_parts() {
        let base = Mlp::<f32>::new(50, &[30, 12], 5, Activation::Sigmoid, 4).unwrap();
        let mut runs = Vec::new();
        for parts in [1, 2, 3, 7] {
            let mut m = base.clone();
            let mut e = Engine::new(&m, 40).unwrap();
            e.set_parts(parts).unwrap();
            assert_eq!(e.parts(), parts);
            let mut losses = Vec::new();
            for s in 0..4 {
                let (x, t) = batch(37, 50, 5, s);
                losses.push(e.step(&mut m, x.view(), &t, 0.5).unwrap().to_bits());
            }
            let (x, t) = batch(40, 50, 5, 9);
            let correct = e.count_correct(&m, x.view(), &t).unwrap();
            let params: Vec<u32> = m
                .affines()
                .iter()
                .flat_map(|a| {
                    a.w()
                        .iter()
                        .chain(a.b().iter())
                        .map(|v| v.to_bits())
                        .collect::<Vec<_>>()
                })
                .collect();
            runs.push((losses, correct, params));
        }
        for r in &runs[1..] {
            assert!(r == &runs[0], "results differ between part counts");
        }
    }

    #[test]
    fn count_correct_and_accuracy_agree_with_mlp_accuracy() {
        use crate::data::{Dataset, Images};
        let mut mlp = Mlp::<f32>::new(16, &[12], 3, Activation::Relu, 2).unwrap();
        let pixels: Vec<u8> = (0..50 * 16).map(|i| ((i * 37) % 256) as u8).collect();
        let labels: Vec<u8> = (0..50).map(|i| (i % 3) as u8).collect();
        let d = Dataset::new("t", Images::new(50, 4, 4, pixels).unwrap(), labels).unwrap();
        let (x, t) = d.batch::<f32>(&(0..50).collect::<Vec<_>>()).unwrap();
        let want = mlp
            .accuracy(x.view().into_dyn(), labels_f32(&t).view())
            .unwrap();
        let mut e = Engine::new(&mlp, 64).unwrap();
        let n = e.count_correct(&mlp, x.view(), &t).unwrap();
        assert_eq!(n as f64 / 50.0, want);
        // Chunks of 16, 16, 16, 2 through a 16-row buffer give the same.
        let mut buf = Array2::zeros((16, 16));
        let mut lab = Vec::new();
        assert_eq!(e.accuracy(&mlp, &d, &mut buf, &mut lab).unwrap(), want);
        // A transposed (non-contiguous) view of the same batch.
        let xt = x.t().to_owned();
        assert_eq!(e.count_correct(&mlp, xt.t(), &t).unwrap(), n);
        let mut too_big = Array2::zeros((65, 16));
        assert!(matches!(
            e.accuracy(&mlp, &d, &mut too_big, &mut lab),
            Err(Error::Config(_))
        ));
        let logits = mlp.predict(x.view().into_dyn()).unwrap();
        let logits = logits.into_dimensionality::<Ix2>().unwrap();
        // Some but not all right: the count is informative.
        assert!(n > 0 && n < 50, "{n} {logits:?}");
    }

    #[test]
    fn argmax_takes_the_first_maximum_and_skips_nan() {
        assert_eq!(argmax(&[0.1, 0.7, 0.7, -1.0]), 1);
        assert_eq!(argmax(&[f32::NAN, -3.0]), 1);
        assert_eq!(argmax(&[-1.0, -0.5]), 1);
    }

    #[test]
    fn bad_calls_are_typed_errors_and_change_nothing() {
        let mut m = Mlp::<f32>::new(6, &[5], 3, Activation::Relu, 1).unwrap();
        let before = m.clone();
        assert!(matches!(Engine::new(&m, 0), Err(Error::Config(_))));
        let mut e = Engine::new(&m, 4).unwrap();
        assert!(matches!(e.set_parts(0), Err(Error::Config(_))));
        let (x, t) = batch(4, 6, 3, 0);
        let err = e.step(&mut m, x.view(), &t, f32::NAN).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err}");
        let wide = Array2::<f32>::zeros((4, 7));
        let err = e.step(&mut m, wide.view(), &t, 0.1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Engine.step: shapes (4, 7) and (6, 5) not aligned: 7 (dim 1) != 6 (dim 0)"
        );
        let big = Array2::<f32>::zeros((5, 6));
        let err = e.step(&mut m, big.view(), &[0; 5], 0.1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Engine.step: input 0 has shape (5, 6), expected at most 4 row(s) (the engine's capacity)"
        );
        let err = e.step(&mut m, x.slice(s![..0, ..]), &[], 0.1).unwrap_err();
        assert!(matches!(err, Error::EmptyBatch { .. }), "{err}");
        let err = e.step(&mut m, x.view(), &t[..3], 0.1).unwrap_err();
        assert!(
            matches!(
                err,
                Error::LabelCount {
                    expected: 4,
                    got: 3,
                    ..
                }
            ),
            "{err}"
        );
        let err = e.gradient(&m, x.view(), &[0, 1, 3, 0]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Engine.gradient: label 3 at position 2 is out of range 0..3"
        );
        let other = Mlp::<f32>::new(6, &[4], 3, Activation::Relu, 1).unwrap();
        let err = e.count_correct(&other, x.view(), &t).unwrap_err();
        assert!(
            err.to_string()
                .contains("[6, 5, 3] (relu) but the model has [6, 4, 3]"),
            "{err}"
        );
        for (a, b) in m.affines().iter().zip(before.affines()) {
            assert_eq!(a.w(), b.w());
            assert_eq!(a.b(), b.b());
        }
    }
}
