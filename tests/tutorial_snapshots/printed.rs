//! Snapshots of the numbers and shapes the tutorial prints, reproduced with
//! the crate's fixed layers. One test per printed fact.

use super::support::{array, shape, snap};
use gradverify::numpy_rng::RandomState;
use gradverify::{Add, Affine, Layer, Mul};
use ndarray::{Array1, Array2, ArrayD, Ix1, Ix2, arr0, arr2};
use std::fmt::Write;

/// `x = a + b`, `y = b + c`, `f = x * y` at `a = -1, b = 3, c = 4`: the
/// tutorial prints 2, 7, 14 forward and `7 2`, `7`, `9`, `2` backward
/// (`b` feeds both sums, so its gradient 9 = 7 + 2 is the sum of both paths).
#[test]
fn computational_graph_example_prints_2_7_14_and_7_2_7_9_2() {
    let (a, b, c) = (
        arr0(-1.0).into_dyn(),
        arr0(3.0).into_dyn(),
        arr0(4.0).into_dyn(),
    );
    let (mut add_x, mut add_y, mut mul) = (Add::new(), Add::new(), Mul::new());
    let x = add_x.forward(&[a.view(), b.view()]).unwrap();
    let y = add_y.forward(&[b.view(), c.view()]).unwrap();
    let f = mul.forward(&[x.view(), y.view()]).unwrap();
    let g = mul.backward(arr0(1.0).into_dyn().view()).unwrap();
    let gx = add_x.backward(g[0].view()).unwrap();
    let gy = add_y.backward(g[1].view()).unwrap();
    let (dx, dy) = (g[0][[]], g[1][[]]);
    let (da, db, dc) = (gx[0][[]], gx[1][[]] + gy[0][[]], gy[1][[]]);
    assert_eq!((x[[]], y[[]], f[[]]), (2.0, 7.0, 14.0));
    assert_eq!((dx, dy, da, db, dc), (7.0, 2.0, 7.0, 9.0, 2.0));

    let mut s = String::new();
    writeln!(s, "forward (a = -1, b = 3, c = 4)").unwrap();
    writeln!(s, "{}", x[[]]).unwrap();
    writeln!(s, "{}", y[[]]).unwrap();
    writeln!(s, "{}", f[[]]).unwrap();
    writeln!(s, "backward (df = 1)").unwrap();
    writeln!(s, "{dx} {dy}").unwrap();
    writeln!(s, "{da}").unwrap();
    writeln!(s, "{db}").unwrap();
    writeln!(s, "{dc}").unwrap();
    snap!(
        "tutorial_computational_graph",
        "The tutorial's computational-graph example: forward prints 2, 7, 14; backward prints `7 2`, `7`, `9`, `2`.",
        &s,
    );
}

/// Draws `W (in, out)`, `b (out,)` and the input from a seeded stream.
fn seeded_affine(rng: &mut RandomState, w: (usize, usize)) -> Affine<f64> {
    let wv = rng.randn(&[w.0, w.1]).into_dimensionality::<Ix2>().unwrap();
    let bv = rng.randn(&[w.1]).into_dimensionality::<Ix1>().unwrap();
    Affine::new(wv, bv).unwrap()
}

/// Runs forward on `x` and backward on a seeded `dout`; returns a line
/// `X (..), W (..), B (..) -> Y (..), dX (..), dW (..), dB (..)`.
fn shapes_line(rng: &mut RandomState, x_shape: &[usize], w: (usize, usize)) -> String {
    let mut fc = seeded_affine(rng, w);
    let x = rng.rand(x_shape);
    let y = fc.forward(&[x.view()]).unwrap();
    let dout = rng.rand(y.shape());
    let dx = fc.backward(dout.view()).unwrap().remove(0);
    assert_eq!(dx.shape(), x.shape(), "dX has the input's shape");
    format!(
        "X {}, W {}, B {} -> Y {}, dX {}, dW {}, dB {}",
        shape(&x),
        shape(fc.w()),
        shape(fc.b()),
        shape(&y),
        shape(&dx),
        shape(fc.dw().unwrap()),
        shape(fc.db().unwrap()),
    )
}

