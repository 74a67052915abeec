//! S3 credentials stay in the environment of the processes that use them:
//! a whole run (`run all` through a real Ballista scheduler and executor,
//! reading and writing a real S3-compatible server, cutouts from a viewer
//! stand-in) with distinctive `AWS_*` values and `RUST_LOG=debug` never
//! writes them into the output, a log, stdout or stderr, or the job plans
//! and configuration the scheduler serves.

use std::path::{Path, PathBuf};
use std::process::Output;

use lenspipe_tests::{lenspipe, python, read_json, run_ok, synth, LocalCluster, S3Server};

/// The values a leak would show; the process id makes them unique to this run,
/// so no file left by another run can match.
fn canaries() -> Vec<(&'static str, String)> {
    let tag = std::process::id();
    vec![
        ("AWS_ACCESS_KEY_ID", format!("AKIALEAKCANARY{tag:010}")),
        (
            // '/' and '+' as in real secrets, so a URL-encoded copy is looked for too.
            "AWS_SECRET_ACCESS_KEY",
            format!("leak/canary+secret{tag}Zq8vX3pL0wR7"),
        ),
        (
            "AWS_SESSION_TOKEN",
            format!("leakCanarySessionToken{tag}Hh2Kd9"),
        ),
    ]
}

/// The S3 server's environment with the canary credentials instead of its own.
fn env(s3: &S3Server) -> Vec<(&'static str, String)> {
    let mut env: Vec<_> = s3
        .env()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("AWS_ACCESS") && !k.starts_with("AWS_SECRET"))
        .collect();
    env.extend(canaries());
    env.push(("RUST_LOG", "debug".into()));
    env
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| n << 8 | *b as u32) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Every form of a canary a leak could take: as is, URL-encoded, and
/// base64 at each of the three alignments a copy inside a longer string can
/// have (the characters that encode only the value's own bytes).
fn forms(value: &str) -> Vec<Vec<u8>> {
    let encoded: String = value
        .bytes()
        .map(|b| match b {
            b'/' => "%2F".to_string(),
            b'+' => "%2B".to_string(),
            b => (b as char).to_string(),
        })
        .collect();
    let mut forms = vec![value.as_bytes().to_vec(), encoded.into_bytes()];
    for k in 0..3 {
        let mut padded = vec![0u8; k];
        padded.extend(value.as_bytes());
        let b64 = base64(&padded);
        forms.push(b64.as_bytes()[4..b64.len() - 4].to_vec());
    }
    forms
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A canary's name and every form of its value.
type CanaryForms = (&'static str, Vec<Vec<u8>>);

/// Every (what, canary name) a leak shows in `bytes`.
fn leaks(what: &str, bytes: &[u8]) -> Vec<String> {
    static FORMS: std::sync::OnceLock<Vec<CanaryForms>> = std::sync::OnceLock::new();
    let all = FORMS.get_or_init(|| {
        canaries()
            .into_iter()
            .map(|(n, v)| (n, forms(&v)))
            .collect()
    });
    let mut found = Vec::new();
    for (name, forms) in all {
        if forms.iter().any(|f| contains(bytes, f)) {
            found.push(format!("{what}: {name}"));
        }
    }
    found
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The files of `files` whose name ends in `.{ext}`.
fn with_extension<'a>(files: &'a [PathBuf], ext: &str) -> Vec<&'a PathBuf> {
    files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect()
}

/// Every text of every Parquet file decoded by pyarrow (compressed pages
/// would hide a value from a byte scan): the schema metadata and every
/// string or binary cell, one file per line of output.
const PARQUET_TEXT: &str = r#"
import sys, pyarrow as pa, pyarrow.parquet as pq
for path in sys.argv[1:]:
    f = pq.ParquetFile(path)
    parts = [repr(f.metadata.metadata), repr(f.schema_arrow.metadata)]
    t = f.read()
    for col in t.columns:
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type) or pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type) or pa.types.is_nested(col.type):
            parts.append(repr(col.to_pylist()))
    sys.stdout.write(" ".join(parts) + "\n")
