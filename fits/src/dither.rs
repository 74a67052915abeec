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

/// Turns the quantised values of one tile into floats, appending to `out`.
/// `row` is the 0-based tile index plus `ZDITHER0`; `blank` the integer that
/// marks undefined pixels (NaN).
pub(crate) fn dequantize(
    q: &[i32],
    out: &mut Vec<f32>,
    scale: f64,
    zero: f64,
    dither: Dither,
    row: i64,
    blank: Option<i32>,
) {
    out.reserve(q.len());
    if dither == Dither::None {
        out.extend(q.iter().map(|&v| match blank {
            Some(b) if v == b => f32::NAN,
            _ => (f64::from(v) * scale + zero) as f32,
        }));
        return;
    }
    let (mut seed, mut next) = table_start(row);
    for &v in q {
        let value = if blank == Some(v) {
            f32::NAN
        } else if dither == Dither::Subtractive2 && v == ZERO_VALUE {
            0.0
        } else {
            ((f64::from(v) - f64::from(RANDOMS[next]) + 0.5) * scale + zero) as f32
        };
        out.push(value);
        next += 1;
        if next == N_RANDOM {
            seed = (seed + 1) % N_RANDOM;
            next = start_of(seed);
        }
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
