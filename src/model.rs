//! The tutorial's `MyModel`: a multi-layer perceptron classifier.
//!
//! `Mlp::new(input_size, &[h1, h2, ...], output_size, activation, seed)`
//! builds `Affine1 → act → Affine2 → act → … → AffineL → SoftmaxWithLoss`.
//! Parameters are named in the tutorial's way: `W1, b1, W2, b2, …`.
//!
//! # Initialisation
//! - Weights are drawn from `N(0, std²)` with `std` from **each layer's own
//!   fan-in** (its number of inputs): He, `sqrt(2 / fan_in)`, for ReLU;
//!   Xavier, `sqrt(1 / fan_in)`, for Sigmoid. (The tutorial used
//!   `input_size` for every layer, which is only right for the first.)
//! - Biases start at **zero**. The random weights already break the symmetry
//!   between units (that is what the randomness is for); random biases would
//!   only add noise, shifting pre-activations off the range the fan-in
//!   scaling was chosen for (into ReLU's dead zone or sigmoid's flat tails).
//!   Zero is the standard choice. (The tutorial drew them from `randn`.)
//! - Samples come from `StdRng::seed_from_u64(seed)` with
//!   `rand_distr::StandardNormal`, in layer order and row-major within each
//!   `W`, so the same seed gives bit-identical parameters.
//!
//! # Fixes over the tutorial
//! `predict` returns the last Affine's logits (the tutorial returned its
//! input `X`).
//!
//! # Ownership
//! Each parameter exists once, inside its [`Affine`] layer. [`Layer::params`]
//! hands out mutable views of those arrays, so an optimizer
//! ([`crate::optim::Sgd`]) updates exactly what the next forward uses; the
//! numpy version relied on `model.params` and the layers aliasing the same
//! arrays.

use crate::error::{Error, Result, Shape};
use crate::float::Float;
use crate::layer::{Layer, Param};
use crate::layers::{Affine, Relu, Sigmoid, SoftmaxWithLoss};
use crate::models::accuracy_of;
use crate::models::chain::{self, Link};
use ndarray::{Array1, Array2, ArrayD, ArrayViewD, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// The hidden layers' activation function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Activation {
    /// `max(0, x)`, initialised with He std `sqrt(2 / fan_in)`.
    Relu,
    /// The logistic sigmoid, initialised with Xavier std `sqrt(1 / fan_in)`.
    Sigmoid,
}

impl Activation {
    /// The initial weight standard deviation for a layer with `fan_in` inputs.
    pub fn init_std(self, fan_in: usize) -> f64 {
        let gain = match self {
            Activation::Relu => 2.0,
            Activation::Sigmoid => 1.0,
        };
        (gain / fan_in as f64).sqrt()
    }

    /// `"relu"` or `"sigmoid"`.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
        }
    }
}

/// One activation layer.
#[derive(Debug, Clone)]
enum Act<F> {
    Relu(Relu<F>),
    Sigmoid(Sigmoid<F>),
}

impl<F: Float> Act<F> {
    fn new(a: Activation) -> Self {
        match a {
            Activation::Relu => Act::Relu(Relu::new()),
            Activation::Sigmoid => Act::Sigmoid(Sigmoid::new()),
        }
    }

    fn layer(&mut self) -> &mut dyn Layer<F> {
        match self {
            Act::Relu(l) => l,
            Act::Sigmoid(l) => l,
        }
    }
}

/// A multi-layer perceptron with a softmax cross-entropy loss.
///
/// As a [`Layer`]: inputs `(x, t)`, only `x` differentiable, output the 0-d
/// loss; parameters `W1, b1, …, WL, bL`.
#[derive(Debug, Clone)]
pub struct Mlp<F> {
    affines: Vec<Affine<F>>,
    acts: Vec<Act<F>>,
    loss: SoftmaxWithLoss<F>,
    activation: Activation,
    sizes: Vec<usize>,
    /// Whether the layers' caches hold a complete successful `forward`.
    ready: bool,
}

