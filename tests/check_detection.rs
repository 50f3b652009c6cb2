//! Proof that the checker catches bugs: deliberately wrong backward passes
//! (test-only layers, each named after its bug), each CAUGHT on generated
//! shapes and diagnosed where a pattern applies. Every buggy layer has a
//! correct control run on the same case, so a catch is due to the bug.

use crate::check_common::{cases, param};
use gradverify::check::{CheckConfig, Diagnosis, Report, check};
use gradverify::strategies::{self, array, classification, same_shape_pair};
use gradverify::{Error, Layer, Mul, Param, Result, Sigmoid, SoftmaxWithLoss};
use ndarray::{Array1, Array2, ArrayD, ArrayViewD, Axis, Ix2, IxDyn, Zip};
use proptest::prelude::*;

fn run(layer: &mut dyn Layer<f64>, inputs: &[ArrayD<f64>]) -> Report {
    check(layer, inputs, &CheckConfig::default()).expect("the check runs")
}

fn contract_failed(r: &Report, name: &str) -> bool {
    r.contracts.iter().any(|c| c.name == name && !c.passed)
}

fn diagnosis<'a>(r: &'a Report, tensor: &str) -> &'a Diagnosis {
    r.tensor(tensor)
        .and_then(|t| t.diagnosis.as_ref())
        .expect("a failing tensor is diagnosed")
}

/// Shapes with at least two elements (a one-element tensor has no pattern).
fn multi_element_array() -> impl Strategy<Value = ArrayD<f64>> {
    strategies::any_shape()
        .prop_filter("at least 2 elements", |s| s.iter().product::<usize>() >= 2)
        .prop_flat_map(array)
}

// ---------------------------------------------------------------- wrappers

/// A layer whose backward passes its input gradients through `bug` (after
/// the correct backward of `inner`).
#[derive(Clone)]
struct Bent<L> {
    inner: L,
    name: &'static str,
    bug: fn(Vec<ArrayD<f64>>) -> Vec<ArrayD<f64>>,
}

impl<L: Layer<f64>> Layer<f64> for Bent<L> {
    fn name(&self) -> String {
        self.name.into()
    }
    fn num_inputs(&self) -> usize {
        self.inner.num_inputs()
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
        self.inner.forward(inputs)
    }
    fn backward(&mut self, dout: ArrayViewD<'_, f64>) -> Result<Vec<ArrayD<f64>>> {
        Ok((self.bug)(self.inner.backward(dout)?))
    }
}

fn doubled_gradient_sigmoid() -> Bent<Sigmoid<f64>> {
    Bent {
        inner: Sigmoid::new(),
        name: "DoubledGradientSigmoid",
        bug: |mut g| {
            g[0] *= 2.0;
            g
        },
    }
}

fn one_element_off_sigmoid() -> Bent<Sigmoid<f64>> {
    Bent {
        inner: Sigmoid::new(),
        name: "OneElementOffSigmoid",
        bug: |mut g| {
            if let Some(v) = g[0].iter_mut().next() {
                *v *= 1.01;
            }
            g
        },
    }
}

/// SoftmaxWithLoss whose gradient misses the division by the batch size.
#[derive(Clone)]
struct SoftmaxMissingDivN(SoftmaxWithLoss<f64>, usize);

impl Layer<f64> for SoftmaxMissingDivN {
    fn name(&self) -> String {
        "SoftmaxMissingDivN".into()
    }
    fn num_inputs(&self) -> usize {
        2
    }
    fn num_differentiable(&self) -> usize {
        1
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
        self.1 = inputs[0].shape()[0];
        self.0.forward(inputs)
    }
    fn backward(&mut self, dout: ArrayViewD<'_, f64>) -> Result<Vec<ArrayD<f64>>> {
        let n = self.1 as f64;
        Ok(self.0.backward(dout)?.into_iter().map(|g| g * n).collect())
    }
}

