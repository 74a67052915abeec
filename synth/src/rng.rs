//! Small, fast, reproducible pseudo-random numbers: SplitMix64 for seeding and
//! xoshiro256** for the streams (both public-domain algorithms by Vigna et al.).

/// One SplitMix64 step: advances `state` and returns a well-mixed 64-bit value.
#[inline]
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Derives a stream key from a run seed and a list of identifiers (file index, stream tag).
pub fn derive_key(seed: u64, ids: &[u64]) -> u64 {
    let mut s = seed;
    let mut k = splitmix64(&mut s);
    for &id in ids {
        let mut t = k ^ id.wrapping_mul(0xD1B5_4A32_D192_ED03);
        k = splitmix64(&mut t);
    }
    k
}

/// xoshiro256** generator.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose 256-bit state is expanded from `key` with SplitMix64.
    pub fn new(key: u64) -> Self {
        let mut sm = key;
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Rng { s }
    }

    /// A generator for stream `ids` of run `seed`.
    pub fn for_stream(seed: u64, ids: &[u64]) -> Self {
        Rng::new(derive_key(seed, ids))
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 53 random bits.
    #[inline]
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    #[inline]
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }

    /// Uniform integer in [lo, hi] (inclusive); the tiny modulo bias is irrelevant here.
    #[inline]
    pub fn int(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi - lo + 1) as u64;
        lo + (((self.next_u64() >> 32) * span) >> 32) as i64
    }

    /// True with probability `p`.
    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// Standard normal deviate (Box-Muller, one value per call).
    #[inline]
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.f64(); // (0, 1]
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Log-normal with the given median and log-space sigma.
    #[inline]
    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }

    /// Symmetric triangular distribution on [lo, hi] (mean of two uniforms).
    #[inline]
    pub fn triangular(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * 0.5 * (self.f64() + self.f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_values() {
        // SplitMix64 reference: seed 1234567 -> first output 6457827717110365317.
        let mut s = 1234567u64;
        assert_eq!(splitmix64(&mut s), 6457827717110365317);
        let mut r = Rng::new(7);
        let a: Vec<u64> = (0..4).map(|_| r.next_u64()).collect();
        let mut r2 = Rng::new(7);
        let b: Vec<u64> = (0..4).map(|_| r2.next_u64()).collect();
        assert_eq!(a, b);
        assert_ne!(
            Rng::for_stream(1, &[0]).next_u64(),
            Rng::for_stream(1, &[1]).next_u64()
        );
        assert_ne!(
            Rng::for_stream(1, &[0]).next_u64(),
            Rng::for_stream(2, &[0]).next_u64()
        );
    }

    #[test]
    fn ranges() {
        let mut r = Rng::new(1);
        let mut sum = 0.0;
        for _ in 0..100_000 {
            let x = r.f64();
            assert!((0.0..1.0).contains(&x));
            sum += x;
            let k = r.int(3, 8);
            assert!((3..=8).contains(&k));
        }
        assert!((sum / 100_000.0 - 0.5).abs() < 0.01);
    }
}
