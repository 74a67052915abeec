//! Sky boxes of sweep files and brick names.

use crate::rng::Rng;
use std::fmt;

/// Width of a sweep box in RA and Dec, in degrees.
pub const BOX_DEG: i32 = 5;
/// Lowest `dec_lo` a synthetic sweep can have (inclusive).
pub const DEC_LO_MIN: i32 = -25;
/// Highest `dec_lo` bound (exclusive): boxes start at -25, -20, ..., 30.
pub const DEC_LO_END: i32 = 35;
/// Number of distinct boxes: 72 in RA times 12 in Dec.
pub const N_BOXES: usize =
    (360 / BOX_DEG as usize) * ((DEC_LO_END - DEC_LO_MIN) as usize / BOX_DEG as usize);

/// A 5 x 5 degree RA/Dec box covered by one sweep file; bounds in whole degrees,
/// `ra_lo <= ra < ra_hi`, `dec_lo <= dec < dec_hi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SkyBox {
    pub ra_lo: i32,
    pub ra_hi: i32,
    pub dec_lo: i32,
    pub dec_hi: i32,
}

impl SkyBox {
    /// The box with index `i` in `0..N_BOXES` (RA fastest).
    pub fn from_index(i: usize) -> SkyBox {
        let n_ra = 360 / BOX_DEG as usize;
        let ra_lo = (i % n_ra) as i32 * BOX_DEG;
        let dec_lo = DEC_LO_MIN + (i / n_ra) as i32 * BOX_DEG;
        SkyBox {
            ra_lo,
            ra_hi: ra_lo + BOX_DEG,
            dec_lo,
            dec_hi: dec_lo + BOX_DEG,
        }
    }

    /// DR10 sweep file name, e.g. `sweep-150m010-155m005.fits`.
    pub fn file_name(&self) -> String {
        fn corner(ra: i32, dec: i32) -> String {
            format!(
                "{:03}{}{:03}",
                ra,
                if dec < 0 { 'm' } else { 'p' },
                dec.abs()
            )
        }
        format!(
            "sweep-{}-{}.fits",
            corner(self.ra_lo, self.dec_lo),
            corner(self.ra_hi, self.dec_hi)
        )
    }

    /// Whether a position (degrees) lies in the box (half-open bounds).
    pub fn contains(&self, ra: f64, dec: f64) -> bool {
        ra >= self.ra_lo as f64
            && ra < self.ra_hi as f64
            && dec >= self.dec_lo as f64
            && dec < self.dec_hi as f64
    }
}

impl fmt::Display for SkyBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RA [{}, {}) Dec [{}, {})",
            self.ra_lo, self.ra_hi, self.dec_lo, self.dec_hi
        )
    }
}

/// The boxes of files `0..files` for `seed`: a seeded permutation of all
/// [`N_BOXES`] boxes, so boxes are distinct and file `k`'s box depends only on
/// `(seed, k)` (not on how many files are requested). Panics if `files > N_BOXES`.
pub fn sweep_boxes(seed: u64, files: usize) -> Vec<SkyBox> {
    assert!(files <= N_BOXES, "at most {N_BOXES} distinct sweep boxes");
    let mut idx: Vec<usize> = (0..N_BOXES).collect();
    let mut rng = Rng::for_stream(seed, &[u64::MAX, 0xB0C5]);
    // Forward Fisher-Yates: position k is fixed after step k.
    for k in 0..files {
        let j = rng.int(k as i64, (N_BOXES - 1) as i64) as usize;
        idx.swap(k, j);
    }
    idx[..files]
        .iter()
        .map(|&i| SkyBox::from_index(i))
        .collect()
}

/// Legacy Surveys-style brick grid: rows of 0.25 deg in Dec, about 0.25 deg in RA.
pub struct BrickGrid {
    /// Number of bricks in each Dec row (721 rows, centres at -90, -89.75, ..., 90).
    n_ra: Vec<u32>,
    /// Brick id of the first brick of each row minus one.
    first: Vec<u32>,
}

const BRICK_DEG: f64 = 0.25;
const WISE_TILE_DEG: f64 = 1.5;

impl BrickGrid {
    pub fn new() -> Self {
        let rows = (180.0 / BRICK_DEG) as usize + 1;
        let mut n_ra = Vec::with_capacity(rows);
        let mut first = Vec::with_capacity(rows);
        let mut total = 0u32;
        for r in 0..rows {
            let dec_c = r as f64 * BRICK_DEG - 90.0;
            let n = row_bricks(dec_c, BRICK_DEG);
            first.push(total);
            n_ra.push(n);
            total += n;
        }
        BrickGrid { n_ra, first }
    }

