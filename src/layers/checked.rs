//! The new layers and models through the crate's gradient checker
//! ([`crate::check`]): property tests on proptest shapes (kinks and ties
//! included, which the checker handles), and proof that it catches the
//! deliberately wrong backward of each layer — BatchNormalization's classic
//! constant-statistics bug among them.

use super::batch_norm::buggy::BatchNormConstantStats;
use super::numeric::spread;
use super::test_support::{
    any_shape, array_of, batch_norm_case, batch_norm_in_mode, channel_batch_norm, config,
    frozen_dropout, image_and_window, well_conditioned_images,
};
use super::*;
use crate::check::{CheckConfig, Report, check};
use crate::layer::Layer;
use crate::models::{ConvNet, ConvNetConfig, MlpBn};
use ndarray::{Array1, ArrayD, ArrayViewD, Axis, arr1};
use proptest::prelude::*;

fn run(layer: &mut dyn Layer<f64>, inputs: &[ArrayD<f64>]) -> Report {
    check(layer, inputs, &CheckConfig::default()).expect("the check runs")
}

#[track_caller]
fn assert_passes(layer: &mut dyn Layer<f64>, inputs: &[ArrayD<f64>]) {
    let r = run(layer, inputs);
    assert!(r.passed, "{r}");
}

/// `x` with one exact kink of LeakyRelu (its first element set to 0), if
/// it has at least 5 elements: the checker fails a tensor with more than 20%
/// of its elements at kinks rather than pass it vacuously.
fn with_zero(mut x: ArrayD<f64>) -> ArrayD<f64> {
    if x.len() >= 5 {
        x.as_slice_memory_order_mut().unwrap()[0] = 0.0;
    }
    x
}

/// `x` with a tie for MaxPooling: its second element (the first one's
/// neighbour along W, in the same window for most windows) set equal to
/// the first, raised to be the largest value so that it is the maximum.
fn with_tie(mut x: ArrayD<f64>) -> ArrayD<f64> {
    if x.len() >= 10 && x.shape()[3] >= 2 {
        let s = x.as_slice_memory_order_mut().unwrap();
        s[0] = 3.0;
        s[1] = 3.0;
    }
    x
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn tanh_passes_the_checker(x in any_shape().prop_flat_map(array_of)) {
        assert_passes(&mut Tanh::new(), &[x]);
    }

    #[test]
    fn softplus_passes_the_checker(x in any_shape().prop_flat_map(array_of)) {
        assert_passes(&mut Softplus::new(), &[x]);
    }

    #[test]
    fn leaky_relu_passes_the_checker_kinks_included(
        x in any_shape().prop_flat_map(array_of),
        alpha in 0.0f64..0.5,
        ties in any::<bool>(),
    ) {
        let x = if ties { with_zero(x) } else { x };
        assert_passes(&mut LeakyRelu::new(alpha).unwrap(), &[x]);
    }

    #[test]
    fn dropout_with_a_frozen_mask_passes_the_checker(
        x in any_shape().prop_flat_map(array_of),
        p in 0.0f64..0.9,
        seed in any::<u64>(),
        training in any::<bool>(),
    ) {
        assert_passes(&mut frozen_dropout(&x, p, seed, training), &[x]);
    }

    #[test]
    fn batch_norm_passes_the_checker(
        (x, gamma, beta) in batch_norm_case(2),
        training in any::<bool>(),
    ) {
        assert_passes(&mut batch_norm_in_mode(gamma, beta, &x, training), &[x]);
    }

    #[test]
    fn per_channel_batch_norm_passes_the_checker(
        x in well_conditioned_images(),
    ) {
        assert_passes(&mut channel_batch_norm(&x), &[x]);
    }

    #[test]
    fn convolution_passes_the_checker(
        ((x, (fh, fw, s, p)), fnum, seed) in (image_and_window(false), 1usize..=3, 0u64..1000),
    ) {
        let c = x.shape()[1];
        let w = spread(&[fnum, c, fh, fw], seed).into_dimensionality().unwrap();
        let b = spread(&[fnum], seed + 1).into_dimensionality().unwrap();
        assert_passes(&mut Convolution::new(w, b, s, p).unwrap(), &[x]);
    }

    #[test]
    fn max_pooling_passes_the_checker_ties_included(
        (x, (ph, pw, s, p)) in image_and_window(true),
        ties in any::<bool>(),
    ) {
        let x = if ties { with_tie(x) } else { x };
        assert_passes(&mut MaxPooling::new(ph, pw, s, p).unwrap(), &[x]);
    }

    #[test]
    fn average_pooling_passes_the_checker(
        (x, (ph, pw, s, p)) in image_and_window(true),
    ) {
        assert_passes(&mut AveragePooling::new(ph, pw, s, p).unwrap(), &[x]);
    }
}

