//! The tutorial's simple ConvNet:
//! `Convolution → ReLU → MaxPooling → Affine → ReLU → Affine → SoftmaxWithLoss`.
//!
//! Parameters `W1, b1` (the convolution's filters `(FN, C, FH, FW)` and
//! bias), `W2, b2` (the hidden Affine), `W3, b3` (the output Affine).
//! Weights are He-initialised, `N(0, 2 / fan_in)` with the convolution's
//! fan-in `C·FH·FW`, drawn in that order from `StdRng::seed_from_u64(seed)`;
//! biases start at 0.
//!
//! The defaults of [`ConvNetConfig::for_images`] are the book's: 30 filters
//! of 5×5, stride 1, no padding, 2×2 max pooling with stride 2, 100 hidden
//! units.
//!
//! # Shapes
//! `x (N, C, H, W)`, or `(N, C·H·W)` (a flattened batch, as the data loader
//! gives it), reshaped to the configured image shape; the input gradient
//! comes back in `x`'s own shape.

use super::chain::{self, Link};
use super::{Classifier, accuracy_of, normal};
use crate::error::{Error, Result, Shape};
use crate::float::Float;
use crate::layer::{Layer, Param};
use crate::layers::{Affine, Convolution, MaxPooling, Relu, SoftmaxWithLoss};
use ndarray::{Array1, ArrayD, ArrayViewD, IxDyn};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// The ConvNet's architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConvNetConfig {
    /// Input image `(C, H, W)`.
    pub image: (usize, usize, usize),
    /// Number of convolution filters `FN`.
    pub filters: usize,
    /// Square kernel size `FH = FW`.
    pub kernel: usize,
    /// Convolution stride.
    pub stride: usize,
    /// Convolution zero padding.
    pub pad: usize,
    /// Square max-pooling window, also its stride.
    pub pool: usize,
    /// Hidden Affine width.
    pub hidden: usize,
    /// Number of classes.
    pub classes: usize,
}

impl ConvNetConfig {
    /// The book's architecture for `(c, h, w)` images: 30 filters 5×5,
    /// stride 1, pad 0, 2×2 pooling, 100 hidden units.
    pub fn for_images(c: usize, h: usize, w: usize, classes: usize) -> Self {
        ConvNetConfig {
            image: (c, h, w),
            filters: 30,
            kernel: 5,
            stride: 1,
            pad: 0,
            pool: 2,
            hidden: 100,
            classes,
        }
    }

    /// The MNIST configuration: `(1, 28, 28)` images, 10 classes.
    pub fn mnist() -> Self {
        Self::for_images(1, 28, 28, 10)
    }
}

/// A small convolutional classifier.
#[derive(Debug, Clone)]
pub struct ConvNet<F> {
    config: ConvNetConfig,
    conv: Convolution<F>,
    relu1: Relu<F>,
    pool: MaxPooling<F>,
    fc1: Affine<F>,
    relu2: Relu<F>,
    fc2: Affine<F>,
    loss: SoftmaxWithLoss<F>,
    /// The last input's shape, for dx.
    x_shape: Vec<usize>,
    ready: bool,
}

impl<F: Float> ConvNet<F> {
    /// A freshly initialised ConvNet.
    ///
    /// **Errors** with [`Error::Config`] for a zero size or stride, or a
    /// kernel or pooling window larger than what it slides over.
    pub fn new(config: ConvNetConfig, seed: u64) -> Result<Self> {
        let ConvNetConfig {
            image: (c, h, w),
            filters,
            kernel,
            stride,
            pad,
            pool,
            hidden,
            classes,
        } = config;
        if [c, h, w, filters, kernel, stride, pool, hidden, classes].contains(&0) {
            return Err(Error::Config(format!(
                "ConvNet: every size must be at least 1, got {config:?}"
            )));
        }
        let too_small = |what: &str| Error::Config(format!("ConvNet: {what} in {config:?}"));
        if h + 2 * pad < kernel || w + 2 * pad < kernel {
            return Err(too_small("the kernel is larger than the padded image"));
        }
        let (oh, ow) = (
            (h + 2 * pad - kernel) / stride + 1,
            (w + 2 * pad - kernel) / stride + 1,
        );
        if oh < pool || ow < pool {
            return Err(too_small(
                "the pooling window is larger than the convolution output",
            ));
        }
        let (ph, pw) = ((oh - pool) / pool + 1, (ow - pool) / pool + 1);
        let flat = filters * ph * pw;
        let mut rng = StdRng::seed_from_u64(seed);
        let fan_conv = c * kernel * kernel;
        let w1 = normal(
            &mut rng,
            (filters, c, kernel, kernel),
            (2.0 / fan_conv as f64).sqrt(),
        );
        let w2 = normal(&mut rng, (flat, hidden), (2.0 / flat as f64).sqrt());
        let w3 = normal(&mut rng, (hidden, classes), (2.0 / hidden as f64).sqrt());
        Ok(ConvNet {
            config,
            conv: Convolution::new(w1, Array1::zeros(filters), stride, pad)?,
            relu1: Relu::new(),
            pool: MaxPooling::new(pool, pool, pool, 0)?,
            fc1: Affine::new(w2, Array1::zeros(hidden))?,
            relu2: Relu::new(),
            fc2: Affine::new(w3, Array1::zeros(classes))?,
            loss: SoftmaxWithLoss::new(),
            x_shape: Vec::new(),
            ready: false,
        })
    }