impl<F: Float> Mlp<F> {
    /// A freshly initialised model (see the module docs for the scheme).
    ///
    /// **Errors** with [`Error::Config`] if `input_size`, `output_size` or
    /// any hidden size is 0.
    pub fn new(
        input_size: usize,
        hidden_sizes: &[usize],
        output_size: usize,
        activation: Activation,
        seed: u64,
    ) -> Result<Self> {
        if input_size == 0 {
            return Err(Error::Config("Mlp: input_size must be at least 1".into()));
        }
        if output_size == 0 {
            return Err(Error::Config("Mlp: output_size must be at least 1".into()));
        }
        if let Some(i) = hidden_sizes.iter().position(|&h| h == 0) {
            return Err(Error::Config(format!(
                "Mlp: hidden layer {} has size 0; every hidden layer needs at least 1 unit",
                i + 1
            )));
        }
        let mut sizes = vec![input_size];
        sizes.extend_from_slice(hidden_sizes);
        sizes.push(output_size);
        let mut rng = StdRng::seed_from_u64(seed);
        let affines = sizes
            .windows(2)
            .map(|p| {
                let (fan_in, fan_out) = (p[0], p[1]);
                let std = activation.init_std(fan_in);
                let w = Array2::from_shape_simple_fn((fan_in, fan_out), || {
                    F::of(rng.sample::<f64, _>(StandardNormal) * std)
                });
                Affine::new(w, Array1::zeros(fan_out))
            })
            .collect::<Result<Vec<_>>>()?;
        Self::from_affines(affines, activation)
    }

    /// A model from given layers (e.g. loaded weights): `affines[i]`'s output
    /// size must equal `affines[i + 1]`'s input size.
    ///
    /// **Errors** with [`Error::Config`] if `affines` is empty and
    /// [`Error::ShapeMismatch`] if consecutive layers do not chain.
    pub fn from_affines(affines: Vec<Affine<F>>, activation: Activation) -> Result<Self> {
        if affines.is_empty() {
            return Err(Error::Config(
                "Mlp: at least one Affine layer is needed".into(),
            ));
        }
        for (i, p) in affines.windows(2).enumerate() {
            if p[0].output_size() != p[1].input_size() {
                return Err(Error::ShapeMismatch {
                    op: "Mlp.from_affines".into(),
                    lhs: Shape::of(p[0].w().shape()),
                    rhs: Shape::of(p[1].w().shape()),
                    detail: format!(
                        "W{} has {} column(s) but W{} has {} row(s)",
                        i + 1,
                        p[0].output_size(),
                        i + 2,
                        p[1].input_size()
                    ),
                });
            }
        }
        let mut sizes = vec![affines[0].input_size()];
        sizes.extend(affines.iter().map(|a| a.output_size()));
        let acts = (1..affines.len()).map(|_| Act::new(activation)).collect();
        Ok(Mlp {
            affines,
            acts,
            loss: SoftmaxWithLoss::new(),
            activation,
            sizes,
            ready: false,
        })
    }

    /// Layer widths: input size, each hidden size, output size.
    pub fn layer_sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// The hidden layers' activation.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// The input size (features per sample after flattening).
    pub fn input_size(&self) -> usize {
        self.sizes[0]
    }

    /// The number of classes (the output size).
    pub fn num_classes(&self) -> usize {
        *self.sizes.last().expect("at least two sizes")
    }

    /// The Affine layers in order (`affines()[0]` holds `W1`, `b1`).
    pub fn affines(&self) -> &[Affine<F>] {
        &self.affines
    }

    /// The Affine layers, mutably, for code that updates the weights in place
    /// (the training engine). The layers' caches no longer match the weights
    /// afterwards, so `backward` needs a fresh `forward` first.
    pub(crate) fn affines_mut(&mut self) -> &mut [Affine<F>] {
        self.ready = false;
        &mut self.affines
    }

