//! The DR10 sweep column set.

use lenspipe_fits::ColumnSpec;

/// Bands with optical photometry, in file order.
pub const OPTICAL: [&str; 4] = ["G", "R", "I", "Z"];
/// WISE bands, in file order.
pub const WISE: [&str; 4] = ["W1", "W2", "W3", "W4"];

const FLUX: &str = "nanomaggy";
const IVAR_FLUX: &str = "1/nanomaggy^2";

/// The columns of a synthetic sweep file, in file order, with their DR10 TFORMs.
///
/// This is the DR10 sweep column set as best known from the Legacy Surveys DR10
/// catalog documentation (<https://www.legacysurvey.org/dr10/catalogs/>), with
/// DR10 types (`MASKBITS` is int32 `J`, `TYPE` is `3A`, `RELEASE` int16 `I`), and
/// units where they are obvious. The light-curve (`LC_*`) columns are not
/// generated. The files carry synthetic values only: nothing here comes from
/// real survey data.
pub fn dr10_columns() -> Vec<ColumnSpec> {
    let mut c: Vec<ColumnSpec> = Vec::with_capacity(160);
    let mut add = |name: &str, tform: &str, unit: Option<&str>| {
        let mut spec = ColumnSpec::new(name, tform);
        if let Some(u) = unit {
            spec = spec.unit(u);
        }
        c.push(spec);
    };
    add("RELEASE", "I", None);
    add("BRICKID", "J", None);
    add("BRICKNAME", "8A", None);
    add("OBJID", "J", None);
    add("BRICK_PRIMARY", "L", None);
    add("MASKBITS", "J", None);
    add("FITBITS", "I", None);
    add("TYPE", "3A", None);
    add("RA", "D", Some("deg"));
    add("DEC", "D", Some("deg"));
    add("RA_IVAR", "E", Some("1/deg^2"));
    add("DEC_IVAR", "E", Some("1/deg^2"));
    add("BX", "E", Some("pixel"));
    add("BY", "E", Some("pixel"));
    add("DCHISQ", "5E", None);
    add("EBV", "E", Some("mag"));
    add("MJD_MIN", "D", Some("d"));
    add("MJD_MAX", "D", Some("d"));
    add("REF_CAT", "2A", None);
    add("REF_ID", "K", None);
    add("PMRA", "E", Some("mas/yr"));
    add("PMDEC", "E", Some("mas/yr"));
    add("PARALLAX", "E", Some("mas"));
    add("PMRA_IVAR", "E", Some("1/(mas/yr)^2"));
    add("PMDEC_IVAR", "E", Some("1/(mas/yr)^2"));
    add("PARALLAX_IVAR", "E", Some("1/mas^2"));
    add("REF_EPOCH", "E", Some("yr"));
    add("GAIA_PHOT_G_MEAN_MAG", "E", Some("mag"));
    add("GAIA_PHOT_G_MEAN_FLUX_OVER_ERROR", "E", None);
    add("GAIA_PHOT_G_N_OBS", "I", None);
    add("GAIA_PHOT_BP_MEAN_MAG", "E", Some("mag"));
    add("GAIA_PHOT_BP_MEAN_FLUX_OVER_ERROR", "E", None);
    add("GAIA_PHOT_BP_N_OBS", "I", None);
    add("GAIA_PHOT_RP_MEAN_MAG", "E", Some("mag"));
    add("GAIA_PHOT_RP_MEAN_FLUX_OVER_ERROR", "E", None);
    add("GAIA_PHOT_RP_N_OBS", "I", None);
    add("GAIA_PHOT_VARIABLE_FLAG", "L", None);
    add("GAIA_ASTROMETRIC_EXCESS_NOISE", "E", Some("mas"));
    add("GAIA_ASTROMETRIC_EXCESS_NOISE_SIG", "E", None);
    add("GAIA_ASTROMETRIC_N_OBS_AL", "I", None);
    add("GAIA_ASTROMETRIC_N_GOOD_OBS_AL", "I", None);
    add("GAIA_ASTROMETRIC_WEIGHT_AL", "E", None);
    add("GAIA_DUPLICATED_SOURCE", "L", None);
    add("GAIA_A_G_VAL", "E", Some("mag"));
    add("GAIA_E_BP_MIN_RP_VAL", "E", Some("mag"));
    add("GAIA_PHOT_BP_RP_EXCESS_FACTOR", "E", None);
    add("GAIA_ASTROMETRIC_SIGMA5D_MAX", "E", Some("mas"));
    add("GAIA_ASTROMETRIC_PARAMS_SOLVED", "B", None);
    for b in OPTICAL {
        add(&format!("FLUX_{b}"), "E", Some(FLUX));
    }
    for b in WISE {
        add(&format!("FLUX_{b}"), "E", Some(FLUX));
    }
    for b in OPTICAL.iter().chain(WISE.iter()) {
        add(&format!("FLUX_IVAR_{b}"), "E", Some(IVAR_FLUX));
    }
    for b in OPTICAL {
        add(&format!("FIBERFLUX_{b}"), "E", Some(FLUX));
    }
    for b in OPTICAL {
        add(&format!("FIBERTOTFLUX_{b}"), "E", Some(FLUX));
    }
    for b in OPTICAL.iter().chain(WISE.iter()) {
        add(&format!("MW_TRANSMISSION_{b}"), "E", None);
    }
    for b in OPTICAL.iter().chain(WISE.iter()) {
        add(&format!("NOBS_{b}"), "I", None);
    }
    for b in OPTICAL.iter().chain(WISE.iter()) {
        add(&format!("RCHISQ_{b}"), "E", None);
    }
    for b in OPTICAL.iter().chain(WISE.iter()) {
        add(&format!("FRACFLUX_{b}"), "E", None);
    }
    for b in OPTICAL {
        add(&format!("FRACMASKED_{b}"), "E", None);
    }
    for b in OPTICAL {
        add(&format!("FRACIN_{b}"), "E", None);
    }
    for b in OPTICAL {
        add(&format!("ANYMASK_{b}"), "I", None);
    }
    for b in OPTICAL {
        add(&format!("ALLMASK_{b}"), "I", None);
    }
    add("WISEMASK_W1", "B", None);
    add("WISEMASK_W2", "B", None);
    for b in OPTICAL {
        add(&format!("PSFSIZE_{b}"), "E", Some("arcsec"));
    }
    for b in OPTICAL {
        add(&format!("PSFDEPTH_{b}"), "E", Some(IVAR_FLUX));
    }
    for b in OPTICAL {
        add(&format!("GALDEPTH_{b}"), "E", Some(IVAR_FLUX));
    }
    for b in OPTICAL {
        add(&format!("NEA_{b}"), "E", None);
    }
    for b in OPTICAL {
        add(&format!("BLOB_NEA_{b}"), "E", None);
    }
    for b in WISE {
        add(&format!("PSFDEPTH_{b}"), "E", Some(IVAR_FLUX));
    }
    add("WISE_COADD_ID", "8A", None);
    add("WISE_X", "E", Some("pixel"));
    add("WISE_Y", "E", Some("pixel"));
    add("SERSIC", "E", None);
    add("SERSIC_IVAR", "E", None);
    add("SHAPE_R", "E", Some("arcsec"));
    add("SHAPE_R_IVAR", "E", Some("1/arcsec^2"));
    add("SHAPE_E1", "E", None);
    add("SHAPE_E1_IVAR", "E", None);
    add("SHAPE_E2", "E", None);
    add("SHAPE_E2_IVAR", "E", None);
    c
}
