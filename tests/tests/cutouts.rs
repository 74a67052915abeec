//! The cutout and validation stages end to end, with real processes: the
//! catalogue half on synthetic sweeps, `lenspipe serve-cutouts` (a real HTTP
//! server answering the viewer's API, with injected faults), coadd bricks
//! written by astropy, and pyarrow/astropy reading what was written.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lenspipe_tests::{
    assert_same_rows, lenscat, lenspipe, python, read_json, run_ok, synth, Guard,
};
use serde_json::Value;

/// A running `lenspipe serve-cutouts` and its fits-cutout URL.
struct Server {
    _process: Guard,
    url: String,
}

impl Server {
    fn start(extra: &[&str]) -> Self {
        let mut child = lenspipe()
            .arg("serve-cutouts")
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("lenspipe serve-cutouts starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("serve-cutouts prints its URL");
        let url = line.trim().to_string();
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "serve-cutouts printed {line:?}"
        );
        Self {
            _process: Guard(child),
            url,
        }
    }

    fn stats(&self) -> Value {
        let stats_url = self.url.replace("/viewer/fits-cutout", "/stats");
        let out = run_ok(python().args([
            "-c",
            "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())",
            &stats_url,
        ]));
        serde_json::from_slice(&out.stdout).expect("stats JSON")
    }
}

/// Synthetic sweeps with lenses planted, and the catalogue half run on them.
fn catalog(dir: &Path) -> PathBuf {
    let sweeps = dir.join("sweeps");
    synth(&sweeps, 12, 4_000, 9, &["--plant", &lenscat()]);
    let out = dir.join("run");
    run_ok(
        lenspipe()
            .args(["run", "catalog", "--config", "paper_iv"])
            .args(sets(&[
                ("inputs.sweeps", &sweeps.display().to_string()),
                ("output", &out.display().to_string()),
            ])),
    );
    out
}

fn sets(pairs: &[(&str, &str)]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|(k, v)| ["--set".to_string(), format!("{k}={v}")])
        .collect()
}

fn cutouts(out: &Path, extra: &[(&str, &str)]) -> Command {
    let mut cmd = lenspipe();
    cmd.args(["run", "cutouts", "--config", "paper_iv"])
        .args(sets(&[("output", &out.display().to_string())]))
        .args(sets(extra));
    cmd
}

/// `lenspipe run validate` writing under `out`, with `--set` pairs and flags.
fn validate(out: &Path, extra: &[(&str, &str)], flags: &[&str]) -> Command {
    let mut cmd = lenspipe();
    cmd.args(["run", "validate", "--config", "paper_iv"])
        .args(flags)
        .args(sets(&[("output", &out.display().to_string())]))
        .args(sets(extra));
    cmd
}

fn rows(folder: &Path, images: bool) -> Value {
    let mut cmd = python();
    cmd.arg("tests/py/cutout_rows.py").arg(folder);
    if images {
        cmd.arg("--images");
    }
    serde_json::from_slice(&run_ok(&mut cmd).stdout).expect("cutout_rows.py prints JSON")
}

