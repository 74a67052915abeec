//! Harness for the end-to-end tests: real `lenspipe` processes, a real
//! Ballista scheduler and executors, a real S3-compatible server (moto), and
//! Python with astropy as the independent reference.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The workspace root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The data shipped in the repository (`data/`: lenscat, real sweep files).
pub fn shared_data() -> PathBuf {
    repo().join("data")
}

/// The lens catalogue shipped in `data/` (lenscat, 32,838 lenses), as a
/// path string for `--set` and `--plant`.
pub fn lenscat() -> String {
    shared_data()
        .join("positives/lenscat_catalog.csv")
        .display()
        .to_string()
}

/// `lenspipe run catalog --config paper_iv` on `sweeps` and lenscat, writing
/// under `out`, then `extra` arguments.
pub fn catalog_command(sweeps: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut command = lenspipe();
    command
        .args(["run", "catalog", "--config", "paper_iv"])
        .arg("--set")
        .arg(format!("inputs.sweeps={}", sweeps.display()))
        .arg("--set")
        .arg(format!("inputs.positives={}", lenscat()))
        .arg("--set")
        .arg(format!("output={}", out.display()))
        .args(extra);
    command
}

/// A workspace binary, built next to the test executable (`target/debug/`).
/// Missing binaries are built once, with the whole workspace (building one
/// package alone would resolve other DataFusion features and rebuild it),
/// so `cargo test --workspace` needs no build step before it.
pub fn bin(name: &str) -> PathBuf {
    static BUILD: std::sync::Once = std::sync::Once::new();
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target/debug");
    let path = dir.join(name);
    if !path.exists() {
        BUILD.call_once(|| {
            let target = dir
                .parent()
                .expect("a target directory above the profile folder");
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "--workspace", "--bins"])
                .current_dir(repo())
                .env("CARGO_TARGET_DIR", target)
                .status()
                .expect("cargo can be started");
            assert!(status.success(), "cargo build --workspace --bins failed");
        });
    }
    assert!(
        path.exists(),
        "{} is missing after building the workspace binaries",
        path.display()
    );
    // `cargo test` rebuilds the tests but not other packages' binaries: a
    // scheduler or executor from an older build would test old code.
    if let Some((source, changed)) = newest_source_of(&path) {
        let built = std::fs::metadata(&path).and_then(|m| m.modified());
        assert!(
            built.is_ok_and(|built| built >= changed),
            "{} is older than its source {}: run `cargo build --workspace --bins` \
             before `cargo test` (scripts/test.sh does both)",
            path.display(),
            source.display()
        );
    }
    path
}

/// The most recently changed source file of this checkout that the binary
/// at `path` was built from, as cargo's dep-info file beside it lists them
/// (`path.d`: `binary: source source ...`, spaces in paths escaped).
fn newest_source_of(path: &Path) -> Option<(PathBuf, std::time::SystemTime)> {
    let mut dep_info = path.as_os_str().to_owned();
    dep_info.push(".d");
    let text = std::fs::read_to_string(dep_info).ok()?;
    let (_, sources) = text.lines().next()?.split_once(": ")?;
    let root = repo();
    let mut newest: Option<(PathBuf, std::time::SystemTime)> = None;
    let mut current = String::new();
    let mut chars = sources.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&' ') => current.push(chars.next().unwrap_or(' ')),
            ' ' => {
                consider(&root, std::mem::take(&mut current), &mut newest);
            }
            c => current.push(c),
        }
    }
    consider(&root, current, &mut newest);
    newest
}

fn consider(root: &Path, source: String, newest: &mut Option<(PathBuf, std::time::SystemTime)>) {
    let source = PathBuf::from(source);
    if !source.starts_with(root) {
        return;
    }
    if let Ok(changed) = std::fs::metadata(&source).and_then(|m| m.modified()) {
        if newest.as_ref().is_none_or(|(_, t)| changed > *t) {
            *newest = Some((source, changed));
        }
    }
}

/// Runs a command to completion, panicking with its output if it fails.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn lenspipe() -> Command {
    let mut c = Command::new(bin("lenspipe"));
    c.current_dir(repo());
    c
}

pub fn python() -> Command {
    let mut c = Command::new("python3");
    c.current_dir(repo());
    c
}

/// Writes `files` synthetic sweeps of `rows` rows into `dir`.
pub fn synth(dir: &Path, files: usize, rows: u64, seed: u64, extra: &[&str]) {
    run_ok(
        lenspipe()
            .args(["synth", "--out"])
            .arg(dir)
            .args([
                "--files",
                &files.to_string(),
                "--rows-per-file",
                &rows.to_string(),
                "--seed",
                &seed.to_string(),
            ])
            .args(extra),
    );
}

