//! Property tests: on every generated case, the check of every correct
//! layer and of the MLP passes (in f64, and f32 against f64 numerics).

use crate::check_common::cases;
use gradverify::check::{CheckConfig, Invariant, Report, check, check_f32};
use gradverify::strategies::{self, LabelForm, array, classification, labels, same_shape_pair};
use gradverify::{
    Activation, Add, Affine, Layer, MeanSquaredError, Mlp, Mul, Relu, Sigmoid, SoftmaxWithLoss,
};
use ndarray::{ArrayD, Ix1, Ix2};
use proptest::prelude::*;

fn passes(
    layer: &mut dyn Layer<f64>,
    inputs: &[ArrayD<f64>],
    seed: u64,
) -> std::result::Result<Report, TestCaseError> {
    let cfg = CheckConfig::default().with_seed(seed);
    let r = check(layer, inputs, &cfg).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(r.passed, "{}", r);
    Ok(r)
}

/// An Affine case: input of rank 1 to 4, `W (in, out)`, `b (out,)`.
fn affine_case() -> impl Strategy<Value = (ArrayD<f64>, ArrayD<f64>, ArrayD<f64>)> {
    (strategies::affine_input_shape(), strategies::features()).prop_flat_map(|(shape, out)| {
        let fan_in: usize = if shape.len() == 1 {
            shape[0]
        } else {
            shape[1..].iter().product()
        };
        (array(shape), array(vec![fan_in, out]), array(vec![out]))
    })
}

fn affine_of(w: &ArrayD<f64>, b: &ArrayD<f64>) -> Affine<f64> {
    Affine::new(
        w.clone().into_dimensionality::<Ix2>().unwrap(),
        b.clone().into_dimensionality::<Ix1>().unwrap(),
    )
    .expect("b matches W")
}

/// An MLP case: sizes, activation, model seed, batch `x (N, D)`, labels.
#[derive(Debug, Clone)]
struct MlpCase {
    input: usize,
    hidden: Vec<usize>,
    classes: usize,
    activation: Activation,
    seed: u64,
    /// Nonzero biases for all layers (the model starts with zeros, where a
    /// dead ReLU row feeds exact zeros, i.e. exact kinks, to the next layer).
    biases: Vec<f64>,
    x: ArrayD<f64>,
    t: ArrayD<f64>,
}

fn mlp_case() -> impl Strategy<Value = MlpCase> {
    (
        strategies::batch(),
        strategies::features(),
        proptest::collection::vec(1..=8usize, 1..=3),
        2..=10usize,
        prop_oneof![Just(Activation::Relu), Just(Activation::Sigmoid)],
        any::<u64>(),
        strategies::label_form(),
    )
        .prop_flat_map(|(n, d, hidden, c, activation, seed, form)| {
            let nb = hidden.iter().sum::<usize>() + c;
            (
                array(vec![n, d]),
                labels(n, c, form),
                proptest::collection::vec(strategies::value(), nb),
            )
                .prop_map(move |(x, t, biases)| MlpCase {
                    input: d,
                    hidden: hidden.clone(),
                    classes: c,
                    activation,
                    seed,
                    biases,
                    x,
                    t,
                })
        })
}

impl MlpCase {
    fn model<F: gradverify::Float>(&self) -> Mlp<F> {
        let mut m = Mlp::new(
            self.input,
            &self.hidden,
            self.classes,
            self.activation,
            self.seed,
        )
        .expect("valid sizes");
        let mut next = self.biases.iter();
        for mut p in m.params().into_iter().filter(|p| p.name.starts_with('b')) {
            p.value
                .mapv_inplace(|_| F::of(0.5 * next.next().expect("one bias per unit")));
        }
        m
    }
}