fn sample_ids(out: &Path) -> Vec<String> {
    let script = "import sys, pyarrow.dataset as ds; print('\\n'.join(ds.dataset(sys.argv[1], format='parquet').to_table().column('galaxy_id').to_pylist()))";
    let listed = run_ok(python().args(["-c", script]).arg(out.join("sample")));
    String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn viewer_cutouts_survive_faults_and_validation_reports_them() {
    let tmp = tempfile::tempdir().unwrap();
    let out = catalog(tmp.path());
    let targets = sample_ids(&out);
    assert!(
        targets.len() > 50,
        "too few targets to test: {}",
        targets.len()
    );

    // Every fault the viewer is known for, on some targets; one kind never heals.
    let faults = tmp.path().join("faults.json");
    std::fs::write(
        &faults,
        r#"{"latency_ms": 2, "rules": [
            {"kind": "429", "fraction": 0.08, "first": 1, "retry_after": "1"},
            {"kind": "503", "fraction": 0.08, "first": 2},
            {"kind": "html", "fraction": 0.05, "first": 1},
            {"kind": "truncated", "fraction": 0.05, "first": 1},
            {"kind": "empty", "fraction": 0.04, "first": 1},
            {"kind": "html", "fraction": 0.03, "first": 100}
        ]}"#,
    )
    .unwrap();
    let server = Server::start(&[
        "--synthetic-sky",
        "3",
        "--faults",
        &faults.display().to_string(),
    ]);
    let concurrency = 4;
    run_ok(&mut cutouts(
        &out,
        &[
            ("cutouts.viewer_url", &server.url),
            ("cutouts.concurrency", &concurrency.to_string()),
            ("cutouts.rate_per_s", "1000"),
            ("cutouts.timeout_s", "1"),
            ("cutouts.max_retries", "3"),
            ("cutouts.backoff_base_ms", "20"),
            ("cutouts.backoff_max_ms", "1500"),
            ("cutouts.shard_rows", "32"),
        ],
    ));
    let got = rows(&out.join("cutouts"), false);

    // Exactly one row per target, every status accounted for.
    assert_eq!(got["rows"].as_u64().unwrap() as usize, targets.len());
    let by_id = got["by_id"].as_object().unwrap();
    assert_eq!(by_id.len(), targets.len());
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for id in &targets {
        let entries = by_id[id].as_array().unwrap();
        assert_eq!(entries.len(), 1, "{id} has {} rows", entries.len());
        let status = entries[0]["status"].as_str().unwrap().to_string();
        match status.as_str() {
            "ok" | "no_coverage" => assert_eq!(entries[0]["image"].as_u64(), Some(3 * 101 * 101)),
            _ => assert!(
                entries[0]["image"].is_null(),
                "{id}: {status} with an image"
            ),
        }
        *statuses.entry(status).or_default() += 1;
    }
    let ok = statuses.get("ok").copied().unwrap_or(0);
    let bad = statuses.get("bad_response").copied().unwrap_or(0);
    assert!(
        bad > 0,
        "the never-healing HTML fault must end as bad_response: {statuses:?}"
    );
    assert_eq!(
        ok + bad,
        targets.len() as u64,
        "transient faults must heal: {statuses:?}"
    );
    let run = read_json(&out.join("run.json"));
    let recorded: BTreeMap<String, u64> =
        serde_json::from_value(run["stages"]["cutouts"]["status"].clone()).unwrap();
    assert_eq!(recorded, statuses, "run.json counts the statuses");
    assert_eq!(got["metadata"]["lenspipe.cutout.size"], "101");
    assert_eq!(got["metadata"]["lenspipe.cutout.bands"], "grz");
    let image_type = got["image_type"].as_str().unwrap();
    assert!(
        image_type.starts_with("fixed_size_list<item: float") && image_type.ends_with("[30603]"),
        "{image_type}"
    );

    // The server never saw more requests at once than allowed, summed over
    // every shard the process ran at once. (Timeouts are left to the viewer
    // crate's tests: the server keeps a request the client gave up on open.)
    let stats = server.stats();
    let max_in_flight = stats["max_in_flight"].as_u64().unwrap();
    assert!(
        max_in_flight >= 2 && max_in_flight <= concurrency,
        "max in flight {max_in_flight}"
    );

    // The pixels are exactly what the service answers, read independently by astropy.
    let clean = Server::start(&["--synthetic-sky", "3"]);
    let with_images = rows(&out.join("cutouts"), true);
    let mut compared = 0;
    for id in targets
        .iter()
        .filter(|id| with_images["by_id"][id.as_str()][0]["status"] == "ok")
        .take(3)
    {
        let row = &with_images["by_id"][id.as_str()][0];
        let (ra, dec) = (row["ra"].as_f64().unwrap(), row["dec"].as_f64().unwrap());
        let fetched = run_ok(python().args([
            "tests/py/fetch_cutout.py",
            &clean.url,
            &ra.to_string(),
            &dec.to_string(),
            "101",
            "ls-dr10-south",
            "grz",
        ]));
        let fetched: Value = serde_json::from_slice(&fetched.stdout).unwrap();
        assert_eq!(fetched["shape"], serde_json::json!([3, 101, 101]));
        assert!(
            fetched["values"] == row["image"],
            "{id}: stored pixels differ from the served ones"
        );
        compared += 1;
    }
    assert_eq!(compared, 3);

    // Validation: every cutout checked once; failed cutouts fail not_ok_status.
    let validated = run_ok(&mut validate(&out, &[], &[]));
    let summary = String::from_utf8_lossy(&validated.stdout);
    assert!(
        summary
            .lines()
            .any(|l| l.starts_with("validate ") && l.contains(" passed")),
        "{summary}"
    );
    let run = read_json(&out.join("run.json"));
    let v = &run["stages"]["validate"];
    assert_eq!(v["cutouts"].as_u64().unwrap() as usize, targets.len());
    assert_eq!(
        v["failed_checks"]["not_ok_status"].as_u64().unwrap(),
        bad,
        "{v}"
    );
    let shortcuts = read_json(&out.join("validation/shortcuts.json"));
    let features = shortcuts["features"].as_array().unwrap();
    for f in features {
        for key in [
            "name",
            "kind",
            "auc",
            "ci_low",
            "ci_high",
            "median_pos",
            "median_neg",
            "flagged",
        ] {
            assert!(f.get(key).is_some(), "feature entry lacks {key}: {f}");
        }
    }
    assert!(
        features.iter().any(|f| f["kind"] == "image")
            && features.iter().any(|f| f["kind"] == "catalog")
    );
    assert!(shortcuts["splits"].is_object() && shortcuts.get("multivariate").is_some());
    let html = std::fs::read_to_string(out.join("validation/report.html")).unwrap();
    let pngs: Vec<_> = std::fs::read_dir(out.join("validation"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".png"))
        .collect();
    assert!(pngs.len() >= 3, "{pngs:?}");
    for png in &pngs {
        assert!(
            html.contains(png.as_str()),
            "report.html does not show {png}"
        );
    }
    screenshot_is_not_blank(&out.join("validation/report.html"), tmp.path());

    // The same pixels under two targets: both fail duplicate_image, nothing else changes.
    let copied = tmp.path().join("with-duplicate");
    let script = "import sys, glob, os, shutil, pyarrow as pa, pyarrow.parquet as pq\n\
                  sys.path.insert(0, 'tests/py')\n\
                  from lenspipe_output import committed_files\n\
                  src, dst = sys.argv[1], sys.argv[2]\n\
                  os.makedirs(dst)\n\
                  files = committed_files(src)\n\
                  for f in files: shutil.copy(f, dst)\n\
                  t = pq.read_table(files[0])\n\
                  row = t.slice([s for s in t['cutout_status'].to_pylist()].index('ok'), 1)\n\
                  row = row.set_column(row.schema.get_field_index('galaxy_id'), row.schema.field('galaxy_id'), pa.array(['copy-of-' + row['galaxy_id'][0].as_py()], type=row.schema.field('galaxy_id').type))\n\
                  pq.write_table(row, dst + '/shard-999999.parquet', use_compliant_nested_type=False)";
    run_ok(
        python()
            .args(["-c", script])
            .arg(out.join("cutouts"))
            .arg(&copied),
    );
    let dup_out = tmp.path().join("dup-run");
    run_ok(&mut validate(
        &dup_out,
        &[("inputs.validate", &copied.display().to_string())],
        &[],
    ));
    let dup = &read_json(&dup_out.join("run.json"))["stages"]["validate"];
    assert_eq!(dup["cutouts"].as_u64().unwrap() as usize, targets.len() + 1);
    assert_eq!(dup["failed_checks"]["duplicate_image"], 2, "{dup}");
    assert_eq!(dup["duplicate_hashes"], 1);

    // --fail-on-shortcut gates on exactly what shortcuts.json flags.
    let flagged = features.iter().any(|f| f["flagged"] == true);
    let gated = validate(&out, &[], &["--fail-on-shortcut"])
        .output()
        .unwrap();
    assert_eq!(
        !gated.status.success(),
        flagged,
        "exit status {} with flagged = {flagged}",
        gated.status
    );
    if flagged {
        assert_eq!(gated.status.code(), Some(3), "a flagged shortcut exits 3");
        assert!(String::from_utf8_lossy(&gated.stdout).contains("SHORTCUT: "));
        let stderr = String::from_utf8_lossy(&gated.stderr);
        assert!(
            stderr.contains("shortcut flagged: ") && stderr.contains("--fail-on-shortcut"),
            "{stderr}"
        );
    }
}

