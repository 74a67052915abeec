//! The reasons a sweep row is rejected, in funnel order, with the one
//! string form each is spelled with in plans, Parquet and `run.json`.
//!
//! `paper_iv_reject_reason` returns the first six; the negatives plan adds
//! [`RejectReason::NearKnownLens`] after them (bound as a plan parameter,
//! so the SQL never spells it).

use std::fmt;
use std::str::FromStr;

/// Why a row left the negative pool. The order of the variants is the
/// funnel order: a row failing several filters carries the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RejectReason {
    /// `ra` or `dec` is NULL, NaN or infinite.
    InvalidCoords,
    /// `NOT (dec > dec_min AND dec < dec_max)`: outside the DECaLS footprint band.
    OutsideDecals,
    /// The trimmed `TYPE` is NULL or not one of the valid types.
    NotValidType,
    /// `(maskbits & exclude_mask) != 0`, or `maskbits` is NULL.
    Maskbit,
    /// `nobs_g < min_nobs_g OR nobs_r < min_nobs_r OR nobs_z < min_nobs_z`, or a NULL `nobs`.
    InsufficientExposures,
    /// `NOT (mag_z < z_mag_max)`, including a NULL/NaN/non-positive `flux_z` (no magnitude).
    MagZFaint,
    /// Within `exclusion.radius_arcsec` of a known lens (the negatives plan, not the UDF).
    NearKnownLens,
}

impl RejectReason {
    /// Every reason, in funnel order.
    pub const ALL: [RejectReason; 7] = [
        Self::InvalidCoords,
        Self::OutsideDecals,
        Self::NotValidType,
        Self::Maskbit,
        Self::InsufficientExposures,
        Self::MagZFaint,
        Self::NearKnownLens,
    ];

    /// The Paper IV cuts `paper_iv_reject_reason` tests, in funnel order.
    pub const PAPER_IV_CUTS: [RejectReason; 6] = [
        Self::InvalidCoords,
        Self::OutsideDecals,
        Self::NotValidType,
        Self::Maskbit,
        Self::InsufficientExposures,
        Self::MagZFaint,
    ];

    /// The one spelling of each reason.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidCoords => "invalid_coords",
            Self::OutsideDecals => "outside_decals",
            Self::NotValidType => "not_valid_type",
            Self::Maskbit => "maskbit",
            Self::InsufficientExposures => "insufficient_exposures",
            Self::MagZFaint => "mag_z_faint",
            Self::NearKnownLens => "near_known_lens",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RejectReason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s).ok_or_else(|| format!("unknown reject reason '{s}'"))
    }
}

pub const INVALID_COORDS: &str = RejectReason::InvalidCoords.as_str();
pub const OUTSIDE_DECALS: &str = RejectReason::OutsideDecals.as_str();
pub const NOT_VALID_TYPE: &str = RejectReason::NotValidType.as_str();
pub const MASKBIT: &str = RejectReason::Maskbit.as_str();
pub const INSUFFICIENT_EXPOSURES: &str = RejectReason::InsufficientExposures.as_str();
pub const MAG_Z_FAINT: &str = RejectReason::MagZFaint.as_str();

/// The strings `paper_iv_reject_reason` returns, in funnel order.
pub const FUNNEL_ORDER: [&str; 6] = {
    let mut out = [""; 6];
    let mut i = 0;
    while i < out.len() {
        out[i] = RejectReason::PAPER_IV_CUTS[i].as_str();
        i += 1;
    }
    out
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_round_trips_and_is_distinct() {
        for r in RejectReason::ALL {
            assert_eq!(RejectReason::parse(r.as_str()), Some(r));
            assert_eq!(r.to_string().parse::<RejectReason>(), Ok(r));
        }
        let mut v: Vec<&str> = RejectReason::ALL.iter().map(|r| r.as_str()).collect();
        v.sort();
        v.dedup();
        assert_eq!(v.len(), RejectReason::ALL.len());
        assert!(RejectReason::parse("near-known-lens").is_none());
    }

    #[test]
    fn all_is_in_variant_order_and_the_cuts_come_first() {
        let mut sorted = RejectReason::ALL;
        sorted.sort();
        assert_eq!(sorted, RejectReason::ALL);
        assert_eq!(RejectReason::ALL[..6], RejectReason::PAPER_IV_CUTS);
        for (s, r) in FUNNEL_ORDER.iter().zip(RejectReason::PAPER_IV_CUTS) {
            assert_eq!(*s, r.as_str());
        }
    }
}
