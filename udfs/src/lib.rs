//! Stateless scalar DataFusion functions for the lenspipe strong-lens
//! training sets (DESI Legacy Imaging Surveys DR10 sweeps).
//!
//! Every function is a [`ScalarUDFImpl`](datafusion::logical_expr::ScalarUDFImpl)
//! in its own module, documented with a DataFusion
//! [`Documentation`](datafusion::logical_expr::Documentation). They hold no
//! state: every threshold is an argument of the call (a literal in the
//! plan), so a serialized plan shipped to a remote (Ballista) executor
//! carries everything, and the executor rebuilds the functions by name from
//! [`all()`] (or [`udf_by_name`]).
//!
//! | SQL name | returns |
//! |---|---|
//! | `nmgy_to_mag(flux)` | Float64 |
//! | `paper_iv_reject_reason(ra, dec, type, maskbits, nobs_g, nobs_r, nobs_z, flux_z, dec_min, dec_max, valid_types, exclude_mask, min_nobs_g, min_nobs_r, min_nobs_z, z_mag_max)` | Utf8 |
//! | `n2_category(type, flux_g, flux_r, shape_r, ring_types, ring_flux_r_min, edge_types, edge_shape_r_min, blue_g_minus_r_max, blue_r_mag_max)` | Utf8 |
//! | `nobs_bin(nobs, bins)` | Utf8 |
//! | `type_bin(type)` | Utf8 |
//! | `healpix_nested(ra_deg, dec_deg, nside)` | Int64 |
//! | `healpix_cone_cells(ra_deg, dec_deg, nside, radius_arcsec)` | List(Int64) |
//! | `angular_sep_arcsec(ra1, dec1, ra2, dec2)` | Float64 |
//! | `min_sep_arcsec(ra, dec, positions)` | Float64 |
//! | `axis_ratio(e1, e2)` | Float64 |
//! | `stable_hash_unit(key, seed)` | Float64 |
//! | `image_hash(image)` | Int64 |

use std::sync::Arc;

use datafusion::error::Result;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::ScalarUDF;

mod common;

pub mod angular_sep_arcsec;
pub mod axis_ratio;
pub mod healpix_cone_cells;
pub mod healpix_nested;
pub mod image_hash;
pub mod min_sep_arcsec;
pub mod n2_category;
pub mod nmgy_to_mag;
pub mod nobs_bin;
pub mod paper_iv_reject_reason;
pub mod reasons;
pub mod stable_hash_unit;
pub mod type_bin;

pub use angular_sep_arcsec::{angular_sep_arcsec_value, AngularSepArcsec};
pub use axis_ratio::{axis_ratio_value, AxisRatio};
pub use common::trim_type;
pub use healpix_cone_cells::{cone_cells, HealpixConeCells};
pub use healpix_nested::{depth_from_nside, nested_pixel, HealpixNested};
pub use image_hash::{image_hash_values, ImageHash};
pub use min_sep_arcsec::MinSepArcsec;
pub use n2_category::{N2Category, BLUE_CLUMPY, EDGE_ON_PROXY, N2_ORDER, RING_PROXY};
pub use nmgy_to_mag::{flux_to_ab_mag, NmgyToMag};
pub use nobs_bin::{parse_nobs_bins, NobsBin, NobsBinSpec};
pub use paper_iv_reject_reason::PaperIvRejectReason;
pub use stable_hash_unit::{stable_hash_unit_i64, stable_hash_unit_str, StableHashUnit};
pub use type_bin::{type_bin_value, TypeBin};

/// All lenspipe scalar functions, freshly built.
pub fn all() -> Vec<Arc<ScalarUDF>> {
    vec![
        Arc::new(ScalarUDF::from(NmgyToMag::new())),
        Arc::new(ScalarUDF::from(PaperIvRejectReason::new())),
        Arc::new(ScalarUDF::from(N2Category::new())),
        Arc::new(ScalarUDF::from(NobsBin::new())),
        Arc::new(ScalarUDF::from(TypeBin::new())),
        Arc::new(ScalarUDF::from(HealpixNested::new())),
        Arc::new(ScalarUDF::from(HealpixConeCells::new())),
        Arc::new(ScalarUDF::from(AngularSepArcsec::new())),
        Arc::new(ScalarUDF::from(MinSepArcsec::new())),
        Arc::new(ScalarUDF::from(AxisRatio::new())),
        Arc::new(ScalarUDF::from(StableHashUnit::new())),
        Arc::new(ScalarUDF::from(ImageHash::new())),
    ]
}

/// The lenspipe function registered under `name`, if any (for executors
/// that resolve functions of a deserialized plan by name).
pub fn udf_by_name(name: &str) -> Option<Arc<ScalarUDF>> {
    all().into_iter().find(|u| u.name() == name)
}

/// Registers every function of [`all()`] in `registry` (a `SessionContext`,
/// a `SessionState`, a Ballista executor's registry...), replacing any
/// function of the same name.
pub fn register_all(registry: &mut dyn FunctionRegistry) -> Result<()> {
    for udf in all() {
        registry.register_udf(udf)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_documented_and_resolvable() {
        let udfs = all();
        let mut names: Vec<&str> = udfs.iter().map(|u| u.name()).collect();
        // The functions the plans rely on, by their exact SQL names.
        for required in [
            "nmgy_to_mag",
            "paper_iv_reject_reason",
            "n2_category",
            "nobs_bin",
            "type_bin",
            "healpix_nested",
            "healpix_cone_cells",
            "angular_sep_arcsec",
            "axis_ratio",
            "stable_hash_unit",
        ] {
            assert!(names.contains(&required), "{required} missing from all()");
        }
        for u in &udfs {
            let doc = u.documentation().expect("documented");
            assert!(!doc.description.is_empty());
            assert!(
                doc.syntax_example.starts_with(u.name()),
                "{}",
                doc.syntax_example
            );
            assert!(doc.arguments.as_ref().is_some_and(|a| !a.is_empty()));
            assert_eq!(udf_by_name(u.name()).as_deref(), Some(u.as_ref()));
        }
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate names in all()");
        assert!(udf_by_name("nope").is_none());
    }

    #[test]
    fn register_all_in_a_session() {
        let mut ctx = datafusion::prelude::SessionContext::new();
        register_all(&mut ctx).unwrap();
        for u in all() {
            assert!(ctx.udf(u.name()).is_ok(), "{}", u.name());
        }
    }
}