/// Opens the report in headless Chromium and checks the screenshot shows
/// something. A machine without Chromium fails here, naming it.
fn screenshot_is_not_blank(html: &Path, dir: &Path) {
    let browser = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    let Some(browser) = browser else {
        panic!("chromium missing: the report is checked in a real browser (bash scripts/install-test-deps.sh installs it)");
    };
    let shot = dir.join("report.png");
    run_ok(Command::new(browser).args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--window-size=1400,2400",
        &format!("--screenshot={}", shot.display()),
        &format!("file://{}", html.display()),
    ]));
    let script = "import sys; from PIL import Image; im = Image.open(sys.argv[1]).convert('L'); \
                  lo, hi = im.getextrema(); print(len(set(im.getdata())), lo, hi)";
    let measured = run_ok(python().args(["-c", script]).arg(&shot));
    let text = String::from_utf8_lossy(&measured.stdout);
    let levels: usize = text.split_whitespace().next().unwrap().parse().unwrap();
    assert!(levels > 20, "the report screenshot looks blank: {text}");
}

#[test]
fn a_killed_cutout_run_resumes_without_fetching_finished_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let out = catalog(tmp.path());
    let settings = |url: &str| -> Vec<(String, String)> {
        vec![
            ("cutouts.viewer_url".into(), url.to_string()),
            ("cutouts.concurrency".into(), "2".into()),
            ("cutouts.rate_per_s".into(), "1000".into()),
            ("cutouts.shard_rows".into(), "16".into()),
        ]
    };
    let as_refs = |v: &[(String, String)]| -> Vec<(String, String)> { v.to_vec() };

    // Reference: one uninterrupted run.
    let reference_server = Server::start(&["--synthetic-sky", "11"]);
    let reference = tmp.path().join("reference");
    std::fs::create_dir_all(&reference).unwrap();
    let copy_sample = |to: &Path| {
        run_ok(
            Command::new("cp")
                .arg("-r")
                .arg(out.join("sample"))
                .arg(to.join("sample")),
        );
    };
    copy_sample(&reference);
    let s = as_refs(&settings(&reference_server.url));
    let pairs: Vec<(&str, &str)> = s.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    run_ok(&mut cutouts(&reference, &pairs));

    // Killed mid-run: slow answers so the kill lands between shards.
    let server = Server::start(&["--synthetic-sky", "11", "--latency-ms", "40"]);
    let killed = tmp.path().join("killed");
    std::fs::create_dir_all(&killed).unwrap();
    copy_sample(&killed);
    let s = as_refs(&settings(&server.url));
    let pairs: Vec<(&str, &str)> = s.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut child = cutouts(&killed, &pairs)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The version folders (`cutouts/v-<run id>`) the runs wrote into.
    let versions = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir.join("cutouts"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().starts_with("v-"))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default()
    };
    let shards = |dir: &Path| -> Vec<String> {
        versions(dir)
            .iter()
            .flat_map(|v| std::fs::read_dir(v).into_iter().flatten())
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            // Not the store's temporary file of a put the kill cut short.
            .filter(|n| n.starts_with("shard-") && n.ends_with(".parquet"))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while shards(&killed).len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended before it could be killed"
    );
    run_ok(Command::new("kill").args(["-KILL", &child.id().to_string()]));
    child.wait().unwrap();
    let done_before = shards(&killed);
    assert!(!done_before.is_empty());
    // Nothing is committed, and the shards the killed run left are complete.
    assert!(!killed.join("cutouts/_SUCCESS").exists());
    let left = versions(&killed);
    assert_eq!(left.len(), 1, "{left:?}");
    let partial = rows(&left[0], false);
    let finished_ids: Vec<String> = partial["by_id"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let before = server.stats();

    run_ok(&mut cutouts(&killed, &pairs));
    let after = server.stats();
    // The rerun's version is committed and the killed run's is gone.
    let left = versions(&killed);
    assert_eq!(left.len(), 1, "{left:?}");
    let manifest = read_json(&killed.join("cutouts/_SUCCESS"));
    assert!(left[0].ends_with(manifest["version"].as_str().unwrap()));
    // No target of a finished shard was asked for again.
    for id_row in partial["by_id"].as_object().unwrap().values() {
        let row = &id_row[0];
        let key = format!(
            "{:.6},{:.6}",
            row["ra"].as_f64().unwrap(),
            row["dec"].as_f64().unwrap()
        );
        assert_eq!(
            before["attempts"][&key], after["attempts"][&key],
            "{key} was fetched again"
        );
    }
    let total = sample_ids(&out).len() as u64;
    let fetched_again = after["requests"].as_u64().unwrap() - before["requests"].as_u64().unwrap();
    assert!(
        fetched_again <= total - finished_ids.len() as u64,
        "rerun fetched {fetched_again} of {total}"
    );
    let run = read_json(&killed.join("run.json"));
    assert!(
        run["stages"]["cutouts"]["shards_reused_whole"]
            .as_u64()
            .unwrap()
            >= done_before.len() as u64
    );

    // And the result is the uninterrupted run's, row for row.
    assert_same_rows(
        &reference.join("cutouts"),
        &killed.join("cutouts"),
        "galaxy_id",
        "cutout_source",
        "resumed cutouts",
    );
}

