//! Test support for the snapshot tests: the one insta configuration every
//! snapshot goes through, machine-stable float formatting, and a small
//! central-difference gradient comparison used to say whether a layer (fixed
//! or tutorial replica) passes a gradient check.

pub mod gradcheck;

use gradverify::Shape;
use ndarray::{ArrayBase, Data, Dimension};

/// Decimals every float in a snapshot is rounded to. Eight matches numpy's
/// default print precision, so the tutorial's printed arrays can be compared
/// digit for digit, and is far coarser than any x86-64 rounding difference.
pub const DECIMALS: usize = 8;

/// Absolute path of the top-level `snapshots/` folder. A relative
/// `snapshot_path` would be resolved against the test file's folder.
pub const SNAPSHOT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots");

/// The insta settings every snapshot is asserted under: stored as
/// `snapshots/{name}.snap` in the top-level folder, no module prefix, the
/// `description` in the header (so a reviewer reading the file knows what it
/// locks in) instead of the expression.
pub fn settings(description: &str) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(SNAPSHOT_DIR);
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_description(description);
    settings
}

/// `snap!(name, description, value)`: asserts the text `value` against the
/// committed snapshot `snapshots/{name}.snap` under [`settings`]. A macro so
/// the snapshot's `source` names the calling test file.
///
/// With `CI=true` (or `INSTA_UPDATE=no`) a mismatch fails the test and
/// writes nothing; locally insta also writes a `.snap.new` to review.
macro_rules! snap {
    ($name:expr, $description:expr, $value:expr $(,)?) => {
        $crate::tutorial_snapshots::support::settings($description)
            .bind(|| insta::assert_snapshot!($name, $value))
    };
}
pub(crate) use snap;

/// `v` with [`DECIMALS`] fixed decimals; `-0.0` (and anything that rounds to
/// zero) prints as `0.00000000`, NaN and infinities as numpy spells them.
pub fn num(v: f64) -> String {
    num_dec(v, DECIMALS)
}

/// `v` with `dec` fixed decimals, negative zero normalised (see [`num`]).
pub fn num_dec(v: f64, dec: usize) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let s = format!("{v:.dec$}");
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_string()
    } else {
        s
    }
}

/// A relative error in two significant digits (`3.1e-1`), or the bucket
/// `< 1e-6` for the tiny errors of a correct gradient, whose exact digits
/// depend on floating-point details and would make snapshots brittle.
pub fn rel_err(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v < 1e-6 {
        "< 1e-6".into()
    } else {
        format!("{v:.1e}")
    }
}

/// The shape of an array, printed like numpy: `(2, 3)`, `(3,)`, `()`.
pub fn shape<S: Data, D: Dimension>(a: &ArrayBase<S, D>) -> String {
    Shape::of(a.shape()).to_string()
}

/// An array as numpy would print it (nested brackets, one row per line),
/// every element with [`DECIMALS`] decimals.
pub fn array<S: Data<Elem = f64>, D: Dimension>(a: &ArrayBase<S, D>) -> String {
    array_dec(a, DECIMALS)
}

/// An array as numpy would print it, with `dec` decimals.
pub fn array_dec<S: Data<Elem = f64>, D: Dimension>(a: &ArrayBase<S, D>, dec: usize) -> String {
    let dims = a.shape().to_vec();
    let flat: Vec<String> = a.iter().map(|&v| num_dec(v, dec)).collect();
    let width = flat.iter().map(String::len).max().unwrap_or(0);
    let flat: Vec<String> = flat.iter().map(|s| format!("{s:>width$}")).collect();
    let mut out = String::new();
    nest(&dims, &flat, 0, &mut out);
    out
}

/// Writes `cells` (row-major, shape `dims`) at nesting `depth` into `out`.
fn nest(dims: &[usize], cells: &[String], depth: usize, out: &mut String) {
    match dims {
        [] => out.push_str(&cells[0]),
        [_] => {
            out.push('[');
            out.push_str(&cells.join(" "));
            out.push(']');
        }
        [n, rest @ ..] => {
            let step = rest.iter().product::<usize>();
            out.push('[');
            for i in 0..*n {
                if i > 0 {
                    let blank_lines = rest.len() - 1;
                    out.push('\n');
                    for _ in 0..blank_lines {
                        out.push('\n');
                    }
                    for _ in 0..=depth {
                        out.push(' ');
                    }
                }
                nest(rest, &cells[i * step..(i + 1) * step], depth + 1, out);
            }
            out.push(']');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{arr0, arr1, arr2};

    #[test]
    fn formatting_is_fixed_and_normalises_negative_zero() {
        assert_eq!(num(-0.0), "0.00000000");
        assert_eq!(num(-1e-12), "0.00000000");
        assert_eq!(num(0.238682141), "0.23868214");
        assert_eq!(num(-0.5), "-0.50000000");
        assert_eq!(num(f64::NAN), "nan");
        assert_eq!(rel_err(1e-9), "< 1e-6");
        assert_eq!(rel_err(0.3141), "3.1e-1");
    }

    #[test]
    fn arrays_print_like_numpy() {
        assert_eq!(array_dec(&arr0(2.0), 1), "2.0");
        assert_eq!(array_dec(&arr1(&[1.0, -2.5]), 1), "[ 1.0 -2.5]");
        assert_eq!(
            array_dec(&arr2(&[[1.0, 2.0], [3.0, -4.0]]), 0),
            "[[ 1  2]\n [ 3 -4]]"
        );
        assert_eq!(shape(&arr2(&[[1.0, 2.0]])), "(1, 2)");
        assert_eq!(shape(&arr1(&[1.0])), "(1,)");
    }
}