// --------------------------------------------------- hand-written layers

/// Element-wise layers written out with one bug each.
#[derive(Clone, Copy, PartialEq, Debug)]
enum ElementwiseBug {
    /// Sigmoid backward `dout·(1−x)·x`: uses the input instead of the output.
    SigmoidUsesX,
    /// ReLU backward passes the gradient where `x <= 0` instead of `x > 0`.
    ReluMaskInverted,
    /// Sigmoid backward `(1−y)·y`, ignoring `dout`.
    SigmoidIgnoresDout,
    /// Sigmoid backward using the output cached by the first of two forwards.
    SigmoidStaleCache,
}

#[derive(Clone)]
struct BuggyElementwise {
    bug: ElementwiseBug,
    x: Option<ArrayD<f64>>,
    out: Option<ArrayD<f64>>,
    /// The cache of the forward before the latest one.
    prev_out: Option<ArrayD<f64>>,
}

impl BuggyElementwise {
    fn new(bug: ElementwiseBug) -> Self {
        BuggyElementwise {
            bug,
            x: None,
            out: None,
            prev_out: None,
        }
    }
}

fn sig(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

impl Layer<f64> for BuggyElementwise {
    fn name(&self) -> String {
        format!("{:?}", self.bug)
    }
    fn num_inputs(&self) -> usize {
        1
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
        let x = inputs[0].to_owned();
        let out = if self.bug == ElementwiseBug::ReluMaskInverted {
            x.mapv(|v| v.max(0.0))
        } else {
            x.mapv(sig)
        };
        self.prev_out = self.out.take();
        self.x = Some(x);
        self.out = Some(out.clone());
        Ok(out)
    }
    fn backward(&mut self, dout: ArrayViewD<'_, f64>) -> Result<Vec<ArrayD<f64>>> {
        let missing = || Error::BackwardBeforeForward { op: "buggy".into() };
        let x = self.x.as_ref().ok_or_else(missing)?;
        let out = self.out.as_ref().ok_or_else(missing)?;
        let g = match self.bug {
            ElementwiseBug::SigmoidUsesX => Zip::from(&dout)
                .and(x)
                .map_collect(|&d, &x| d * (1.0 - x) * x),
            ElementwiseBug::ReluMaskInverted => Zip::from(&dout)
                .and(x)
                .map_collect(|&d, &x| if x <= 0.0 { d } else { 0.0 }),
            ElementwiseBug::SigmoidIgnoresDout => out.mapv(|y| (1.0 - y) * y),
            ElementwiseBug::SigmoidStaleCache => {
                let y = self.prev_out.as_ref().unwrap_or(out);
                Zip::from(&dout)
                    .and(y)
                    .map_collect(|&d, &y| d * (1.0 - y) * y)
            }
        };
        Ok(vec![g])
    }
}

/// Affine `(N, D) · (D, M) + b`, written out, with an optional bug.
#[derive(Clone, Copy, PartialEq, Debug)]
enum AffineBug {
    None,
    /// `dW` stored transposed.
    TransposedDw,
    /// `db` = the first row of `dout` instead of the sum over the batch.
    DbFirstRow,
    /// `dW += ...` across backward calls.
    AccumulatingDw,
}

#[derive(Clone)]
struct BuggyAffine {
    w: Array2<f64>,
    b: Array1<f64>,
    dw: Option<Array2<f64>>,
    db: Option<Array1<f64>>,
    x: Option<Array2<f64>>,
    bug: AffineBug,
}

impl BuggyAffine {
    fn new(w: ArrayD<f64>, b: ArrayD<f64>, bug: AffineBug) -> Self {
        BuggyAffine {
            w: w.into_dimensionality().expect("2-D W"),
            b: b.into_dimensionality().expect("1-D b"),
            dw: None,
            db: None,
            x: None,
            bug,
        }
    }
}

impl Layer<f64> for BuggyAffine {
    fn name(&self) -> String {
        format!("BuggyAffine({:?})", self.bug)
    }
    fn num_inputs(&self) -> usize {
        1
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
        let x = inputs[0]
            .to_owned()
            .into_dimensionality::<Ix2>()
            .expect("2-D x");
        let y = x.dot(&self.w) + &self.b;
        self.x = Some(x);
        Ok(y.into_dyn())
    }
    fn backward(&mut self, dout: ArrayViewD<'_, f64>) -> Result<Vec<ArrayD<f64>>> {
        let x = self.x.as_ref().ok_or(Error::BackwardBeforeForward {
            op: "BuggyAffine".into(),
        })?;
        let d = dout.into_dimensionality::<Ix2>().expect("2-D dout");
        let dx = d.dot(&self.w.t());
        let mut dw = x.t().dot(&d);
        let mut db = d.sum_axis(Axis(0));
        match self.bug {
            AffineBug::None => {}
            AffineBug::TransposedDw => dw = dw.t().to_owned(),
            AffineBug::DbFirstRow => db = d.row(0).to_owned(),
            AffineBug::AccumulatingDw => {
                if let Some(old) = &self.dw {
                    dw += old;
                }
            }
        }
        self.dw = Some(dw);
        self.db = Some(db);
        Ok(vec![dx.into_dyn()])
    }
    fn params(&mut self) -> Vec<Param<'_, f64>> {
        vec![
            param("W", &mut self.w, self.dw.as_ref()),
            param("b", &mut self.b, self.db.as_ref()),
        ]
    }
}