    /// Brick id (1-based) and 8-character brick name of the brick containing the position.
    #[inline]
    pub fn brick(&self, ra: f64, dec: f64) -> (i32, [u8; 8]) {
        let row = (((dec + 90.0) / BRICK_DEG) + 0.5)
            .floor()
            .clamp(0.0, (self.n_ra.len() - 1) as f64) as usize;
        let dec_c = row as f64 * BRICK_DEG - 90.0;
        let n = self.n_ra[row];
        let col = ((ra.rem_euclid(360.0) / 360.0 * n as f64) as u32).min(n - 1);
        let ra_c = (col as f64 + 0.5) * 360.0 / n as f64;
        ((self.first[row] + col + 1) as i32, grid_name(ra_c, dec_c))
    }
}

impl Default for BrickGrid {
    fn default() -> Self {
        Self::new()
    }
}

/// unWISE-like coadd tile id (`RRRRpDDD`) on a 1.5 degree grid.
#[inline]
pub fn wise_coadd_id(ra: f64, dec: f64) -> [u8; 8] {
    let dec_c = (dec / WISE_TILE_DEG).round() * WISE_TILE_DEG;
    let n = row_bricks(dec_c, WISE_TILE_DEG);
    let col = ((ra.rem_euclid(360.0) / 360.0 * n as f64) as u32).min(n - 1);
    let ra_c = (col as f64 + 0.5) * 360.0 / n as f64;
    grid_name(ra_c, dec_c)
}

fn row_bricks(dec_c: f64, step: f64) -> u32 {
    ((360.0 * dec_c.to_radians().cos() / step).ceil() as u32).max(1)
}

/// `%04d` of ra*10, `p`/`m`, `%03d` of |dec|*10, without allocating.
#[inline]
fn grid_name(ra_c: f64, dec_c: f64) -> [u8; 8] {
    let r = ((ra_c * 10.0) as u32).min(3599);
    let d = ((dec_c.abs() * 10.0) as u32).min(900);
    [
        b'0' + (r / 1000) as u8,
        b'0' + (r / 100 % 10) as u8,
        b'0' + (r / 10 % 10) as u8,
        b'0' + (r % 10) as u8,
        if dec_c < 0.0 { b'm' } else { b'p' },
        b'0' + (d / 100) as u8,
        b'0' + (d / 10 % 10) as u8,
        b'0' + (d % 10) as u8,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let b = SkyBox {
            ra_lo: 150,
            ra_hi: 155,
            dec_lo: -10,
            dec_hi: -5,
        };
        assert_eq!(b.file_name(), "sweep-150m010-155m005.fits");
        let b = SkyBox {
            ra_lo: 355,
            ra_hi: 360,
            dec_lo: -5,
            dec_hi: 0,
        };
        assert_eq!(b.file_name(), "sweep-355m005-360p000.fits");
        let b = SkyBox {
            ra_lo: 0,
            ra_hi: 5,
            dec_lo: 30,
            dec_hi: 35,
        };
        assert_eq!(b.file_name(), "sweep-000p030-005p035.fits");
    }

    #[test]
    fn boxes_distinct_and_prefix_stable() {
        let all = sweep_boxes(3, N_BOXES);
        let set: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(set.len(), N_BOXES);
        assert_eq!(&sweep_boxes(3, 5)[..], &all[..5]);
        assert_ne!(sweep_boxes(4, 5), sweep_boxes(3, 5));
        for b in &all {
            assert!(b.dec_lo >= -25 && b.dec_lo < 35 && b.ra_lo >= 0 && b.ra_hi <= 360);
        }
    }

    #[test]
    fn bricks() {
        let g = BrickGrid::new();
        let (id, name) = g.brick(150.23, -7.2);
        assert_eq!(&name[4..], b"m072");
        assert!(name.starts_with(b"150") || name.starts_with(b"149"));
        assert!(id > 0);
        let (_, name) = g.brick(0.01, 0.05);
        assert_eq!(&name, b"0001p000");
        let (id2, _) = g.brick(150.23 + 0.5, -7.2);
        assert_ne!(id, id2);
        assert_eq!(&wise_coadd_id(150.0, -7.2)[4..], b"m075");
    }
}