#[test]
fn models_pass_the_checker() {
    let x = spread(&[4, 6], 1);
    let t = arr1(&[0.0, 2.0, 1.0, 1.0]).into_dyn();
    let mut m = MlpBn::<f64>::new(6, &[5, 4], 3, 0.3, 2).unwrap();
    m.forward(&[x.view(), t.view()]).unwrap();
    m.freeze_dropout(true);
    assert_passes(&mut m, &[x.clone(), t.clone()]);
    m.set_training(false);
    assert_passes(&mut m, &[x, t.clone()]);

    let cfg = ConvNetConfig {
        image: (2, 5, 5),
        filters: 3,
        kernel: 3,
        stride: 1,
        pad: 1,
        pool: 2,
        hidden: 4,
        classes: 3,
    };
    let mut c = ConvNet::<f64>::new(cfg, 3).unwrap();
    let x = spread(&[4, 2, 5, 5], 2);
    assert_passes(&mut c, &[x, t]);
}

/// The classic BatchNorm bug (backward as if μ and σ² were constants) is
/// caught in training mode: dx fails while dγ and dβ pass, which localises
/// the bug to the input path; and its dx violates BatchNorm's invariant that
/// each feature's input gradient sums to 0 over the batch.
#[test]
fn batch_norm_constant_statistics_bug_is_caught_and_localised() {
    for (shape, gamma) in [
        (vec![4, 3], arr1(&[1.5, -0.7, 0.3])),
        (vec![8, 2], arr1(&[1.0, 2.0])),
        (vec![2, 2, 3, 3], arr1(&[0.8, 1.2])),
    ] {
        let d = gamma.len();
        let bn = BatchNormalization::with_params(gamma, Array1::zeros(d)).unwrap();
        let x = spread(&shape, 1);
        let mut right = bn.clone();
        assert_passes(&mut right, std::slice::from_ref(&x));
        let mut wrong = BatchNormConstantStats(bn);
        let r = run(&mut wrong, std::slice::from_ref(&x));
        assert!(!r.passed, "{r}");
        let dx = r.tensor("input 0").unwrap();
        assert!(!dx.passed, "{r}");
        // Diagnosed from the evidence: the numeric dx sums to 0 per feature.
        assert!(
            matches!(
                dx.diagnosis,
                Some(crate::check::Diagnosis::FeatureSumsNotZero { .. })
            ),
            "{shape:?}: {:?}",
            dx.diagnosis
        );
        let said = dx.diagnosis.as_ref().unwrap().to_string();
        assert!(
            said.starts_with(
                "dx does not sum to zero over the batch per feature: \
                 the terms through the batch mean/variance are missing"
            ),
            "{said}"
        );
        // With BatchNorm's invariant configured, the contract fails too.
        let cfg = CheckConfig::default()
            .with_invariant(crate::check::Invariant::FeaturesSumToZero { input: 0 });
        let ri = check(&mut wrong, std::slice::from_ref(&x), &cfg).unwrap();
        let failed: Vec<_> = ri.failed_contracts().map(|c| c.name.clone()).collect();
        assert_eq!(
            failed,
            ["each feature of input 0's gradient sums to 0 over the batch"],
            "{ri}"
        );
        let ok = check(&mut right, std::slice::from_ref(&x), &cfg).unwrap();
        assert!(ok.passed, "{ok}");
        assert!(r.tensor("gamma").unwrap().passed, "{r}");
        assert!(r.tensor("beta").unwrap().passed, "{r}");
        // The invariant the full backward keeps and the bug breaks.
        wrong.forward(&[x.view()]).unwrap();
        let dout = spread(&shape, 2);
        let dx = wrong.backward(dout.view()).unwrap().remove(0);
        right.forward(&[x.view()]).unwrap();
        let dx_right = right.backward(dout.view()).unwrap().remove(0);
        let per_feature = |g: &ArrayD<f64>| -> Vec<f64> {
            (0..d).map(|j| g.index_axis(Axis(1), j).sum()).collect()
        };
        assert!(per_feature(&dx_right).iter().all(|s| s.abs() < 1e-10));
        assert!(per_feature(&dx).iter().any(|s| s.abs() > 1e-3));
    }
}

