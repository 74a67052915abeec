//! Names of the Paper IV selection filters, as returned by
//! `paper_iv_reject_reason`, in funnel order.
//!
//! Plans and reports use these constants so that a funnel table (rows
//! rejected per reason) always spells the reasons the same way.

/// `ra` or `dec` is NULL, NaN or infinite.
pub const INVALID_COORDS: &str = "invalid_coords";
/// `NOT (dec > dec_min AND dec < dec_max)`: outside the DECaLS footprint band.
pub const OUTSIDE_DECALS: &str = "outside_decals";
/// The trimmed `TYPE` is NULL or not one of the valid types.
pub const NOT_VALID_TYPE: &str = "not_valid_type";
/// `(maskbits & exclude_mask) != 0`, or `maskbits` is NULL.
pub const MASKBIT: &str = "maskbit";
/// `nobs_g < min_nobs_g OR nobs_r < min_nobs_r OR nobs_z < min_nobs_z`, or a NULL `nobs`.
pub const INSUFFICIENT_EXPOSURES: &str = "insufficient_exposures";
/// `NOT (mag_z < z_mag_max)`, including a NULL/NaN/non-positive `flux_z` (no magnitude).
pub const MAG_Z_FAINT: &str = "mag_z_faint";

/// The reasons in the order they are tested: a row failing several filters
/// is reported with the first one of this list.
pub const FUNNEL_ORDER: [&str; 6] = [
    INVALID_COORDS,
    OUTSIDE_DECALS,
    NOT_VALID_TYPE,
    MASKBIT,
    INSUFFICIENT_EXPOSURES,
    MAG_Z_FAINT,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn funnel_order_is_distinct_and_stable() {
        assert_eq!(
            FUNNEL_ORDER,
            [
                "invalid_coords",
                "outside_decals",
                "not_valid_type",
                "maskbit",
                "insufficient_exposures",
                "mag_z_faint"
            ]
        );
        let mut v = FUNNEL_ORDER.to_vec();
        v.sort();
        v.dedup();
        assert_eq!(v.len(), 6);
    }
}
