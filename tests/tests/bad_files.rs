//! Sweep files that cannot be read, and the other mistakes of a first run:
//! each stops the run with one line naming the thing and what to do, and
//! under `scan.on_bad_file: skip` the unreadable files are left out, listed
//! with their errors, and every other row is counted exactly (checked
//! against astropy reading the good files alone), embedded and on a cluster.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lenspipe_tests::{lenspipe, python, read_json, run_ok, synth, LocalCluster};
use serde_json::Value;

type Keys = BTreeSet<(String, i64)>;

/// The kept rows and input rows the request's filter finds with astropy in `files`.
fn reference(files: &[PathBuf], tmp: &Path) -> (Keys, u64) {
    let kept = tmp.join("reference-kept.csv");
    let json = tmp.join("reference.json");
    run_ok(
        python()
            .args([
                "bench/request_negative_sampling.py",
                "--profile",
                "paper_iv",
                "--kept-out",
            ])
            .arg(&kept)
            .arg("--out-json")
            .arg(&json)
            .args(files),
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
    let rows = read_json(&json)["total"]["input_rows"].as_u64().unwrap();
    (keys, rows)
}

fn negatives(sweeps: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = lenspipe();
    cmd.args(["run", "negatives", "--config", "paper_iv"])
        .arg("--set")
        .arg(format!("inputs.sweeps={}/", sweeps.display()))
        .arg("--set")
        .arg(format!("output={}", out.display()))
        .args(["--set", "inputs.positives=null"])
        .args(extra);
    cmd
}

fn failed(cmd: &mut Command) -> String {
    let out: Output = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "{cmd:?} should fail; stderr:\n{stderr}"
    );
    assert!(
        !stderr.contains("panicked"),
        "a panic, not an error: {stderr}"
    );
    stderr
}

/// The stderr line that says `what`; it must also say `todo`.
fn error_line<'a>(stderr: &'a str, what: &str, todo: &str) -> &'a str {
    let line = stderr
        .lines()
        .find(|l| l.contains(what))
        .unwrap_or_else(|| panic!("no line says '{what}':\n{stderr}"));
    assert!(
        line.contains(todo),
        "the line naming '{what}' does not say '{todo}': {line}"
    );
    line
}

fn keys(dir: &Path) -> Keys {
    lenspipe_tests::output_rows(dir).0.into_iter().collect()
}

/// Two good sweeps, one cut short inside its rows, one of garbage bytes,
/// and one valid FITS table lacking the columns the selection needs (which
/// passes the header checks and fails only while scanned). Returns the
/// folder, the good files and the bad files' names.
fn sweeps_with_bad_files(tmp: &Path) -> (PathBuf, Vec<PathBuf>, Vec<String>) {
    let sweeps = tmp.join("sweeps");
    synth(&sweeps, 3, 6_000, 5, &[]);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&sweeps)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let truncated = files.pop().unwrap();
    let len = std::fs::metadata(&truncated).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&truncated)
        .unwrap()
        .set_len(len - 100_000)
        .unwrap();
    let garbage = sweeps.join("garbage.fits");
    let noise: Vec<u8> = (0..50_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&garbage, noise).unwrap();
    let wrong = sweeps.join("wrong-columns.fits");
    let script = "import sys, numpy as np\n\
                  from astropy.io import fits\n\
                  ra = np.linspace(10, 20, 500); dec = np.linspace(-5, 5, 500)\n\
                  fits.BinTableHDU.from_columns([fits.Column(name='RA', format='D', array=ra),\n\
                  fits.Column(name='DEC', format='D', array=dec)]).writeto(sys.argv[1])";
    run_ok(python().args(["-c", script]).arg(&wrong));
    let bad = [&truncated, &garbage, &wrong]
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    (sweeps, files, bad)
}

