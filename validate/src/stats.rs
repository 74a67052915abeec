//! Per-cutout statistics: one pass over each band's pixels collects the
//! zero count, peak, aperture flux, non-finite count, content hash and the
//! background-annulus samples; medians then come from a selection (O(n)),
//! not a sort.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Band order of the CHW cutouts.
pub const BANDS: [&str; 3] = ["g", "r", "z"];
/// The shape every cutout must have: 3 bands x 101 x 101 pixels.
pub const EXPECTED_SHAPE: [usize; 3] = [3, 101, 101];

/// Names of the image-level features in [`CutoutStats::features`] order.
pub const IMAGE_FEATURES: [&str; 16] = [
    "bg_median_g",
    "bg_median_r",
    "bg_median_z",
    "bg_sigma_g",
    "bg_sigma_r",
    "bg_sigma_z",
    "zero_frac_g",
    "zero_frac_r",
    "zero_frac_z",
    "peak_g",
    "peak_r",
    "peak_z",
    "aperture_flux_g",
    "aperture_flux_r",
    "aperture_flux_z",
    "centroid_offset_px",
];

/// Geometry of the measurements, in pixels from the cutout centre.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatsParams {
    /// Background annulus inner radius (inclusive).
    pub annulus_inner_px: f64,
    /// Background annulus outer radius (exclusive).
    pub annulus_outer_px: f64,
    /// Central aperture radius (inclusive).
    pub aperture_radius_px: f64,
    /// Only peaks within this radius count as "the brightest compact
    /// source", so a bright star in a corner does not move the centroid.
    pub centroid_search_radius_px: f64,
}

impl Default for StatsParams {
    fn default() -> Self {
        Self {
            annulus_inner_px: 40.0,
            annulus_outer_px: 50.0,
            aperture_radius_px: 5.0,
            centroid_search_radius_px: 25.0,
        }
    }
}

/// Statistics of one band.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BandStats {
    /// Median of finite annulus pixels (NaN if none).
    pub bg_median: f64,
    /// 1.4826 * MAD of finite annulus pixels (NaN if none).
    pub bg_sigma: f64,
    /// Fraction of all pixels that are exactly 0.0 (no coverage).
    pub zero_frac: f64,
    /// Largest finite pixel (NaN if none).
    pub peak: f64,
    /// Sum of finite pixels within the aperture.
    pub aperture_flux: f64,
    /// Count of NaN/inf pixels.
    pub n_nonfinite: u32,
    /// Every pixel is exactly 0.0.
    pub all_zero: bool,
}

/// Statistics of one g,r,z cutout.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CutoutStats {
    /// g, r, z in that order.
    pub bands: [BandStats; 3],
    /// Distance (px) of the peak of the 3x3-smoothed r+z image from the
    /// centre, with parabolic sub-pixel refinement; NaN if no finite pixel.
    pub centroid_offset_px: f64,
    /// 64-bit hash of the shape and the raw f32 bits, for duplicate search.
    pub content_hash: u64,
    /// Count of non-finite pixels over all bands.
    pub n_nonfinite: u32,
}

impl CutoutStats {
    pub fn band(&self, name: &str) -> Option<&BandStats> {
        BANDS
            .iter()
            .position(|b| *b == name)
            .map(|i| &self.bands[i])
    }

    /// (name, value) pairs of the image features, names as [`IMAGE_FEATURES`].
    pub fn features(&self) -> Vec<(&'static str, f64)> {
        let b = &self.bands;
        let values = [
            b[0].bg_median,
            b[1].bg_median,
            b[2].bg_median,
            b[0].bg_sigma,
            b[1].bg_sigma,
            b[2].bg_sigma,
            b[0].zero_frac,
            b[1].zero_frac,
            b[2].zero_frac,
            b[0].peak,
            b[1].peak,
            b[2].peak,
            b[0].aperture_flux,
            b[1].aperture_flux,
            b[2].aperture_flux,
            self.centroid_offset_px,
        ];
        IMAGE_FEATURES.iter().copied().zip(values).collect()
    }