#[test]
fn brick_cutouts_are_the_brick_pixels_and_an_empty_band_is_no_coverage() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("coadds");
    // Two small bricks in the DR10 layout; the second has an all-zero z band.
    let bricks = r#"[{"name": "1500p020", "ra": 150.0, "dec": 2.0}, {"name": "1502p020", "ra": 150.2, "dec": 2.0}]"#;
    // Targets off the half-pixel positions, where "nearest pixel" is a tie.
    let sources = r#"[{"ra": 150.0011, "dec": 2.0013, "flux": 40.0, "sigma": 1.5}, {"ra": 150.005, "dec": 2.004, "flux": 25.0, "sigma": 2.0},
                      {"ra": 150.2, "dec": 2.0, "flux": 30.0, "sigma": 1.5}]"#;
    run_ok(
        python()
            .args(["coadd/tests/py/make_bricks.py"])
            .arg(&root)
            .args([
                "--bricks",
                bricks,
                "--sources",
                sources,
                "--dump",
                "--size",
                "400",
            ]),
    );
    let zero = tmp.path().join("coadds-zero");
    run_ok(
        python()
            .args(["coadd/tests/py/make_bricks.py"])
            .arg(&zero)
            .args([
                "--bricks",
                r#"[{"name": "1502p020", "ra": 150.2, "dec": 2.0}]"#,
                "--sources",
                sources,
                "--zero-band",
                "z",
                "--size",
                "400",
            ]),
    );
    // Both roots in one: the first brick from `root`, the second from `zero`.
    let merged = tmp.path().join("merged");
    run_ok(Command::new("cp").arg("-r").arg(&root).arg(&merged));
    run_ok(
        Command::new("rm")
            .arg("-rf")
            .arg(merged.join("coadd/150/1502p020")),
    );
    run_ok(
        Command::new("cp")
            .arg("-r")
            .arg(zero.join("coadd/150/1502p020"))
            .arg(merged.join("coadd/150/")),
    );

    let targets = tmp.path().join("targets.parquet");
    let script = "import sys, pyarrow as pa, pyarrow.parquet as pq\n\
                  pq.write_table(pa.table({'galaxy_id': ['a', 'b', 'c'], 'ra': [150.0011, 150.005, 150.2], 'dec': [2.0013, 2.004, 2.0],\n\
                  'label': [1, 0, 0], 'brickname': ['1500p020', '1500p020', '1502p020']}), sys.argv[1])";
    run_ok(python().args(["-c", script]).arg(&targets));
    let out = tmp.path().join("run");
    run_ok(&mut cutouts(
        &out,
        &[
            ("cutouts.source", "bricks"),
            ("cutouts.resampling", "native"),
            ("inputs.coadds", &merged.display().to_string()),
            ("inputs.cutout_targets", &targets.display().to_string()),
        ],
    ));
    let got = rows(&out.join("cutouts"), true);
    assert_eq!(got["by_id"]["a"][0]["status"], "ok");
    assert_eq!(got["by_id"]["b"][0]["status"], "ok");
    assert_eq!(got["by_id"]["c"][0]["status"], "no_coverage");
    assert_eq!(got["by_id"]["c"][0]["resampling"], "native");
    assert!(
        got["by_id"]["c"][0]["image"].is_array(),
        "no_coverage keeps its pixels"
    );

    // native: exactly astropy's decompressed brick pixels around the nearest pixel.
    let script = r#"
import json, sys
import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
root, ra, dec = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
planes = []
for band in "grz":
    path = f"{root}/coadd/150/1500p020/legacysurvey-1500p020-image-{band}.fits.fz"
    with fits.open(path) as h:
        data, wcs = h[1].data, WCS(h[1].header)
    x, y = wcs.all_world2pix([[ra, dec]], 0)[0]
    x0, y0 = int(np.round(x)) - 50, int(np.round(y)) - 50
    planes.append(data[y0:y0 + 101, x0:x0 + 101].astype("float32"))