/// A square Affine case: `x (N, D)`, `W (D, D)`, `b (D,)` with `N >= 2`.
fn square_affine_case() -> impl Strategy<Value = (ArrayD<f64>, ArrayD<f64>, ArrayD<f64>)> {
    (2..=strategies::MAX_BATCH, strategies::square_side())
        .prop_flat_map(|(n, d)| (array(vec![n, d]), array(vec![d, d]), array(vec![d])))
}

fn affine(w: &ArrayD<f64>, b: &ArrayD<f64>, bug: AffineBug) -> BuggyAffine {
    BuggyAffine::new(w.clone(), b.clone(), bug)
}

// ------------------------------------------------------------------ tests

proptest! {
    #![proptest_config(cases(12))]

    #[test]
    fn gradient_times_two_is_caught_and_diagnosed_as_scale_2(x in multi_element_array()) {
        let r = run(&mut doubled_gradient_sigmoid(), std::slice::from_ref(&x));
        prop_assert!(!r.passed);
        prop_assert!(matches!(diagnosis(&r, "input 0"),
            Diagnosis::Scaled { factor, .. } if (factor - 2.0).abs() < 1e-6), "{}", r);
        prop_assert!(run(&mut Sigmoid::new(), &[x]).passed);
    }

    #[test]
    fn softmax_missing_div_n_is_caught_and_diagnosed_as_batch_scaling(
        (x, t, _form) in classification().prop_filter("batch >= 2", |(x, _, _)| x.shape()[0] >= 2)
    ) {
        let n = x.shape()[0];
        let inputs = [x, t];
        let r = run(&mut SoftmaxMissingDivN(SoftmaxWithLoss::new(), 0), &inputs);
        prop_assert!(!r.passed);
        prop_assert!(matches!(diagnosis(&r, "input 0"),
            Diagnosis::Scaled { factor, batch_size: Some(b) } if *b == n && (factor - n as f64).abs() < 1e-6 * n as f64),
            "{}", r);
        prop_assert!(run(&mut SoftmaxWithLoss::new(), &inputs).passed);
    }

    #[test]
    fn transposed_dw_of_square_w_is_caught_and_diagnosed((x, w, b) in square_affine_case()) {
        let r = run(&mut affine(&w, &b, AffineBug::TransposedDw), std::slice::from_ref(&x));
        prop_assert!(!r.passed);
        prop_assert!(r.tensor("input 0").unwrap().passed && r.tensor("b").unwrap().passed);
        prop_assert_eq!(diagnosis(&r, "W"), &Diagnosis::Transposed, "{}", r);
        prop_assert!(run(&mut affine(&w, &b, AffineBug::None), &[x]).passed);
    }

    #[test]
    fn sign_flip_is_caught_and_diagnosed((x, y) in same_shape_pair()
        .prop_filter("at least 2 elements", |(x, _)| x.len() >= 2)) {
        let mut neg = Bent { inner: Mul::new(), name: "NegatedMul", bug: |g| g.into_iter().map(|g| -g).collect() };
        let inputs = [x, y];
        let r = run(&mut neg, &inputs);
        prop_assert!(!r.passed);
        prop_assert_eq!(diagnosis(&r, "input 0"), &Diagnosis::SignFlipped, "{}", r);
        prop_assert_eq!(diagnosis(&r, "input 1"), &Diagnosis::SignFlipped, "{}", r);
        prop_assert!(run(&mut Mul::new(), &inputs).passed);
    }

    #[test]
    fn one_element_off_by_one_percent_is_caught_and_located(x in multi_element_array()) {
        let r = run(&mut one_element_off_sigmoid(), std::slice::from_ref(&x));
        prop_assert!(!r.passed);
        let t = r.tensor("input 0").unwrap();
        prop_assert_eq!(t.failed, 1);
        prop_assert!(matches!(diagnosis(&r, "input 0"),
            Diagnosis::SingleElement { index, .. } if index.iter().all(|&i| i == 0)), "{}", r);
        prop_assert!(run(&mut Sigmoid::new(), &[x]).passed);
    }

    #[test]
    fn db_from_first_row_is_caught_and_diagnosed((x, w, b) in square_affine_case()) {
        let r = run(&mut affine(&w, &b, AffineBug::DbFirstRow), std::slice::from_ref(&x));
        prop_assert!(!r.passed);
        prop_assert_eq!(diagnosis(&r, "b"), &Diagnosis::FirstRowOnly, "{}", r);
        prop_assert!(r.tensor("W").unwrap().passed);
    }

    #[test]
    fn sigmoid_backward_using_x_is_caught(x in strategies::any_array()) {
        let r = run(&mut BuggyElementwise::new(ElementwiseBug::SigmoidUsesX), std::slice::from_ref(&x));
        prop_assert!(!r.passed && !r.tensor("input 0").unwrap().passed, "{}", r);
    }

    #[test]
    fn relu_mask_inverted_is_caught(x in strategies::any_array()) {
        let r = run(&mut BuggyElementwise::new(ElementwiseBug::ReluMaskInverted), std::slice::from_ref(&x));
        prop_assert!(!r.tensor("input 0").unwrap().passed, "{}", r);
        prop_assert!(run(&mut gradverify::Relu::new(), &[x]).passed);
    }

    #[test]
    fn mul_with_swapped_gradients_is_caught((x, y) in same_shape_pair()) {
        let mut swapped = Bent { inner: Mul::new(), name: "SwappedMul", bug: |mut g| { g.swap(0, 1); g } };
        let r = run(&mut swapped, &[x, y]);
        prop_assert!(!r.tensor("input 0").unwrap().passed, "{}", r);
        prop_assert!(!r.tensor("input 1").unwrap().passed, "{}", r);
    }

    #[test]
    fn backward_ignoring_dout_is_caught(x in strategies::any_array()) {
        let r = run(&mut BuggyElementwise::new(ElementwiseBug::SigmoidIgnoresDout), std::slice::from_ref(&x));
        prop_assert!(!r.passed);
        prop_assert!(contract_failed(&r, "zero dout gives zero gradients"), "{}", r);
        prop_assert!(!r.tensor("input 0").unwrap().passed, "{}", r);
    }

    #[test]
    fn backward_using_the_first_of_two_forwards_is_caught(x in strategies::any_array()) {
        let r = run(&mut BuggyElementwise::new(ElementwiseBug::SigmoidStaleCache), std::slice::from_ref(&x));
        prop_assert!(!r.passed);
        // The numeric comparison alone cannot see it (forward then backward is
        // correct); the contract does.
        prop_assert!(r.tensor("input 0").unwrap().passed);
        prop_assert!(contract_failed(&r, "backward uses the latest forward"), "{}", r);
    }

    #[test]
    fn param_gradient_accumulating_across_calls_is_caught((x, w, b) in square_affine_case()) {
        let r = run(&mut affine(&w, &b, AffineBug::AccumulatingDw), std::slice::from_ref(&x));
        prop_assert!(!r.passed);
        let c = r.contracts.iter().find(|c| c.name == "backward repeatable").unwrap();
        prop_assert!(!c.passed && c.detail.contains("accumulate"), "{}", r);
    }
}