/// An output folder as `tests/py/parquet_rows.py` reads it with pyarrow
/// (through its `_SUCCESS`): its (sweep_file, row_index) keys in order,
/// and the script's whole JSON.
pub fn output_rows(dir: &Path) -> (Vec<(String, i64)>, serde_json::Value) {
    let out = run_ok(python().arg("tests/py/parquet_rows.py").arg(dir));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let keys = v["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| (k[0].as_str().unwrap().to_string(), k[1].as_i64().unwrap()))
        .collect();
    (keys, v)
}

pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub fn wait_for_port(port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on port {port} after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process killed when dropped.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A moto S3 server on a free loopback port, with the AWS environment to reach it.
pub struct S3Server {
    _process: Guard,
    pub endpoint: String,
}

impl S3Server {
    pub fn start() -> Self {
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m moto.server (pip install 'moto[server]')");
        let process = Guard(child);
        wait_for_port(port, Duration::from_secs(30));
        Self {
            _process: process,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// The variables every process (client, scheduler, executors) reads.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
        ]
    }

    /// Creates `bucket` and uploads every file of `dir` under `prefix`.
    pub fn upload_dir(&self, bucket: &str, dir: &Path, prefix: &str) {
        let script = r#"
import boto3, os, sys
endpoint, bucket, folder, prefix = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint)
s3.create_bucket(Bucket=bucket)
for name in sorted(os.listdir(folder)):
    s3.upload_file(os.path.join(folder, name), bucket, prefix + name)
"#;
        let mut cmd = python();
        cmd.args(["-c", script, &self.endpoint, bucket])
            .arg(dir)
            .arg(prefix)
            .envs(self.env());
        run_ok(&mut cmd);
    }

    /// Downloads every object under `prefix` into `dir`.
    pub fn download_prefix(&self, bucket: &str, prefix: &str, dir: &Path) {
        let script = r#"
import boto3, os, sys
endpoint, bucket, prefix, folder = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint)
os.makedirs(folder, exist_ok=True)
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
    for obj in page.get("Contents", []):
        rel = obj["Key"][len(prefix):].lstrip("/")
        target = os.path.join(folder, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        s3.download_file(bucket, obj["Key"], target)
"#;
        let mut cmd = python();
        cmd.args(["-c", script, &self.endpoint, bucket, prefix])
            .arg(dir)
            .envs(self.env());
        run_ok(&mut cmd);
    }
}

/// A local cluster started with `deploy/local-cluster.sh`, stopped on drop.
pub struct LocalCluster {
    pub url: String,
    pub state_dir: PathBuf,
    env: Vec<(&'static str, String)>,
}

impl LocalCluster {
    pub fn start(executors: usize, state_dir: &Path, env: Vec<(&'static str, String)>) -> Self {
        let bin_dir = bin("lenspipe-scheduler")
            .parent()
            .expect("bin dir")
            .to_path_buf();
        let out = run_ok(
            Command::new("bash")
                .arg(repo().join("deploy/local-cluster.sh"))
                .arg("start")
                .env("EXECUTORS", executors.to_string())
                .env("LENSPIPE_BIN_DIR", &bin_dir)
                .env("LENSPIPE_CLUSTER_DIR", state_dir)
                .envs(env.clone()),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let url = stdout.lines().last().unwrap_or_default().trim().to_string();
        assert!(
            url.starts_with("df://127.0.0.1:"),
            "unexpected last line: {stdout}"
        );
        Self {
            url,
            state_dir: state_dir.to_path_buf(),
            env,
        }
    }

    /// `pid` lines of the state file: (name, pid).
    pub fn processes(&self) -> Vec<(String, u32)> {
        std::fs::read_to_string(self.state_dir.join("pids"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                if f.len() >= 3 && f[0] == "pid" {
                    Some((f[1].to_string(), f[2].parse().ok()?))
                } else {
                    None
                }
            })
            .collect()
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.state_dir.join("logs").join(format!("{name}.log")))
            .unwrap_or_default()
    }

    pub fn stop(&self) {
        let _ = Command::new("bash")
            .arg(repo().join("deploy/local-cluster.sh"))
            .arg("stop")
            .env("LENSPIPE_CLUSTER_DIR", &self.state_dir)
            .envs(self.env.clone())
            .output();
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

/// Compares two Parquet output folders row by row on `keys` (every column
/// but `ignore`), with pyarrow as the independent reader; panics with the
/// first differences.
pub fn assert_same_rows(
    a: &Path,
    b: &Path,
    keys: &str,
    ignore: &str,
    what: &str,
) -> serde_json::Value {
    let out = run_ok(
        python()
            .arg("tests/py/compare_tables.py")
            .arg(a)
            .arg(b)
            .args(["--keys", keys, "--ignore", ignore]),
    );
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("compare_tables.py prints JSON");
    assert!(
        report["rows_a"].as_u64().unwrap_or(0) > 0,
        "{what}: no rows in {}",
        a.display()
    );
    assert_eq!(
        report["rows_a"], report["rows_b"],
        "{what}: row counts differ"
    );
    assert_eq!(
        report["duplicate_keys_a"],
        0,
        "{what}: duplicate keys in {}",
        a.display()
    );
    assert_eq!(
        report["duplicate_keys_b"],
        0,
        "{what}: duplicate keys in {}",
        b.display()
    );
    assert_eq!(
        report["columns_a"], report["columns_b"],
        "{what}: columns differ"
    );
    assert_eq!(
        report["differing_rows"], 0,
        "{what}: rows differ: {}",
        report["differences"]
    );
    report
}