    /// One image feature by name.
    pub fn feature(&self, name: &str) -> Option<f64> {
        self.features()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsError {
    /// Declared shape is not [3, h, w] with h, w > 0.
    BadShape(Vec<usize>),
    /// Slice length differs from the product of the declared shape.
    LengthMismatch { expected: usize, actual: usize },
}

impl fmt::Display for StatsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatsError::BadShape(s) => write!(f, "shape {s:?} is not [3, h, w]"),
            StatsError::LengthMismatch { expected, actual } => {
                write!(f, "{actual} pixels, shape says {expected}")
            }
        }
    }
}

impl std::error::Error for StatsError {}

const ZONE_APERTURE: u8 = 1;
const ZONE_ANNULUS: u8 = 2;

/// Reusable computer for one cutout geometry: the pixel zones are
/// precomputed and the scratch buffers reused, so the per-cutout cost is the
/// pixel pass plus the selections (no allocation).
#[derive(Debug, Clone)]
pub struct StatsComputer {
    params: StatsParams,
    height: usize,
    width: usize,
    zone: Vec<u8>,
    /// Bounding box of the centroid search disc: (y0, y1, x0, x1), exclusive ends.
    search_box: (usize, usize, usize, usize),
    search_r2: f64,
    annulus: Vec<f32>,
    rz: Vec<f32>,
    hsum: Vec<f32>,
}

impl StatsComputer {
    pub fn new(height: usize, width: usize, params: StatsParams) -> Self {
        let (cy, cx) = centre(height, width);
        let r2 = |r: f64| r * r;
        let (ap2, in2, out2) = (
            r2(params.aperture_radius_px),
            r2(params.annulus_inner_px),
            r2(params.annulus_outer_px),
        );
        let mut zone = vec![0u8; height * width];
        for y in 0..height {
            for x in 0..width {
                let d2 = r2(y as f64 - cy) + r2(x as f64 - cx);
                let mut z = 0;
                if d2 <= ap2 {
                    z |= ZONE_APERTURE;
                }
                if d2 >= in2 && d2 < out2 {
                    z |= ZONE_ANNULUS;
                }
                zone[y * width + x] = z;
            }
        }
        let sr = params.centroid_search_radius_px.max(0.0);
        let lo = |c: f64| (c - sr).floor().max(0.0) as usize;
        let hi = |c: f64, n: usize| (((c + sr).ceil() + 1.0).max(0.0) as usize).min(n);
        let search_box = (lo(cy), hi(cy, height), lo(cx), hi(cx, width));
        let n_ann = zone.iter().filter(|z| **z & ZONE_ANNULUS != 0).count();
        Self {
            search_r2: sr * sr,
            params,
            height,
            width,
            zone,
            search_box,
            annulus: Vec::with_capacity(n_ann),
            rz: vec![0.0; height * width],
            hsum: vec![0.0; height * width],
        }
    }

    pub fn params(&self) -> &StatsParams {
        &self.params
    }

    /// Statistics of a CHW image of this computer's geometry.
    pub fn compute(&mut self, image: &[f32]) -> Result<CutoutStats, StatsError> {
        let n = self.height * self.width;
        if image.len() != 3 * n {
            return Err(StatsError::LengthMismatch {
                expected: 3 * n,
                actual: image.len(),
            });
        }
        let mut hasher = Hash4::new(&[3, self.height, self.width]);
        let mut bands = [empty_band(); 3];
        let mut n_nonfinite = 0;
        for (b, out) in bands.iter_mut().enumerate() {
            let px = &image[b * n..(b + 1) * n];
            hasher.update(px);
            *out = self.band_pass(px);
            n_nonfinite += out.n_nonfinite;
        }
        let centroid_offset_px = self.centroid_offset(&image[n..2 * n], &image[2 * n..3 * n]);
        Ok(CutoutStats {
            bands,
            centroid_offset_px,
            content_hash: hasher.finish(),
            n_nonfinite,
        })
    }

