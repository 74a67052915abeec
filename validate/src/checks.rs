//! Quality checks of one cutout. Each failure has a stable name (the
//! strings end up in Parquet columns and reports, so they never change).

use crate::stats::{compute_stats, CutoutStats, StatsParams, EXPECTED_SHAPE};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

/// A failed quality check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Declared shape is not 3 x 101 x 101, or the pixel count disagrees.
    WrongShape,
    /// Any NaN or infinite pixel.
    NanPixels,
    /// A band entirely zero, or more than `max_zero_fraction` zero pixels.
    NoCoverage,
    /// Same pixel content as an earlier row (decided across rows by the
    /// caller from [`CutoutStats::content_hash`], see [`mark_duplicates`]).
    DuplicateImage,
    /// The cutout stage reported a status other than `ok`.
    NotOkStatus,
    /// Central aperture flux or peak beyond the limits (bright star,
    /// saturation bleed).
    SaturatedOrBright,
    /// The brightest compact source is too far from the centre.
    OffCentre,
    /// A band's inverse variance is zero (or not finite) over the central
    /// pixels: no valid data where the lens would be. Only where the
    /// cutouts carry an invvar plane.
    LowInvvar,
    /// The central pixel's maskbits carry a bit the catalogue selection
    /// excludes (`selection.exclude_maskbits`). Only where the cutouts
    /// carry a maskbits plane.
    MaskedCentre,
}

impl Check {
    pub const ALL: [Check; 9] = [
        Check::WrongShape,
        Check::NanPixels,
        Check::NoCoverage,
        Check::DuplicateImage,
        Check::NotOkStatus,
        Check::SaturatedOrBright,
        Check::OffCentre,
        Check::LowInvvar,
        Check::MaskedCentre,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Check::WrongShape => WRONG_SHAPE,
            Check::NanPixels => NAN_PIXELS,
            Check::NoCoverage => NO_COVERAGE,
            Check::DuplicateImage => DUPLICATE_IMAGE,
            Check::NotOkStatus => NOT_OK_STATUS,
            Check::SaturatedOrBright => SATURATED_OR_BRIGHT,
            Check::OffCentre => OFF_CENTRE,
            Check::LowInvvar => LOW_INVVAR,
            Check::MaskedCentre => MASKED_CENTRE,
        }
    }
}

pub const WRONG_SHAPE: &str = "wrong_shape";
pub const NAN_PIXELS: &str = "nan_pixels";
pub const NO_COVERAGE: &str = "no_coverage";
pub const DUPLICATE_IMAGE: &str = "duplicate_image";
pub const NOT_OK_STATUS: &str = "not_ok_status";
pub const SATURATED_OR_BRIGHT: &str = "saturated_or_bright";
pub const OFF_CENTRE: &str = "off_centre";
pub const LOW_INVVAR: &str = "low_invvar";
pub const MASKED_CENTRE: &str = "masked_centre";

/// The cutout status that passes `not_ok_status`.
pub const STATUS_OK: &str = "ok";

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCheck(pub String);

impl fmt::Display for UnknownCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown check name {:?}", self.0)
    }
}

impl std::error::Error for UnknownCheck {}

impl FromStr for Check {
    type Err = UnknownCheck;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Check::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCheck(s.to_string()))
    }
}

/// Limits of the checks. Fluxes in nanomaggies (22.5 - 2.5 log10 f = AB
/// mag): the defaults reject roughly anything brighter than ~15.8 mag in the
/// 5 px aperture, far brighter than lens galaxies (typically 18-21 mag).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Thresholds {
    /// `no_coverage` when a band has more than this fraction of exact zeros.
    pub max_zero_fraction: f64,
    /// `saturated_or_bright` when any band's aperture flux exceeds this.
    pub max_aperture_flux: f64,
    /// `saturated_or_bright` when any band's peak pixel exceeds this.
    pub max_peak: f64,
    /// `off_centre` when the brightest compact source is farther (px).
    pub max_centroid_offset_px: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            max_zero_fraction: 0.2,
            max_aperture_flux: 500.0,
            max_peak: 100.0,
            max_centroid_offset_px: 8.0,
        }
    }
}

/// Failed checks of one cutout, in [`Check::ALL`] order, given the stats
/// already computed for it (None when the shape made them impossible).
/// `duplicate_image` is never returned here: it needs all rows.
pub fn failed_checks(
    image: &[f32],
    shape: &[usize],
    status: &str,
    stats: Option<&CutoutStats>,
    th: &Thresholds,
) -> Vec<Check> {
    let mut failed = Vec::new();
    let shape_ok = shape == EXPECTED_SHAPE && image.len() == shape.iter().product::<usize>();
    if !shape_ok {
        failed.push(Check::WrongShape);
    }
    let nonfinite = match stats {
        Some(s) if shape_ok => s.n_nonfinite > 0,
        _ => image.iter().any(|v| !v.is_finite()),
    };
    if nonfinite {
        failed.push(Check::NanPixels);
    }
    let stats = stats.filter(|_| shape_ok);
    if let Some(s) = stats {
        if s.bands
            .iter()
            .any(|b| b.all_zero || b.zero_frac > th.max_zero_fraction)
        {
            failed.push(Check::NoCoverage);
        }
    }
    if status != STATUS_OK {
        failed.push(Check::NotOkStatus);
    }
    if let Some(s) = stats {
        if s.bands
            .iter()
            .any(|b| b.aperture_flux > th.max_aperture_flux || b.peak > th.max_peak)
        {
            failed.push(Check::SaturatedOrBright);
        }
        // NaN offset (nothing finite) is left to nan_pixels/no_coverage.
        if s.centroid_offset_px > th.max_centroid_offset_px {
            failed.push(Check::OffCentre);
        }
    }
    failed
}