/// The skipped files a run.json lists: name and error.
fn skipped(run: &Value) -> Vec<(String, String)> {
    run["stages"]["negatives"]["skipped_sweep_files"]
        .as_array()
        .expect("skipped_sweep_files")
        .iter()
        .map(|s| {
            let url = s["file"].as_str().unwrap();
            (
                url.rsplit('/').next().unwrap().to_string(),
                s["error"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn check_skipped_run(out: &Path, good: &Keys, good_rows: u64, bad: &[String]) {
    let run = read_json(&out.join("run.json"));
    let stage = &run["stages"]["negatives"];
    assert_eq!(stage["input_rows"].as_u64(), Some(good_rows), "{stage}");
    assert_eq!(stage["sweep_files"].as_u64(), Some(2), "{stage}");
    assert_eq!(stage["kept"].as_u64(), Some(good.len() as u64), "{stage}");
    assert_eq!(
        &keys(&out.join("negatives")),
        good,
        "kept rows differ from astropy over the good files"
    );
    let listed = skipped(&run);
    let mut names: Vec<String> = listed.iter().map(|(n, _)| n.clone()).collect();
    names.sort();
    let mut expected = bad.to_vec();
    expected.sort();
    assert_eq!(names, expected, "{listed:?}");
    for (name, error) in &listed {
        assert!(!error.is_empty(), "{name} listed without its error");
    }
    let error_of = |n: &str| &listed.iter().find(|(name, _)| name == n).unwrap().1;
    assert!(
        error_of(&bad[0]).contains("truncated") || error_of(&bad[0]).contains("rows"),
        "{listed:?}"
    );
    assert!(
        error_of("wrong-columns.fits").contains("no column"),
        "{listed:?}"
    );
}

#[test]
fn bad_sweep_files_fail_by_default_and_are_skipped_and_listed_on_request() {
    let tmp = tempfile::tempdir().unwrap();
    let (sweeps, good_files, bad) = sweeps_with_bad_files(tmp.path());
    let (good, good_rows) = reference(&good_files, tmp.path());
    assert_eq!(good_rows, 12_000);
    assert!(!good.is_empty());

    // By default the run stops, naming a bad file and the way out.
    let out = tmp.path().join("default");
    let stderr = failed(&mut negatives(&sweeps, &out, &[]));
    let line = error_line(&stderr, "cannot be read", "scan.on_bad_file=skip");
    assert!(
        bad.iter().any(|name| line.contains(name.as_str())),
        "{line}"
    );
    assert!(!out.join("negatives/_SUCCESS").exists());

    // Under skip: exactly the good files' rows, and the bad files listed.
    let out = tmp.path().join("skip");
    run_ok(&mut negatives(
        &sweeps,
        &out,
        &["--set", "scan.on_bad_file=skip"],
    ));
    check_skipped_run(&out, &good, good_rows, &bad);

    // The same on a cluster: the scheduler and executors never decide alone.
    let cluster = LocalCluster::start(2, &tmp.path().join("cluster"), vec![]);
    let on_cluster = tmp.path().join("cluster-out");
    run_ok(
        negatives(
            &sweeps,
            &on_cluster,
            &[
                "--set",
                "scan.on_bad_file=skip",
                "--set",
                "scan.target_partition_mib=1",
            ],
        )
        .args(["--scheduler", &cluster.url]),
    );
    check_skipped_run(&on_cluster, &good, good_rows, &bad);
}

#[test]
fn first_run_mistakes_are_one_line_errors_saying_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");

    // An empty (zero-length) sweep file.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("sweep-000m005-005p000.fits"), b"").unwrap();
    let stderr = failed(&mut negatives(&empty, &out, &[]));
    let line = error_line(&stderr, "sweep-000m005-005p000.fits", "empty (0 bytes)");
    assert!(line.contains("download it again or remove it"), "{line}");
    assert!(!line.contains("Requested range"), "{line}");

    // A folder holding only files that are not FITS.
    let other = tmp.path().join("not-fits");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("readme.txt"), b"sweeps go here").unwrap();
    std::fs::write(other.join("sweeps.csv"), b"ra,dec\n").unwrap();
    let stderr = failed(&mut negatives(&other, &out, &[]));
    let line = error_line(&stderr, "no FITS files found", "set inputs.sweeps");
    assert!(
        line.contains("2 other files") && line.contains("readme.txt"),
        "{line}"
    );

    // An output that cannot be written: its parent is a file.
    let sweeps = tmp.path().join("sweeps");
    synth(&sweeps, 1, 1_000, 2, &[]);
    let blocker = tmp.path().join("a-file");
    std::fs::write(&blocker, b"not a folder").unwrap();
    let stderr = failed(&mut negatives(&sweeps, &blocker.join("out"), &[]));
    let line = error_line(&stderr, "is not writable", "set output to");
    assert!(line.contains("a-file/out"), "{line}");

    // S3 sweeps with no credentials in the environment.
    let mut cmd = lenspipe();
    cmd.args(["run", "negatives", "--config", "paper_iv"])
        .args(["--set", "inputs.sweeps=s3://lenspipe-nowhere/sweeps/"])
        .arg("--set")
        .arg(format!("output={}", out.display()))
        .args(["--set", "inputs.positives=null"]);
    for (name, _) in std::env::vars() {
        if name.starts_with("AWS_") {
            cmd.env_remove(name);
        }
    }
    let stderr = failed(&mut cmd);
    let line = error_line(&stderr, "no S3 credentials", "AWS_ACCESS_KEY_ID");
    assert!(line.contains("s3://lenspipe-nowhere"), "{line}");
}
