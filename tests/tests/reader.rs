//! The Python reader (python/lenspipe_reader) on cutouts the pipeline made
//! from `lenspipe serve-cutouts`: its arrays, labels, splits and weights
//! against a plain pyarrow read of the same committed rows.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use lenspipe_tests::{lenspipe, python, run_ok, shared_data, synth, Guard};
use serde_json::Value;

fn set(k: &str, v: &str) -> [String; 2] {
    ["--set".to_string(), format!("{k}={v}")]
}

#[test]
fn reader_returns_the_committed_cutouts_as_arrays() {
    let tmp = tempfile::tempdir().unwrap();
    let sweeps = tmp.path().join("sweeps");
    let lenscat = shared_data().join("positives/lenscat_catalog.csv");
    synth(
        &sweeps,
        4,
        2_000,
        9,
        &["--plant", &lenscat.display().to_string()],
    );
    let out = tmp.path().join("run");
    let out_s = out.display().to_string();
    run_ok(
        lenspipe()
            .args(["run", "catalog", "--config", "paper_iv"])
            .args(set("inputs.sweeps", &sweeps.display().to_string()))
            .args(set("output", &out_s))
            .args(set("sampling.negatives_per_positive", "3")),
    );

    let mut child = lenspipe()
        .args(["serve-cutouts", "--synthetic-sky", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("lenspipe serve-cutouts starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("serve-cutouts prints its URL");
    let _server = Guard(child);
    run_ok(
        lenspipe()
            .args(["run", "cutouts", "--config", "paper_iv"])
            .args(set("output", &out_s))
            .args(set("cutouts.viewer_url", line.trim()))
            .args(set("cutouts.size", "31"))
            .args(set("cutouts.planes", "[image, invvar]"))
            .args(set("cutouts.rate_per_s", "2000")),
    );

    // Installed with pip from the repository, as docs/training.md says
    // (no build isolation: setuptools is already here and no network is needed).
    let installed = tmp.path().join("site");
    run_ok(
        python()
            .env("PIP_BREAK_SYSTEM_PACKAGES", "1")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-build-isolation",
                "--no-deps",
            ])
            .arg("--root-user-action=ignore")
            .arg("--target")
            .arg(&installed)
            .arg("./python/lenspipe_reader"),
    );
    let report = run_ok(
        python()
            .env("LENSPIPE_READER_PATH", &installed)
            .arg(Path::new("tests/py/reader_check.py"))
            .arg(out.join("cutouts")),
    );
    let facts: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert!(facts["rows"].as_u64().unwrap() > 10, "{facts}");
    assert!(
        facts["reader"]
            .as_str()
            .unwrap()
            .starts_with(installed.to_str().unwrap()),
        "{facts}"
    );
    assert_eq!(facts["labels"], serde_json::json!([0, 1]), "{facts}");
    assert_eq!(facts["invvar"], true, "{facts}");
    // torch is a test dependency (scripts/install-test-deps.sh): the
    // PyTorch Dataset is always exercised.
    assert_eq!(facts["torch"], true, "{facts}");
}
