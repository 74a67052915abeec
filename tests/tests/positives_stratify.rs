//! Positives crossmatch on sweeps with lenses planted at lenscat positions,
//! checked against astropy's match_coordinates_sky; then stratified sampling
//! and the HEALPix split, checked for leakage and determinism.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use lenspipe_tests::{
    assert_same_rows, catalog_command, lenscat, python, read_json, run_ok, synth,
};
use serde_json::Value;

fn table(dir: &Path, extra: &str) -> Value {
    let out = run_ok(python().arg("tests/py/parquet_rows.py").arg(dir).arg(extra));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn run_all(sweeps: &Path, out: &Path, extra: &[&str]) -> Value {
    run_ok(&mut catalog_command(sweeps, out, extra));
    read_json(&out.join("run.json"))
}

#[test]
fn planted_lenses_are_recovered_and_agree_with_astropy_then_sample_and_split() {
    let tmp = tempfile::tempdir().unwrap();
    let sweeps = tmp.path().join("sweeps");
    synth(&sweeps, 24, 4_000, 5, &["--plant", &lenscat()]);
    let out = tmp.path().join("run");
    let run = run_all(&sweeps, &out, &[]);

    // Every lens of the catalog leaves with exactly one status.
    let pos = &run["stages"]["positives"];
    let statuses: u64 = pos["status"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(statuses, pos["lenses"].as_u64().unwrap());
    assert_eq!(
        pos["lenses"].as_u64().unwrap()
            + pos["catalog_rejected_lines"].as_array().unwrap().len() as u64,
        pos["catalog_lines"].as_u64().unwrap()
    );

    // Planted rows inside the footprint are recovered, at the planted row.
    let planted = std::fs::read_to_string(sweeps.join("planted.csv")).unwrap();
    let positives = table(
        &out.join("positives"),
        "lens_id,status,match_sep_arcsec,lens_dec",
    );
    // lens line -> (status, separation)
    let mut by_lens: BTreeMap<i64, (String, Option<f64>)> = BTreeMap::new();
    let ids = positives["lens_id"].as_array().unwrap();
    for i in 0..ids.len() {
        by_lens.insert(
            ids[i].as_i64().unwrap(),
            (
                positives["status"][i].as_str().unwrap().to_string(),
                positives["match_sep_arcsec"][i].as_f64(),
            ),
        );
    }
    let (mut inside, mut recovered) = (0, 0);
    for line in planted.lines().skip(1) {
        let f: Vec<&str> = line.rsplitn(9, ',').collect();
        // rsplitn: [catalog_line, offset, lens_dec, lens_ra, dec, ra, row_index, sweep_file, name]
        let (catalog_line, lens_dec): (i64, f64) = (f[0].parse().unwrap(), f[2].parse().unwrap());
        if !(lens_dec > -18.0 && lens_dec < 32.0) {
            continue;
        }
        inside += 1;
        let (status, sep) = by_lens
            .get(&catalog_line)
            .unwrap_or_else(|| panic!("lens line {catalog_line} missing"));
        if status == "matched" || status == "fails_selection" {
            recovered += 1;
            assert!(
                sep.unwrap() <= 0.5 + 1e-6,
                "planted at < 0.5 arcsec, matched at {sep:?}"
            );
        }
    }
    assert!(
        inside >= 20,
        "too few planted lenses inside the footprint to test: {inside}"
    );
    assert!(
        recovered as f64 >= 0.999 * inside as f64,
        "recovered {recovered} of {inside}"
    );

    // Exact agreement with astropy's nearest-neighbour match within 1.5 arcsec.
    let files: Vec<_> = std::fs::read_dir(&sweeps)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "fits"))
        .collect();
    let reference = tmp.path().join("astropy.csv");
    run_ok(
        python()
            .args([
                "bench/crossmatch_astropy.py",
                "--lenses",
                &lenscat(),
                "--radius-arcsec",
                "1.5",
                "--out",
            ])
            .arg(&reference)
            .arg("--sweeps")
            .args(&files),
    );
    let ours: BTreeSet<(String, i64)> = table(&out.join("positives"), "")["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| !k[0].is_null())
        .map(|k| (k[0].as_str().unwrap().to_string(), k[1].as_i64().unwrap()))
        .collect();
    let text = std::fs::read_to_string(&reference).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("{name} in {header:?}"))
    };
    let (fi, ri, mi) = (col("sweep_file"), col("row_index"), col("matched"));
    let theirs: BTreeSet<(String, i64)> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[mi] == "True" || f[mi] == "1" || f[mi] == "true")
        .map(|f| (f[fi].to_string(), f[ri].parse().unwrap()))
        .collect();
    assert_eq!(ours, theirs, "crossmatch differs from astropy");

    // Stratified sample: leakage-free split, N2 target vs achieved reported.
    let strat = &run["stages"]["stratify"];
    assert_eq!(strat["leakage"]["pixels_in_several_splits"], 0);
    assert!(strat["n2"]["achieved_rows"].as_u64().is_some());
    assert!(strat["positives"].as_u64().unwrap() > 0);
    let sample = table(&out.join("sample"), "split,split_pixel,label");
    let mut split_of: BTreeMap<i64, String> = BTreeMap::new();
    for (pixel, split) in sample["split_pixel"]
        .as_array()
        .unwrap()
        .iter()
        .zip(sample["split"].as_array().unwrap())
    {
        let prev = split_of.insert(pixel.as_i64().unwrap(), split.as_str().unwrap().to_string());
        assert!(
            prev.is_none_or(|p| p == split.as_str().unwrap()),
            "pixel {pixel} in two splits"
        );
    }
}

/// Row keys of each stage's output, and the columns that differ by design
/// between two runs (the extraction time).
pub const STAGE_KEYS: [(&str, &str); 3] = [
    ("negatives", "sweep_file,row_index"),
    ("positives", "lens_id"),
    ("sample", "label,sweep_file,row_index,lens_name"),
];
const RUN_VARYING: &str = "extraction_timestamp";

#[test]
fn sample_is_the_same_whatever_the_partitioning() {
    let tmp = tempfile::tempdir().unwrap();
    let sweeps = tmp.path().join("sweeps");
    synth(&sweeps, 12, 4_000, 9, &["--plant", &lenscat()]);
    let reference = tmp.path().join("reference");
    run_all(&sweeps, &reference, &[]);
    // Byte ranges of one file split across partitions, batches that do not
    // divide the files, and batch sizes that do.
    let partitionings: [&[&str]; 3] = [
        &[
            "--set",
            "scan.target_partition_mib=1",
            "--set",
            "scan.batch_rows=1000",
        ],
        &["--set", "scan.batch_rows=333"],
        &[
            "--set",
            "scan.target_partition_mib=1",
            "--set",
            "scan.batch_rows=4096",
        ],
    ];
    for (i, extra) in partitionings.iter().enumerate() {
        let out = tmp.path().join(format!("run-{i}"));
        run_all(&sweeps, &out, extra);
        for (stage, keys) in STAGE_KEYS {
            let what = format!("{stage} with {extra:?}");
            assert_same_rows(
                &reference.join(stage),
                &out.join(stage),
                keys,
                RUN_VARYING,
                &what,
            );
        }
    }
    let sample = table(&reference.join("sample"), "label");
    let positives = sample["label"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l.as_i64() == Some(1))
        .count();
    assert!(
        positives > 0 && positives < sample["rows"].as_u64().unwrap() as usize,
        "the sample holds both classes"
    );
}
