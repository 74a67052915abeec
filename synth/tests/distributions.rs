//! Distribution sanity of the synthetic rows.

mod common;

use lenspipe_synth::{run, SynthOptions};
use std::collections::HashMap;

const ROWS: usize = 20_000;

#[test]
fn distributions_are_plausible() {
    let dir = common::tmpdir("dist");
    let mut o = SynthOptions::new(&dir);
    o.files = 1;
    o.rows_per_file = ROWS as u64;
    o.seed = 2024;
    let rep = run(&o).unwrap();
    let sky = rep.files[0].sky;
    let t = common::read_table(&rep.files[0].path);
    assert_eq!(t.nrows(), ROWS);
    let n = ROWS as f64;
    let frac = |k: usize| k as f64 / n;

    // TYPE mix.
    let mut types: HashMap<String, usize> = HashMap::new();
    for i in 0..ROWS {
        *types.entry(t.str("TYPE", i)).or_default() += 1;
    }
    for (ty, want, tol) in [
        ("PSF", 0.45, 0.02),
        ("REX", 0.30, 0.02),
        ("EXP", 0.12, 0.015),
        ("DEV", 0.08, 0.01),
        ("SER", 0.04, 0.008),
        ("DUP", 0.01, 0.004),
    ] {
        let f = frac(types.get(ty).copied().unwrap_or(0));
        assert!((f - want).abs() < tol, "{ty}: {f} vs {want}");
    }
    assert_eq!(types.len(), 6, "{types:?}");

    // z magnitudes.
    let mags: Vec<Option<f64>> = (0..ROWS).map(|i| t.mag_z(i)).collect();
    let bright20 = frac(mags.iter().filter(|m| m.is_some_and(|m| m < 20.0)).count());
    let bright21 = frac(mags.iter().filter(|m| m.is_some_and(|m| m < 21.0)).count());
    let in_19_24 = frac(
        mags.iter()
            .filter(|m| m.is_some_and(|m| (19.0..=24.0).contains(&m)))
            .count(),
    );
    let bad_z = frac(mags.iter().filter(|m| m.is_none()).count());
    assert!((bright20 - 0.03).abs() < 0.008, "mag_z < 20: {bright20}");
    assert!((bright21 - 0.10).abs() < 0.02, "mag_z < 21: {bright21}");
    assert!(in_19_24 > 0.95, "19 <= mag_z <= 24: {in_19_24}");
    assert!(
        (0.005..0.03).contains(&bad_z),
        "non-positive or NaN FLUX_Z: {bad_z}"
    );
    let nan_z = (0..ROWS).filter(|&i| t.f32("FLUX_Z", i).is_nan()).count();
    assert!(nan_z > 0);

    // g-r colours.
    let mut gr = Vec::new();
    for i in 0..ROWS {
        let (g, r) = (t.f32("FLUX_G", i) as f64, t.f32("FLUX_R", i) as f64);
        if g > 0.0 && r > 0.0 {
            gr.push(-2.5 * (g / r).log10());
        }
    }
    let blue = gr.iter().filter(|&&c| c < 0.4).count() as f64 / gr.len() as f64;
    assert!((0.07..0.13).contains(&blue), "g-r < 0.4: {blue}");
    assert!(gr.iter().all(|&c| (-0.25..2.05).contains(&c)));

    // NOBS.
    let mut low = 0;
    for i in 0..ROWS {
        let nobs = [t.i16("NOBS_G", i), t.i16("NOBS_R", i), t.i16("NOBS_Z", i)];
        assert!(nobs.iter().all(|&v| (1..=15).contains(&v)), "{nobs:?}");
        if nobs.iter().any(|&v| v < 3) {
            low += 1;
        }
    }
    assert!(
        (0.07..0.13).contains(&frac(low)),
        "NOBS < 3 in some band: {}",
        frac(low)
    );

    // MASKBITS.
    let excl: i32 = [1, 5, 6, 7, 11, 12, 13].iter().map(|b| 1 << b).sum();
    let mb: Vec<i32> = (0..ROWS).map(|i| t.i32("MASKBITS", i)).collect();
    let f_excl = frac(mb.iter().filter(|&&m| m & excl != 0).count());
    let f_other = frac(mb.iter().filter(|&&m| m & !excl != 0).count());
    assert!((0.02..0.07).contains(&f_excl), "excluded bits: {f_excl}");
    assert!((0.02..0.07).contains(&f_other), "other bits: {f_other}");

    // Positions, bricks, shapes, extinction, constants.
    const R: [(&str, f64); 4] = [("G", 3.214), ("R", 2.165), ("I", 1.592), ("Z", 1.211)];
    let mut objids = std::collections::HashSet::new();
    for i in 0..ROWS {
        let (ra, dec) = (t.f64("RA", i), t.f64("DEC", i));
        assert!(sky.contains(ra, dec), "row {i}: {ra} {dec} outside {sky}");
        let name = t.str("BRICKNAME", i);
        assert_eq!(name.len(), 8);
        let bra: f64 = name[..4].parse::<f64>().unwrap() / 10.0;
        let bdec: f64 =
            name[5..].parse::<f64>().unwrap() / 10.0 * if &name[4..5] == "m" { -1.0 } else { 1.0 };
        assert!(
            (bra - ra).abs() < 0.3 && (bdec - dec).abs() < 0.3,
            "{name} vs {ra} {dec}"
        );
        assert!(objids.insert(t.i32("OBJID", i)));
        assert_eq!(t.i16("RELEASE", i), 10000);
        assert!(t.bool("BRICK_PRIMARY", i));

        let ty = t.str("TYPE", i);
        let (shape_r, sersic) = (t.f32("SHAPE_R", i), t.f32("SERSIC", i));
        let (e1, e2) = (t.f32("SHAPE_E1", i), t.f32("SHAPE_E2", i));
        assert!(e1.abs() < 0.7 && e2.abs() < 0.7 && (e1 * e1 + e2 * e2).sqrt() < 0.7);
        match ty.as_str() {
            "PSF" => assert_eq!((shape_r, sersic), (0.0, 0.0)),
            "DUP" => assert_eq!(shape_r, 0.0),
            "DEV" => assert_eq!(sersic, 4.0),
            "EXP" | "REX" => assert_eq!(sersic, 1.0),
            "SER" => assert!((0.5..=6.0).contains(&sersic)),
            other => panic!("TYPE {other}"),
        }
        if !matches!(ty.as_str(), "PSF" | "DUP") {
            assert!((0.25..=5.0).contains(&shape_r), "{ty} SHAPE_R {shape_r}");
        }

        let ebv = t.f32("EBV", i) as f64;
        assert!((0.01..=0.3).contains(&ebv));
        for (b, coeff) in R {
            let mw = t.f32(&format!("MW_TRANSMISSION_{b}"), i) as f64;
            assert!((mw - 10f64.powf(-0.4 * coeff * ebv)).abs() < 1e-6);
            let ps = t.f32(&format!("PSFSIZE_{b}"), i);
            let nobs = t.i16(&format!("NOBS_{b}"), i);
            if nobs > 0 {
                assert!((0.8..=2.0).contains(&ps), "PSFSIZE_{b} {ps}");
                assert!(t.f32(&format!("PSFDEPTH_{b}"), i) > 0.0);
                assert!(t.f32(&format!("GALDEPTH_{b}"), i) > 0.0);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn some_rows_fall_outside_decals_dec_range() {
    // With 60 boxes, several lie (partly) outside -18 < dec < 32.
    let boxes = lenspipe_synth::sweep_boxes(9, 60);
    assert!(boxes.iter().any(|b| b.dec_lo < -18));
    assert!(boxes.iter().any(|b| b.dec_hi > 32));
    assert!(boxes.iter().all(|b| b.dec_lo >= -25 && b.dec_hi <= 35));
}