    /// The architecture.
    pub fn config(&self) -> &ConvNetConfig {
        &self.config
    }

    /// The convolution layer (`W1`, `b1`).
    pub fn conv(&self) -> &Convolution<F> {
        &self.conv
    }

    /// The parameter names in order.
    pub fn param_names(&self) -> Vec<String> {
        ["W1", "b1", "W2", "b2", "W3", "b3"]
            .map(String::from)
            .to_vec()
    }

    /// `x` as `(N, C, H, W)`.
    fn as_images(&self, x: ArrayViewD<'_, F>) -> Result<ArrayD<F>> {
        const OP: &str = "ConvNet.forward";
        let (c, h, w) = self.config.image;
        let n = match *x.shape() {
            [n, f] if f == c * h * w => n,
            [n, cc, hh, ww] if (cc, hh, ww) == (c, h, w) => n,
            _ => {
                return Err(Error::BadShape {
                    op: OP.into(),
                    input: 0,
                    got: Shape::of(x.shape()),
                    expected: format!("(N, {c}, {h}, {w}) or (N, {})", c * h * w),
                });
            }
        };
        if n == 0 {
            return Err(Error::EmptyBatch {
                op: OP.into(),
                shape: Shape::of(x.shape()),
            });
        }
        Ok(x.to_shape(IxDyn(&[n, c, h, w]))
            .expect("element count checked")
            .into_owned())
    }

    /// The logits `(N, classes)` of a batch.
    ///
    /// **Errors** with [`Error::BadShape`] unless `x` is `(N, C, H, W)` or
    /// `(N, C·H·W)` for the configured image, [`Error::EmptyBatch`] if `N = 0`.
    pub fn predict(&mut self, x: ArrayViewD<'_, F>) -> Result<ArrayD<F>> {
        self.ready = false;
        let x4 = self.as_images(x.view())?;
        self.x_shape = x.shape().to_vec();
        chain::forward_through(self.links(), x4.view())
    }

    /// The layers in forward order: the convolution numbered 1, the hidden
    /// Affine 2, the output Affine 3 (and each ReLU and the pooling as the
    /// layer before them).
    fn links(&mut self) -> Vec<Link<'_, F>> {
        vec![
            (1, &mut self.conv),
            (1, &mut self.relu1),
            (1, &mut self.pool),
            (2, &mut self.fc1),
            (2, &mut self.relu2),
            (3, &mut self.fc2),
        ]
    }
}

impl<F: Float> Layer<F> for ConvNet<F> {
    fn name(&self) -> String {
        "ConvNet".into()
    }

    fn num_inputs(&self) -> usize {
        2
    }

    fn num_differentiable(&self) -> usize {
        1
    }

    fn forward(&mut self, inputs: &[ArrayViewD<'_, F>]) -> Result<ArrayD<F>> {
        let (x, t) = chain::split_inputs("ConvNet.forward", inputs, &mut self.ready)?;
        let logits = self.predict(x)?;
        chain::loss_forward(&mut self.loss, &mut self.ready, logits, t)
    }

    fn backward(&mut self, dout: ArrayViewD<'_, F>) -> Result<Vec<ArrayD<F>>> {
        let d = chain::loss_backward("ConvNet.backward", self.ready, &mut self.loss, dout)?;
        let d = chain::backward_through(self.links(), d)?;
        Ok(vec![crate::layers::reshape_c(d, IxDyn(&self.x_shape))])
    }

    fn params(&mut self) -> Vec<Param<'_, F>> {
        chain::numbered_params(self.links())
    }
}

impl<F: Float> Classifier<F> for ConvNet<F> {
    fn predict(&mut self, x: ArrayViewD<'_, F>) -> Result<ArrayD<F>> {
        ConvNet::predict(self, x)
    }

    fn num_classes(&self) -> usize {
        self.config.classes
    }