json.dump([float(v) for v in np.stack(planes).ravel()], sys.stdout)
"#;
    for (id, ra, dec) in [("a", "150.0011", "2.0013"), ("b", "150.005", "2.004")] {
        let expected = run_ok(python().args(["-c", script]).arg(&merged).args([ra, dec]));
        let expected: Value = serde_json::from_slice(&expected.stdout).unwrap();
        let (ours, theirs) = (
            got["by_id"][id][0]["image"].as_array().unwrap(),
            expected.as_array().unwrap(),
        );
        assert_eq!(ours.len(), theirs.len(), "{id}: image sizes differ");
        let first = ours.iter().zip(theirs).position(|(a, b)| a != b);
        assert!(
            first.is_none(),
            "{id}: native pixels differ from astropy's at {first:?}: {:?} vs {:?}",
            first.map(|i| &ours[i]),
            first.map(|i| &theirs[i])
        );
    }
}

/// A brick that cannot be used ends as its targets' `bad_brick`, never as a
/// failed run or an allocation of whatever the store holds: an object far
/// larger than its headers describe is refused before it is fetched, and a
/// local file cut short is found when its tiles are decoded. Targets in
/// other bricks are untouched.
#[test]
fn bricks_larger_than_their_headers_or_cut_short_are_bad_brick() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("coadds");
    let bricks = r#"[{"name": "1500p020", "ra": 150.0, "dec": 2.0}, {"name": "1502p020", "ra": 150.2, "dec": 2.0}]"#;
    let sources = r#"[{"ra": 150.0011, "dec": 2.0013, "flux": 40.0, "sigma": 1.5}, {"ra": 150.2, "dec": 2.0, "flux": 30.0, "sigma": 1.5}]"#;
    run_ok(
        python()
            .args(["coadd/tests/py/make_bricks.py"])
            .arg(&root)
            .args(["--bricks", bricks, "--sources", sources, "--size", "400"]),
    );
    let targets = tmp.path().join("targets.parquet");
    let script = "import sys, pyarrow as pa, pyarrow.parquet as pq\n\
                  pq.write_table(pa.table({'galaxy_id': ['a', 'c'], 'ra': [150.0011, 150.2], 'dec': [2.0013, 2.0],\n\
                  'label': [1, 0], 'brickname': ['1500p020', '1502p020']}), sys.argv[1])";
    run_ok(python().args(["-c", script]).arg(&targets));
    let band_file = |root: &Path, band: char| {
        root.join(format!(
            "coadd/150/1502p020/legacysurvey-1502p020-image-{band}.fits.fz"
        ))
    };
    let statuses = |out: &Path| {
        let got = rows(&out.join("cutouts"), false);
        (
            got["by_id"]["a"][0]["status"].as_str().unwrap().to_string(),
            got["by_id"]["c"][0]["status"].as_str().unwrap().to_string(),
        )
    };

    // A copy of the coadds with one band file of 1502p020 set to a new length.
    let resized = |name: &str, band: char, new_len: fn(u64) -> u64| {
        let copy = tmp.path().join(name);
        run_ok(Command::new("cp").arg("-r").arg(&root).arg(&copy));
        let file = band_file(&copy, band);
        let len = std::fs::metadata(&file).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(new_len(len))
            .unwrap();
        copy
    };

    // In S3: 1502p020's r band carries 16 MiB after its last HDU.
    let padded_root = resized("padded", 'r', |len| len + (16 << 20));
    let s3 = lenspipe_tests::S3Server::start();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    s3.upload_dir("coadds", &empty, "");
    run_ok(
        lenspipe()
            .args([
                "cp",
                &format!("{}/", padded_root.display()),
                "s3://coadds/dr10/",
            ])
            .envs(s3.env()),
    );
    let out = tmp.path().join("s3-run");
    let run = run_ok(
        cutouts(
            &out,
            &[
                ("cutouts.source", "bricks"),
                ("cutouts.resampling", "native"),
                ("inputs.coadds", "s3://coadds/dr10"),
                ("inputs.cutout_targets", &targets.display().to_string()),
            ],
        )
        .envs(s3.env()),
    );
    assert_eq!(statuses(&out), ("ok".into(), "bad_brick".into()));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("1502p020") && stderr.contains("headers describe"),
        "the refused brick is not named with its reason:\n{stderr}"
    );

    // Locally: 1502p020's g band cut to half its length.
    let cut_root = resized("cut", 'g', |len| len / 2);
    let out = tmp.path().join("local-run");
    run_ok(&mut cutouts(
        &out,
        &[
            ("cutouts.source", "bricks"),
            ("cutouts.resampling", "native"),
            ("inputs.coadds", &cut_root.display().to_string()),
            ("inputs.cutout_targets", &targets.display().to_string()),
        ],
    ));
    assert_eq!(statuses(&out), ("ok".into(), "bad_brick".into()));
}

