//! A layer written outside the crate, through the public API only, checked
//! with a few lines; and the report's forms (table, JSON, errors).

use gradverify::check::{
    CheckConfig, Diagnosis, Mode, TensorKind, assert_gradients, check, check_parallel,
};
use gradverify::{Error, Layer, Param, Result};
use ndarray::{Array1, ArrayD, ArrayViewD, Axis, IxDyn, array};

/// `y[n, j] = softplus(w[j] · x[n, j]) + c`: a parameterised element-wise
/// layer with a weight per feature and a scalar offset.
#[derive(Clone)]
struct ScaledSoftplus {
    w: Array1<f64>,
    c: ArrayD<f64>,
    dw: Option<Array1<f64>>,
    dc: Option<ArrayD<f64>>,
    x: Option<ArrayD<f64>>,
}

impl ScaledSoftplus {
    fn new(w: Array1<f64>) -> Self {
        ScaledSoftplus {
            w,
            c: ArrayD::from_elem(IxDyn(&[]), 0.25),
            dw: None,
            dc: None,
            x: None,
        }
    }
}

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

impl Layer<f64> for ScaledSoftplus {
    fn name(&self) -> String {
        "ScaledSoftplus".into()
    }
    fn num_inputs(&self) -> usize {
        1
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
        let x = inputs[0].to_owned();
        let z = &x * &self.w;
        self.x = Some(x);
        Ok(z.mapv(|v| v.exp().ln_1p()) + self.c[[]])
    }
    fn backward(&mut self, dout: ArrayViewD<'_, f64>) -> Result<Vec<ArrayD<f64>>> {
        let x = self.x.as_ref().ok_or(Error::BackwardBeforeForward {
            op: "ScaledSoftplus.backward".into(),
        })?;
        let s = (x * &self.w).mapv(sigmoid) * &dout;
        let dw = (&s * x).sum_axis(Axis(0));
        self.dw = Some(dw.into_dimensionality().expect("1-D"));
        self.dc = Some(ArrayD::from_elem(IxDyn(&[]), dout.sum()));
        Ok(vec![&s * &self.w])
    }
    fn params(&mut self) -> Vec<Param<'_, f64>> {
        vec![
            Param {
                name: "w".into(),
                value: self.w.view_mut().into_dyn(),
                grad: self.dw.as_ref().map(|g| g.view().into_dyn()),
            },
            Param {
                name: "c".into(),
                value: self.c.view_mut(),
                grad: self.dc.as_ref().map(|g| g.view()),
            },
        ]
    }
}

fn input() -> ArrayD<f64> {
    array![[0.5, -1.0, 2.0], [1.5, 0.1, -0.7]].into_dyn()
}

#[test]
fn user_layer_passes_in_a_few_lines() {
    let mut layer = ScaledSoftplus::new(array![0.8, -1.3, 0.4]);
    let report = assert_gradients(&mut layer, &[input()], &CheckConfig::default());
    assert_eq!(report.tensors.len(), 3);
    assert_eq!(report.tensors[0].name, "input 0");
    assert_eq!(report.tensors[0].kind, TensorKind::Input { index: 0 });
    assert_eq!(report.tensors[1].name, "w");
    assert_eq!(report.tensors[2].name, "c");
    assert_eq!(report.tensors[2].shape, Vec::<usize>::new());
    assert!(report.tensors.iter().all(|t| t.passed && t.failed == 0));
    assert_eq!(report.tensors[0].checked, 6);
    assert!(report.tensor("w").unwrap().max_rel_err < 1e-8);
    assert!(report.contracts.iter().all(|c| c.passed), "{report}");
    // Parameters are restored exactly.
    assert_eq!(layer.w, array![0.8, -1.3, 0.4]);
}

#[test]
fn parallel_report_equals_serial_report() {
    let x = ArrayD::from_shape_fn(IxDyn(&[8, 3]), |d| {
        (d[0] as f64 - 3.5) * 0.3 + d[1] as f64 * 0.1
    });
    let a = check(
        &mut ScaledSoftplus::new(array![0.8, -1.3, 0.4]),
        std::slice::from_ref(&x),
        &CheckConfig::default(),
    )
    .unwrap();
    let b = check_parallel(
        &mut ScaledSoftplus::new(array![0.8, -1.3, 0.4]),
        &[x],
        &CheckConfig::default(),
    )
    .unwrap();
    assert_eq!(a, b);
    assert_eq!(a.to_json(), b.to_json());
}

/// The same layer with `dw` forgetting the factor `x`.
#[derive(Clone)]
struct WrongDw(ScaledSoftplus);

impl Layer<f64> for WrongDw {
    fn name(&self) -> String {
        "WrongDw".into()
    }
    fn num_inputs(&self) -> usize {
        1
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
        self.0.forward(inputs)
    }
    fn backward(&mut self, dout: ArrayViewD<'_, f64>) -> Result<Vec<ArrayD<f64>>> {
        let g = self.0.backward(dout.view())?;
        let x = self.0.x.as_ref().unwrap();
        let s = (x * &self.0.w).mapv(sigmoid) * &dout;
        self.0.dw = Some(s.sum_axis(Axis(0)).into_dimensionality().unwrap());
        Ok(g)
    }
    fn params(&mut self) -> Vec<Param<'_, f64>> {
        self.0.params()
    }
}

