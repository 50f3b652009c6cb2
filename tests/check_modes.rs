//! Fast (directional) mode: chosen automatically for large tensors, passes
//! correct layers, and a mismatch is localised by the full check.

use gradverify::check::{CheckConfig, CheckedMode, Diagnosis, Mode, check, check_parallel};
use gradverify::{Affine, Layer, Param, Result};
use ndarray::{Array2, ArrayD, ArrayViewD, Ix2};

fn weights(r: usize, c: usize) -> Array2<f64> {
    Array2::from_shape_fn((r, c), |(i, j)| {
        ((i * 13 + j * 7) % 19) as f64 / 19.0 - 0.45
    })
}

fn batch(n: usize, d: usize) -> ArrayD<f64> {
    Array2::from_shape_fn((n, d), |(i, j)| ((i * 5 + j * 3) % 11) as f64 / 5.0 - 1.05).into_dyn()
}

#[test]
fn auto_mode_goes_fast_above_the_threshold_and_passes() {
    let mut a = Affine::new(weights(80, 60), ndarray::Array1::zeros(60)).unwrap();
    let r = check_parallel(&mut a, &[batch(3, 80)], &CheckConfig::default()).unwrap();
    assert!(r.passed, "{r}");
    assert_eq!(
        r.tensor("W").unwrap().mode,
        CheckedMode::Fast { directions: 4 }
    );
    assert_eq!(r.tensor("W").unwrap().checked, 4);
    assert_eq!(r.tensor("b").unwrap().mode, CheckedMode::Full);
    assert_eq!(r.tensor("input 0").unwrap().mode, CheckedMode::Full);
    let full = check(
        &mut a,
        &[batch(3, 80)],
        &CheckConfig::default().with_mode(Mode::Full),
    )
    .unwrap();
    assert_eq!(full.tensor("W").unwrap().checked, 4800);
    assert!(full.passed);
}

/// `y = x · W` whose `dW` has one element 1% off.
#[derive(Clone)]
struct OneOffDw {
    w: Array2<f64>,
    dw: Option<Array2<f64>>,
    x: Option<Array2<f64>>,
}

impl Layer<f64> for OneOffDw {
    fn name(&self) -> String {
        "OneOffDw".into()
    }
    fn num_inputs(&self) -> usize {
        1
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
        let x = inputs[0].to_owned().into_dimensionality::<Ix2>().unwrap();
        let y = x.dot(&self.w).into_dyn();
        self.x = Some(x);
        Ok(y)
    }
    fn backward(&mut self, dout: ArrayViewD<'_, f64>) -> Result<Vec<ArrayD<f64>>> {
        let d = dout.into_dimensionality::<Ix2>().unwrap();
        let x = self.x.as_ref().unwrap();
        let mut dw = x.t().dot(&d);
        dw[[17, 23]] *= 1.01;
        self.dw = Some(dw);
        Ok(vec![d.dot(&self.w.t()).into_dyn()])
    }
    fn params(&mut self) -> Vec<Param<'_, f64>> {
        vec![Param {
            name: "W".into(),
            value: self.w.view_mut().into_dyn(),
            grad: self.dw.as_ref().map(|g| g.view().into_dyn()),
        }]
    }
}

#[test]
fn fast_mode_mismatch_is_localised_by_the_full_check() {
    let mut l = OneOffDw {
        w: weights(80, 60),
        dw: None,
        x: None,
    };
    for mode in [Mode::Auto, Mode::Fast { directions: 2 }] {
        let r = check_parallel(
            &mut l,
            &[batch(3, 80)],
            &CheckConfig::default().with_mode(mode),
        )
        .unwrap();
        let w = r.tensor("W").unwrap();
        assert!(!w.passed, "{r}");
        assert!(matches!(w.mode, CheckedMode::FastThenFull { .. }), "{r}");
        assert_eq!(w.failed, 1);
        assert_eq!(
            w.diagnosis,
            Some(Diagnosis::SingleElement {
                index: vec![17, 23],
                analytic: w.worst.as_ref().unwrap().analytic,
                numeric: w.worst.as_ref().unwrap().numeric,
            })
        );
        assert!(r.tensor("input 0").unwrap().passed);
    }
}