/// `cutouts.planes: [image, invvar, maskbits]`. From bricks, the
/// `-invvar-<band>` and `-maskbits` files are cut as the images are (native:
/// astropy's decompressed pixels, the maskbits from HCOMPRESS_1). Through
/// the viewer's API, `serve-cutouts` answers `invvar` and `maskbits` with
/// the viewer's extra HDUs, and a viewer run over it gives the same planes
/// as a lanczos3 run on the bricks, bit for bit. Validation flags cutouts
/// with no inverse variance at the centre (`low_invvar`) and with an
/// excluded mask bit there (`masked_centre`).
#[test]
fn invvar_and_maskbits_planes_from_bricks_and_through_the_viewer_api() {
    let tmp = tempfile::tempdir().unwrap();
    let bricks = r#"[{"name": "1500p020", "ra": 150.0, "dec": 2.0}, {"name": "1502p020", "ra": 150.2, "dec": 2.0}]"#;
    let sources = r#"[{"ra": 150.0011, "dec": 2.0013, "flux": 40.0, "sigma": 1.5, "masked": true}, {"ra": 150.2, "dec": 2.0, "flux": 30.0, "sigma": 1.5}]"#;
    let make = |root: &Path, extra: &[&str]| {
        run_ok(
            python()
                .args(["coadd/tests/py/make_bricks.py"])
                .arg(root)
                .args(["--bricks", bricks, "--sources", sources, "--size", "400"])
                .args(["--invvar", "--maskbits", "--seed", "4"])
                .args(extra),
        );
    };
    // 1502p020's z band has no data in its invvar file.
    let root = tmp.path().join("coadds");
    make(&root, &[]);
    let holes = tmp.path().join("holes");
    make(&holes, &["--zero-invvar-band", "z"]);
    run_ok(
        Command::new("cp")
            .arg(holes.join("coadd/150/1502p020/legacysurvey-1502p020-invvar-z.fits.fz"))
            .arg(root.join("coadd/150/1502p020/")),
    );

    // Off the half-pixel positions, where "nearest pixel" is a tie.
    let targets = tmp.path().join("targets.parquet");
    let script = "import sys, pyarrow as pa, pyarrow.parquet as pq\n\
                  pq.write_table(pa.table({'galaxy_id': ['a', 'b', 'c', 'd'], 'ra': [150.0011, 149.999, 150.2007, 150.2013],\n\
                  'dec': [2.0013, 1.999, 2.0011, 1.9987], 'label': [1, 0, 1, 0],\n\
                  'split': ['train'] * 4, 'weight': [1.0] * 4,\n\
                  'brickname': ['1500p020', '1500p020', '1502p020', '1502p020']}), sys.argv[1])";
    run_ok(python().args(["-c", script]).arg(&targets));
    let coadds = root.display().to_string();
    let targets = targets.display().to_string();
    let bricks_run = |name: &str, resampling: &str| {
        let out = tmp.path().join(name);
        run_ok(&mut cutouts(
            &out,
            &[
                ("cutouts.source", "bricks"),
                ("cutouts.resampling", resampling),
                ("cutouts.planes", "[image, invvar, maskbits]"),
                ("inputs.coadds", &coadds),
                ("inputs.cutout_targets", &targets),
            ],
        ));
        out
    };

    // Native: astropy's pixels of each file around the nearest pixel.
    let native = bricks_run("native", "native");
    let got = rows(&native.join("cutouts"), true);
    let script = r#"
import json, sys
import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
root, brick, ra, dec = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
def cut(name, dtype):
    with fits.open(f"{root}/coadd/150/{brick}/legacysurvey-{brick}-{name}.fits.fz") as h:
        data, wcs = h[1].data, WCS(h[1].header)
    x, y = wcs.all_world2pix([[ra, dec]], 0)[0]
    x0, y0 = int(np.round(x)) - 50, int(np.round(y)) - 50
    return data[y0:y0 + 101, x0:x0 + 101].astype(dtype)
invvar = np.stack([cut(f"invvar-{band}", "float32") for band in "grz"])
json.dump({"invvar": [float(v) for v in invvar.ravel()],
           "maskbits": [int(v) for v in cut("maskbits", "int32").ravel()]}, sys.stdout)
"#;
    for (id, brick, ra, dec) in [
        ("a", "1500p020", "150.0011", "2.0013"),
        ("c", "1502p020", "150.2007", "2.0011"),
    ] {
        assert_eq!(got["by_id"][id][0]["status"], "ok", "{id}");
        let expected = run_ok(
            python()
                .args(["-c", script])
                .arg(&root)
                .args([brick, ra, dec]),
        );
        let expected: Value = serde_json::from_slice(&expected.stdout).unwrap();
        assert_eq!(
            got["by_id"][id][0]["invvar"], expected["invvar"],
            "{id}: native invvar differs from astropy's"
        );
        assert_eq!(
            got["by_id"][id][0]["maskbits"], expected["maskbits"],
            "{id}: native maskbits differ from astropy's"
        );
    }
    let z_of_c = &got["by_id"]["c"][0]["invvar"].as_array().unwrap()[2 * 101 * 101..];
    assert!(z_of_c.iter().all(|v| v.as_f64() == Some(0.0)));
    // The masked source's disc is BRIGHT (bit 1) at a's centre.
    assert_eq!(
        got["by_id"]["a"][0]["maskbits"][50 * 101 + 50]
            .as_i64()
            .unwrap()
            & 2,
        2
    );
    // The Python reader returns both planes as arrays, row for row.
    let script = "import sys, json, numpy as np\n\
                  sys.path.insert(0, 'python/lenspipe_reader')\n\
                  import lenspipe_reader\n\
                  d = lenspipe_reader.load(sys.argv[1], normalisation='none')\n\
                  json.dump({'ids': list(d.galaxy_id), 'invvar': list(d.invvar.shape), 'maskbits': list(d.maskbits.shape),\n\
                  'a_invvar': [float(v) for v in d.invvar[0].ravel()], 'a_maskbits': [int(v) for v in d.maskbits[0].ravel()]}, sys.stdout)";
    let read = run_ok(python().args(["-c", script]).arg(native.join("cutouts")));
    let read: Value = serde_json::from_slice(&read.stdout).unwrap();
    assert_eq!(read["ids"], serde_json::json!(["a", "b", "c", "d"]));
    assert_eq!(read["invvar"], serde_json::json!([4, 3, 101, 101]));
    assert_eq!(read["maskbits"], serde_json::json!([4, 101, 101]));
    assert_eq!(read["a_invvar"], got["by_id"]["a"][0]["invvar"]);
    assert_eq!(read["a_maskbits"], got["by_id"]["a"][0]["maskbits"]);

    // Validation reads both planes.
    run_ok(&mut validate(&native, &[], &[]));
    let run = read_json(&native.join("run.json"));
    let failed = &run["stages"]["validate"]["failed_checks"];
    assert_eq!(failed["low_invvar"], 2, "{failed}");
    assert_eq!(failed["masked_centre"], 1, "{failed}");
    let script = "import sys, json\n\
                  sys.path.insert(0, 'tests/py')\n\
                  from lenspipe_output import dataset\n\
                  t = dataset(sys.argv[1]).to_table(columns=['galaxy_id', 'failures']).to_pylist()\n\
                  json.dump({r['galaxy_id']: [c for c in r['failures'] if c in ('low_invvar', 'masked_centre')] for r in t}, sys.stdout)";
    let flagged = run_ok(
        python()
            .args(["-c", script])
            .arg(native.join("validation/checks")),
    );
    let flagged: Value = serde_json::from_slice(&flagged.stdout).unwrap();
    assert_eq!(
        flagged,
        serde_json::json!({"a": ["masked_centre"], "b": [], "c": ["low_invvar"], "d": ["low_invvar"]})
    );

    // The viewer's API, answered from the same bricks.
    let server = Server::start(&["--coadds", &coadds]);
    let viewer = tmp.path().join("viewer");
    run_ok(&mut cutouts(
        &viewer,
        &[
            ("cutouts.viewer_url", &server.url),
            ("cutouts.planes", "[image, invvar, maskbits]"),
            ("inputs.cutout_targets", &targets),
        ],
    ));
    let through_api = rows(&viewer.join("cutouts"), true);
    let lanczos = rows(&bricks_run("lanczos3", "lanczos3").join("cutouts"), true);
    for id in ["a", "b", "c", "d"] {
        let (api, direct) = (&through_api["by_id"][id][0], &lanczos["by_id"][id][0]);
        assert_eq!(api["status"], "ok", "{id}");
        assert_eq!(api["image"], direct["image"], "{id}: image");
        assert!(api["invvar"].is_array(), "{id}: no invvar through the API");
        assert_eq!(api["invvar"], direct["invvar"], "{id}: invvar");
        assert!(
            api["maskbits"].is_array(),
            "{id}: no maskbits through the API"
        );
        assert_eq!(api["maskbits"], direct["maskbits"], "{id}: maskbits");
    }
    assert_eq!(
        through_api["metadata"]["lenspipe.cutout.planes"],
        "image,invvar,maskbits"
    );
    // On the resampled grid each maskbits pixel is the nearest brick pixel's.
    assert_eq!(
        lanczos["by_id"]["a"][0]["maskbits"][50 * 101 + 50]
            .as_i64()
            .unwrap()
            & 2,
        2
    );
}

