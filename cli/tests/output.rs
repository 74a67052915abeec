//! What `lenspipe` prints for a person (one line per stage) and for a script
//! (`--json`: the run.json), and the commit `--version` names.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ has a parent")
        .to_path_buf()
}

fn lenspipe() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lenspipe"));
    c.current_dir(repo());
    c
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("lenspipe starts");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Rows of every sweep file in `dir`, as astropy reads their headers.
fn header_rows(dir: &Path) -> u64 {
    let script = "import glob, sys\n\
                  from astropy.io import fits\n\
                  print(sum(fits.getheader(f, 1)['NAXIS2'] for f in glob.glob(sys.argv[1] + '/*.fits')))";
    let out = run_ok(Command::new("python3").args(["-c", script]).arg(dir));
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a row count")
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let out = run_ok(lenspipe().arg("--version"));
    let text = String::from_utf8_lossy(&out.stdout);
    let commit = text
        .trim()
        .strip_suffix(')')
        .and_then(|t| t.rsplit_once("(commit "))
        .map(|(_, c)| c.to_string())
        .unwrap_or_else(|| panic!("no commit in: {text}"));
    assert!(
        text.starts_with(&format!("lenspipe {} ", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    // In a clone the commit is one of its own; from a tarball it is "unknown".
    let in_clone = Command::new("git")
        .args(["rev-parse", "--git-dir"])
        .current_dir(repo())
        .output()
        .is_ok_and(|o| o.status.success());
    if in_clone {
        assert!(
            commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit()),
            "{text}"
        );
        let known = Command::new("git")
            .args(["cat-file", "-e", &format!("{commit}^{{commit}}")])
            .current_dir(repo())
            .status()
            .expect("git starts");
        assert!(known.success(), "{commit} is not a commit of this clone");
    } else {
        assert_eq!(commit, "unknown", "{text}");
    }
}

#[test]
fn a_run_prints_one_line_per_stage_and_the_run_json_with_json() {
    let tmp = tempfile::tempdir().unwrap();
    let sweeps = tmp.path().join("sweeps");
    let lenscat = repo().join("data/positives/lenscat_catalog.csv");
    run_ok(
        lenspipe()
            .args([
                "synth",
                "--files",
                "24",
                "--rows-per-file",
                "4000",
                "--seed",
                "5",
            ])
            .arg("--out")
            .arg(&sweeps)
            .arg("--plant")
            .arg(&lenscat),
    );
    let out = tmp.path().join("run");
    let sets = |cmd: &mut Command| {
        for (k, v) in [
            ("inputs.sweeps", &sweeps),
            ("inputs.positives", &lenscat),
            ("output", &out),
        ] {
            cmd.arg("--set").arg(format!("{k}={}", v.display()));
        }
    };

    let mut catalog = lenspipe();
    catalog.args(["run", "catalog", "--config", "paper_iv"]);
    sets(&mut catalog);
    let printed = run_ok(&mut catalog);
    let text = String::from_utf8_lossy(&printed.stdout).to_string();
    let lines: Vec<&str> = text.lines().collect();
    let firsts: Vec<&str> = lines
        .iter()
        .map(|l| l.split_whitespace().next().unwrap_or_default())
        .collect();
    assert_eq!(
        firsts,
        ["negatives", "positives", "stratify", "run.json"],
        "{text}"
    );
    for line in &lines[..3] {
        assert!(line.chars().count() <= 100, "wider than 100: {line}");
    }

    // The line's counts are run.json's.
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    let neg = &run["stages"]["negatives"];
    let (rows_in, kept) = (
        neg["input_rows"].as_u64().unwrap(),
        neg["kept"].as_u64().unwrap(),
    );
    assert_eq!(rows_in, header_rows(&sweeps));
    assert!(
        lines[0].contains(&format!("{} rows in", grouped(rows_in)))
            && lines[0].contains(&format!("{} kept", grouped(kept))),
        "{} against run.json's {rows_in} in, {kept} kept",
        lines[0]
    );
    let lenses = run["stages"]["positives"]["lenses"].as_u64().unwrap();
    assert!(
        lines[1].contains(&format!("{} lenses in", grouped(lenses))),
        "{}",
        lines[1]
    );

    // --json: stdout is the run.json, nothing else.
    let mut again = lenspipe();
    again.args(["run", "negatives", "--config", "paper_iv", "--json"]);
    sets(&mut again);
    let printed = run_ok(&mut again);
    let from_stdout: serde_json::Value =
        serde_json::from_slice(&printed.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}",
                String::from_utf8_lossy(&printed.stdout)
            )
        });
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(from_stdout, on_disk);
    assert_eq!(
        from_stdout["stages"]["negatives"]["input_rows"],
        header_rows(&sweeps)
    );
}
