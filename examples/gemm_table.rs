//! SGEMM throughput at the reference network's shapes, for choosing the
//! training engine's GEMM: `matrixmultiply` (what ndarray's `dot` uses) and
//! the `gemm` crate, on one thread, on two threads by their own means, and
//! on two threads by splitting the output rows in halves with `rayon::join`
//! (what `gradverify::train::engine` does).
//!
//! ```sh
//! cargo run --release --features gemm-compare --example gemm_table   # all but mm-threads
//! MATMUL_NUM_THREADS=2 cargo run --release --features gemm-compare,mm-threading \
//!     --example gemm_table -- mm                                     # matrixmultiply's threads
//! ```
//! Each cell is max / median GFLOP/s over 7 blocks of about 0.15 s.

use std::hint::black_box;
use std::time::Instant;

/// One `C (m, n) = A (m, k) · B (k, n)` with A and B given by strides into
/// row-major buffers, as the training step calls it.
#[derive(Clone, Copy)]
struct Shape {
    name: &'static str,
    m: usize,
    k: usize,
    n: usize,
    /// A is the transpose of a row-major `(k, m)` buffer (`dW = Xᵀ · dZ`).
    a_t: bool,
    /// B is the transpose of a row-major `(n, k)` buffer (`dH = dZ · Wᵀ`).
    b_t: bool,
}

const SHAPES: &[Shape] = &[
    Shape {
        name: "100x784x100 (layer-1 forward)",
        m: 100,
        k: 784,
        n: 100,
        a_t: false,
        b_t: false,
    },
    Shape {
        name: "784x100x100 (dW1 = Xᵀ·dZ1)",
        m: 784,
        k: 100,
        n: 100,
        a_t: true,
        b_t: false,
    },
    Shape {
        name: "100x100x784 (dX1, skipped)",
        m: 100,
        k: 100,
        n: 784,
        a_t: false,
        b_t: true,
    },
    Shape {
        name: "100x100x64 (layer-2 forward)",
        m: 100,
        k: 100,
        n: 64,
        a_t: false,
        b_t: false,
    },
    Shape {
        name: "100x100x64 (dW2 = H1ᵀ·dZ2)",
        m: 100,
        k: 100,
        n: 64,
        a_t: true,
        b_t: false,
    },
    Shape {
        name: "100x64x100 (dH1 = dZ2·W2ᵀ)",
        m: 100,
        k: 64,
        n: 100,
        a_t: false,
        b_t: true,
    },
    Shape {
        name: "1000x1000x1000",
        m: 1000,
        k: 1000,
        n: 1000,
        a_t: false,
        b_t: false,
    },
];

/// Row and column strides of A and B.
fn strides(s: &Shape) -> (isize, isize, isize, isize) {
    let (rsa, csa) = if s.a_t {
        (1, s.m as isize)
    } else {
        (s.k as isize, 1)
    };
    let (rsb, csb) = if s.b_t {
        (1, s.k as isize)
    } else {
        (s.n as isize, 1)
    };
    (rsa, csa, rsb, csb)
}

/// `C[r0..r1, :] = A[r0..r1, :] · B` with matrixmultiply.
fn mm(s: &Shape, a: &[f32], b: &[f32], c: &mut [f32], r0: usize, r1: usize) {
    let (rsa, csa, rsb, csb) = strides(s);
    // SAFETY: the strides and sizes stay inside `a`, `b` and `c` (checked
    // by the lengths the buffers were allocated with); rows r0..r1 of C are
    // written by this call only.
    unsafe {
        matrixmultiply::sgemm(
            r1 - r0,
            s.k,
            s.n,
            1.0,
            a.as_ptr().offset(r0 as isize * rsa),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            0.0,
            c.as_mut_ptr(),
            s.n as isize,
            1,
        );
    }
}

/// The same with the `gemm` crate.
fn gm(
    s: &Shape,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    r0: usize,
    r1: usize,
    par: gemm::Parallelism,
) {
    let (rsa, csa, rsb, csb) = strides(s);
    // SAFETY: as in `mm`.
    unsafe {
        gemm::gemm(
            r1 - r0,
            s.n,
            s.k,
            c.as_mut_ptr(),
            1,
            s.n as isize,
            false,
            a.as_ptr().offset(r0 as isize * rsa),
            csa,
            rsa,
            b.as_ptr(),
            csb,
            rsb,
            0.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

/// Max and median GFLOP/s of `f` over 7 blocks of about 0.15 s.
fn measure(flop: f64, mut f: impl FnMut()) -> (f64, f64) {
    let t = Instant::now();
    let mut calls = 0usize;
    while t.elapsed().as_secs_f64() < 0.05 {
        f();
        calls += 1;
    }
    let per_block = ((0.15 / (t.elapsed().as_secs_f64() / calls as f64)) as usize).max(1);
    let mut rates: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_block {
                f();
            }
            flop * per_block as f64 / t.elapsed().as_secs_f64() / 1e9
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    (rates[6], rates[3])
}

fn main() {
    let only: Vec<String> = std::env::args().skip(1).collect();
    let methods: &[&str] = &[
        "mm-1t",
        "mm-split2",
        "gemm-1t",
        "gemm-rayon2",
        "gemm-split2",
    ];
    let methods: Vec<&str> = if only.iter().any(|o| o == "mm") {
        vec!["mm-threads"]
    } else {
        methods.to_vec()
    };
    println!("| M x K x N | {} |", methods.join(" | "));
    println!("|---|{}", "---|".repeat(methods.len()));
    for s in SHAPES {
        let a: Vec<f32> = (0..s.m * s.k)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0)
            .collect();
        let b: Vec<f32> = (0..s.k * s.n)
            .map(|i| ((i * 5 % 11) as f32 - 5.0) / 6.0)
            .collect();
        let mut c = vec![0.0f32; s.m * s.n];
        let flop = 2.0 * (s.m * s.k * s.n) as f64;
        let half = s.m / 2;
        let mut cells = Vec::new();
        for &meth in &methods {
            let (max, med) = match meth {
                "mm-1t" | "mm-threads" => {
                    measure(flop, || mm(s, &a, &b, black_box(&mut c), 0, s.m))
                }
                "mm-split2" => measure(flop, || {
                    let (c0, c1) = c.split_at_mut(half * s.n);
                    rayon::join(
                        || mm(s, &a, &b, c0, 0, half),
                        || mm(s, &a, &b, c1, half, s.m),
                    );
                    black_box(&c);
                }),
                "gemm-1t" => measure(flop, || {
                    gm(
                        s,
                        &a,
                        &b,
                        black_box(&mut c),
                        0,
                        s.m,
                        gemm::Parallelism::None,
                    )
                }),
                "gemm-rayon2" => measure(flop, || {
                    gm(
                        s,
                        &a,
                        &b,
                        black_box(&mut c),
                        0,
                        s.m,
                        gemm::Parallelism::Rayon(2),
                    )
                }),
                "gemm-split2" => measure(flop, || {
                    let (c0, c1) = c.split_at_mut(half * s.n);
                    let p = gemm::Parallelism::None;
                    rayon::join(
                        || gm(s, &a, &b, c0, 0, half, p),
                        || gm(s, &a, &b, c1, half, s.m, p),
                    );
                    black_box(&c);
                }),
                _ => unreachable!(),
            };
            cells.push(format!("{max:.1} / {med:.1}"));
        }
        println!("| {} | {} |", s.name, cells.join(" | "));
    }
}