    /// The parameter names in order: `W1, b1, W2, b2, …`.
    pub fn param_names(&self) -> Vec<String> {
        (1..=self.affines.len())
            .flat_map(|i| [format!("W{i}"), format!("b{i}")])
            .collect()
    }

    /// The logits of the last Affine layer: `(N, classes)` for a batch
    /// `x (N, ...)` (flattened to `(N, input_size)`), `(classes,)` for a
    /// single sample `x (input_size,)`.
    ///
    /// **Errors** as [`Affine`]'s forward (shape mismatch, empty batch).
    pub fn predict(&mut self, x: ArrayViewD<'_, F>) -> Result<ArrayD<F>> {
        self.ready = false;
        chain::forward_through(self.links(), x)
    }

    /// The mean softmax cross-entropy loss of `x` against labels `t`
    /// (class indices or one-hot; see [`SoftmaxWithLoss`]).
    ///
    /// **Errors** as [`Mlp::predict`] and for invalid labels.
    pub fn loss(&mut self, x: ArrayViewD<'_, F>, t: ArrayViewD<'_, F>) -> Result<F> {
        let out = self.forward(&[x, t])?;
        Ok(out[[]])
    }

    /// The fraction of samples whose highest logit is at their label
    /// (class indices or one-hot). Ties go to the lowest class index.
    ///
    /// **Errors** as [`Mlp::predict`] and for invalid labels.
    pub fn accuracy(&mut self, x: ArrayViewD<'_, F>, t: ArrayViewD<'_, F>) -> Result<f64> {
        let logits = self.predict(x)?;
        accuracy_of("Mlp.accuracy", logits.view(), t)
    }

    /// Backpropagation: the gradient of [`Mlp::loss`] for every parameter,
    /// as `(name, gradient)` pairs in the order `W1, b1, W2, b2, …`, each in
    /// its parameter's shape. The gradients are also stored in the layers
    /// (see [`Layer::params`]) for an optimizer.
    ///
    /// **Errors** as [`Mlp::loss`].
    pub fn gradient(
        &mut self,
        x: ArrayViewD<'_, F>,
        t: ArrayViewD<'_, F>,
    ) -> Result<Vec<(String, ArrayD<F>)>> {
        self.forward(&[x, t])?;
        self.backward(ArrayD::from_elem(IxDyn(&[]), F::one()).view())?;
        Ok(self
            .params()
            .into_iter()
            .map(|p| {
                let g = p.grad.expect("backward just set every gradient");
                (p.name, g.to_owned())
            })
            .collect())
    }

    /// The layers in forward order, `Affine{i}` and the activation after it
    /// numbered `i`.
    fn links(&mut self) -> Vec<Link<'_, F>> {
        let mut acts = self.acts.iter_mut();
        let mut links: Vec<Link<'_, F>> = Vec::with_capacity(2 * self.affines.len());
        for (i, a) in self.affines.iter_mut().enumerate() {
            links.push((i + 1, a));
            if let Some(act) = acts.next() {
                links.push((i + 1, act.layer()));
            }
        }
        links
    }
}

impl<F: Float> Layer<F> for Mlp<F> {
    fn name(&self) -> String {
        "Mlp".into()
    }

    fn num_inputs(&self) -> usize {
        2
    }

    fn num_differentiable(&self) -> usize {
        1
    }

