//! The tutorial's MLP with BatchNormalization and Dropout:
//! `(Affine → BatchNorm → ReLU → Dropout) × hidden → Affine → SoftmaxWithLoss`.
//!
//! Parameters, in order: `W1, b1, gamma1, beta1, …, W{L−1}, b{L−1},
//! gamma{L−1}, beta{L−1}, WL, bL` (the hidden layers' BatchNorm takes its
//! layer's number). Weights are He-initialised from each layer's fan-in
//! (`N(0, 2 / fan_in)`, in layer order from `StdRng::seed_from_u64(seed)`),
//! biases and `β` start at 0 and `γ` at 1; each Dropout gets its own seed
//! drawn from the same generator after the weights.
//!
//! # Modes
//! Training mode (the default) normalises with batch statistics and drops
//! units; [`Layer::set_training`]`(false)` switches every BatchNorm and
//! Dropout to evaluation. [`Classifier::accuracy`] always evaluates in
//! evaluation mode. For a gradient check in training mode, freeze the
//! dropout masks first ([`MlpBn::freeze_dropout`], see
//! [`crate::layers::dropout`]).
//!
//! # Shapes
//! A batch `x (N, input_size)` (or `(N, ...)` flattening to it); labels as
//! for [`crate::layers::SoftmaxWithLoss`]. Single unbatched samples are not
//! accepted (BatchNorm needs a batch).

use super::chain::{self, Link};
use super::{Classifier, accuracy_of, in_eval_mode, normal};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::layer::{Layer, Param};
use crate::layers::{Affine, BatchNormalization, Dropout, Relu, SoftmaxWithLoss};
use crate::model::Activation;
use ndarray::{Array1, ArrayD, ArrayViewD};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One hidden block: BatchNorm, ReLU and Dropout after an Affine.
#[derive(Debug, Clone)]
struct Block<F> {
    bn: BatchNormalization<F>,
    relu: Relu<F>,
    dropout: Dropout<F>,
}

/// An MLP classifier with BatchNormalization and Dropout in every hidden layer.
#[derive(Debug, Clone)]
pub struct MlpBn<F> {
    affines: Vec<Affine<F>>,
    blocks: Vec<Block<F>>,
    loss: SoftmaxWithLoss<F>,
    sizes: Vec<usize>,
    training: bool,
    ready: bool,
}