proptest! {
    #![proptest_config(cases(24))]

    #[test]
    fn add_check_passes((x, y) in same_shape_pair(), seed in 0..1000u64) {
        passes(&mut Add::new(), &[x, y], seed)?;
    }

    #[test]
    fn mul_check_passes((x, y) in same_shape_pair(), seed in 0..1000u64) {
        passes(&mut Mul::new(), &[x, y], seed)?;
    }

    #[test]
    fn sigmoid_check_passes(x in strategies::any_array(), seed in 0..1000u64) {
        passes(&mut Sigmoid::new(), &[x], seed)?;
    }

    #[test]
    fn relu_check_passes(x in strategies::any_array(), seed in 0..1000u64) {
        passes(&mut Relu::new(), &[x], seed)?;
    }

    #[test]
    fn affine_check_passes_for_inputs_of_rank_1_to_4((x, w, b) in affine_case(), seed in 0..1000u64) {
        let r = passes(&mut affine_of(&w, &b), std::slice::from_ref(&x), seed)?;
        prop_assert_eq!(r.tensors.len(), 3);
        prop_assert_eq!(&r.tensors[0].shape, &x.shape().to_vec());
    }

    #[test]
    fn softmax_with_loss_check_passes_with_both_label_forms(
        (x, t, form) in classification(), seed in 0..1000u64
    ) {
        let cfg = CheckConfig::default().with_seed(seed).with_invariant(Invariant::RowsSumToZero { input: 0 });
        let r = check(&mut SoftmaxWithLoss::new(), &[x.clone(), t.clone()], &cfg).unwrap();
        prop_assert!(r.passed, "{:?} labels:\n{}", form, r);
        prop_assert!(r.contracts.iter().any(|c| c.name.contains("sum to 0") && c.passed));
        prop_assert_eq!(r.tensors.len(), 1, "labels are not checked");
        if form == LabelForm::Index {
            prop_assert_eq!(t.ndim(), 1);
        }
    }

    #[test]
    fn mse_check_passes((y, t) in same_shape_pair(), seed in 0..1000u64) {
        passes(&mut MeanSquaredError::new(), &[y, t], seed)?;
    }
}

proptest! {
    #![proptest_config(cases(16))]

    #[test]
    fn mlp_check_passes_for_random_sizes_and_both_activations(case in mlp_case(), seed in 0..1000u64) {
        let mut m = case.model::<f64>();
        let names = m.params().into_iter().map(|p| p.name).collect::<Vec<_>>();
        let r = passes(&mut m, &[case.x.clone(), case.t.clone()], seed)?;
        // input x plus every W and b.
        prop_assert_eq!(r.tensors.len(), 1 + names.len());
        prop_assert_eq!(r.tensors[1].name.as_str(), "W1");
    }

    #[test]
    fn f32_layers_pass_against_f64_numerics(
        case in mlp_case(), (sx, sy) in same_shape_pair(), (cx, ct, _) in classification()
    ) {
        let cfg = CheckConfig::default();
        let inputs = [case.x.clone(), case.t.clone()];
        let r = check_f32(&mut case.model::<f32>(), &mut case.model::<f64>(), &inputs, &cfg).unwrap();
        prop_assert!(r.passed, "{}", r);
        prop_assert_eq!(r.precision.as_str(), "f32 vs f64");
        let r = check_f32(&mut Sigmoid::<f32>::new(), &mut Sigmoid::<f64>::new(), std::slice::from_ref(&sx), &cfg).unwrap();
        prop_assert!(r.passed, "{}", r);
        let r = check_f32(&mut Mul::<f32>::new(), &mut Mul::<f64>::new(), &[sx, sy], &cfg).unwrap();
        prop_assert!(r.passed, "{}", r);
        let r = check_f32(&mut SoftmaxWithLoss::<f32>::new(), &mut SoftmaxWithLoss::<f64>::new(),
            &[cx.mapv(|v| v * 3.0), ct], &cfg).unwrap();
        prop_assert!(r.passed, "{}", r);
    }
}

#[test]
fn f32_affine_passes_and_its_twin_gets_the_f32_weights() {
    let w =
        ndarray::Array2::from_shape_fn((4, 3), |(i, j)| 0.1 + 0.37 * i as f64 - 0.21 * j as f64);
    let b = ndarray::arr1(&[0.3, -0.1, 0.2]);
    let mut a32 = Affine::<f32>::new(w.mapv(|v| v as f32), b.mapv(|v| v as f32)).unwrap();
    // The twin starts with other weights; the check overwrites them.
    let mut a64 =
        Affine::<f64>::new(ndarray::Array2::zeros((4, 3)), ndarray::Array1::zeros(3)).unwrap();
    let x =
        ndarray::Array2::from_shape_fn((5, 4), |(i, j)| (i as f64 - 2.0) * 0.4 + j as f64 * 0.1)
            .into_dyn();
    let r = check_f32(&mut a32, &mut a64, &[x], &CheckConfig::default()).unwrap();
    assert!(r.passed, "{r}");
    assert_eq!(a64.w()[[1, 0]], (0.1f64 + 0.37) as f32 as f64);
}
