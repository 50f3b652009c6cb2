//! Dropout (inverted): in training mode `y = x ⊙ m`, where each element of the
//! mask `m` is `1 / (1 − p)` with probability `1 − p` and `0` with
//! probability `p`; backward `dx = dout ⊙ m` with the **same** mask. In
//! evaluation mode `y = x` and `dx = dout`.
//!
//! **Inverted scaling:** the kept elements are scaled by `1 / (1 − p)` during
//! training, so that `E[y] = x` and evaluation needs no rescaling (the
//! tutorial's version multiplied by `1 − p` at test time instead; both give
//! the same expected activations, this one keeps inference a no-op).
//!
//! The mask is drawn in `forward` from a [`StdRng`] seeded at construction,
//! so a given seed and sequence of calls gives the same masks every run.
//! `p` is in `[0, 1)`: `p = 0` keeps everything, `p = 1` would drop
//! everything and divide by zero.
//!
//! # Checking a stochastic layer
//! A gradient checker evaluates `forward` many times at perturbed inputs; if
//! every call drew a new mask, the numeric derivative would measure the
//! difference between two random masks, not the layer. Hold the mask fixed:
//! ```
//! use gradverify::{Dropout, Layer};
//! use ndarray::Array2;
//! let mut d = Dropout::<f64>::new(0.5, 7)?;
//! let x = Array2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f64).into_dyn();
//! let y1 = d.forward(&[x.view()])?;      // draws a mask
//! d.freeze_mask(true);                   // from now on, forward reuses it
//! let y2 = d.forward(&[(&x * 2.0).view()])?;
//! assert_eq!(y2, &y1 * 2.0);             // same mask: the layer is linear
//! // ... run the gradient checker on `d` with inputs of shape (3, 4) ...
//! d.freeze_mask(false);                  // back to a fresh mask per forward
//! # Ok::<(), gradverify::Error>(())
//! ```
//! While frozen, `forward` reuses the last mask as long as the input shape is
//! unchanged; an input of another shape draws a new mask (and keeps that
//! one). [`Dropout::with_fixed_mask`] sets a chosen mask instead (a 0/1 keep
//! pattern, scaled by the layer). With the mask fixed, Dropout is the linear
//! map `x ↦ x ⊙ m`, which central differences check exactly.
//!
//! # Shapes
//! One input, any shape; output and gradient have that shape.

use super::{expect_dout_shape, expect_inputs};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::layer::Layer;
use ndarray::{ArrayD, ArrayViewD, Zip};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What the last successful forward did, for backward.
#[derive(Debug, Clone)]
enum Cache<F> {
    /// Evaluation mode: the identity on an input of this shape.
    Identity(Vec<usize>),
    /// Training mode: multiplied by this scaled mask.
    Masked(ArrayD<F>),
}

/// Inverted dropout with drop probability `p`.
#[derive(Debug, Clone)]
pub struct Dropout<F> {
    p: F,
    rng: StdRng,
    training: bool,
    frozen: bool,
    /// The last mask, already scaled: `0` or `1 / (1 − p)` per element.
    mask: Option<ArrayD<F>>,
    cache: Option<Cache<F>>,
}

impl<F: Float> Dropout<F> {
    /// Dropout with drop probability `p`, masks drawn from
    /// `StdRng::seed_from_u64(seed)`, in training mode with the mask not frozen.
    ///
    /// **Errors** with [`Error::Config`] unless `0 <= p < 1`.
    pub fn new(p: F, seed: u64) -> Result<Self> {
        if !(p >= F::zero() && p < F::one()) {
            return Err(Error::Config(format!(
                "Dropout: drop probability p must be in [0, 1), got {p}"
            )));
        }
        Ok(Dropout {
            p,
            rng: StdRng::seed_from_u64(seed),
            training: true,
            frozen: false,
            mask: None,
            cache: None,
        })
    }

    /// The drop probability `p`.
    pub fn p(&self) -> F {
        self.p
    }

    /// Whether the layer is in training mode.
    pub fn is_training(&self) -> bool {
        self.training
    }

    /// When `true`, `forward` reuses the last mask while the input shape is
    /// unchanged (see the module docs on checking a stochastic layer).
    pub fn freeze_mask(&mut self, frozen: bool) {
        self.frozen = frozen;
    }

    /// Whether the mask is frozen.
    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    /// The last mask, scaled: each element `0` or `1 / (1 − p)`. `None`
    /// before the first training-mode forward.
    pub fn mask(&self) -> Option<&ArrayD<F>> {
        self.mask.as_ref()
    }

    /// Sets the mask from a keep pattern (`true` = kept, scaled by
    /// `1 / (1 − p)`) and freezes it, so every training-mode forward on an
    /// input of `keep`'s shape uses it.
    pub fn with_fixed_mask(mut self, keep: &ArrayD<bool>) -> Self {
        let scale = self.scale();
        self.mask = Some(keep.mapv(|k| if k { scale } else { F::zero() }));
        self.frozen = true;
        self
    }