#[test]
fn report_table_and_json_name_the_failure() {
    let mut layer = WrongDw(ScaledSoftplus::new(array![0.8, -1.3, 0.4]));
    let report = check(&mut layer, &[input()], &CheckConfig::default()).unwrap();
    assert!(!report.passed);
    let w = report.tensor("w").unwrap();
    assert!(!w.passed && w.failed > 0);
    assert!(report.tensor("input 0").unwrap().passed);
    assert!(report.tensor("c").unwrap().passed);
    let worst = w.worst.as_ref().unwrap();
    assert_eq!(worst.index.len(), 1);
    assert!((worst.analytic - worst.numeric).abs() > 1e-3);
    let text = report.to_string();
    assert!(text.contains("FAILED"), "{text}");
    assert!(
        text.contains("max rel err") && text.contains("verdict"),
        "{text}"
    );
    assert!(text.contains("w: worst elements:"), "{text}");
    // Every table row has its columns aligned: the "verdict" column ends at
    // the same offset in the header and in each tensor row.
    let rows: Vec<&str> = text.lines().skip(1).take(4).collect();
    let ends: Vec<usize> = rows.iter().map(|l| l.len()).collect();
    assert!(ends.iter().all(|&e| e == ends[0]), "{rows:#?}");
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["passed"], false);
    assert_eq!(json["tensors"][1]["name"], "w");
    assert_eq!(json["tensors"][1]["passed"], false);
    assert!(json["tensors"][1]["diagnosis"]["kind"].is_string());
    assert_eq!(json["config"]["rtol"], 1e-6);
}

#[test]
fn bad_configs_and_inputs_are_typed_errors() {
    let mut layer = ScaledSoftplus::new(array![0.8, -1.3, 0.4]);
    for cfg in [
        CheckConfig::default().with_h(0.0),
        CheckConfig::default().with_h(f64::NAN),
        CheckConfig::default().with_tolerances(-1e-9, 1e-6),
        CheckConfig::default().with_mode(Mode::Fast { directions: 0 }),
    ] {
        assert!(matches!(
            check(&mut layer, &[input()], &cfg),
            Err(Error::Config(_))
        ));
    }
    let err = check(&mut layer, &[], &CheckConfig::default()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InputCount {
                expected: 1,
                got: 0,
                ..
            }
        ),
        "{err}"
    );
    let mut nan = input();
    nan[[0, 0]] = f64::NAN;
    let err = check(&mut layer, &[nan], &CheckConfig::default()).unwrap_err();
    assert!(matches!(err, Error::NonFinite { .. }), "{err}");
}

#[test]
fn layer_errors_surface_as_errors_not_panics() {
    // Sigmoid's forward rejects two inputs; the checker hands the layer's own
    // error back.
    let mut s = gradverify::Sigmoid::<f64>::new();
    struct TwoInputs(gradverify::Sigmoid<f64>);
    impl Layer<f64> for TwoInputs {
        fn name(&self) -> String {
            "TwoInputs".into()
        }
        fn num_inputs(&self) -> usize {
            2
        }
        fn forward(&mut self, inputs: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
            self.0.forward(inputs)
        }
        fn backward(&mut self, dout: ArrayViewD<'_, f64>) -> Result<Vec<ArrayD<f64>>> {
            self.0.backward(dout)
        }
    }
    let err = check(
        &mut TwoInputs(s.clone()),
        &[input(), input()],
        &CheckConfig::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InputCount {
                expected: 1,
                got: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        check(&mut s, &[input()], &CheckConfig::default())
            .unwrap()
            .passed
    );
}

/// A layer whose backward returns a gradient of the wrong shape.
struct WrongShape;
impl Layer<f64> for WrongShape {
    fn name(&self) -> String {
        "WrongShape".into()
    }
    fn num_inputs(&self) -> usize {
        1
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
        Ok(inputs[0].to_owned())
    }
    fn backward(&mut self, dout: ArrayViewD<'_, f64>) -> Result<Vec<ArrayD<f64>>> {
        Ok(vec![
            dout.to_owned()
                .into_shape_with_order(IxDyn(&[dout.len()]))
                .unwrap(),
        ])
    }
}

#[test]
fn wrong_gradient_shape_fails_with_a_reason() {
    let report = check(&mut WrongShape, &[input()], &CheckConfig::default()).unwrap();
    assert!(!report.passed);
    assert!(!report.contracts[0].passed, "{report}");
    assert!(matches!(
        report.tensors[0].diagnosis,
        Some(Diagnosis::BadGradient { .. })
    ));
}

#[test]
fn exact_kinks_are_checked_as_subgradients_and_too_many_fail() {
    use gradverify::Relu;
    // One element exactly at ReLU's kink: accepted as a subgradient, counted.
    let mut x = ArrayD::from_shape_fn(IxDyn(&[2, 5]), |d| (d[0] * 5 + d[1]) as f64 * 0.3 - 1.45);
    x[[0, 2]] = 0.0;
    let r = check(
        &mut Relu::new(),
        std::slice::from_ref(&x),
        &CheckConfig::default(),
    )
    .unwrap();
    assert!(r.passed, "{r}");
    assert_eq!(r.tensors[0].at_kink, 1);
    // All elements at the kink: the check refuses to pass vacuously.
    let zeros = ArrayD::zeros(IxDyn(&[2, 5]));
    let r = check(&mut Relu::new(), &[zeros], &CheckConfig::default()).unwrap();
    assert!(!r.passed);
    assert!(
        matches!(
            r.tensors[0].diagnosis,
            Some(Diagnosis::TooManyKinks {
                at_kink: 10,
                elements: 10,
                ..
            })
        ),
        "{r}"
    );
    // A kink merely within h of the point is stepped off, not counted.
    x[[0, 2]] = 3e-5;
    let r = check(&mut Relu::new(), &[x], &CheckConfig::default()).unwrap();
    assert!(r.passed && r.tensors[0].at_kink == 0, "{r}");
}