"#;

fn check_output(what: &str, out: &Output, problems: &mut Vec<String>) {
    problems.extend(leaks(&format!("{what} stdout"), &out.stdout));
    problems.extend(leaks(&format!("{what} stderr"), &out.stderr));
}

/// `lenspipe` with the canary environment, to completion; its output is scanned.
fn run(
    what: &str,
    env: &[(&'static str, String)],
    args: &[String],
    problems: &mut Vec<String>,
) -> Output {
    let out = run_ok(lenspipe().args(args).envs(env.iter().cloned()));
    check_output(what, &out, problems);
    out
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn a_run_with_credentials_never_writes_them_to_output_logs_or_plans() {
    let tmp = tempfile::tempdir().unwrap();
    let s3 = S3Server::start();
    let env = env(&s3);
    let mut problems = Vec::new();

    // The inputs: synthetic sweeps with the lenscat lenses planted, loaded
    // into S3 by `lenspipe cp` with the canary credentials.
    let sweeps = tmp.path().join("sweeps");
    let lenscat = lenspipe_tests::shared_data().join("positives/lenscat_catalog.csv");
    synth(
        &sweeps,
        3,
        3_000,
        17,
        &["--plant", &lenscat.display().to_string()],
    );
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    s3.upload_dir("lenspipe", &empty, "");
    run(
        "cp sweeps",
        &env,
        &[
            "cp".into(),
            format!("{}/", sweeps.display()),
            "s3://lenspipe/sweeps/".into(),
        ],
        &mut problems,
    );
    run(
        "cp catalogue",
        &env,
        &[
            "cp".into(),
            lenscat.display().to_string(),
            "s3://lenspipe/catalogs/lenscat_catalog.csv".into(),
        ],
        &mut problems,
    );

    // A viewer stand-in, a scheduler and an executor, all with the canaries.
    let viewer_state = tmp.path().join("viewer.log");
    let mut viewer = lenspipe()
        .args(["serve-cutouts", "--synthetic-sky", "3"])
        .envs(env.iter().cloned())
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&viewer_state).unwrap())
        .spawn()
        .unwrap();
    let viewer_url = {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(viewer.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        problems.extend(leaks("viewer stdout", line.as_bytes()));
        line.trim().to_string()
    };
    let viewer = lenspipe_tests::Guard(viewer);
    let cluster = LocalCluster::start(1, &tmp.path().join("cluster"), env.clone());

    // Every stage through the scheduler, from S3 to S3.
    let mut args = s(&["run", "all", "--config", "paper_iv", "--scheduler"]);
    args.push(cluster.url.clone());
    for set in [
        "inputs.sweeps=s3://lenspipe/sweeps/".to_string(),
        "inputs.positives=s3://lenspipe/catalogs/lenscat_catalog.csv".to_string(),
        "output=s3://lenspipe/runs/leak/".to_string(),
        format!("cutouts.viewer_url={viewer_url}"),
        "cutouts.concurrency=4".to_string(),
        "cutouts.rate_per_s=1000".to_string(),
        "sampling.negatives_per_positive=2".to_string(),
        "scan.target_partition_mib=1".to_string(),
    ] {
        args.push("--set".into());
        args.push(set);
    }
    let out = run("run all", &env, &args, &mut problems);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DEBUG"),
        "RUST_LOG=debug did not reach the client: its stderr has no DEBUG line"
    );

    // The output, fetched with the same credentials.
    let fetched = tmp.path().join("fetched");
    run(
        "cp output",
        &env,
        &[
            "cp".into(),
            "s3://lenspipe/runs/leak/".into(),
            format!("{}/", fetched.display()),
        ],
        &mut problems,
    );
    let run_json = read_json(&fetched.join("run.json"));
    // (folder, run.json section, the file that marks the folder complete).
    for (folder, stage, marker) in [
        ("negatives", "negatives", "_SUCCESS"),
        ("positives", "positives", "_SUCCESS"),
        ("sample", "stratify", "_SUCCESS"),
        ("cutouts", "cutouts", "_SUCCESS"),
        ("validation/checks", "validate", "_SUCCESS"),
    ] {
        assert!(
            fetched.join(folder).join(marker).exists(),
            "{folder} was not completed"
        );
        assert!(
            run_json["stages"].get(stage).is_some(),
            "run.json has no {stage}"
        );
    }
    let output_files = files(&fetched);
    for f in &output_files {
        problems.extend(leaks(
            &format!("output {}", f.strip_prefix(&fetched).unwrap().display()),
            &std::fs::read(f).unwrap(),
        ));
    }
    let parquet = with_extension(&output_files, "parquet");
    assert!(
        parquet.len() >= 4,
        "expected Parquet shards of every stage: {output_files:?}"
    );
    let decoded = run_ok(python().args(["-c", PARQUET_TEXT]).args(&parquet));
    problems.extend(leaks("decoded Parquet cells and metadata", &decoded.stdout));

    // What the scheduler serves about the jobs: plans, stages, configuration.
    let api = run_ok(python().args([
        "-c",
        r#"
import json, sys, urllib.request
base = sys.argv[1]
get = lambda path: urllib.request.urlopen(base + path, timeout=30).read().decode()
jobs = json.loads(get("/api/jobs"))
sys.stderr.write(f"{len(jobs)} jobs\n")
for job in jobs:
    jid = job["job_id"]
    for path in ["", "/config", "/stages", "/dot"]:
        sys.stdout.write(get(f"/api/job/{jid}{path}") + "\n")
print(json.dumps(jobs))
print(get("/api/executors"))
print(get("/api/state"))
"#,
        &cluster.url.replace("df://", "http://"),
    ]));
    let jobs: usize = String::from_utf8_lossy(&api.stderr)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(jobs >= 4, "the scheduler lists {jobs} jobs for a whole run");
    problems.extend(leaks(
        "the scheduler's job plans and configuration",
        &api.stdout,
    ));

    // The cluster's logs and work files (shuffle files included).
    cluster.stop();
    drop(viewer);
    let cluster_files = files(&cluster.state_dir);
    let logs = with_extension(&cluster_files, "log");
    assert!(
        logs.len() >= 2,
        "scheduler and executor logs: {cluster_files:?}"
    );
    for f in logs {
        let text = std::fs::read(f).unwrap();
        assert!(
            contains(&text, b"DEBUG"),
            "{} has no DEBUG line: RUST_LOG=debug did not reach it",
            f.display()
        );
    }
    for f in cluster_files.iter().chain([&viewer_state]) {
        problems.extend(leaks(&f.display().to_string(), &std::fs::read(f).unwrap()));
    }

    assert!(
        problems.is_empty(),
        "credentials written out:\n{}",
        problems.join("\n")
    );
}

/// The scan itself finds a canary in every form it looks for.
#[test]
fn the_scan_finds_a_credential_as_is_url_encoded_and_base64() {
    for (name, value) in canaries() {
        let enc = run_ok(python().args([
            "-c",
            "import base64, sys, urllib.parse as u; v = sys.argv[1]; \
             sys.stdout.write('x' + v + 'y\\n' + u.quote(v, safe='') + '\\n' + \
             '\\n'.join(base64.b64encode((p + v + ':').encode()).decode() for p in ['', 'a', 'ab']))",
            &value,
        ]));
        let lines: Vec<&[u8]> = enc.stdout.split(|b| *b == b'\n').collect();
        assert_eq!(lines.len(), 5);
        for line in lines {
            assert_eq!(
                leaks("probe", line),
                [format!("probe: {name}")],
                "{name} missed in {}",
                String::from_utf8_lossy(line)
            );
        }
        assert!(leaks("probe", b"nothing to see here").is_empty());
    }
}