/// Every new layer's f32 backward against f64 numerics of its f64 twin
/// (catches f32-only problems such as overflow in Softplus's exp).
#[test]
fn f32_layers_pass_the_f32_check() {
    use crate::check::check_f32;
    let cfg = CheckConfig::default();
    let run32 = |a: &mut dyn Layer<f32>, b: &mut dyn Layer<f64>, x: &ArrayD<f64>| {
        let r = check_f32(a, b, std::slice::from_ref(x), &cfg).expect("the check runs");
        assert!(r.passed, "{r}");
    };
    let to32 = |a: &ArrayD<f64>| a.mapv(|v| v as f32);
    let x = spread(&[3, 4], 1);
    run32(&mut Tanh::new(), &mut Tanh::new(), &x);
    run32(&mut Softplus::new(), &mut Softplus::new(), &(&x * 30.0));
    run32(
        &mut LeakyRelu::new(0.1f32).unwrap(),
        &mut LeakyRelu::new(0.1).unwrap(),
        &x,
    );
    let keep = x.mapv(|v| v > -0.5);
    run32(
        &mut Dropout::new(0.3f32, 0).unwrap().with_fixed_mask(&keep),
        &mut Dropout::new(0.3, 0).unwrap().with_fixed_mask(&keep),
        &x,
    );
    let (g, b) = (arr1(&[1.5, -0.5, 1.0, 0.7]), arr1(&[0.0, 0.1, 0.2, 0.3]));
    run32(
        &mut BatchNormalization::with_params(g.mapv(|v| v as f32), b.mapv(|v| v as f32)).unwrap(),
        &mut BatchNormalization::with_params(g, b).unwrap(),
        &x,
    );
    let img = spread(&[2, 2, 5, 4], 2);
    let w = spread(&[3, 2, 3, 3], 3);
    let bias = arr1(&[0.1, 0.0, -0.1]);
    run32(
        &mut Convolution::new(
            to32(&w).into_dimensionality().unwrap(),
            bias.mapv(|v| v as f32),
            2,
            1,
        )
        .unwrap(),
        &mut Convolution::new(w.into_dimensionality().unwrap(), bias, 2, 1).unwrap(),
        &img,
    );
    run32(
        &mut MaxPooling::new(2, 2, 1, 1).unwrap(),
        &mut MaxPooling::new(2, 2, 1, 1).unwrap(),
        &img,
    );
    run32(
        &mut AveragePooling::new(3, 2, 2, 1).unwrap(),
        &mut AveragePooling::new(3, 2, 2, 1).unwrap(),
        &img,
    );
}

/// A deliberately wrong backward of `L`: `(inner layer, last input, dout)`.
type Bug<L> = fn(&mut L, &ArrayD<f64>, ArrayViewD<'_, f64>) -> crate::Result<Vec<ArrayD<f64>>>;

/// A correct layer, a wrong version of it, and the input to check both at.
type Case<'a> = (Box<dyn Layer<f64>>, Box<dyn Layer<f64>>, &'a ArrayD<f64>);

/// A layer whose backward is replaced by a deliberately wrong one; forward
/// and parameters are the inner layer's.
struct Wrong<L> {
    name: &'static str,
    inner: L,
    x: Option<ArrayD<f64>>,
    bug: Bug<L>,
}

impl<L: Layer<f64>> Layer<f64> for Wrong<L> {
    fn name(&self) -> String {
        self.name.into()
    }
    fn num_inputs(&self) -> usize {
        1
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, f64>]) -> crate::Result<ArrayD<f64>> {
        self.x = Some(inputs[0].to_owned());
        self.inner.forward(inputs)
    }
    fn backward(&mut self, dout: ArrayViewD<'_, f64>) -> crate::Result<Vec<ArrayD<f64>>> {
        let x = self.x.clone().expect("forward first");
        (self.bug)(&mut self.inner, &x, dout)
    }
    fn params(&mut self) -> Vec<crate::layer::Param<'_, f64>> {
        self.inner.params()
    }
}

fn wrong<L>(name: &'static str, inner: L, bug: Bug<L>) -> Wrong<L> {
    Wrong {
        name,
        inner,
        x: None,
        bug,
    }
}