/// Computes the stats (when the shape allows) and runs every per-row check.
pub fn check_cutout(
    image: &[f32],
    shape: &[usize],
    status: &str,
    params: &StatsParams,
    th: &Thresholds,
) -> (Option<CutoutStats>, Vec<Check>) {
    let stats = if shape == EXPECTED_SHAPE {
        compute_stats(image, shape, params).ok()
    } else {
        None
    };
    let failed = failed_checks(image, shape, status, stats.as_ref(), th);
    (stats, failed)
}

/// Side of the central box `low_invvar` looks at, in pixels.
pub const CENTRE_INVVAR_BOX: usize = 3;

/// `low_invvar`: whether any band of a CHW invvar plane (`bands` planes of
/// `size` x `size`) has no positive, finite inverse variance in the central
/// [`CENTRE_INVVAR_BOX`]² pixels. A plane of the wrong length is left to
/// the image's own shape check.
pub fn low_invvar_at_centre(invvar: &[f32], bands: usize, size: usize) -> bool {
    let plane = size * size;
    if bands == 0 || size == 0 || invvar.len() != bands * plane {
        return false;
    }
    let half = CENTRE_INVVAR_BOX / 2;
    let centre = size / 2;
    let (lo, hi) = (centre.saturating_sub(half), (centre + half).min(size - 1));
    invvar.chunks_exact(plane).any(|band| {
        !(lo..=hi).any(|y| {
            band[y * size + lo..=y * size + hi]
                .iter()
                .any(|v| v.is_finite() && *v > 0.0)
        })
    })
}

/// `masked_centre`: whether the central pixel of a `size` x `size`
/// maskbits plane has any bit of `excluded`.
pub fn masked_at_centre(maskbits: &[i32], size: usize, excluded: i64) -> bool {
    let centre = (size / 2) * size + size / 2;
    maskbits.len() == size * size
        && maskbits
            .get(centre)
            .is_some_and(|&bits| i64::from(bits) & excluded != 0)
}

/// True for every row whose hash appeared in an earlier row (the first
/// occurrence is kept, so deduplication keeps one copy).
pub fn mark_duplicates(hashes: &[u64]) -> Vec<bool> {
    let mut seen = HashSet::with_capacity(hashes.len());
    hashes.iter().map(|h| !seen.insert(*h)).collect()
}

/// Comma-joined names, the form stored in the `failed_checks` column.
pub fn join_names(checks: &[Check]) -> String {
    checks
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Check::ALL {
            assert_eq!(c.as_str().parse::<Check>(), Ok(c));
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.as_str())
            );
        }
        assert!("bogus".parse::<Check>().is_err());
        assert_eq!(
            join_names(&[Check::NanPixels, Check::OffCentre]),
            "nan_pixels,off_centre"
        );
    }

    #[test]
    fn low_invvar_needs_one_valid_central_pixel_in_every_band() {
        let (bands, size) = (3, 7);
        let mut iv = vec![2.0f32; bands * size * size];
        assert!(!low_invvar_at_centre(&iv, bands, size));
        // The r band's central 3 x 3 box has no data: flagged.
        for y in 2..=4 {
            for x in 2..=4 {
                iv[size * size + y * size + x] = 0.0;
            }
        }
        assert!(low_invvar_at_centre(&iv, bands, size));
        // One finite positive pixel in the box is data.
        iv[size * size + 2 * size + 4] = 0.5;
        assert!(!low_invvar_at_centre(&iv, bands, size));
        iv[size * size + 2 * size + 4] = f32::NAN;
        assert!(low_invvar_at_centre(&iv, bands, size));
        // Zeros outside the box do not matter; a wrong length is not judged.
        let mut edge = vec![1.0f32; bands * size * size];
        edge[..size].fill(0.0);
        assert!(!low_invvar_at_centre(&edge, bands, size));
        assert!(!low_invvar_at_centre(&edge[1..], bands, size));
    }

    #[test]
    fn masked_centre_reads_the_central_pixel_only() {
        let size = 5;
        let mut bits = vec![0i32; size * size];
        bits[0] = 1 << 1;
        assert!(!masked_at_centre(&bits, size, 1 << 1));
        bits[12] = (1 << 1) | (1 << 13);
        assert!(masked_at_centre(&bits, size, 1 << 1));
        assert!(!masked_at_centre(&bits, size, 1 << 5));
        assert!(!masked_at_centre(&bits[1..], size, 1 << 1));
    }

    #[test]
    fn duplicates_keep_first() {
        assert_eq!(
            mark_duplicates(&[1, 2, 1, 3, 2, 1]),
            vec![false, false, true, false, true, true]
        );
    }
}
