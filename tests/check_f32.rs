//! The f32 check: an f32-only bug (a sigmoid whose `exp` overflows in f32 but
//! not in f64) is caught, while the correct f32 layer passes on the same
//! inputs, and twin mismatches are typed errors.

use crate::check_common::cases;
use gradverify::check::{CheckConfig, Diagnosis, check, check_f32, check_f32_parallel};
use gradverify::strategies;
use gradverify::{Affine, Error, Float, Layer, Result, Sigmoid};
use ndarray::{Array1, Array2, ArrayD, ArrayViewD, Zip};
use proptest::prelude::*;

/// The textbook `exp(x) / (1 + exp(x))`: `exp` overflows to infinity at
/// x ≈ 88.7 in f32 (709.8 in f64), giving `inf / inf = NaN`.
#[derive(Clone, Default)]
struct NaiveOverflowingSigmoid<F> {
    out: Option<ArrayD<F>>,
}

impl<F: Float> Layer<F> for NaiveOverflowingSigmoid<F> {
    fn name(&self) -> String {
        "NaiveOverflowingSigmoid".into()
    }
    fn num_inputs(&self) -> usize {
        1
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, F>]) -> Result<ArrayD<F>> {
        let y = inputs[0].mapv(|x| x.exp() / (F::one() + x.exp()));
        self.out = Some(y.clone());
        Ok(y)
    }
    fn backward(&mut self, dout: ArrayViewD<'_, F>) -> Result<Vec<ArrayD<F>>> {
        let y = self
            .out
            .as_ref()
            .ok_or(Error::BackwardBeforeForward { op: "naive".into() })?;
        Ok(vec![
            Zip::from(&dout)
                .and(y)
                .map_collect(|&d, &y| d * (F::one() - y) * y),
        ])
    }
}

/// An array with its first element a large logit in `[89, 100]` (overflow
/// territory for f32, harmless for f64).
fn array_with_a_large_logit() -> impl Strategy<Value = ArrayD<f64>> {
    (strategies::any_array(), 89.0..100.0f64).prop_map(|(mut x, big)| {
        *x.iter_mut().next().expect("non-empty") = big;
        x
    })
}

proptest! {
    #![proptest_config(cases(16))]

    #[test]
    fn f32_overflow_is_caught_by_the_f32_check_only(x in array_with_a_large_logit()) {
        let cfg = CheckConfig::default();
        let inputs = std::slice::from_ref(&x);
        let r32 = check_f32(&mut NaiveOverflowingSigmoid::<f32>::default(), &mut NaiveOverflowingSigmoid::<f64>::default(), inputs, &cfg).unwrap();
        prop_assert!(!r32.passed);
        let t = r32.tensor("input 0").unwrap();
        prop_assert!(t.non_finite >= 1, "{}", r32);
        prop_assert!(matches!(t.diagnosis, Some(Diagnosis::NonFinite { analytic, .. }) if analytic >= 1), "{}", r32);
        // The same code in f64 is fine: only the f32 check can see the bug.
        let r64 = check(&mut NaiveOverflowingSigmoid::<f64>::default(), inputs, &cfg).unwrap();
        prop_assert!(r64.passed, "{}", r64);
        // And the crate's stable sigmoid passes the f32 check on the same inputs.
        let ok = check_f32(&mut Sigmoid::<f32>::new(), &mut Sigmoid::<f64>::new(), inputs, &cfg).unwrap();
        prop_assert!(ok.passed, "{}", ok);
    }
}

#[test]
fn f32_tolerance_is_f32_sized_not_f64_sized() {
    // A correct f32 Affine carries visible f32 rounding (relative errors
    // well above f64's ~1e-12) and still passes.
    let w = Array2::from_shape_fn((6, 5), |(i, j)| ((i * 5 + j) as f64 * 0.37).sin());
    let b = Array1::from_shape_fn(5, |j| 0.1 * j as f64 - 0.2);
    let x =
        Array2::from_shape_fn((4, 6), |(i, j)| ((i * 6 + j) as f64 * 0.71).cos() * 1.5).into_dyn();
    let mut a32 = Affine::<f32>::new(w.mapv(|v| v as f32), b.mapv(|v| v as f32)).unwrap();
    let mut a64 = Affine::<f64>::new(w.clone(), b.clone()).unwrap();
    let r = check_f32_parallel(
        &mut a32,
        &mut a64,
        std::slice::from_ref(&x),
        &CheckConfig::default(),
    )
    .unwrap();
    assert!(r.passed, "{r}");
    assert!(
        r.tensors.iter().any(|t| t.max_rel_err > 1e-9),
        "f32 rounding is visible:\n{r}"
    );
}

#[test]
fn twin_mismatch_is_a_typed_error() {
    let mut a32 = Affine::<f32>::new(Array2::zeros((4, 3)), Array1::zeros(3)).unwrap();
    let mut a64 = Affine::<f64>::new(Array2::zeros((3, 3)), Array1::zeros(3)).unwrap();
    let x = Array2::<f64>::ones((2, 4)).into_dyn();
    let err = check_f32(
        &mut a32,
        &mut a64,
        std::slice::from_ref(&x),
        &CheckConfig::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
    let err = check_f32(
        &mut a32,
        &mut Sigmoid::<f64>::new(),
        &[x],
        &CheckConfig::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::UnknownParam { .. }), "{err}");
}
