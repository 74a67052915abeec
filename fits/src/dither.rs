//! Dequantisation of tile-compressed float images: integers back to floats
//! with the convention's subtractive dither.
//!
//! The dither offsets come from a fixed table of 10 000 uniform values made by
//! the Park–Miller generator (a = 16807, m = 2^31 − 1, seed 1), stored as f32.
//! Which table entry a pixel uses depends on the tile's row number plus
//! `ZDITHER0`. Every step below keeps the precision of the reference
//! implementation (f32 table values and index, f64 arithmetic, one rounding to
//! f32 at the end) so that results match it bit for bit.

/// Length of the dither table.
const N_RANDOM: usize = 10_000;

/// The dither table, computed at compile time.
static RANDOMS: [f32; N_RANDOM] = randoms();

const fn next_seed(seed: f64) -> f64 {
    let a = 16807.0;
    let m = 2_147_483_647.0;
    let t = a * seed;
    // Exact: every value is an integer below 2^53.
    t - m * ((t / m) as i64 as f64)
}

const fn randoms() -> [f32; N_RANDOM] {
    let mut out = [0f32; N_RANDOM];
    let mut seed = 1.0;
    let mut i = 0;
    while i < N_RANDOM {
        seed = next_seed(seed);
        out[i] = (seed / 2_147_483_647.0) as f32;
        i += 1;
    }
    out
}

/// The quantisation method (`ZQUANTIZ`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dither {
    /// `NO_DITHER`: value = q × scale + zero.
    None,
    /// `SUBTRACTIVE_DITHER_1`.
    Subtractive1,
    /// `SUBTRACTIVE_DITHER_2`: like 1, but the integer [`ZERO_VALUE`] is an exact 0.0.
    Subtractive2,
}

/// The quantised integer that dither method 2 reserves for exact zeros.
pub const ZERO_VALUE: i32 = -2_147_483_646;

/// Where a tile starts in the dither table: `row` is the 0-based tile
/// index plus `ZDITHER0`.
fn table_start(row: i64) -> (usize, usize) {
    let seed = (row - 1).rem_euclid(N_RANDOM as i64) as usize;
    (seed, start_of(seed))
}

fn start_of(seed: usize) -> usize {
    // f32 product truncated, as in the reference implementation.
    (RANDOMS[seed] * 500.0) as usize
}

/// Turns one tile's quantised integers into floats, a block at a time, in
/// place: the integers arrive as the bits of `f32`s (see
/// `rice::decode_in_place`). Runs between wraps of the dither table are
/// straight loops of selects and f64 arithmetic that the compiler
/// vectorises.
pub(crate) struct Dequantizer {
    scale: f64,
    zero: f64,
    dither: Dither,
    blank: Option<i32>,
    /// Table entry that seeds the current stretch, and the next entry to use.
    seed: usize,
    next: usize,
}

impl Dequantizer {
    /// `row` is the 0-based tile index plus `ZDITHER0`; `blank` the integer
    /// that marks undefined pixels (NaN).
    pub(crate) fn new(scale: f64, zero: f64, dither: Dither, row: i64, blank: Option<i32>) -> Self {
        let (seed, next) = table_start(row);
        Dequantizer {
            scale,
            zero,
            dither,
            blank,
            seed,
            next,
        }
    }

    /// Converts the next pixels of the tile, in order.
    pub(crate) fn apply(&mut self, block: &mut [f32]) {
        let (scale, zero) = (self.scale, self.zero);
        if self.dither == Dither::None {
            match self.blank {
                Some(b) => plain::<true>(block, scale, zero, b),
                None => plain::<false>(block, scale, zero, 0),
            }
            return;
        }
        let mut rest = block;
        while !rest.is_empty() {
            let run = rest.len().min(N_RANDOM - self.next);
            let (head, tail) = rest.split_at_mut(run);
            let r = &RANDOMS[self.next..self.next + run];
            match (self.dither == Dither::Subtractive2, self.blank) {
                (true, Some(b)) => dithered::<true, true>(head, r, scale, zero, b),
                (true, None) => dithered::<true, false>(head, r, scale, zero, 0),
                (false, Some(b)) => dithered::<false, true>(head, r, scale, zero, b),
                (false, None) => dithered::<false, false>(head, r, scale, zero, 0),
            }
            self.next += run;
            if self.next == N_RANDOM {
                self.seed = (self.seed + 1) % N_RANDOM;
                self.next = start_of(self.seed);
            }
            rest = tail;
        }
    }
}

/// `NO_DITHER`: value = q × scale + zero.
#[inline(always)]
fn plain<const BLANK: bool>(px: &mut [f32], scale: f64, zero: f64, blank: i32) {
    for x in px {
        let v = x.to_bits() as i32;
        let value = (f64::from(v) * scale + zero) as f32;
        *x = if BLANK && v == blank { f32::NAN } else { value };
    }
}