#[test]
fn the_issue_reference_sigmoid_bug_reads_well() {
    // A fixed case to look at: every line of the failing report names the bug.
    let x = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![0.5, -1.0, 2.0, 1.5, 0.1, -0.7]).unwrap();
    let r = run(&mut doubled_gradient_sigmoid(), &[x]);
    let text = r.to_string();
    assert!(text.contains("c = 2.000000"), "{text}");
    assert!(text.contains("DoubledGradientSigmoid"), "{text}");
}

/// Per tensor: verdict, failing and kink counts, diagnosis.
fn verdicts(r: &Report) -> Vec<(String, bool, usize, usize, Option<Diagnosis>)> {
    r.tensors
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.passed,
                t.failed,
                t.at_kink,
                t.diagnosis.clone(),
            )
        })
        .collect()
}

/// Checks `layer` with the second stencil on demand and always; asserts
/// the same verdicts, and that on demand never evaluates more.
fn same_verdicts_both_ways(
    layer: &mut dyn Layer<f64>,
    inputs: &[ArrayD<f64>],
) -> std::result::Result<Report, TestCaseError> {
    use gradverify::check::Richardson;
    let cfg = CheckConfig::default();
    let lazy = check(
        layer,
        inputs,
        &cfg.clone().with_richardson(Richardson::OnDemand),
    )
    .expect("the check runs");
    let always =
        check(layer, inputs, &cfg.with_richardson(Richardson::Always)).expect("the check runs");
    prop_assert_eq!(lazy.passed, always.passed, "{}\n{}", lazy, always);
    prop_assert_eq!(verdicts(&lazy), verdicts(&always), "{}\n{}", lazy, always);
    for (l, a) in lazy.tensors.iter().zip(&always.tensors) {
        prop_assert_eq!(a.both_stencils, a.checked);
        prop_assert!(l.both_stencils <= l.checked);
        // Every failing or kinked element got the full analysis.
        prop_assert!(l.both_stencils >= l.failed + l.at_kink, "{}", lazy);
    }
    Ok(lazy)
}

