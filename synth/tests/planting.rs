//! Planting lenses from a catalog CSV.

mod common;

use lenspipe_fits::sphere::angular_sep_arcsec;
use lenspipe_synth::{run, sweep_boxes, SynthError, SynthOptions};

const SEED: u64 = 77;
const ROWS: u64 = 500;

#[test]
fn lenses_are_planted_and_bad_lines_reported() {
    let dir = common::tmpdir("plant");
    let sky = sweep_boxes(SEED, 2)[0];
    let (ra0, dec0) = (sky.ra_lo as f64, sky.dec_lo as f64);
    let lenses = [
        ("L1", ra0 + 0.5, dec0 + 0.5),
        ("L2 \"quoted\", name", ra0 + 2.25, dec0 + 3.75),
        ("L3", ra0 + 4.9, dec0 + 4.9),
    ];
    let mut csv = String::from("name,RA [deg],DEC [deg],zlens,type,grading,ref\n");
    csv.push_str(&format!(
        "{},{},{},0.3,galaxy,confident,ref A\n",
        lenses[0].0, lenses[0].1, lenses[0].2
    ));
    csv.push_str("BAD,not-a-number,1.0,-,galaxy,confident,x\n"); // line 3
    csv.push_str(&format!(
        "\"L2 \"\"quoted\"\", name\",\"{}\",\"{}\",-,galaxy,probable,B\\\"ohringer et al.\n",
        lenses[1].1, lenses[1].2
    ));
    csv.push_str("FAR,10.0,60.0,-,galaxy,confident,x\n"); // outside every box (dec >= 35)
    csv.push_str(&format!(
        "{},{},{},-,galaxy,confident,x\n",
        lenses[2].0, lenses[2].1, lenses[2].2
    ));
    let cat = dir.join("lenses.csv");
    std::fs::write(&cat, csv).unwrap();

    let mut o = SynthOptions::new(dir.join("out"));
    o.files = 2;
    o.rows_per_file = ROWS;
    o.seed = SEED;
    o.plant = Some(cat.clone());
    let rep = run(&o).unwrap();

    let p = rep.plant.as_ref().unwrap();
    assert_eq!(p.lenses, 4);
    assert_eq!(p.skipped.len(), 1);
    assert_eq!(p.skipped[0].line, 3);
    assert!(
        p.skipped[0].to_string().contains("line 3"),
        "{}",
        p.skipped[0]
    );
    assert!(p.skipped[0].reason.contains("not-a-number"));
    assert_eq!(p.outside, 1);
    assert_eq!(rep.total_planted, 3);
    assert_eq!(rep.files[0].planted, 3);
    assert_eq!(rep.files[1].planted, 0);
    assert_eq!(rep.files[0].rows, ROWS + 3);
    assert_eq!(rep.total_rows, 2 * ROWS + 3);
    assert!(rep.to_string().contains("1 bad lines skipped"));

    let t = common::read_table(&rep.files[0].path);
    assert_eq!(t.layout.nrows, ROWS + 3);
    assert_eq!(rep.planted.len(), 3);
    for (j, ((name, lra, ldec), pr)) in lenses.iter().zip(&rep.planted).enumerate() {
        let row = ROWS as usize + j;
        assert_eq!(&pr.name, name);
        assert_eq!(pr.row_index, row as u64);
        let (ra, dec) = (t.f64("RA", row), t.f64("DEC", row));
        assert_eq!((ra, dec), (pr.ra, pr.dec));
        let sep = angular_sep_arcsec(ra, dec, *lra, *ldec).unwrap();
        assert!(sep < 0.5, "{name}: offset {sep} arcsec");
        assert!((sep - pr.offset_arcsec).abs() < 1e-9);
        // Lens-galaxy look that passes the Paper IV cuts.
        let ty = t.str("TYPE", row);
        assert!(ty == "DEV" || ty == "SER", "{ty}");
        let mz = t.mag_z(row).unwrap();
        assert!((17.0..=19.5).contains(&mz), "mag_z {mz}");
        for b in ["G", "R", "Z"] {
            let n = t.i16(&format!("NOBS_{b}"), row);
            assert!((3..=12).contains(&n), "NOBS_{b} {n}");
            assert!(t.f32(&format!("FLUX_{b}"), row) > 0.0);
        }
        assert_eq!(t.i32("MASKBITS", row), 0);
        let sr = t.f32("SHAPE_R", row);
        assert!((1.0..=3.0).contains(&sr), "SHAPE_R {sr}");
        assert_eq!(t.i32("OBJID", row), row as i32);
    }
    // The background rows are not disturbed by planting.
    let mut o2 = o.clone();
    o2.out_dir = dir.join("plain");
    o2.plant = None;
    let plain = run(&o2).unwrap();
    assert!(plain.plant.is_none());
    let tp = common::read_table(&plain.files[0].path);
    let rl = t.layout.row_len;
    let d =
        |x: &common::Table| x.bytes[x.layout.data_offset as usize..][..ROWS as usize * rl].to_vec();
    assert_eq!(d(&t), d(&tp));

    // Sidecar.
    let side = std::fs::read_to_string(dir.join("out").join("planted.csv")).unwrap();
    let lines: Vec<&str> = side.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0].starts_with("name,sweep_file,row_index,ra,dec"));
    let file_name = rep.files[0]
        .path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(lines[1].starts_with(&format!("L1,{file_name},{ROWS},")));
    assert!(lines[2].starts_with(&format!(
        "\"L2 \"\"quoted\"\", name\",{file_name},{},",
        ROWS + 1
    )));
    let f: Vec<&str> = lines[3].split(',').collect();
    assert_eq!(f[3].parse::<f64>().unwrap(), rep.planted[2].ra);
    assert_eq!(f[4].parse::<f64>().unwrap(), rep.planted[2].dec);

    // Strict mode turns the bad line into an error naming the line.
    let mut strict = o.clone();
    strict.out_dir = dir.join("strict");
    strict.strict_catalog = true;
    match run(&strict) {
        Err(e @ SynthError::BadCsvLine { line: 3, .. }) => {
            assert!(e.to_string().contains("bad CSV line 3"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn planting_is_deterministic_across_threads() {
    let dir = common::tmpdir("plant-det");
    let boxes = sweep_boxes(SEED, 3);
    let mut csv = String::from("name,RA [deg],DEC [deg]\n");
    for (k, b) in boxes.iter().enumerate() {
        for j in 0..3 {
            csv.push_str(&format!(
                "K{k}J{j},{},{}\n",
                b.ra_lo as f64 + 1.0 + j as f64,
                b.dec_lo as f64 + 2.5
            ));
        }
    }
    let cat = dir.join("c.csv");
    std::fs::write(&cat, csv).unwrap();
    let mut reps = Vec::new();
    for threads in [1, 3] {
        let mut o = SynthOptions::new(dir.join(format!("t{threads}")));
        o.files = 3;
        o.rows_per_file = 200;
        o.seed = SEED;
        o.threads = threads;
        o.plant = Some(cat.clone());
        reps.push(run(&o).unwrap());
    }
    assert_eq!(reps[0].total_planted, 9);
    assert_eq!(reps[0].planted, reps[1].planted);
    for (a, b) in reps[0].files.iter().zip(&reps[1].files) {
        assert_eq!(a.planted, 3);
        assert_eq!(
            std::fs::read(&a.path).unwrap(),
            std::fs::read(&b.path).unwrap()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn errors_name_paths_and_problems() {
    let dir = common::tmpdir("errors");
    // Missing catalog.
    let mut o = SynthOptions::new(dir.join("out"));
    o.rows_per_file = 10;
    o.plant = Some(dir.join("nope.csv"));
    let e = run(&o).unwrap_err();
    assert!(matches!(e, SynthError::Io { .. }));
    assert!(e.to_string().contains("nope.csv"), "{e}");
    // Catalog without the RA column.
    std::fs::write(dir.join("h.csv"), "name,ra,dec\nx,1,2\n").unwrap();
    o.plant = Some(dir.join("h.csv"));
    let e = run(&o).unwrap_err();
    assert!(matches!(e, SynthError::Catalog { .. }));
    assert!(e.to_string().contains("RA [deg]"), "{e}");
    // Custom column names work.
    o.plant_ra_column = "ra".into();
    o.plant_dec_column = "dec".into();
    assert!(run(&o).is_ok());
    // Output directory that is a file.
    std::fs::write(dir.join("file"), "x").unwrap();
    let mut o = SynthOptions::new(dir.join("file"));
    o.rows_per_file = 10;
    let e = run(&o).unwrap_err();
    assert!(
        e.to_string()
            .contains(&dir.join("file").display().to_string()),
        "{e}"
    );
    // Too many files.
    let mut o = SynthOptions::new(dir.join("out2"));
    o.files = 865;
    assert!(matches!(run(&o), Err(SynthError::InvalidOptions(_))));
    let _ = std::fs::remove_dir_all(&dir);
}