impl<F: Float> MlpBn<F> {
    /// A freshly initialised model with the given hidden sizes and dropout
    /// probability `dropout` (0 disables it in effect).
    ///
    /// **Errors** with [`Error::Config`] if a size is 0 or `dropout` is
    /// outside `[0, 1)`.
    pub fn new(
        input_size: usize,
        hidden_sizes: &[usize],
        output_size: usize,
        dropout: F,
        seed: u64,
    ) -> Result<Self> {
        if input_size == 0 || output_size == 0 || hidden_sizes.contains(&0) {
            return Err(Error::Config(format!(
                "MlpBn: every layer needs at least 1 unit, got input {input_size}, hidden {hidden_sizes:?}, output {output_size}"
            )));
        }
        let mut sizes = vec![input_size];
        sizes.extend_from_slice(hidden_sizes);
        sizes.push(output_size);
        let mut rng = StdRng::seed_from_u64(seed);
        let affines = sizes
            .windows(2)
            .map(|p| {
                let std = Activation::Relu.init_std(p[0]);
                Affine::new(normal(&mut rng, (p[0], p[1]), std), Array1::zeros(p[1]))
            })
            .collect::<Result<Vec<_>>>()?;
        let blocks = hidden_sizes
            .iter()
            .map(|&h| {
                Ok(Block {
                    bn: BatchNormalization::new(h)?,
                    relu: Relu::new(),
                    dropout: Dropout::new(dropout, rng.random())?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(MlpBn {
            affines,
            blocks,
            loss: SoftmaxWithLoss::new(),
            sizes,
            training: true,
            ready: false,
        })
    }

    /// Layer widths: input size, each hidden size, output size.
    pub fn layer_sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// Whether the model is in training mode.
    pub fn is_training(&self) -> bool {
        self.training
    }

    /// Freezes (or releases) every Dropout mask, for gradient checks in
    /// training mode.
    pub fn freeze_dropout(&mut self, frozen: bool) {
        for b in &mut self.blocks {
            b.dropout.freeze_mask(frozen);
        }
    }

    /// The BatchNormalization layers, in order.
    pub fn batch_norms(&self) -> Vec<&BatchNormalization<F>> {
        self.blocks.iter().map(|b| &b.bn).collect()
    }

    /// The parameter names in order.
    pub fn param_names(&self) -> Vec<String> {
        let l = self.affines.len();
        (1..=l)
            .flat_map(|i| {
                let mut v = vec![format!("W{i}"), format!("b{i}")];
                if i < l {
                    v.extend([format!("gamma{i}"), format!("beta{i}")]);
                }
                v
            })
            .collect()
    }

    /// The logits of a batch, in the current mode.
    ///
    /// **Errors** as [`Affine`]'s and [`BatchNormalization`]'s forward.
    pub fn predict(&mut self, x: ArrayViewD<'_, F>) -> Result<ArrayD<F>> {
        self.ready = false;
        chain::forward_through(self.links(), x)
    }

    /// The layers in forward order, `Affine{i}` and the block after it
    /// numbered `i`.
    fn links(&mut self) -> Vec<Link<'_, F>> {
        let mut blocks = self.blocks.iter_mut();
        let mut links: Vec<Link<'_, F>> = Vec::with_capacity(4 * self.affines.len());
        for (i, a) in self.affines.iter_mut().enumerate() {
            links.push((i + 1, a));
            if let Some(b) = blocks.next() {
                links.push((i + 1, &mut b.bn));
                links.push((i + 1, &mut b.relu));
                links.push((i + 1, &mut b.dropout));
            }
        }
        links
    }
}

impl<F: Float> Layer<F> for MlpBn<F> {
    fn name(&self) -> String {
        "MlpBn".into()
    }

    fn num_inputs(&self) -> usize {
        2
    }

    fn num_differentiable(&self) -> usize {
        1
    }

    fn forward(&mut self, inputs: &[ArrayViewD<'_, F>]) -> Result<ArrayD<F>> {
        let (x, t) = chain::split_inputs("MlpBn.forward", inputs, &mut self.ready)?;
        let logits = self.predict(x)?;
        chain::loss_forward(&mut self.loss, &mut self.ready, logits, t)
    }

    fn backward(&mut self, dout: ArrayViewD<'_, F>) -> Result<Vec<ArrayD<F>>> {
        let d = chain::loss_backward("MlpBn.backward", self.ready, &mut self.loss, dout)?;
        Ok(vec![chain::backward_through(self.links(), d)?])
    }

    fn params(&mut self) -> Vec<Param<'_, F>> {
        chain::numbered_params(self.links())
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        chain::set_training(self.links(), training);
    }
}

impl<F: Float> Classifier<F> for MlpBn<F> {
    fn predict(&mut self, x: ArrayViewD<'_, F>) -> Result<ArrayD<F>> {
        MlpBn::predict(self, x)
    }

    fn num_classes(&self) -> usize {
        *self.sizes.last().expect("at least two sizes")
    }

    fn accuracy(&mut self, x: ArrayViewD<'_, F>, t: ArrayViewD<'_, F>) -> Result<f64> {
        let training = self.training;
        let logits = in_eval_mode(self, training, |m| m.predict(x))?;
        accuracy_of("MlpBn.accuracy", logits.view(), t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::numeric::{assert_gradients_ok, spread};
    use crate::optim::{Adam, Optimizer};
    use ndarray::{IxDyn, arr1};

    /// The 0-d `dout = 1` a loss's backward starts from.
    fn one<F: Float>() -> ArrayD<F> {
        ArrayD::from_elem(IxDyn(&[]), F::one())
    }

    #[test]
    fn names_shapes_and_modes() {
        let mut m = MlpBn::<f64>::new(4, &[5, 3], 2, 0.5, 1).unwrap();
        assert_eq!(
            m.param_names(),
            [
                "W1", "b1", "gamma1", "beta1", "W2", "b2", "gamma2", "beta2", "W3", "b3"
            ]
        );
        let names: Vec<String> = m.params().into_iter().map(|p| p.name).collect();
        assert_eq!(names, m.param_names());
        let shapes: Vec<Vec<usize>> = m
            .params()
            .iter()
            .map(|p| p.value.shape().to_vec())
            .collect();
        assert_eq!(
            shapes,
            [
                vec![4, 5],
                vec![5],
                vec![5],
                vec![5],
                vec![5, 3],
                vec![3],
                vec![3],
                vec![3],
                vec![3, 2],
                vec![2]
            ]
        );
        let x = spread(&[6, 4], 1);
        // Training mode draws dropout masks: two predictions differ.
        let y1 = m.predict(x.view()).unwrap();
        let y2 = m.predict(x.view()).unwrap();
        assert_ne!(y1, y2);
        // Evaluation mode is deterministic and leaves running statistics alone.
        m.set_training(false);
        assert!(!m.is_training());
        let rm = m.batch_norms()[0].running_mean().clone();
        let e1 = m.predict(x.view()).unwrap();
        assert_eq!(e1, m.predict(x.view()).unwrap());
        assert_eq!(m.batch_norms()[0].running_mean(), &rm);
        // accuracy evaluates in evaluation mode and restores the mode.
        m.set_training(true);
        let t = arr1(&[0.0, 1.0, 0.0, 1.0, 1.0, 0.0]).into_dyn();
        m.accuracy(x.view(), t.view()).unwrap();
        assert!(m.is_training());
        assert_eq!(
            m.batch_norms()[0].running_mean(),
            &rm,
            "accuracy ran in eval mode"
        );
        assert_ne!(m.predict(x.view()).unwrap(), e1, "back in training mode");
    }

    /// The whole model (BatchNorm's full backward inside, dropout frozen)
    /// against central differences of its loss, for every parameter and x.
    #[test]
    fn model_gradient_agrees_with_central_differences() {
        for (hidden, p) in [(vec![5], 0.0), (vec![6, 4], 0.3)] {
            let mut m = MlpBn::<f64>::new(3, &hidden, 3, p, 7).unwrap();
            // Non-trivial γ, β so their paths matter.
            for q in m.params() {
                let mut v = q.value;
                if q.name.starts_with("gamma") {
                    v.iter_mut()
                        .enumerate()
                        .for_each(|(i, g)| *g = 0.5 + 0.3 * i as f64);
                } else if q.name.starts_with("beta") {
                    v.iter_mut()
                        .enumerate()
                        .for_each(|(i, b)| *b = 0.2 - 0.1 * i as f64);
                }
            }
            let x = spread(&[5, 3], 2);
            let t = arr1(&[0.0, 2.0, 1.0, 1.0, 0.0]).into_dyn();
            m.forward(&[x.view(), t.view()]).unwrap();
            m.freeze_dropout(true);
            assert_gradients_ok(&mut m, &[x.clone(), t.clone()], 1e-6);
            m.set_training(false);
            assert_gradients_ok(&mut m, &[x, t], 1e-6);
        }
    }

    #[test]
    fn learns_a_separable_toy_problem() {
        // Class = which of two features is larger.
        let x = spread(&[40, 2], 3);
        let t =
            ndarray::Array1::from_iter(x.outer_iter().map(|r| f64::from(u8::from(r[1] > r[0]))))
                .into_dyn();
        let mut m = MlpBn::<f64>::new(2, &[16], 2, 0.1, 3).unwrap();
        let mut opt = Adam::new(0.05).unwrap();
        for _ in 0..200 {
            m.forward(&[x.view(), t.view()]).unwrap();
            m.backward(one::<f64>().view()).unwrap();
            Optimizer::step(&mut opt, &mut m).unwrap();
        }
        let acc = m.accuracy(x.view(), t.view()).unwrap();
        assert!(acc >= 0.95, "{acc}");
    }

    #[test]
    fn errors() {
        assert!(matches!(
            MlpBn::<f64>::new(0, &[3], 2, 0.5, 0),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            MlpBn::<f64>::new(2, &[0], 2, 0.5, 0),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            MlpBn::<f64>::new(2, &[3], 2, 1.0, 0),
            Err(Error::Config(_))
        ));
        let mut m = MlpBn::<f64>::new(2, &[3], 2, 0.5, 0).unwrap();
        let e = m.backward(one::<f64>().view()).unwrap_err();
        assert!(matches!(e, Error::BackwardBeforeForward { .. }), "{e}");
        let x = spread(&[3, 5], 1);
        let e = m
            .forward(&[x.view(), arr1(&[0.0, 1.0, 0.0]).into_dyn().view()])
            .unwrap_err();
        assert!(matches!(e, Error::ShapeMismatch { .. }), "{e}");
        let e = m.backward(one::<f64>().view()).unwrap_err();
        assert!(matches!(e, Error::BackwardBeforeForward { .. }), "{e}");
    }
}