    fn forward(&mut self, inputs: &[ArrayViewD<'_, F>]) -> Result<ArrayD<F>> {
        let (x, t) = chain::split_inputs("Mlp.forward", inputs, &mut self.ready)?;
        let logits = self.predict(x)?;
        chain::loss_forward(&mut self.loss, &mut self.ready, logits, t)
    }

    fn backward(&mut self, dout: ArrayViewD<'_, F>) -> Result<Vec<ArrayD<F>>> {
        let d = chain::loss_backward("Mlp.backward", self.ready, &mut self.loss, dout)?;
        Ok(vec![chain::backward_through(self.links(), d)?])
    }

    fn params(&mut self) -> Vec<Param<'_, F>> {
        chain::numbered_params(self.links())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use ndarray::{Array, arr0, arr1, arr2};

    /// A deterministic batch `(n, d)` with values in about [-1, 1].
    fn batch(n: usize, d: usize) -> ArrayD<f64> {
        Array::from_shape_fn((n, d), |(i, j)| ((i * 7 + j * 3) % 11) as f64 / 5.0 - 1.0).into_dyn()
    }

    #[test]
    fn predict_returns_logits_not_the_input() {
        let mut m = Mlp::<f64>::new(5, &[4, 3], 2, Activation::Relu, 1).unwrap();
        let x = batch(6, 5);
        let y = m.predict(x.view()).unwrap();
        assert_eq!(y.shape(), &[6, 2]);
        assert_ne!(y.shape(), x.shape());
        // Same as running the layers by hand.
        let mut h = x.clone().into_dimensionality::<ndarray::Ix2>().unwrap();
        for (i, a) in m.affines().iter().enumerate() {
            h = h.dot(a.w()) + a.b();
            if i < 2 {
                h.mapv_inplace(|v| v.max(0.0));
            }
        }
        crate::test_util::assert_close(&y, &h.into_dyn(), 1e-12);
        let one = m
            .predict(arr1(&[0.1, 0.2, 0.3, 0.4, 0.5]).into_dyn().view())
            .unwrap();
        assert_eq!(one.shape(), &[2]);
    }

    #[test]
    fn init_std_follows_each_layers_fan_in_and_biases_are_zero() {
        for (act, gain) in [(Activation::Relu, 2.0), (Activation::Sigmoid, 1.0)] {
            let m = Mlp::<f64>::new(784, &[400, 50], 10, act, 7).unwrap();
            assert_eq!(m.layer_sizes(), &[784, 400, 50, 10]);
            assert_eq!(m.activation(), act);
            for a in m.affines() {
                let fan_in = a.input_size();
                let want = (gain / fan_in as f64).sqrt();
                let w = a.w();
                let n = w.len() as f64;
                let mean = w.sum() / n;
                let std = (w.mapv(|v| (v - mean) * (v - mean)).sum() / n).sqrt();
                // >= 500 samples per layer: the empirical std is within ~7%.
                assert!(
                    (std / want - 1.0).abs() < 0.1,
                    "{act:?} fan_in {fan_in}: std {std} vs {want}"
                );
                assert!(a.b().iter().all(|&v| v == 0.0));
            }
        }
        // The layers really differ: 784 vs 400 fan-in.
        let m = Mlp::<f64>::new(784, &[400, 50], 10, Activation::Relu, 7).unwrap();
        let s0 = m.affines()[0].w().std(0.0);
        let s1 = m.affines()[1].w().std(0.0);
        assert!(s1 / s0 > 1.3, "{s0} {s1}");
    }

    #[test]
    fn same_seed_is_bit_identical_different_seed_differs() {
        let a = Mlp::<f32>::new(10, &[8], 3, Activation::Sigmoid, 42).unwrap();
        let b = Mlp::<f32>::new(10, &[8], 3, Activation::Sigmoid, 42).unwrap();
        let c = Mlp::<f32>::new(10, &[8], 3, Activation::Sigmoid, 43).unwrap();
        for (x, y) in a.affines().iter().zip(b.affines()) {
            let bits = |w: &Array2<f32>| w.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(x.w()), bits(y.w()));
        }
        assert_ne!(a.affines()[0].w(), c.affines()[0].w());
    }

