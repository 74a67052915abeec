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
}

impl Check {
    pub const ALL: [Check; 7] = [
        Check::WrongShape,
        Check::NanPixels,
        Check::NoCoverage,
        Check::DuplicateImage,
        Check::NotOkStatus,
        Check::SaturatedOrBright,
        Check::OffCentre,
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
    fn duplicates_keep_first() {
        assert_eq!(
            mark_duplicates(&[1, 2, 1, 3, 2, 1]),
            vec![false, false, true, false, true, true]
        );
    }
}