/// One deliberately wrong backward per new layer, each caught by the
/// checker (and the correct layer passing on the same case).
#[test]
fn wrong_backwards_are_caught_by_the_checker() {
    use crate::layers::sigmoid::sigmoid;
    use ndarray::Zip;
    let x = spread(&[3, 4], 1);
    let img = spread(&[2, 2, 4, 4], 2);
    let mut cases: Vec<Case<'_>> = vec![
        (
            Box::new(Tanh::new()),
            // dout · (1 − x²): the input where the output belongs.
            Box::new(wrong("TanhUsingInput", Tanh::new(), |_, x, d| {
                Ok(vec![
                    Zip::from(&d).and(x).map_collect(|&d, &x| d * (1.0 - x * x)),
                ])
            })),
            &x,
        ),
        (
            Box::new(LeakyRelu::new(0.2).unwrap()),
            // ReLU's backward: the α slope forgotten.
            Box::new(wrong(
                "LeakyReluWithoutAlpha",
                LeakyRelu::new(0.2).unwrap(),
                |_, x, d| {
                    Ok(vec![
                        Zip::from(&d)
                            .and(x)
                            .map_collect(|&d, &x| if x > 0.0 { d } else { 0.0 }),
                    ])
                },
            )),
            &x,
        ),
        (
            Box::new(Softplus::new()),
            // σ(y) instead of σ(x).
            Box::new(wrong(
                "SoftplusSigmoidOfOutput",
                Softplus::new(),
                |_, x, d| {
                    let y = x.mapv(softplus::softplus);
                    Ok(vec![
                        Zip::from(&d).and(&y).map_collect(|&d, &y| d * sigmoid(y)),
                    ])
                },
            )),
            &x,
        ),
        (
            Box::new(
                Dropout::new(0.5, 3)
                    .unwrap()
                    .with_fixed_mask(&x.mapv(|v| v > -0.5)),
            ),
            // The kept units' 1/(1−p) scale forgotten in backward.
            Box::new(wrong(
                "DropoutUnscaledBackward",
                Dropout::new(0.5, 3)
                    .unwrap()
                    .with_fixed_mask(&x.mapv(|v| v > -0.5)),
                |l, _, d| {
                    let m = l.mask().unwrap().mapv(|m| if m > 0.0 { 1.0 } else { 0.0 });
                    Ok(vec![&d * &m])
                },
            )),
            &x,
        ),
        (
            Box::new(
                Convolution::new(
                    spread(&[2, 2, 3, 3], 3).into_dimensionality().unwrap(),
                    arr1(&[0.1, -0.1]),
                    1,
                    1,
                )
                .unwrap(),
            ),
            // dW with the kernel's two axes swapped (square kernel: same shape).
            Box::new(wrong(
                "ConvolutionTransposedKernelGradient",
                Convolution::new(
                    spread(&[2, 2, 3, 3], 3).into_dimensionality().unwrap(),
                    arr1(&[0.1, -0.1]),
                    1,
                    1,
                )
                .unwrap(),
                |l, _, d| {
                    let dx = l.backward(d)?;
                    l.replace_dw(|dw| {
                        dw.permuted_axes([0, 1, 3, 2])
                            .as_standard_layout()
                            .into_owned()
                    });
                    Ok(dx)
                },
            )),
            &img,
        ),
        (
            Box::new(MaxPooling::new(2, 2, 2, 0).unwrap()),
            // The gradient spread over the window (average pooling's rule).
            Box::new(wrong(
                "MaxPoolingSpreadGradient",
                MaxPooling::new(2, 2, 2, 0).unwrap(),
                |_, x, d| {
                    let mut avg = AveragePooling::new(2, 2, 2, 0).unwrap();
                    avg.forward(&[x.view()])?;
                    Ok(vec![&avg.backward(d)?[0] * 4.0])
                },
            )),
            &img,
        ),
        (
            Box::new(AveragePooling::new(3, 3, 1, 1).unwrap()),
            // The division by the window size forgotten.
            Box::new(wrong(
                "AveragePoolingUndivided",
                AveragePooling::new(3, 3, 1, 1).unwrap(),
                |l, _, d| Ok(vec![&l.backward(d)?[0] * 9.0]),
            )),
            &img,
        ),
    ];
    for (right, bad, input) in &mut cases {
        let r = run(right.as_mut(), std::slice::from_ref(*input));
        assert!(r.passed, "{r}");
        let r = run(bad.as_mut(), std::slice::from_ref(*input));
        assert!(!r.passed, "{} not caught:\n{r}", bad.name());
    }
}
