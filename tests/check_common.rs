//! Helpers shared by the checker's integration tests.

use gradverify::Param;
use ndarray::{Array, Dimension};
use proptest::test_runner::Config as ProptestConfig;

/// A proptest config with `default` cases unless `PROPTEST_CASES` is set
/// (proptest's own default config reads it; we only lower the count).
pub fn cases(default: u32) -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = default;
    }
    c
}

/// The [`Param`] `name` over a test layer's own `value`, with the gradient
/// `grad` of its last backward (`None` before any).
pub fn param<'a, D: Dimension>(
    name: &str,
    value: &'a mut Array<f64, D>,
    grad: Option<&'a Array<f64, D>>,
) -> Param<'a, f64> {
    Param {
        name: name.into(),
        value: value.view_mut().into_dyn(),
        grad: grad.map(|g| g.view().into_dyn()),
    }
}

#[test]
fn proptest_cases_env_is_respected() {
    let c = cases(7);
    match std::env::var("PROPTEST_CASES") {
        Ok(v) => assert_eq!(c.cases, v.parse::<u32>().unwrap()),
        Err(_) => assert_eq!(c.cases, 7),
    }
}