/// The matrix examples' shapes: a single sample `X (3,)` through `W (3, 2)`,
/// the backward example `X (2,) · W (2, 3)`, and the batch `X (4, 3)`.
#[test]
fn matrix_examples_have_the_tutorials_shapes() {
    let mut rng = RandomState::new(0);
    let lines = [
        shapes_line(&mut rng, &[3], (3, 2)),
        shapes_line(&mut rng, &[2], (2, 3)),
        shapes_line(&mut rng, &[4, 3], (3, 2)),
    ];
    assert_eq!(
        lines[0],
        "X (3,), W (3, 2), B (2,) -> Y (2,), dX (3,), dW (3, 2), dB (2,)"
    );
    assert!(
        lines[1].contains("-> Y (3,), dX (2,), dW (2, 3)"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains("-> Y (4, 2), dX (4, 3), dW (3, 2), dB (2,)"),
        "{}",
        lines[2]
    );
    snap!(
        "tutorial_matrix_shapes",
        "Shapes of the tutorial's matrix examples: X (3,)·W (3,2)+B (2,) -> Y (2,); X (2,)·W (2,3) -> dX (2,), dW (2,3); batch X (4,3) -> Y (4,2), dX (4,3), dW (3,2), dB (2,).",
        &(lines.join("\n") + "\n"),
    );
}

/// `np.dot(X, W)` with `X (3,)` and `W (2, 2)`: numpy says `shapes (3,) and
/// (2,2) not aligned: 3 (dim 0) != 2 (dim 0)`; ours carries the same facts
/// and names the operation.
#[test]
fn shape_mismatch_message_carries_numpys_information() {
    let mut fc = Affine::new(arr2(&[[1.0, 2.0], [3.0, 4.0]]), Array1::zeros(2)).unwrap();
    let x = ndarray::arr1(&[1.0, 2.0, 3.0]).into_dyn();
    let e = fc.forward(&[x.view()]).unwrap_err();
    let msg = e.to_string();
    for part in ["(3,)", "(2, 2)", "not aligned", "3 (dim 0) != 2 (dim 0)"] {
        assert!(msg.contains(part), "{msg:?} lacks {part:?}");
    }
    snap!(
        "tutorial_shape_mismatch_error",
        "Our error for X (3,) · W (2,2); numpy prints `shapes (3,) and (2,2) not aligned: 3 (dim 0) != 2 (dim 0)`.",
        &(msg + "\n"),
    );
}

/// The tutorial's seeded example: `np.random.seed(111)`, then
/// `W = randn(3, 2)`, `b = randn(2)`, `X = rand(2, 3)`.
struct Seeded {
    rng: RandomState,
    fc: Affine<f64>,
    x: ArrayD<f64>,
}

fn seeded_example() -> Seeded {
    let mut rng = RandomState::new(111);
    let fc = seeded_affine(&mut rng, (3, 2));
    let x = rng.rand(&[2, 3]);
    Seeded { rng, fc, x }
}

/// Asserts `got` equals what numpy printed (8 decimals, trailing zeros
/// dropped) to within half a unit in the eighth decimal.
#[track_caller]
fn assert_printed(got: &ArrayD<f64>, printed: &Array2<f64>) {
    assert_eq!(got.shape(), printed.shape());
    for (g, p) in got.iter().zip(printed.iter()) {
        assert!((g - p).abs() <= 5e-9, "{g} vs printed {p}");
    }
}

/// `X = rand(2, 3)` after seed 111 and the draws for W and b equals the
/// tutorial's printed `[[0.23868214 0.33765619 0.99071246] [0.23772645
/// 0.08119266 0.66960024]]`.
#[test]
fn seeded_example_x_matches_the_tutorials_print() {
    let s = seeded_example();
    let printed = arr2(&[
        [0.23868214, 0.33765619, 0.99071246],
        [0.23772645, 0.08119266, 0.66960024],
    ]);
    assert_printed(&s.x, &printed);
    let text = format!(
        "W =\n{}\nb =\n{}\nX =\n{}\n",
        array(s.fc.w()),
        array(s.fc.b()),
        array(&s.x)
    );
    snap!(
        "tutorial_seeded_example_inputs",
        "np.random.seed(111); W = randn(3,2); b = randn(2); X = rand(2,3). X equals the tutorial's print.",
        &text,
    );
}

/// `dout = rand(2, 2)` drawn right after X, and `dx = dout · Wᵀ`: what a
/// straight run of the tutorial's cell gives. It is **not** the printed dx
/// (see the next test).
#[test]
fn seeded_example_dx_straight_through() {
    let mut s = seeded_example();
    let y = s.fc.forward(&[s.x.view()]).unwrap();
    let dout = s.rng.rand(&[2, 2]);
    let dx = s.fc.backward(dout.view()).unwrap().remove(0);
    let want = arr2(&[
        [-0.5989881414185912, 0.8322585875028554, -0.6152523784509365],
        [
            -0.48312870817829395,
            0.6556596082989644,
            -0.42154774807756656,
        ],
    ]);
    assert_printed(&dx, &want);
    let text = format!(
        "Y =\n{}\ndout =\n{}\ndx =\n{}\n",
        array(&y),
        array(&dout),
        array(&dx)
    );
    snap!(
        "tutorial_seeded_example_dx_straight",
        "Seed 111, W, b, X, then dout = rand(2,2) immediately: Y = X·W + b and dx = dout·Wᵀ.",
        &text,
    );
}

/// The tutorial's printed dx `[[-0.57717814 0.8894841 -1.01146255]
/// [-0.5434705 0.86783399 -1.09728643]]` is reproduced when **six extra
/// uniform draws** are consumed between X and dout: the notebook evidently
/// ran something that drew six values (e.g. a cell re-run) before drawing
/// dout. Measured with numpy; here the offset is `rng.rand(&[6])`.
#[test]
fn seeded_example_dx_as_printed_after_six_extra_draws() {
    let mut s = seeded_example();
    s.fc.forward(&[s.x.view()]).unwrap();
    let skipped = s.rng.rand(&[6]);
    let dout = s.rng.rand(&[2, 2]);
    let dx = s.fc.backward(dout.view()).unwrap().remove(0);
    let printed = arr2(&[
        [-0.57717814, 0.8894841, -1.01146255],
        [-0.5434705, 0.86783399, -1.09728643],
    ]);
    assert_printed(&dx, &printed);
    let text = format!(
        "six skipped draws =\n{}\ndout =\n{}\ndx =\n{}\n",
        array(&skipped),
        array(&dout),
        array(&dx)
    );
    snap!(
        "tutorial_seeded_example_dx_printed",
        "Seed 111, W, b, X, six extra rand draws, then dout = rand(2,2): dx equals the tutorial's printed dx.",
        &text,
    );
}