/// The (galaxy_id, passed, failures) rows a reader following `_SUCCESS`
/// sees in `validation/checks`, sorted.
fn checks_rows(out: &Path) -> Value {
    let script = "import sys, json\n\
                  sys.path.insert(0, 'tests/py')\n\
                  from lenspipe_output import dataset\n\
                  t = dataset(sys.argv[1]).to_table(columns=['galaxy_id', 'passed', 'failures']).to_pylist()\n\
                  json.dump(sorted([r['galaxy_id'], r['passed'], r['failures']] for r in t), sys.stdout)";
    let listed = run_ok(
        python()
            .args(["-c", script])
            .arg(out.join("validation/checks")),
    );
    serde_json::from_slice(&listed.stdout).expect("checks rows as JSON")
}

/// What a folder holds, sorted by name.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn killing_cutouts_and_validate_at_any_step_of_the_commit_leaves_one_complete_version() {
    let tmp = tempfile::tempdir().unwrap();
    let out = catalog(tmp.path());
    let server = Server::start(&["--synthetic-sky", "5"]);
    let viewer = [
        ("cutouts.viewer_url", server.url.as_str()),
        ("cutouts.shard_rows", "16"),
    ];
    run_ok(&mut cutouts(&out, &viewer));
    run_ok(&mut validate(&out, &[], &[]));
    let (cutouts_dir, checks_dir) = (out.join("cutouts"), out.join("validation/checks"));
    let reference_cutouts = rows(&cutouts_dir, false);
    let reference_checks = checks_rows(&out);
    assert!(reference_cutouts["rows"].as_u64().unwrap() > 16);
    assert_eq!(
        reference_checks.as_array().unwrap().len() as u64,
        reference_cutouts["rows"].as_u64().unwrap()
    );
    let requests = server.stats()["requests"].clone();

    // Before the manifest is replaced the old version stays current; after
    // it, the new one is. Either way a reader sees the same complete rows.
    for (step, new_version) in [
        ("before-success", false),
        ("after-success", true),
        ("mid-cleanup", true),
    ] {
        for (dir, mut cmd) in [
            (&cutouts_dir, cutouts(&out, &viewer)),
            (&checks_dir, validate(&out, &[], &[])),
        ] {
            let before = read_json(&dir.join("_SUCCESS"))["version"].clone();
            let killed = cmd.env("LENSPIPE_CRASH_AT", step).output().unwrap();
            let stderr = String::from_utf8_lossy(&killed.stderr);
            assert!(
                !killed.status.success() && stderr.contains(&format!("LENSPIPE_CRASH_AT={step}")),
                "{step} {}: the run was not killed there: {stderr}",
                dir.display()
            );
            let after = read_json(&dir.join("_SUCCESS"))["version"].clone();
            assert_eq!(after != before, new_version, "{step}: {before} -> {after}");
            let seen = rows(&cutouts_dir, false);
            assert_eq!(
                seen["by_id"], reference_cutouts["by_id"],
                "{step}: cutouts differ"
            );
            assert_eq!(
                seen["files"], reference_cutouts["files"],
                "{step}: shards differ"
            );
            assert_eq!(checks_rows(&out), reference_checks, "{step}: checks differ");
        }
    }
    // Every rerun took the finished shards over: nothing was fetched again.
    assert_eq!(server.stats()["requests"], requests);

    // A clean run leaves only the committed version in each folder.
    run_ok(&mut cutouts(&out, &viewer));
    run_ok(&mut validate(&out, &[], &[]));
    for dir in [&cutouts_dir, &checks_dir] {
        let version = read_json(&dir.join("_SUCCESS"))["version"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(entries(dir), ["_SUCCESS".to_string(), version]);
    }
    assert_eq!(
        rows(&cutouts_dir, false)["by_id"],
        reference_cutouts["by_id"]
    );
    assert_eq!(checks_rows(&out), reference_checks);
}

