//! The commit of a stage's output survives the process being killed at
//! every step: readers (following `_SUCCESS`) always see one complete
//! version, never a mix and never a duplicate, and the next run cleans up.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use lenspipe_tests::{lenspipe, read_json, run_ok, synth};

/// The (sweep_file, row_index) keys a reader following `_SUCCESS` sees, in order.
fn committed_keys(dir: &Path) -> Vec<(String, i64)> {
    lenspipe_tests::output_rows(dir).0
}

fn negatives(sweeps: &Path, out: &Path) -> Command {
    let mut cmd = lenspipe();
    cmd.args(["run", "negatives", "--config", "paper_iv"])
        .arg("--set")
        .arg(format!("inputs.sweeps={}/", sweeps.display()))
        .arg("--set")
        .arg(format!("output={}", out.display()))
        // Several partitions, so a kill can fall between two shards.
        .args(["--set", "scan.target_partition_mib=1"]);
    cmd
}

#[test]
fn killing_the_run_at_any_step_of_the_commit_leaves_one_complete_version() {
    let tmp = tempfile::tempdir().unwrap();
    let sweeps = tmp.path().join("sweeps");
    synth(&sweeps, 2, 8_000, 5, &[]);
    let out = tmp.path().join("run");
    run_ok(&mut negatives(&sweeps, &out));
    let dir = out.join("negatives");
    let reference = committed_keys(&dir);
    assert!(!reference.is_empty());
    let distinct: BTreeSet<_> = reference.iter().collect();
    assert_eq!(distinct.len(), reference.len(), "duplicate rows committed");

    // Steps before the manifest is replaced keep the old version current;
    // steps after it see the new one. Either way the rows are the same.
    for (step, new_version) in [
        ("shard-written", false),
        ("before-success", false),
        ("after-success", true),
        ("mid-cleanup", true),
    ] {
        let before = read_json(&dir.join("_SUCCESS"))["version"].clone();
        let killed = negatives(&sweeps, &out)
            .env("LENSPIPE_CRASH_AT", step)
            .output()
            .unwrap();
        assert!(!killed.status.success(), "{step}: the run was not killed");
        let stderr = String::from_utf8_lossy(&killed.stderr);
        assert!(
            stderr.contains(&format!("LENSPIPE_CRASH_AT={step}")),
            "{step}: {stderr}"
        );
        let after = read_json(&dir.join("_SUCCESS"))["version"].clone();
        assert_eq!(after != before, new_version, "{step}: {before} -> {after}");
        assert_eq!(
            committed_keys(&dir),
            reference,
            "{step}: readers see other rows"
        );
    }

    // Crashed runs leave versions no manifest names; the next commit removes them.
    let leftovers = std::fs::read_dir(&dir).unwrap().count();
    assert!(leftovers > 2, "the crashes left nothing to clean up");
    run_ok(&mut negatives(&sweeps, &out));
    assert_eq!(committed_keys(&dir), reference);
    let mut entries: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    entries.sort();
    let version = read_json(&dir.join("_SUCCESS"))["version"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(entries, ["_SUCCESS".to_string(), version]);
}