    fn accuracy(&mut self, x: ArrayViewD<'_, F>, t: ArrayViewD<'_, F>) -> Result<f64> {
        let logits = self.predict(x)?;
        accuracy_of("ConvNet.accuracy", logits.view(), t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::numeric::{assert_gradients_ok, spread};
    use crate::optim::Adam;
    use ndarray::arr1;

    fn small() -> ConvNetConfig {
        ConvNetConfig {
            image: (2, 6, 6),
            filters: 3,
            kernel: 3,
            stride: 1,
            pad: 1,
            pool: 2,
            hidden: 5,
            classes: 3,
        }
    }

    #[test]
    fn shapes_names_and_flat_input() {
        let mut m = ConvNet::<f64>::new(small(), 1).unwrap();
        let names: Vec<String> = m.params().into_iter().map(|p| p.name).collect();
        assert_eq!(names, m.param_names());
        let shapes: Vec<Vec<usize>> = m
            .params()
            .iter()
            .map(|p| p.value.shape().to_vec())
            .collect();
        // conv 6x6 pad 1 kernel 3 -> 6x6, pool 2 -> 3x3, 3 filters -> 27.
        assert_eq!(
            shapes,
            [
                vec![3, 2, 3, 3],
                vec![3],
                vec![27, 5],
                vec![5],
                vec![5, 3],
                vec![3]
            ]
        );
        let x4 = spread(&[2, 2, 6, 6], 1);
        let flat = x4.to_shape(IxDyn(&[2, 72])).unwrap().into_owned();
        let a = m.predict(x4.view()).unwrap();
        let b = m.predict(flat.view()).unwrap();
        assert_eq!(a.shape(), &[2, 3]);
        assert_eq!(a, b);
        let mnist = ConvNet::<f32>::new(ConvNetConfig::mnist(), 0).unwrap();
        // 28 - 5 + 1 = 24, pooled to 12: 30 · 12 · 12 = 4320 inputs to W2.
        assert_eq!(mnist.fc1.w().dim(), (4320, 100));
    }

    /// The whole ConvNet against central differences of its loss.
    #[test]
    fn model_gradient_agrees_with_central_differences() {
        for (cfg, xs) in [
            (small(), vec![2, 2, 6, 6]),
            (
                ConvNetConfig {
                    stride: 2,
                    pad: 0,
                    ..small()
                },
                vec![2, 72],
            ),
        ] {
            let mut m = ConvNet::<f64>::new(cfg, 4).unwrap();
            let x = spread(&xs, 2);
            let t = arr1(&[2.0, 0.0]).into_dyn();
            assert_gradients_ok(&mut m, &[x, t], 1e-6);
        }
    }

    #[test]
    fn learns_a_toy_problem() {
        // Class 0: bright top half; class 1: bright bottom half.
        let (n, c, h, w) = (16, 1, 6, 6);
        let x = ndarray::Array4::from_shape_fn((n, c, h, w), |(i, _, r, col)| {
            let top = i % 2 == 0;
            let on = (r < h / 2) == top;
            f64::from(u8::from(on)) + 0.05 * ((i * 7 + r * 3 + col) % 5) as f64
        })
        .into_dyn();
        let t = ndarray::Array1::from_shape_fn(n, |i| (i % 2) as f64).into_dyn();
        let cfg = ConvNetConfig {
            image: (1, 6, 6),
            classes: 2,
            ..small()
        };
        let mut m = ConvNet::<f64>::new(cfg, 5).unwrap();
        let mut opt = Adam::new(0.01).unwrap();
        let one = ArrayD::from_elem(IxDyn(&[]), 1.0);
        for _ in 0..60 {
            m.forward(&[x.view(), t.view()]).unwrap();
            m.backward(one.view()).unwrap();
            opt.step(&mut m).unwrap();
        }
        assert_eq!(m.accuracy(x.view(), t.view()).unwrap(), 1.0);
    }

    #[test]
    fn errors() {
        let e = ConvNet::<f64>::new(
            ConvNetConfig {
                filters: 0,
                ..small()
            },
            0,
        )
        .unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e}");
        let e = ConvNet::<f64>::new(
            ConvNetConfig {
                kernel: 9,
                ..small()
            },
            0,
        )
        .unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e}");
        let e = ConvNet::<f64>::new(ConvNetConfig { pool: 7, ..small() }, 0).unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e}");
        let mut m = ConvNet::<f64>::new(small(), 0).unwrap();
        let one = ArrayD::from_elem(IxDyn(&[]), 1.0);
        let e = m.backward(one.view()).unwrap_err();
        assert!(matches!(e, Error::BackwardBeforeForward { .. }), "{e}");
        let e = m.predict(spread(&[2, 71], 1).view()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ConvNet.forward: input 0 has shape (2, 71), expected (N, 2, 6, 6) or (N, 72)"
        );
        let e = m
            .predict(ArrayD::zeros(IxDyn(&[0, 72])).view())
            .unwrap_err();
        assert!(matches!(e, Error::EmptyBatch { .. }), "{e}");
    }
}
