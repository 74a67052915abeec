//! The DR10 column set, TFORMs and file layout, read back with lenspipe_fits.

mod common;

use lenspipe_synth::{dr10_columns, run, SynthOptions};

/// The column list of the brief, written out independently of `dr10_columns`.
fn expected() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = Vec::new();
    let mut add = |n: &str, t: &str| v.push((n.to_string(), t.to_string()));
    for (n, t) in [
        ("RELEASE", "I"),
        ("BRICKID", "J"),
        ("BRICKNAME", "8A"),
        ("OBJID", "J"),
        ("BRICK_PRIMARY", "L"),
        ("MASKBITS", "J"),
        ("FITBITS", "I"),
        ("TYPE", "3A"),
        ("RA", "D"),
        ("DEC", "D"),
        ("RA_IVAR", "E"),
        ("DEC_IVAR", "E"),
        ("BX", "E"),
        ("BY", "E"),
        ("DCHISQ", "5E"),
        ("EBV", "E"),
        ("MJD_MIN", "D"),
        ("MJD_MAX", "D"),
        ("REF_CAT", "2A"),
        ("REF_ID", "K"),
        ("PMRA", "E"),
        ("PMDEC", "E"),
        ("PARALLAX", "E"),
        ("PMRA_IVAR", "E"),
        ("PMDEC_IVAR", "E"),
        ("PARALLAX_IVAR", "E"),
        ("REF_EPOCH", "E"),
        ("GAIA_PHOT_G_MEAN_MAG", "E"),
        ("GAIA_PHOT_G_MEAN_FLUX_OVER_ERROR", "E"),
        ("GAIA_PHOT_G_N_OBS", "I"),
        ("GAIA_PHOT_BP_MEAN_MAG", "E"),
        ("GAIA_PHOT_BP_MEAN_FLUX_OVER_ERROR", "E"),
        ("GAIA_PHOT_BP_N_OBS", "I"),
        ("GAIA_PHOT_RP_MEAN_MAG", "E"),
        ("GAIA_PHOT_RP_MEAN_FLUX_OVER_ERROR", "E"),
        ("GAIA_PHOT_RP_N_OBS", "I"),
        ("GAIA_PHOT_VARIABLE_FLAG", "L"),
        ("GAIA_ASTROMETRIC_EXCESS_NOISE", "E"),
        ("GAIA_ASTROMETRIC_EXCESS_NOISE_SIG", "E"),
        ("GAIA_ASTROMETRIC_N_OBS_AL", "I"),
        ("GAIA_ASTROMETRIC_N_GOOD_OBS_AL", "I"),
        ("GAIA_ASTROMETRIC_WEIGHT_AL", "E"),
        ("GAIA_DUPLICATED_SOURCE", "L"),
        ("GAIA_A_G_VAL", "E"),
        ("GAIA_E_BP_MIN_RP_VAL", "E"),
        ("GAIA_PHOT_BP_RP_EXCESS_FACTOR", "E"),
        ("GAIA_ASTROMETRIC_SIGMA5D_MAX", "E"),
        ("GAIA_ASTROMETRIC_PARAMS_SOLVED", "B"),
    ] {
        add(n, t);
    }
    let opt = ["G", "R", "I", "Z"];
    let all = ["G", "R", "I", "Z", "W1", "W2", "W3", "W4"];
    let wise = ["W1", "W2", "W3", "W4"];
    for b in opt.iter().chain(wise.iter()) {
        add(&format!("FLUX_{b}"), "E");
    }
    let groups: [(&str, &[&str], &str); 11] = [
        ("FLUX_IVAR", &all, "E"),
        ("FIBERFLUX", &opt, "E"),
        ("FIBERTOTFLUX", &opt, "E"),
        ("MW_TRANSMISSION", &all, "E"),
        ("NOBS", &all, "I"),
        ("RCHISQ", &all, "E"),
        ("FRACFLUX", &all, "E"),
        ("FRACMASKED", &opt, "E"),
        ("FRACIN", &opt, "E"),
        ("ANYMASK", &opt, "I"),
        ("ALLMASK", &opt, "I"),
    ];
    for (p, bands, t) in groups {
        for b in bands.iter() {
            add(&format!("{p}_{b}"), t);
        }
    }
    add("WISEMASK_W1", "B");
    add("WISEMASK_W2", "B");
    for p in ["PSFSIZE", "PSFDEPTH", "GALDEPTH", "NEA", "BLOB_NEA"] {
        for b in opt {
            add(&format!("{p}_{b}"), "E");
        }
    }
    for b in wise {
        add(&format!("PSFDEPTH_{b}"), "E");
    }
    add("WISE_COADD_ID", "8A");
    for n in [
        "WISE_X",
        "WISE_Y",
        "SERSIC",
        "SERSIC_IVAR",
        "SHAPE_R",
        "SHAPE_R_IVAR",
        "SHAPE_E1",
        "SHAPE_E1_IVAR",
        "SHAPE_E2",
        "SHAPE_E2_IVAR",
    ] {
        add(n, "E");
    }
    v
}

fn split_tform(t: &str) -> (usize, char) {
    let d: String = t.chars().take_while(|c| c.is_ascii_digit()).collect();
    (
        if d.is_empty() { 1 } else { d.parse().unwrap() },
        t[d.len()..].chars().next().unwrap(),
    )
}

#[test]
fn schema_matches_brief() {
    let got: Vec<(String, String)> = dr10_columns()
        .into_iter()
        .map(|c| (c.name, c.tform))
        .collect();
    assert_eq!(got, expected());
}

#[test]
fn file_reads_back_with_lenspipe_fits() {
    let dir = common::tmpdir("columns");
    let mut o = SynthOptions::new(&dir);
    o.files = 1;
    o.rows_per_file = 777;
    o.seed = 3;
    let rep = run(&o).unwrap();
    let t = common::read_table(&rep.files[0].path);
    let exp = expected();
    assert_eq!(t.layout.columns.len(), exp.len());
    let mut offset = 0;
    for (c, (name, tform)) in t.layout.columns.iter().zip(&exp) {
        assert_eq!(&c.name, name);
        let (repeat, code) = split_tform(tform);
        assert_eq!((c.tform.repeat, c.tform.code), (repeat, code), "{name}");
        assert_eq!(c.offset, offset, "{name}");
        offset += c.tform.width();
        assert_eq!((c.tscal, c.tzero, c.tnull), (1.0, 0.0, None));
    }
    assert_eq!(t.layout.row_len, offset);
    assert_eq!(t.layout.nrows, 777);
    assert_eq!(t.layout.heap_size, 0);
    let data_end = t.layout.data_offset + t.layout.data_len();
    assert_eq!(t.bytes.len() as u64, data_end.div_ceil(2880) * 2880);
    assert!(t.bytes[data_end as usize..].iter().all(|&b| b == 0));
    let unit = |n: &str| {
        t.layout
            .columns
            .iter()
            .find(|c| c.name == n)
            .unwrap()
            .unit
            .clone()
    };
    assert_eq!(unit("RA").as_deref(), Some("deg"));
    assert_eq!(unit("DEC").as_deref(), Some("deg"));
    assert_eq!(unit("FLUX_Z").as_deref(), Some("nanomaggy"));
    assert_eq!(unit("SHAPE_R").as_deref(), Some("arcsec"));
    assert_eq!(unit("PSFSIZE_R").as_deref(), Some("arcsec"));
    assert_eq!(unit("TYPE"), None);
    // Every column decodes to Arrow.
    let schema = t.layout.arrow_schema();
    assert_eq!(schema.fields().len(), exp.len());
    assert!(schema.field_with_name("maskbits").is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}