    fn scale(&self) -> F {
        F::one() / (F::one() - self.p)
    }

    fn draw_mask(&mut self, shape: &[usize]) -> ArrayD<F> {
        let p = self.p.f64();
        let scale = self.scale();
        let rng = &mut self.rng;
        ArrayD::from_shape_simple_fn(shape, || {
            if rng.random::<f64>() >= p {
                scale
            } else {
                F::zero()
            }
        })
    }
}

impl<F: Float> Layer<F> for Dropout<F> {
    fn name(&self) -> String {
        format!("Dropout({})", self.p)
    }

    fn num_inputs(&self) -> usize {
        1
    }

    fn forward(&mut self, inputs: &[ArrayViewD<'_, F>]) -> Result<ArrayD<F>> {
        self.cache = None;
        expect_inputs("Dropout.forward", inputs, 1)?;
        let x = &inputs[0];
        if !self.training {
            self.cache = Some(Cache::Identity(x.shape().to_vec()));
            return Ok(x.to_owned());
        }
        let reuse = self.frozen && self.mask.as_ref().is_some_and(|m| m.shape() == x.shape());
        if !reuse {
            let m = self.draw_mask(x.shape());
            self.mask = Some(m);
        }
        let mask = self.mask.as_ref().expect("just set or reused");
        let out = x * mask;
        self.cache = Some(Cache::Masked(mask.clone()));
        Ok(out)
    }

    fn backward(&mut self, dout: ArrayViewD<'_, F>) -> Result<Vec<ArrayD<F>>> {
        const OP: &str = "Dropout.backward";
        match self
            .cache
            .as_ref()
            .ok_or_else(|| Error::BackwardBeforeForward { op: OP.into() })?
        {
            Cache::Identity(shape) => {
                expect_dout_shape(OP, shape, dout.shape())?;
                Ok(vec![dout.to_owned()])
            }
            Cache::Masked(mask) => {
                expect_dout_shape(OP, mask.shape(), dout.shape())?;
                Ok(vec![Zip::from(&dout).and(mask).map_collect(|&d, &m| d * m)])
            }
        }
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::numeric::{assert_gradients_ok, spread, worst_error};
    use ndarray::{Array2, arr1, arr2};

    #[test]
    fn p_is_validated() {
        for p in [-0.1, 1.0, 1.5, f64::NAN] {
            let e = Dropout::<f64>::new(p, 0).unwrap_err();
            assert!(matches!(e, Error::Config(_)), "{p}: {e}");
        }
        assert!(Dropout::<f32>::new(0.0, 0).is_ok());
        assert!(Dropout::<f32>::new(0.99, 0).is_ok());
    }

    #[test]
    fn fixed_mask_forward_backward_hand_values() {
        let keep = arr2(&[[true, false], [false, true]]).into_dyn();
        let mut d = Dropout::new(0.5, 0).unwrap().with_fixed_mask(&keep);
        let x = arr2(&[[1.0, 2.0], [3.0, 4.0]]).into_dyn();
        let y = d.forward(&[x.view()]).unwrap();
        // Kept elements scaled by 1 / (1 − 0.5) = 2.
        assert_eq!(y, arr2(&[[2.0, 0.0], [0.0, 8.0]]).into_dyn());
        let dx = d
            .backward(arr2(&[[1.0, -1.0], [5.0, 3.0]]).into_dyn().view())
            .unwrap();
        assert_eq!(dx[0], arr2(&[[2.0, 0.0], [0.0, 6.0]]).into_dyn());
    }

    #[test]
    fn backward_reuses_the_forward_mask() {
        let mut d = Dropout::<f64>::new(0.3, 11).unwrap();
        let x = Array2::from_elem((20, 30), 1.0).into_dyn();
        let y = d.forward(&[x.view()]).unwrap();
        let dout = Array2::from_elem((20, 30), 3.0).into_dyn();
        let dx = d.backward(dout.view()).unwrap();
        // With x = 1, y is the mask itself; dx must be 3 · mask.
        assert_eq!(dx[0], &y * 3.0);
        assert_eq!(d.mask().unwrap(), &y);
        let scale = 1.0 / 0.7;
        assert!(y.iter().all(|&v| v == 0.0 || (v - scale).abs() < 1e-15));
        // About 30% dropped out of 600 (a 5-sigma band is ±0.094).
        let dropped = y.iter().filter(|&&v| v == 0.0).count() as f64 / 600.0;
        assert!((dropped - 0.3).abs() < 0.094, "{dropped}");
        // E[y] = x: the mean is close to 1.
        assert!((y.mean().unwrap() - 1.0).abs() < 0.15);
    }

    #[test]
    fn masks_are_fresh_per_forward_unless_frozen_and_seeded() {
        let x = Array2::from_elem((8, 8), 1.0).into_dyn();
        let mut a = Dropout::<f64>::new(0.5, 3).unwrap();
        let m1 = a.forward(&[x.view()]).unwrap();
        let m2 = a.forward(&[x.view()]).unwrap();
        assert_ne!(m1, m2, "a new mask per forward");
        let mut b = Dropout::<f64>::new(0.5, 3).unwrap();
        assert_eq!(b.forward(&[x.view()]).unwrap(), m1, "same seed, same masks");
        b.freeze_mask(true);
        assert!(b.is_frozen());
        assert_eq!(b.forward(&[x.view()]).unwrap(), m1, "frozen: reused");
        assert_eq!(b.forward(&[x.view()]).unwrap(), m1);
        // Another shape draws a new mask (and keeps it).
        let x2 = Array2::from_elem((2, 3), 1.0).into_dyn();
        let n1 = b.forward(&[x2.view()]).unwrap();
        assert_eq!(b.forward(&[x2.view()]).unwrap(), n1);
        b.freeze_mask(false);
        let fresh: Vec<_> = (0..4).map(|_| b.forward(&[x.view()]).unwrap()).collect();
        assert!(fresh.windows(2).any(|w| w[0] != w[1]));
    }

    #[test]
    fn eval_mode_is_the_identity() {
        let mut d = Dropout::<f32>::new(0.9, 1).unwrap();
        d.set_training(false);
        assert!(!d.is_training());
        let x = arr1(&[1.0f32, -2.0, 3.0]).into_dyn();
        assert_eq!(d.forward(&[x.view()]).unwrap(), x);
        let dout = arr1(&[0.5f32, 0.25, -1.0]).into_dyn();
        assert_eq!(d.backward(dout.view()).unwrap()[0], dout);
        d.set_training(true);
        let y = d.forward(&[x.view()]).unwrap();
        assert!(y.iter().all(|&v| v == 0.0 || v.abs() > 9.0));
    }

    #[test]
    fn backward_agrees_with_central_differences_with_a_frozen_mask() {
        for (p, shape) in [(0.5, vec![4, 5]), (0.2, vec![2, 3, 2, 2]), (0.0, vec![6])] {
            let mut d = Dropout::new(p, 5).unwrap();
            let x = spread(&shape, 2);
            d.forward(&[x.view()]).unwrap();
            d.freeze_mask(true);
            assert_gradients_ok(&mut d, &[x], 1e-9);
        }
        let mut d = Dropout::new(0.5, 5).unwrap();
        d.set_training(false);
        assert_gradients_ok(&mut d, &[spread(&[3, 3], 1)], 1e-9);
    }

    /// Without freezing, the numeric derivative compares different masks:
    /// this is why the freeze exists.
    #[test]
    fn an_unfrozen_mask_defeats_central_differences() {
        let mut d = Dropout::new(0.5, 5).unwrap();
        assert!(worst_error(&mut d, &[spread(&[4, 5], 2)]) > 0.1);
    }

    /// Forgetting the 1/(1-p) scale in backward is caught.
    #[test]
    fn wrong_backward_without_scaling_is_caught() {
        struct Wrong(Dropout<f64>);
        impl Layer<f64> for Wrong {
            fn name(&self) -> String {
                "WrongDropout".into()
            }
            fn num_inputs(&self) -> usize {
                1
            }
            fn forward(&mut self, inputs: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
                self.0.forward(inputs)
            }
            fn backward(&mut self, dout: ArrayViewD<'_, f64>) -> Result<Vec<ArrayD<f64>>> {
                let m = self.0.mask().unwrap();
                Ok(vec![
                    Zip::from(&dout)
                        .and(m)
                        .map_collect(|&d, &m| if m > 0.0 { d } else { 0.0 }),
                ])
            }
        }
        let mut d = Dropout::new(0.5, 5).unwrap();
        d.freeze_mask(true);
        let mut w = Wrong(d);
        assert!(worst_error(&mut w, &[spread(&[4, 5], 2)]) > 0.1);
    }

    #[test]
    fn errors() {
        let mut d = Dropout::<f64>::new(0.5, 0).unwrap();
        let e = d.backward(arr1(&[1.0]).into_dyn().view()).unwrap_err();
        assert!(matches!(e, Error::BackwardBeforeForward { .. }), "{e}");
        d.forward(&[arr1(&[1.0, 2.0]).into_dyn().view()]).unwrap();
        let e = d.backward(arr1(&[1.0]).into_dyn().view()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Dropout.backward: dout has shape (1,), expected (2,) (the shape of the last forward output)"
        );
        let e = d.forward(&[]).unwrap_err();
        assert!(matches!(e, Error::InputCount { got: 0, .. }), "{e}");
        let e = d.backward(arr1(&[1.0, 2.0]).into_dyn().view()).unwrap_err();
        assert!(matches!(e, Error::BackwardBeforeForward { .. }), "{e}");
    }
}