    fn band_pass(&mut self, px: &[f32]) -> BandStats {
        self.annulus.clear();
        let (mut zeros, mut nonfinite) = (0u32, 0u32);
        let mut peak = f32::NEG_INFINITY;
        let mut ap = 0.0f64;
        for (&v, &z) in px.iter().zip(&self.zone) {
            if !v.is_finite() {
                nonfinite += 1;
                continue;
            }
            zeros += (v == 0.0) as u32;
            peak = peak.max(v);
            if z & ZONE_APERTURE != 0 {
                ap += v as f64;
            }
            if z & ZONE_ANNULUS != 0 {
                self.annulus.push(v);
            }
        }
        let n = px.len();
        let (bg_median, bg_sigma) = median_and_sigma(&mut self.annulus);
        BandStats {
            bg_median,
            bg_sigma,
            zero_frac: if n == 0 {
                f64::NAN
            } else {
                zeros as f64 / n as f64
            },
            peak: if nonfinite as usize == n {
                f64::NAN
            } else {
                peak as f64
            },
            aperture_flux: ap,
            n_nonfinite: nonfinite,
            all_zero: n > 0 && zeros as usize == n,
        }
    }

    /// Peak of the 3x3 box-smoothed r+z image inside the search disc; the
    /// box suppresses single hot pixels and cosmic rays ("compact source").
    fn centroid_offset(&mut self, r: &[f32], z: &[f32]) -> f64 {
        let (w, h) = (self.width, self.height);
        let (y0, y1, x0, x1) = self.search_box;
        if y0 >= y1 || x0 >= x1 {
            return f64::NAN;
        }
        // r+z with non-finite set to 0, over the search box plus a 1 px rim.
        let (ry0, ry1) = (y0.saturating_sub(1), (y1 + 1).min(h));
        let (rx0, rx1) = (x0.saturating_sub(1), (x1 + 1).min(w));
        let mut any_finite = false;
        for y in ry0..ry1 {
            for x in rx0..rx1 {
                let i = y * w + x;
                let s = r[i] + z[i];
                let ok = s.is_finite();
                any_finite |= ok;
                self.rz[i] = if ok { s } else { 0.0 };
            }
        }
        if !any_finite {
            return f64::NAN;
        }
        for y in ry0..ry1 {
            for x in x0..x1 {
                let i = y * w + x;
                let l = if x > 0 { self.rz[i - 1] } else { 0.0 };
                let rr = if x + 1 < w { self.rz[i + 1] } else { 0.0 };
                self.hsum[i] = l + self.rz[i] + rr;
            }
        }
        let (cy, cx) = centre(h, w);
        let smooth = |hs: &[f32], y: usize, x: usize| -> f32 {
            let up = if y > 0 { hs[(y - 1) * w + x] } else { 0.0 };
            let dn = if y + 1 < h { hs[(y + 1) * w + x] } else { 0.0 };
            up + hs[y * w + x] + dn
        };
        let mut best = (f32::NEG_INFINITY, y0, x0);
        for y in y0..y1 {
            let dy2 = (y as f64 - cy) * (y as f64 - cy);
            for x in x0..x1 {
                if dy2 + (x as f64 - cx) * (x as f64 - cx) > self.search_r2 {
                    continue;
                }
                let s = smooth(&self.hsum, y, x);
                if s > best.0 {
                    best = (s, y, x);
                }
            }
        }
        let (_, by, bx) = best;
        // Parabolic refinement where both neighbours are inside the box.
        let refine = |m: f32, c: f32, p: f32| -> f64 {
            let den = (m - 2.0 * c + p) as f64;
            if den < 0.0 {
                (0.5 * (m - p) as f64 / den).clamp(-0.5, 0.5)
            } else {
                0.0
            }
        };
        let mut fy = by as f64;
        let mut fx = bx as f64;
        if by > y0 && by + 1 < y1 {
            let (m, c, p) = (
                smooth(&self.hsum, by - 1, bx),
                smooth(&self.hsum, by, bx),
                smooth(&self.hsum, by + 1, bx),
            );
            fy += refine(m, c, p);
        }
        if bx > x0 && bx + 1 < x1 {
            let (m, c, p) = (
                smooth(&self.hsum, by, bx - 1),
                smooth(&self.hsum, by, bx),
                smooth(&self.hsum, by, bx + 1),
            );
            fx += refine(m, c, p);
        }
        ((fy - cy).powi(2) + (fx - cx).powi(2)).sqrt()
    }
}