    #[test]
    fn gradient_names_and_shapes() {
        let mut m = Mlp::<f64>::new(4, &[3, 5], 2, Activation::Relu, 3).unwrap();
        assert_eq!(m.param_names(), ["W1", "b1", "W2", "b2", "W3", "b3"]);
        let g = m
            .gradient(batch(3, 4).view(), arr1(&[0.0, 1.0, 1.0]).into_dyn().view())
            .unwrap();
        let names: Vec<_> = g.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["W1", "b1", "W2", "b2", "W3", "b3"]);
        let shapes: Vec<_> = g.iter().map(|(_, a)| a.shape().to_vec()).collect();
        assert_eq!(
            shapes,
            [
                vec![4, 3],
                vec![3],
                vec![3, 5],
                vec![5],
                vec![5, 2],
                vec![2]
            ]
        );
        // The returned gradients are the ones the layers store.
        assert_eq!(&g[4].1, &m.affines()[2].dw().unwrap().clone().into_dyn());
    }

    /// Central differences of the loss against `gradient`, for every element
    /// of every parameter and for dx.
    fn check_numerically(act: Activation) {
        let mut m = Mlp::<f64>::new(4, &[5, 3], 3, act, 11).unwrap();
        let x = batch(4, 4);
        let t = arr1(&[0.0, 2.0, 1.0, 2.0]).into_dyn();
        let analytic = m.gradient(x.view(), t.view()).unwrap();
        let h = 1e-5;
        for (p, (name, g)) in analytic.iter().enumerate() {
            for k in 0..g.len() {
                let orig = m.params()[p].value.as_slice_memory_order().unwrap()[k];
                let set = |v: f64, m: &mut Mlp<f64>| {
                    m.params()[p].value.as_slice_memory_order_mut().unwrap()[k] = v;
                };
                set(orig + h, &mut m);
                let lp = m.loss(x.view(), t.view()).unwrap();
                set(orig - h, &mut m);
                let lm = m.loss(x.view(), t.view()).unwrap();
                set(orig, &mut m);
                let num = (lp - lm) / (2.0 * h);
                let ana = g.as_slice_memory_order().unwrap()[k];
                assert!(
                    (num - ana).abs() <= 1e-7 * (1.0 + num.abs()),
                    "{act:?} {name}[{k}]: numeric {num} vs analytic {ana}"
                );
            }
        }
        // dx as well, through the Layer interface.
        m.forward(&[x.view(), t.view()]).unwrap();
        let dx = m.backward(arr0(1.0).into_dyn().view()).unwrap().remove(0);
        assert_eq!(dx.shape(), x.shape());
        for k in 0..x.len() {
            let mut xp = x.clone();
            xp.as_slice_mut().unwrap()[k] += h;
            let mut xm = x.clone();
            xm.as_slice_mut().unwrap()[k] -= h;
            let num = (m.loss(xp.view(), t.view()).unwrap() - m.loss(xm.view(), t.view()).unwrap())
                / (2.0 * h);
            assert_abs_diff_eq!(num, dx.as_slice().unwrap()[k], epsilon = 1e-7);
        }
    }

    #[test]
    fn analytic_gradient_matches_central_differences_sigmoid() {
        check_numerically(Activation::Sigmoid);
    }

    #[test]
    fn analytic_gradient_matches_central_differences_relu() {
        check_numerically(Activation::Relu);
    }

    #[test]
    fn accuracy_with_both_label_forms() {
        let w1 = arr2(&[[1.0, 0.0], [0.0, 1.0]]);
        let w2 = arr2(&[[1.0, 0.0], [0.0, 1.0]]);
        let mut m = Mlp::from_affines(
            vec![
                Affine::new(w1, Array1::zeros(2)).unwrap(),
                Affine::new(w2, Array1::zeros(2)).unwrap(),
            ],
            Activation::Relu,
        )
        .unwrap();
        // Logits equal relu(x): argmax is 1, 0, 1, 0.
        let x = arr2(&[[0.0, 1.0], [2.0, 1.0], [-1.0, 3.0], [5.0, 0.0]]).into_dyn();
        let idx = arr1(&[1.0, 0.0, 0.0, 1.0]).into_dyn();
        let oh = arr2(&[[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]).into_dyn();
        assert_eq!(m.accuracy(x.view(), idx.view()).unwrap(), 0.5);
        assert_eq!(m.accuracy(x.view(), oh.view()).unwrap(), 0.5);
        let all = arr1(&[1.0, 0.0, 1.0, 0.0]).into_dyn();
        assert_eq!(m.accuracy(x.view(), all.view()).unwrap(), 1.0);
        let e = m
            .accuracy(x.view(), arr1(&[1.0, 0.0]).into_dyn().view())
            .unwrap_err();
        assert!(matches!(e, Error::LabelCount { .. }), "{e}");
    }

    #[test]
    fn config_errors() {
        let e = Mlp::<f64>::new(4, &[3, 0], 2, Activation::Relu, 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid configuration: Mlp: hidden layer 2 has size 0; every hidden layer needs at least 1 unit"
        );
        assert!(matches!(
            Mlp::<f64>::new(0, &[3], 2, Activation::Relu, 0),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            Mlp::<f64>::new(4, &[3], 0, Activation::Relu, 0),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            Mlp::<f64>::from_affines(vec![], Activation::Relu),
            Err(Error::Config(_))
        ));
        let a = Affine::new(Array2::<f64>::zeros((2, 3)), Array1::zeros(3)).unwrap();
        let b = Affine::new(Array2::<f64>::zeros((2, 2)), Array1::zeros(2)).unwrap();
        let e = Mlp::from_affines(vec![a, b], Activation::Relu).unwrap_err();
        assert!(matches!(e, Error::ShapeMismatch { .. }), "{e}");
        // No hidden layer is fine: a softmax regression.
        let m = Mlp::<f64>::new(4, &[], 2, Activation::Relu, 0).unwrap();
        assert_eq!(m.layer_sizes(), &[4, 2]);
    }

    #[test]
    fn runtime_errors() {
        let mut m = Mlp::<f64>::new(4, &[3], 2, Activation::Relu, 0).unwrap();
        let e = m.backward(arr0(1.0).into_dyn().view()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Mlp.backward: backward called before a successful forward"
        );
        let x = batch(2, 4);
        let e = m.forward(&[x.view()]).unwrap_err();
        assert!(matches!(e, Error::InputCount { .. }), "{e}");
        let e = m.predict(batch(2, 5).view()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Affine.forward: shapes (2, 5) and (4, 3) not aligned: 5 (dim 1) != 4 (dim 0)"
        );
        let e = m
            .loss(x.view(), arr1(&[0.0, 2.0]).into_dyn().view())
            .unwrap_err();
        assert!(matches!(e, Error::LabelOutOfRange { .. }), "{e}");
        let e = m
            .loss(
                ArrayD::zeros(IxDyn(&[0, 4])).view(),
                ArrayD::zeros(IxDyn(&[0])).view(),
            )
            .unwrap_err();
        assert!(matches!(e, Error::EmptyBatch { .. }), "{e}");
        // Forward succeeded, then predict alone: backward must refuse stale caches.
        m.forward(&[x.view(), arr1(&[0.0, 1.0]).into_dyn().view()])
            .unwrap();
        m.predict(x.view()).unwrap();
        let e = m.backward(arr0(1.0).into_dyn().view()).unwrap_err();
        assert!(matches!(e, Error::BackwardBeforeForward { .. }), "{e}");
        m.forward(&[x.view(), arr1(&[0.0, 1.0]).into_dyn().view()])
            .unwrap();
        let e = m.backward(arr1(&[1.0]).into_dyn().view()).unwrap_err();
        assert!(matches!(e, Error::DoutShape { .. }), "{e}");
    }
}
