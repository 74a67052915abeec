//! The negatives stage end to end on synthetic DR10 sweeps, checked against
//! an independent Python reproduction of the request's filter (astropy).

use std::collections::BTreeSet;
use std::path::Path;

use lenspipe_tests::{lenspipe, output_rows, python, read_json, run_ok, synth};
use serde_json::Value;

type Keys = BTreeSet<(String, i64)>;

fn parquet_keys(dir: &Path) -> (Keys, Value) {
    let (keys, v) = output_rows(dir);
    (keys.into_iter().collect(), v)
}

fn python_keys(profile: &str, sweeps: &Path, tmp: &Path) -> (Keys, Value) {
    let files: Vec<_> = std::fs::read_dir(sweeps)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "fits"))
        .collect();
    let kept = tmp.join(format!("{profile}-kept.csv"));
    let json = tmp.join(format!("{profile}.json"));
    run_ok(
        python()
            .args([
                "bench/request_negative_sampling.py",
                "--profile",
                profile,
                "--kept-out",
            ])
            .arg(&kept)
            .arg("--out-json")
            .arg(&json)
            .args(&files),
    );
    let keys = std::fs::read_to_string(&kept)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let (f, r) = l.split_once(',').unwrap();
            (f.to_string(), r.trim().parse().unwrap())
        })
        .collect();
    (keys, read_json(&json))
}

fn run_negatives(profile: &str, sweeps: &Path, out: &Path, extra: &[&str]) -> Value {
    run_ok(
        lenspipe()
            .args(["run", "negatives", "--config", profile])
            .arg("--set")
            .arg(format!("inputs.sweeps={}", sweeps.display()))
            .arg("--set")
            .arg(format!("output={}", out.display()))
            .args(["--set", "inputs.positives=null"])
            .args(extra),
    );
    read_json(&out.join("run.json"))
}

const REQUEST_SCHEMA: [&str; 48] = lenspipe_plans::columns::OUTPUT_COLUMN_NAMES;

