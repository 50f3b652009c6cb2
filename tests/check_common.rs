//! Helpers shared by the checker's integration tests.

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

#[test]
fn proptest_cases_env_is_respected() {
    let c = cases(7);
    match std::env::var("PROPTEST_CASES") {
        Ok(v) => assert_eq!(c.cases, v.parse::<u32>().unwrap()),
        Err(_) => assert_eq!(c.cases, 7),
    }
}