proptest! {
    #![proptest_config(cases(12))]

    #[test]
    fn richardson_on_demand_gives_the_verdicts_of_always(
        x in multi_element_array(),
        (xa, w, b) in square_affine_case(),
    ) {
        same_verdicts_both_ways(&mut doubled_gradient_sigmoid(), std::slice::from_ref(&x))?;
        same_verdicts_both_ways(&mut one_element_off_sigmoid(), std::slice::from_ref(&x))?;
        let ok = same_verdicts_both_ways(&mut Sigmoid::new(), std::slice::from_ref(&x))?;
        prop_assert!(ok.passed);
        for bug in [AffineBug::None, AffineBug::TransposedDw, AffineBug::DbFirstRow] {
            same_verdicts_both_ways(&mut affine(&w, &b, bug), std::slice::from_ref(&xa))?;
        }
        // ReLU with a third of its inputs exactly at the kink.
        let kinked = x.mapv(|v| if (v * 7.0).fract().abs() < 0.33 { 0.0 } else { v });
        same_verdicts_both_ways(&mut gradverify::Relu::new(), &[kinked])?;
    }
}

#[test]
fn richardson_on_demand_settles_almost_all_of_an_affine_with_the_outer_pair() {
    let x = ArrayD::from_shape_fn(IxDyn(&[3, 20]), |i| {
        ((i[0] * 7 + i[1] * 3) % 11) as f64 / 5.0 - 1.0
    });
    let w = ArrayD::from_shape_fn(IxDyn(&[20, 6]), |i| {
        ((i[0] * 5 + i[1]) % 13) as f64 / 6.0 - 1.0
    });
    let b = ArrayD::from_shape_fn(IxDyn(&[6]), |i| i[0] as f64 / 4.0);
    let r = run(&mut affine(&w, &b, AffineBug::None), &[x]);
    assert!(r.passed, "{r}");
    // Affine is linear in every element (`F(h) = B(h)` up to round-off):
    // only elements whose gradient is so small that the loss's round-off
    // bound exceeds a quarter of their tolerance need the second stencil.
    let checked: usize = r.tensors.iter().map(|t| t.checked).sum();
    let both: usize = r.tensors.iter().map(|t| t.both_stencils).sum();
    assert!(
        both * 20 <= checked,
        "{both} of {checked} needed both stencils: {r}"
    );
}