#[test]
fn paper_iv_negatives_match_the_python_reference_and_conserve_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let sweeps = tmp.path().join("sweeps");
    synth(&sweeps, 3, 20_000, 7, &[]);
    let out = tmp.path().join("run");
    let run = run_negatives("paper_iv", &sweeps, &out, &[]);
    let stage = &run["stages"]["negatives"];

    // Conservation: rows in = kept + every reason.
    let input = stage["input_rows"].as_u64().unwrap();
    assert_eq!(input, 60_000);
    let rejected: u64 = stage["rejected"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    let kept = stage["kept"].as_u64().unwrap();
    assert_eq!(rejected + kept, input);
    assert!(kept > 0, "synthetic data must keep some rows: {stage}");
    for reason in [
        "outside_decals",
        "not_valid_type",
        "maskbit",
        "insufficient_exposures",
        "mag_z_faint",
    ] {
        assert!(
            stage["rejected"][reason].as_u64().unwrap() > 0,
            "no row rejected as {reason}: {stage}"
        );
    }
    let pools: u64 = stage["pools"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(pools, kept);

    // The kept set is exactly the Python reference's (paper_iv: z < 20, NaN fixed).
    let (ours, parquet) = parquet_keys(&out.join("negatives"));
    let (reference, ref_json) = python_keys("paper_iv", &sweeps, tmp.path());
    assert_eq!(ours.len() as u64, kept);
    assert_eq!(
        ours, reference,
        "kept sets differ from the Python reference"
    );
    // Same funnel counts as the request's numpy code.
    for reason in [
        "invalid_coords",
        "outside_decals",
        "not_valid_type",
        "maskbit",
        "insufficient_exposures",
        "mag_z_faint",
    ] {
        assert_eq!(
            stage["rejected"][reason].as_u64(),
            ref_json["total"]["skip_reasons"][reason]
                .as_u64()
                .or(ref_json["total"][reason].as_u64()),
            "{reason}"
        );
    }
    for band in ["g", "r", "z"] {
        let key = format!("nobs_{band}_lt_3");
        assert_eq!(
            stage["insufficient_exposures_by_band"][&key].as_u64(),
            ref_json["total"]["skip_reasons"][&key]
                .as_u64()
                .or(ref_json["total"][&key].as_u64()),
            "{key}"
        );
    }
    // The request's 48 output columns, in order.
    let columns: Vec<&str> = parquet["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(columns, REQUEST_SCHEMA);
    assert!(run["versions"]["datafusion"]
        .as_str()
        .unwrap()
        .starts_with("55."));
    assert_eq!(
        run["config"]["selection"]["z_mag_max"]["provenance"],
        "paper_iv_abstract"
    );
}

#[test]
fn the_request_nan_defect_is_fixed_and_visible() {
    // request_v1 values with the request's own code keep rows whose z flux is
    // NaN or non-positive; lenspipe rejects them as mag_z_faint under any profile.
    let tmp = tempfile::tempdir().unwrap();
    let sweeps = tmp.path().join("sweeps");
    synth(&sweeps, 2, 20_000, 11, &[]);
    let out = tmp.path().join("run");
    let run = run_negatives("request_v1", &sweeps, &out, &[]);
    let (ours, _) = parquet_keys(&out.join("negatives"));
    let (request, _) = python_keys("request_v1", &sweeps, tmp.path());
    assert!(ours.is_subset(&request));
    let extra: Vec<_> = request.difference(&ours).collect();
    assert!(
        !extra.is_empty(),
        "synthetic data should contain NaN/non-positive flux_z rows passing the other cuts"
    );
    assert_eq!(
        run["stages"]["negatives"]["kept"].as_u64().unwrap() as usize,
        ours.len()
    );
}

#[test]
fn a_rerun_replaces_the_output_and_a_bad_location_fails_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let sweeps = tmp.path().join("sweeps");
    synth(&sweeps, 1, 5_000, 3, &[]);
    let out = tmp.path().join("run");
    run_negatives("paper_iv", &sweeps, &out, &[]);
    let first = parquet_keys(&out.join("negatives")).0;
    run_negatives(
        "paper_iv",
        &sweeps,
        &out,
        &["--set", "scan.target_partition_mib=1"],
    );
    let second = parquet_keys(&out.join("negatives")).0;
    assert_eq!(
        first, second,
        "a rerun must replace, not add to, the output"
    );
    // Only the committed version and its manifest remain.
    let mut entries: Vec<String> = std::fs::read_dir(out.join("negatives"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    entries.sort();
    let manifest = read_json(&out.join("negatives/_SUCCESS"));
    assert_eq!(entries, ["_SUCCESS", manifest["version"].as_str().unwrap()]);

    let bad = lenspipe()
        .args(["run", "negatives", "--set"])
        .arg(format!(
            "inputs.sweeps={}/nothing-here/",
            tmp.path().display()
        ))
        .arg("--set")
        .arg(format!("output={}", out.display()))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("no FITS files found") && err.contains("nothing-here"),
        "{err}"
    );
    // The earlier output is untouched.
    assert_eq!(parquet_keys(&out.join("negatives")).0, first);
}

#[test]
fn a_memory_limit_fails_a_job_with_an_error_not_a_kill() {
    // The known-lens exclusion collects the lens catalog's HEALPix cells
    // (about 33,000 lenses) into a hash table the scan probes: more than a
    // one-MiB budget holds, well within 512 MiB.
    let tmp = tempfile::tempdir().unwrap();
    let sweeps = tmp.path().join("sweeps");
    synth(&sweeps, 1, 5_000, 13, &[]);
    let run = |out: &Path, limit: &str| {
        lenspipe()
            .args(["run", "negatives", "--config", "paper_iv"])
            .arg("--set")
            .arg(format!("inputs.sweeps={}", sweeps.display()))
            .arg("--set")
            .arg(format!("output={}", out.display()))
            .arg("--set")
            .arg(format!("engine.memory_limit_mib={limit}"))
            .output()
            .unwrap()
    };
    let tight = run(&tmp.path().join("tight"), "1");
    let stderr = String::from_utf8_lossy(&tight.stderr);
    // An error exit, not a signal.
    assert_eq!(tight.status.code(), Some(1), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("engine.memory_limit_mib = 1 MiB"))
        .unwrap_or_else(|| panic!("no line names the limit:\n{stderr}"));
    assert!(line.contains("raise it"), "{line}");
    assert!(!tmp.path().join("tight/negatives/_SUCCESS").exists());

    // With room, the same job keeps the same rows as with no limit.
    let roomy = tmp.path().join("roomy");
    let out = run(&roomy, "512");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let unlimited = tmp.path().join("unlimited");
    let out = run(&unlimited, "null");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        parquet_keys(&roomy.join("negatives")).0,
        parquet_keys(&unlimited.join("negatives")).0
    );
}
