//! A NumPy-compatible legacy random stream (`np.random.seed(s)`, `rand`, `randn`).
//!
//! The tutorial's seeded example (`np.random.seed(111)`, then `randn`, `rand`)
//! printed concrete numbers; this stream reproduces them bit for bit, so the
//! snapshot tests can lock them in without Python:
//! - seeding is MT19937's `init_genrand` (what `RandomState.seed(int)` does);
//! - `rand` is the 53-bit double `((a >> 5) * 2^26 + (b >> 6)) / 2^53` from two
//!   32-bit draws;
//! - `randn` is the legacy polar Box–Muller, which caches its second value.
//!
//! ```
//! use gradverify::numpy_rng::RandomState;
//! let mut rs = RandomState::new(111);
//! let w = rs.randn(&[3, 2]);
//! assert!((w[[0, 0]] - -1.1338383343090317).abs() < 1e-15);
//! ```

use ndarray::{ArrayD, IxDyn};

const N: usize = 624;
const M: usize = 397;

/// NumPy's legacy `RandomState` stream (MT19937 with the legacy Gaussian cache).
#[derive(Debug, Clone)]
pub struct RandomState {
    mt: [u32; N],
    pos: usize,
    gauss: Option<f64>,
}

impl RandomState {
    /// Seeds like `np.random.seed(seed)` for an integer seed (`init_genrand`).
    pub fn new(seed: u32) -> Self {
        let mut mt = [0u32; N];
        mt[0] = seed;
        for i in 1..N {
            mt[i] = 1_812_433_253u32
                .wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        RandomState {
            mt,
            pos: N,
            gauss: None,
        }
    }

    fn twist(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        const MATRIX_A: u32 = 0x9908_b0df;
        for i in 0..N {
            let y = (self.mt[i] & UPPER) | (self.mt[(i + 1) % N] & LOWER);
            let mag = if y & 1 == 1 { MATRIX_A } else { 0 };
            self.mt[i] = self.mt[(i + M) % N] ^ (y >> 1) ^ mag;
        }
        self.pos = 0;
    }

    /// The next raw 32-bit output (`genrand_int32`).
    pub fn next_u32(&mut self) -> u32 {
        if self.pos >= N {
            self.twist();
        }
        let mut y = self.mt[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// One uniform double in [0, 1), as `np.random.random_sample()`.
    pub fn next_f64(&mut self) -> f64 {
        let a = (self.next_u32() >> 5) as f64;
        let b = (self.next_u32() >> 6) as f64;
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// One standard normal, as the legacy `np.random.standard_normal()`.
    pub fn next_gauss(&mut self) -> f64 {
        if let Some(g) = self.gauss.take() {
            return g;
        }
        loop {
            let x1 = 2.0 * self.next_f64() - 1.0;
            let x2 = 2.0 * self.next_f64() - 1.0;
            let r2 = x1 * x1 + x2 * x2;
            if r2 < 1.0 && r2 != 0.0 {
                let f = (-2.0 * r2.ln() / r2).sqrt();
                self.gauss = Some(f * x1);
                return f * x2;
            }
        }
    }

    /// `np.random.rand(*shape)`, filled in C order.
    pub fn rand(&mut self, shape: &[usize]) -> ArrayD<f64> {
        ArrayD::from_shape_simple_fn(IxDyn(shape), || self.next_f64())
    }

    /// `np.random.randn(*shape)`, filled in C order.
    pub fn randn(&mut self, shape: &[usize]) -> ArrayD<f64> {
        ArrayD::from_shape_simple_fn(IxDyn(shape), || self.next_gauss())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Values printed by numpy 2.4 with np.set_printoptions(precision=17).
    #[test]
    fn seed_111_matches_numpy_bit_for_bit() {
        let mut rs = RandomState::new(111);
        let w = rs.randn(&[3, 2]);
        let b = rs.randn(&[2]);
        let x = rs.rand(&[2, 3]);
        let w_np = [
            -1.1338383343090317,
            0.38431919339964776,
            1.4965537763705212,
            -0.3553822971624541,
            -0.7875335409286812,
            -0.4594389077272833,
        ];
        for (got, want) in w.iter().zip(w_np) {
            assert_eq!(*got, want);
        }
        assert_eq!(
            b.as_slice().unwrap(),
            &[-0.05916877147496081, -0.35417350125913616]
        );
        assert_eq!(x[[0, 0]], 0.23868214124644604);
        assert_eq!(x[[1, 2]], 0.6696002382466298);
        let dout = rs.rand(&[2, 2]);
        assert_eq!(dout[[0, 0]], 0.621242919400697);
        assert_eq!(dout[[1, 1]], 0.11836775112328357);
    }

    #[test]
    fn reference_mt19937_first_output() {
        // The MT19937 reference: init_genrand(5489) first output is 3499211612.
        let mut rs = RandomState::new(5489);
        assert_eq!(rs.next_u32(), 3_499_211_612);
    }

    #[test]
    fn gaussian_cache_is_used_for_odd_counts() {
        let mut a = RandomState::new(7);
        let mut b = RandomState::new(7);
        let one = a.randn(&[3]);
        let first = b.next_gauss();
        let second = b.next_gauss();
        let third = b.next_gauss();
        assert_eq!(one.as_slice().unwrap(), &[first, second, third]);
    }
}