/// Checks `layer` in fast mode (`k` directions per tensor) and in full mode;
/// asserts that fast mode hands exactly the tensors the full check fails to
/// the full check (which then gives the full verdict), and passes the rest
/// on its directions alone.
fn fast_flags_what_full_fails(
    layer: &mut dyn Layer<f64>,
    inputs: &[ArrayD<f64>],
    k: usize,
) -> std::result::Result<(), TestCaseError> {
    use gradverify::check::{CheckedMode, Mode};
    let full = run(layer, inputs);
    let fast = check(
        layer,
        inputs,
        &CheckConfig::default().with_mode(Mode::Fast { directions: k }),
    )
    .expect("the check runs");
    prop_assert_eq!(verdicts(&fast), verdicts(&full), "{}\n{}", fast, full);
    for t in &fast.tensors {
        let want = if t.passed {
            CheckedMode::Fast { directions: k }
        } else {
            CheckedMode::FastThenFull { directions: k }
        };
        prop_assert_eq!(t.mode, want, "{}", fast);
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(12))]

    /// Fast mode's directions (dense for vectors, rank one `u ⊗ w` for
    /// matrices and higher) catch every deliberately wrong backward the
    /// full check catches, down to one element 1 % off, with one direction
    /// and with two.
    #[test]
    fn fast_mode_catches_what_the_full_check_catches(
        x in multi_element_array(),
        (xa, w, b) in square_affine_case(),
        (xm, ym) in same_shape_pair(),
        k in 1usize..=2,
    ) {
        fast_flags_what_full_fails(&mut doubled_gradient_sigmoid(), std::slice::from_ref(&x), k)?;
        fast_flags_what_full_fails(&mut one_element_off_sigmoid(), std::slice::from_ref(&x), k)?;
        fast_flags_what_full_fails(&mut Sigmoid::new(), std::slice::from_ref(&x), k)?;
        for bug in [AffineBug::None, AffineBug::TransposedDw, AffineBug::DbFirstRow] {
            fast_flags_what_full_fails(&mut affine(&w, &b, bug), std::slice::from_ref(&xa), k)?;
        }
        let mut neg = Bent { inner: Mul::new(), name: "NegatedMul", bug: |g| g.into_iter().map(|g| -g).collect() };
        fast_flags_what_full_fails(&mut neg, &[xm, ym], k)?;
    }
}