/// Subtractive dither: value = (q − r + 0.5) × scale + zero, with `r` the
/// pixel's table entry; method 2's [`ZERO_VALUE`] is 0.0 and `blank` NaN.
#[inline(always)]
fn dithered<const ZERO: bool, const BLANK: bool>(
    px: &mut [f32],
    r: &[f32],
    scale: f64,
    zero: f64,
    blank: i32,
) {
    for (x, &r) in px.iter_mut().zip(r) {
        let v = x.to_bits() as i32;
        let value = ((f64::from(v) - f64::from(r) + 0.5) * scale + zero) as f32;
        let value = if ZERO && v == ZERO_VALUE { 0.0 } else { value };
        *x = if BLANK && v == blank { f32::NAN } else { value };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_the_published_check_value() {
        let mut seed = 1.0;
        for _ in 0..N_RANDOM {
            seed = next_seed(seed);
        }
        // The convention's check: the 10 000th seed is 1043618065.
        assert_eq!(seed, 1_043_618_065.0);
        assert_eq!(RANDOMS[0], (16807.0f64 / 2_147_483_647.0) as f32);
        assert!(RANDOMS.iter().all(|&r| r > 0.0 && r < 1.0));
    }

    fn dequantize(
        q: &[i32],
        out: &mut Vec<f32>,
        scale: f64,
        zero: f64,
        dither: Dither,
        row: i64,
        blank: Option<i32>,
    ) {
        let mut px: Vec<f32> = q.iter().map(|&v| f32::from_bits(v as u32)).collect();
        let mut d = Dequantizer::new(scale, zero, dither, row, blank);
        // In uneven blocks, as the decoder hands them over.
        let mut rest = px.as_mut_slice();
        while !rest.is_empty() {
            let (head, tail) = rest.split_at_mut(rest.len().min(7));
            d.apply(head);
            rest = tail;
        }
        out.extend_from_slice(&px);
    }

    /// The reference: one pixel at a time, as the convention describes it.
    fn reference(
        q: &[i32],
        scale: f64,
        zero: f64,
        dither: Dither,
        row: i64,
        blank: Option<i32>,
    ) -> Vec<f32> {
        let (mut seed, mut next) = table_start(row);
        let mut out = Vec::new();
        for &v in q {
            out.push(if blank == Some(v) {
                f32::NAN
            } else if dither == Dither::None {
                (f64::from(v) * scale + zero) as f32
            } else if dither == Dither::Subtractive2 && v == ZERO_VALUE {
                0.0
            } else {
                ((f64::from(v) - f64::from(RANDOMS[next]) + 0.5) * scale + zero) as f32
            });
            if dither != Dither::None {
                next += 1;
                if next == N_RANDOM {
                    seed = (seed + 1) % N_RANDOM;
                    next = start_of(seed);
                }
            }
        }
        out
    }

    #[test]
    fn blocks_across_table_wraps_match_the_reference() {
        // 25,000 pixels wrap the 10,000-entry table at least twice.
        let q: Vec<i32> = (0..25_000)
            .map(|i: i32| (i.wrapping_mul(7919) % 2001) - 1000)
            .collect();
        let mut q = q;
        q[17] = ZERO_VALUE;
        q[9_999] = -5;
        for dither in [Dither::None, Dither::Subtractive1, Dither::Subtractive2] {
            for (row, blank) in [(1, None), (9_999, Some(-5)), (4_321, Some(ZERO_VALUE))] {
                let mut got = Vec::new();
                dequantize(&q, &mut got, 0.013, -2.5, dither, row, blank);
                let want = reference(&q, 0.013, -2.5, dither, row, blank);
                let same = got
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{dither:?} row {row} blank {blank:?}");
            }
        }
    }

    #[test]
    fn zero_and_blank_values() {
        let mut out = Vec::new();
        let q = [ZERO_VALUE, -2_147_483_647, 10];
        dequantize(
            &q,
            &mut out,
            0.5,
            1.0,
            Dither::Subtractive2,
            1,
            Some(-2_147_483_647),
        );
        assert_eq!(out[0].to_bits(), 0.0f32.to_bits());
        assert!(out[1].is_nan());
        // The third pixel uses the third table entry from the start.
        let r = f64::from(RANDOMS[start_of(0) + 2]);
        assert_eq!(out[2], ((10.0 - r + 0.5) * 0.5 + 1.0) as f32);
        // Method 1 has no reserved zero.
        out.clear();
        dequantize(&q[..1], &mut out, 0.5, 1.0, Dither::Subtractive1, 1, None);
        assert_ne!(out[0], 0.0);
    }
}
