//! Matched negatives: on sweeps whose planted lenses are bright and well
//! observed, `sampling.match_on` brings each matched column's AUC (computed
//! here from the committed sample, read with pyarrow) to 0.5 +- 0.05, keeps
//! every positive, and draws the same rows whatever the partitioning.

use std::path::Path;
use std::process::Command;

use lenspipe_tests::{
    assert_same_rows, catalog_command, lenscat, python, read_json, run_ok, synth,
};
use serde_json::Value;

/// `lenspipe run catalog` with paper_iv on `sweeps` and lenscat, two
/// negatives per lens.
fn catalog(sweeps: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut command = catalog_command(sweeps, out, &["--set", "sampling.negatives_per_positive=2"]);
    command.args(extra);
    command
}

fn run_catalog(sweeps: &Path, out: &Path, extra: &[&str]) -> Value {
    run_ok(&mut catalog(sweeps, out, extra));
    read_json(&out.join("run.json"))
}

fn table(dir: &Path, extra: &str) -> Value {
    let out = run_ok(python().arg("tests/py/parquet_rows.py").arg(dir).arg(extra));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Mann-Whitney AUC of positives against negatives, ties one half.
fn auc(pos: &[f64], neg: &[f64]) -> f64 {
    let mut wins = 0.0;
    for p in pos {
        for n in neg {
            if p > n {
                wins += 1.0;
            } else if p == n {
                wins += 0.5;
            }
        }
    }
    wins / (pos.len() * neg.len()) as f64
}

/// AUC per column of the committed sample's classes.
fn sample_auc(sample: &Value, column: &str) -> f64 {
    let (mut pos, mut neg) = (Vec::new(), Vec::new());
    for (label, v) in sample["label"]
        .as_array()
        .unwrap()
        .iter()
        .zip(sample[column].as_array().unwrap())
    {
        let Some(v) = v.as_f64() else { continue };
        if label.as_i64() == Some(1) {
            pos.push(v);
        } else {
            neg.push(v);
        }
    }
    auc(&pos, &neg)
}

const MATCH: &str = "sampling.match_on=[mag_z,nobs_z]";

#[test]
fn matched_negatives_remove_the_brightness_and_depth_shortcut() {
    let tmp = tempfile::tempdir().unwrap();
    let sweeps = tmp.path().join("sweeps");
    // Few files of many rows: a pool with bright early types for every lens.
    synth(&sweeps, 4, 300_000, 5, &["--plant", &lenscat()]);

    // Without matching the planted hosts stand out on both columns.
    let plain = tmp.path().join("plain");
    run_catalog(&sweeps, &plain, &[]);
    let before = table(&plain.join("sample"), "label,mag_z,nobs_z");
    let before_mag = sample_auc(&before, "mag_z");
    assert!(
        (before_mag - 0.5).abs() > 0.1,
        "the synthetic positives should be brighter than the field (mag_z AUC {before_mag})"
    );

    let matched = tmp.path().join("matched");
    let run = run_catalog(&sweeps, &matched, &["--set", MATCH]);
    let stratify = &run["stages"]["stratify"];
    let sample = table(&matched.join("sample"), "label,mag_z,nobs_z,weight");
    for column in ["mag_z", "nobs_z"] {
        let a = sample_auc(&sample, column);
        assert!(
            (a - 0.5).abs() <= 0.05,
            "{column}: AUC {a} after matching (before: {})",
            sample_auc(&before, column)
        );
        // run.json reports the same balance the sample shows.
        let reported = stratify["matching"]["balance"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["column"] == column)
            .unwrap();
        let r = reported["auc_after"].as_f64().unwrap();
        assert!((r - a).abs() < 1e-9, "{column}: run.json {r}, sample {a}");
        assert!(reported["auc_before"].as_f64().is_some());
    }

    // No positive dropped: every matched positive is in the sample, as in
    // the unmatched run.
    let positives = |t: &Value| {
        t["label"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l.as_i64() == Some(1))
            .count() as u64
    };
    assert_eq!(positives(&sample), positives(&before));
    assert_eq!(positives(&sample), stratify["positives"].as_u64().unwrap());
    // Weights: drawn rows of a short cell stand for its target.
    let m = &stratify["matching"];
    let ess = m["negatives_effective_sample_size"].as_f64().unwrap();
    let drawn = m["negatives_drawn"].as_u64().unwrap() as f64;
    assert!(ess > 0.0 && ess <= drawn + 1e-9, "ESS {ess} of {drawn}");
    for s in m["shortfalls"].as_array().unwrap() {
        let (target, got) = (s["target"].as_f64().unwrap(), s["drawn"].as_f64().unwrap());
        if got > 0.0 {
            assert!((s["weight"].as_f64().unwrap() * got - target).abs() < 1e-6);
        }
    }
    let weights: Vec<f64> = sample["weight"]
        .as_array()
        .unwrap()
        .iter()
        .zip(sample["label"].as_array().unwrap())
        .filter(|(_, l)| l.as_i64() == Some(0))
        .map(|(w, _)| w.as_f64().unwrap())
        .collect();
    assert!(weights.iter().all(|w| *w >= 1.0));

    // Reproducible: other partitionings and batch sizes draw the same rows.
    let again = tmp.path().join("again");
    run_catalog(
        &sweeps,
        &again,
        &[
            "--set",
            MATCH,
            "--set",
            "scan.target_partition_mib=1",
            "--set",
            "scan.batch_rows=333",
        ],
    );
    assert_same_rows(
        &matched.join("sample"),
        &again.join("sample"),
        "label,sweep_file,row_index,lens_name",
        "extraction_timestamp",
        "matched sample with other partitions",
    );
}

#[test]
fn match_on_names_a_missing_column_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let sweeps = tmp.path().join("sweeps");
    synth(&sweeps, 2, 2_000, 3, &["--plant", &lenscat()]);
    let out = catalog(
        &sweeps,
        &tmp.path().join("run"),
        &["--set", "sampling.match_on=[mag_z,no_such_column]"],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sampling.match_on") && err.contains("no_such_column"),
        "{err}"
    );
}