/// Statistics of one CHW cutout of declared `shape` (must be [3, h, w]).
/// For many cutouts of one geometry prefer a reused [`StatsComputer`].
pub fn compute_stats(
    image: &[f32],
    shape: &[usize],
    params: &StatsParams,
) -> Result<CutoutStats, StatsError> {
    match shape {
        [3, h, w] if *h > 0 && *w > 0 => StatsComputer::new(*h, *w, params.clone()).compute(image),
        _ => Err(StatsError::BadShape(shape.to_vec())),
    }
}

/// Pixel centre of an h x w grid ((n-1)/2: pixel 50 of 101).
fn centre(height: usize, width: usize) -> (f64, f64) {
    ((height as f64 - 1.0) / 2.0, (width as f64 - 1.0) / 2.0)
}

fn empty_band() -> BandStats {
    BandStats {
        bg_median: f64::NAN,
        bg_sigma: f64::NAN,
        zero_frac: f64::NAN,
        peak: f64::NAN,
        aperture_flux: 0.0,
        n_nonfinite: 0,
        all_zero: false,
    }
}

/// Median (numpy convention: mean of the two middles) and 1.4826 * MAD.
/// Reorders `v`, which must hold finite values only.
pub fn median_and_sigma(v: &mut [f32]) -> (f64, f64) {
    let Some(med) = median_in_place(v) else {
        return (f64::NAN, f64::NAN);
    };
    for x in v.iter_mut() {
        *x = (*x as f64 - med).abs() as f32;
    }
    let mad = median_in_place(v).unwrap_or(f64::NAN);
    (med, 1.4826 * mad)
}

/// Median of finite values by selection; None when empty.
pub fn median_in_place(v: &mut [f32]) -> Option<f64> {
    let n = v.len();
    if n == 0 {
        return None;
    }
    let k = n / 2;
    let (lower, mid, _) = v.select_nth_unstable_by(k, f32::total_cmp);
    let hi = *mid as f64;
    if n % 2 == 1 {
        return Some(hi);
    }
    let lo = lower.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    Some(0.5 * (lo + hi))
}

/// Median of f64 values ignoring NaN; None when nothing finite is left.
pub fn median_f64(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    let n = v.len();
    if n == 0 {
        return None;
    }
    let k = n / 2;
    let (lower, mid, _) = v.select_nth_unstable_by(k, f64::total_cmp);
    let hi = *mid;
    if n % 2 == 1 {
        return Some(hi);
    }
    let lo = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some(0.5 * (lo + hi))
}

/// Four independent multiply-xor lanes (for instruction-level parallelism)
/// folded with a final avalanche; not cryptographic, enough to find
/// byte-identical cutouts (collisions ~ n^2 / 2^65).
struct Hash4 {
    lanes: [u64; 4],
    len: u64,
}

impl Hash4 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;

    fn new(shape: &[usize]) -> Self {
        let mut h = Self {
            lanes: [
                0x243F_6A88_85A3_08D3,
                0x1319_8A2E_0370_7344,
                0xA409_3822_299F_31D0,
                0x082E_FA98_EC4E_6C89,
            ],
            len: 0,
        };
        for (i, s) in shape.iter().enumerate() {
            h.lanes[i % 4] = mix(h.lanes[i % 4] ^ *s as u64);
        }
        h
    }

    fn update(&mut self, px: &[f32]) {
        let mut chunks = px.chunks_exact(8);
        for c in &mut chunks {
            for l in 0..4 {
                let word = (c[2 * l].to_bits() as u64) | ((c[2 * l + 1].to_bits() as u64) << 32);
                self.lanes[l] = (self.lanes[l] ^ word).wrapping_mul(Self::K).rotate_left(29);
            }
        }
        for (i, v) in chunks.remainder().iter().enumerate() {
            self.lanes[i % 4] = mix(self.lanes[i % 4] ^ v.to_bits() as u64);
        }
        self.len += px.len() as u64;
    }

    fn finish(&self) -> u64 {
        let mut h = self.len;
        for l in self.lanes {
            h = mix(h ^ l);
        }
        h
    }
}