/// Writes `<to>/part-0.parquet` from the committed cutouts of `out`: every
/// cutout twice, once as a positive and once as a negative, so no feature
/// can tell the classes apart; with `plant`, the positives' `psfsize_r` is
/// then raised by 1 arcsec, a shortcut as plain as a catalogue gets.
fn mirrored_cutouts(out: &Path, to: &Path, plant: bool) {
    let script = "import sys, os\n\
                  import pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet as pq\n\
                  sys.path.insert(0, 'tests/py')\n\
                  from lenspipe_output import dataset\n\
                  src, dst, plant = sys.argv[1], sys.argv[2], sys.argv[3] == 'plant'\n\
                  t = dataset(src).to_table()\n\
                  if 'psfsize_r' not in t.column_names:\n\
                  \x20   t = t.append_column('psfsize_r', pa.array([1.3] * t.num_rows))\n\
                  t = t.set_column(t.schema.get_field_index('psfsize_r'), 'psfsize_r', pc.cast(t['psfsize_r'], pa.float64()))\n\
                  def as_class(label, prefix, shift):\n\
                  \x20   c = t.set_column(t.schema.get_field_index('label'), 'label', pa.array([label] * t.num_rows, type=t.schema.field('label').type))\n\
                  \x20   c = c.set_column(c.schema.get_field_index('galaxy_id'), 'galaxy_id', pc.binary_join_element_wise(prefix, pc.cast(c['galaxy_id'], pa.string()), ''))\n\
                  \x20   return c.set_column(c.schema.get_field_index('psfsize_r'), 'psfsize_r', pc.add(c['psfsize_r'], shift))\n\
                  both = pa.concat_tables([as_class(1, 'pos-', 1.0 if plant else 0.0), as_class(0, 'neg-', 0.0)])\n\
                  os.makedirs(dst)\n\
                  pq.write_table(both, os.path.join(dst, 'part-0.parquet'), use_compliant_nested_type=False)";
    run_ok(
        python()
            .args(["-c", script])
            .arg(out.join("cutouts"))
            .arg(to)
            .arg(if plant { "plant" } else { "mirror" }),
    );
}

/// `--fail-on-shortcut` on a fixture with a planted shortcut and on one
/// without any: it fails exactly on the first, and names the feature.
#[test]
fn fail_on_shortcut_fails_on_a_planted_shortcut_and_passes_without_one() {
    let tmp = tempfile::tempdir().unwrap();
    let out = catalog(tmp.path());
    let server = Server::start(&["--synthetic-sky", "3"]);
    run_ok(&mut cutouts(
        &out,
        &[("cutouts.viewer_url", server.url.as_str())],
    ));
    let gate = |name: &str, plant: bool| {
        let input = tmp.path().join(format!("{name}-cutouts"));
        mirrored_cutouts(&out, &input, plant);
        let run = tmp.path().join(format!("{name}-run"));
        let done = validate(
            &run,
            &[("inputs.validate", &input.display().to_string())],
            &["--fail-on-shortcut"],
        )
        .output()
        .unwrap();
        let report = read_json(&run.join("validation/shortcuts.json"));
        let flagged: Vec<String> = report["features"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["flagged"] == true)
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect();
        (done, flagged)
    };

    let (clean, flagged) = gate("mirrored", false);
    assert!(flagged.is_empty(), "mirrored classes flagged {flagged:?}");
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );

    let (planted, flagged) = gate("planted", true);
    assert_eq!(flagged, ["psfsize_r"]);
    assert_eq!(planted.status.code(), Some(3), "a flagged shortcut exits 3");
    let stderr = String::from_utf8_lossy(&planted.stderr);
    assert!(
        stderr.contains("shortcut flagged: ") && stderr.contains("psfsize_r"),
        "{stderr}"
    );
}