/// SplitMix64 finaliser.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(v: f32) -> Vec<f32> {
        vec![v; 3 * 101 * 101]
    }

    #[test]
    fn medians_match_numpy_convention() {
        assert_eq!(median_in_place(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median_in_place(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median_in_place(&mut []), None);
        let (m, s) = median_and_sigma(&mut [1.0, 2.0, 3.0, 4.0, 100.0]);
        assert_eq!(m, 3.0);
        assert!((s - 1.4826).abs() < 1e-12);
        assert_eq!(median_f64(&[f64::NAN, 1.0, 5.0]), Some(3.0));
    }

    #[test]
    fn flat_image_and_point_source() {
        let p = StatsParams::default();
        let mut img = flat(0.5);
        let s = compute_stats(&img, &EXPECTED_SHAPE, &p).unwrap();
        for b in &s.bands {
            assert_eq!(b.bg_median, 0.5);
            assert_eq!(b.bg_sigma, 0.0);
            assert_eq!(b.zero_frac, 0.0);
            assert_eq!(b.peak, 0.5);
            // 81 pixels within r <= 5 of the centre.
            assert!((b.aperture_flux - 81.0 * 0.5).abs() < 1e-9);
        }
        // A compact source at (60, 50): 10 px from the centre, in r and z.
        for band in 1..3 {
            for (dy, dx, v) in [
                (0, 0, 10.0),
                (1, 0, 3.0),
                (-1, 0, 3.0),
                (0, 1, 3.0),
                (0, -1, 3.0),
            ] {
                let y = (60 + dy) as usize;
                let x = (50 + dx) as usize;
                img[band * 10201 + y * 101 + x] = v;
            }
        }
        let s = compute_stats(&img, &EXPECTED_SHAPE, &p).unwrap();
        assert!(
            (s.centroid_offset_px - 10.0).abs() < 0.3,
            "{}",
            s.centroid_offset_px
        );
        assert_eq!(s.bands[1].peak, 10.0);
    }

    #[test]
    fn hash_sees_every_pixel_and_shape_errors() {
        let p = StatsParams::default();
        let a = flat(1.0);
        let mut b = a.clone();
        let h = |img: &[f32]| {
            compute_stats(img, &EXPECTED_SHAPE, &p)
                .unwrap()
                .content_hash
        };
        assert_eq!(h(&a), h(&b));
        for i in [0, 5, 10_200, 20_000, 30_602] {
            b[i] = 1.000_001;
            assert_ne!(h(&a), h(&b), "pixel {i}");
            b[i] = 1.0;
        }
        b[7] = -0.0;
        assert_ne!(h(&flat(0.0)), h(&b));
        assert!(matches!(
            compute_stats(&a, &[1, 101, 101], &p),
            Err(StatsError::BadShape(_))
        ));
        assert!(matches!(
            compute_stats(&a[1..], &EXPECTED_SHAPE, &p),
            Err(StatsError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn nonfinite_and_zero_pixels_counted() {
        let mut img = flat(0.0);
        img[3] = f32::NAN;
        img[10201 + 4] = f32::INFINITY;
        let s = compute_stats(&img, &EXPECTED_SHAPE, &StatsParams::default()).unwrap();
        assert_eq!(s.n_nonfinite, 2);
        assert!(!s.bands[0].all_zero);
        assert!(s.bands[2].all_zero);
        assert_eq!(s.features().len(), IMAGE_FEATURES.len());
        assert_eq!(s.feature("zero_frac_z"), Some(1.0));
    }
}
