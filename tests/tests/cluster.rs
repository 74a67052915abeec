//! A real Ballista cluster (scheduler and two executors as separate
//! processes) and a real S3-compatible server (moto, as a process): the
//! negatives stage reads sweeps from S3 and writes to S3, and its kept rows
//! are exactly those of the embedded engine on the same files.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use lenspipe_tests::{
    lenspipe, pid_alive, python, read_json, run_ok, synth, LocalCluster, S3Server,
};

fn keys(dir: &Path) -> BTreeSet<(String, i64)> {
    lenspipe_tests::output_rows(dir).0.into_iter().collect()
}

fn negatives(s3: &S3Server, scheduler: Option<&str>, output: &str) -> Command {
    let mut cmd = lenspipe();
    cmd.args(["run", "negatives", "--config", "paper_iv"])
        .args(["--set", "inputs.sweeps=s3://lenspipe/sweeps/"])
        .arg("--set")
        .arg(format!("output={output}"))
        .envs(s3.env());
    if let Some(url) = scheduler {
        cmd.args(["--scheduler", url]);
    }
    cmd
}

/// Job ids the executors' logs name, per executor.
fn tasks_per_executor(cluster: &LocalCluster, executors: usize) -> Vec<usize> {
    (1..=executors)
        .map(|i| {
            cluster
                .log(&format!("executor-{i}"))
                .lines()
                .filter(|l| l.contains("Received task") || l.contains("Execute task"))
                .count()
        })
        .collect()
}

#[test]
fn cluster_on_s3_matches_embedded_and_survives_an_executor_kill() {
    let tmp = tempfile::tempdir().unwrap();
    let s3 = S3Server::start();
    let sweeps = tmp.path().join("sweeps");
    synth(&sweeps, 4, 30_000, 21, &[]);
    s3.upload_dir("lenspipe", &sweeps, "sweeps/");

    // Embedded reference, reading the same objects from S3.
    let embedded = tmp.path().join("embedded");
    run_ok(&mut negatives(&s3, None, &embedded.display().to_string()));
    let reference = keys(&embedded.join("negatives"));
    assert!(!reference.is_empty());

    // Quick failure detection, so the executor kill below is noticed in seconds.
    let mut env = s3.env();
    env.push((
        "LENSPIPE_SCHEDULER_ARGS",
        "--executor-timeout-seconds 6 --expire-dead-executor-interval-seconds 1".into(),
    ));
    env.push((
        "LENSPIPE_EXECUTOR_ARGS",
        "--executor-heartbeat-interval-seconds 1".into(),
    ));
    let cluster = LocalCluster::start(2, &tmp.path().join("cluster"), env);
    // Small partitions, so the job has many tasks for two executors.
    let mut cmd = negatives(&s3, Some(&cluster.url), "s3://lenspipe/runs/cluster");
    run_ok(cmd.args(["--set", "scan.target_partition_mib=1"]));
    let downloaded = tmp.path().join("cluster-out");
    s3.download_prefix("lenspipe", "runs/cluster/", &downloaded);
    assert_eq!(
        keys(&downloaded.join("negatives")),
        reference,
        "cluster and embedded kept rows differ"
    );
    let run = read_json(&downloaded.join("run.json"));
    assert_eq!(run["engine"], cluster.url.as_str());
    assert_eq!(
        run["stages"]["negatives"]["kept"].as_u64().unwrap() as usize,
        reference.len()
    );
    let tasks = tasks_per_executor(&cluster, 2);
    assert!(
        tasks.iter().all(|n| *n > 0),
        "both executors must run tasks: {tasks:?}"
    );

    // Kill one executor while a job runs.
    let victim = cluster
        .processes()
        .into_iter()
        .find(|(name, _)| name == "executor-2")
        .map(|(_, pid)| pid)
        .unwrap();
    let mut job = negatives(&s3, Some(&cluster.url), "s3://lenspipe/runs/killed");
    let mut child = job
        .args(["--set", "scan.target_partition_mib=1"])
        .spawn()
        .unwrap();
    let before = tasks_per_executor(&cluster, 2)[1];
    let deadline = Instant::now() + Duration::from_secs(60);
    while tasks_per_executor(&cluster, 2)[1] == before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the job ended before the executor could be killed"
    );
    run_ok(Command::new("kill").args(["-KILL", &victim.to_string()]));
    assert!(
        !pid_alive(victim) || {
            std::thread::sleep(Duration::from_millis(200));
            !pid_alive(victim)
        }
    );
    let status = child.wait().unwrap();
    let killed = tmp.path().join("killed-out");
    if status.success() {
        // Ballista re-ran the lost tasks: the output must be complete and exact.
        s3.download_prefix("lenspipe", "runs/killed/", &killed);
        assert_eq!(
            keys(&killed.join("negatives")),
            reference,
            "rows lost or duplicated after an executor kill"
        );
        eprintln!("executor kill: the job recovered and completed");
    } else {
        // A clear failure; nothing partial is visible, and a rerun completes.
        s3.download_prefix("lenspipe", "runs/killed/", &killed);
        assert!(
            !killed.join("negatives/_SUCCESS").exists(),
            "a failed job committed output"
        );
        let rerun = run_ok(&mut negatives(
            &s3,
            Some(&cluster.url),
            "s3://lenspipe/runs/killed",
        ));
        assert!(rerun.status.success());
        let again = tmp.path().join("killed-rerun");
        s3.download_prefix("lenspipe", "runs/killed/", &again);
        assert_eq!(keys(&again.join("negatives")), reference);
        eprintln!("executor kill: the job failed clearly and a rerun completed");
    }
}

#[test]
fn local_cluster_script_binds_loopback_and_stops_what_it_started() {
    let tmp = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::start(2, tmp.path(), vec![]);
    let procs = cluster.processes();
    assert_eq!(procs.len(), 3, "{procs:?}");
    assert!(procs.iter().all(|(_, pid)| pid_alive(*pid)));
    // Everything listens on loopback only.
    let port = cluster.url.rsplit(':').next().unwrap();
    let ss = run_ok(Command::new("ss").args(["-ltnp"]));
    let listing = String::from_utf8_lossy(&ss.stdout);
    for (_, pid) in &procs {
        for line in listing
            .lines()
            .filter(|l| l.contains(&format!("pid={pid},")))
        {
            assert!(
                line.contains("127.0.0.1:"),
                "a cluster process listens beyond loopback: {line}"
            );
        }
    }
    assert!(listing.contains(&format!("127.0.0.1:{port}")));
    cluster.stop();
    assert!(
        procs.iter().all(|(_, pid)| !pid_alive(*pid)),
        "processes left behind"
    );
}

/// A running `lenspipe serve-cutouts --synthetic-sky` and its URL.
fn synthetic_viewer(latency_ms: u64) -> (lenspipe_tests::Guard, String) {
    use std::io::BufRead;
    let mut child = lenspipe()
        .args([
            "serve-cutouts",
            "--synthetic-sky",
            "5",
            "--latency-ms",
            &latency_ms.to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (lenspipe_tests::Guard(child), line.trim().to_string())
}

fn cutout_run(targets: &Path, out: &Path, viewer: &str, scheduler: Option<&str>) -> Command {
    let mut cmd = lenspipe();
    cmd.args(["run", "cutouts", "--config", "paper_iv"]);
    for (k, v) in [
        ("inputs.cutout_targets", targets.display().to_string()),
        ("output", out.display().to_string()),
        ("cutouts.viewer_url", viewer.to_string()),
        ("cutouts.shard_rows", "8".to_string()),
        ("cutouts.concurrency", "4".to_string()),
        ("cutouts.rate_per_s", "1000".to_string()),
    ] {
        cmd.arg("--set").arg(format!("{k}={v}"));
    }
    if let Some(url) = scheduler {
        cmd.args(["--scheduler", url]);
    }
    cmd
}

#[test]
fn cutouts_on_the_cluster_are_made_by_both_executors_and_survive_a_kill() {
    let tmp = tempfile::tempdir().unwrap();
    let targets = tmp.path().join("targets.parquet");
    let script = "import sys, random, pyarrow as pa, pyarrow.parquet as pq\n\
                  r = random.Random(3)\n\
                  n = 240\n\
                  pq.write_table(pa.table({'galaxy_id': [f'g{i:04d}' for i in range(n)], 'ra': [r.uniform(0, 360) for _ in range(n)],\n\
                  'dec': [r.uniform(-15, 30) for _ in range(n)], 'label': [i % 2 for i in range(n)]}), sys.argv[1])";
    run_ok(python().args(["-c", script]).arg(&targets));
    let (_server, viewer) = synthetic_viewer(20);

    let embedded = tmp.path().join("embedded");
    run_ok(&mut cutout_run(&targets, &embedded, &viewer, None));

    let env = vec![
        (
            "LENSPIPE_SCHEDULER_ARGS",
            "--executor-timeout-seconds 6 --expire-dead-executor-interval-seconds 1".to_string(),
        ),
        (
            "LENSPIPE_EXECUTOR_ARGS",
            "--executor-heartbeat-interval-seconds 1".to_string(),
        ),
    ];
    let cluster = LocalCluster::start(2, &tmp.path().join("cluster"), env);
    let before = tasks_per_executor(&cluster, 2);
    let on_cluster = tmp.path().join("cluster-out");
    run_ok(&mut cutout_run(
        &targets,
        &on_cluster,
        &viewer,
        Some(&cluster.url),
    ));
    let after = tasks_per_executor(&cluster, 2);
    assert!(
        after.iter().zip(&before).all(|(a, b)| a > b),
        "both executors must make shards: {before:?} -> {after:?}"
    );
    lenspipe_tests::assert_same_rows(
        &embedded.join("cutouts"),
        &on_cluster.join("cutouts"),
        "galaxy_id",
        "",
        "cluster cutouts",
    );
    assert_eq!(
        read_json(&on_cluster.join("run.json"))["engine"],
        cluster.url.as_str()
    );

    // Validation on the cluster checks the same cutouts the same way as embedded.
    for (out, scheduler) in [(&embedded, None), (&on_cluster, Some(cluster.url.as_str()))] {
        let mut cmd = lenspipe();
        cmd.args(["run", "validate", "--config", "paper_iv", "--set"])
            .arg(format!("output={}", out.display()));
        if let Some(url) = scheduler {
            cmd.args(["--scheduler", url]);
        }
        run_ok(&mut cmd);
    }
    lenspipe_tests::assert_same_rows(
        &embedded.join("validation/checks"),
        &on_cluster.join("validation/checks"),
        "galaxy_id",
        "",
        "cluster checks",
    );
    let (a, b) = (
        read_json(&embedded.join("validation/shortcuts.json")),
        read_json(&on_cluster.join("validation/shortcuts.json")),
    );
    assert_eq!(
        a["features"], b["features"],
        "shortcut statistics differ between embedded and cluster"
    );

    // An executor killed while shards are being made.
    let victim = cluster
        .processes()
        .into_iter()
        .find(|(name, _)| name == "executor-2")
        .map(|(_, pid)| pid)
        .unwrap();
    let killed = tmp.path().join("killed");
    let mut child = cutout_run(&targets, &killed, &viewer, Some(&cluster.url))
        .spawn()
        .unwrap();
    let started = tasks_per_executor(&cluster, 2)[1];
    let deadline = Instant::now() + Duration::from_secs(60);
    while tasks_per_executor(&cluster, 2)[1] == started && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the job ended before the executor could be killed"
    );
    run_ok(Command::new("kill").args(["-KILL", &victim.to_string()]));
    if !child.wait().unwrap().success() {
        // A clear failure: the shards already written stay, and a rerun completes.
        eprintln!("executor kill: the cutout job failed; rerunning");
        run_ok(&mut cutout_run(
            &targets,
            &killed,
            &viewer,
            Some(&cluster.url),
        ));
    } else {
        eprintln!("executor kill: the cutout job recovered and completed");
    }
    lenspipe_tests::assert_same_rows(
        &embedded.join("cutouts"),
        &killed.join("cutouts"),
        "galaxy_id",
        "",
        "cutouts after a kill",
    );
}

#[test]
fn catalogue_half_on_the_cluster_equals_embedded_row_by_row() {
    let tmp = tempfile::tempdir().unwrap();
    let sweeps = tmp.path().join("sweeps");
    let lenscat = lenspipe_tests::shared_data().join("positives/lenscat_catalog.csv");
    synth(
        &sweeps,
        12,
        4_000,
        9,
        &["--plant", &lenscat.display().to_string()],
    );
    let catalog = |out: &Path, scheduler: Option<&str>| {
        let mut cmd = lenspipe();
        cmd.args(["run", "catalog", "--config", "paper_iv"]);
        for (k, v) in [
            ("inputs.sweeps", sweeps.display().to_string()),
            ("output", out.display().to_string()),
            ("scan.target_partition_mib", "1".to_string()),
        ] {
            cmd.arg("--set").arg(format!("{k}={v}"));
        }
        if let Some(url) = scheduler {
            cmd.args(["--scheduler", url]);
        }
        run_ok(&mut cmd);
    };
    let embedded = tmp.path().join("embedded");
    catalog(&embedded, None);
    // Three task slots an executor: plans take one partition per slot of
    // the cluster (6), not Ballista's fixed 16.
    let cluster = LocalCluster::start(
        2,
        &tmp.path().join("cluster"),
        vec![("LENSPIPE_EXECUTOR_ARGS", "--concurrent-tasks 3".into())],
    );
    let on_cluster = tmp.path().join("on-cluster");
    catalog(&on_cluster, Some(&cluster.url));
    let jobs_url = cluster.url.replace("df://", "http://") + "/api/jobs";
    let script = "import sys, json, re, urllib.request\n\
                  jobs = json.load(urllib.request.urlopen(sys.argv[1]))\n\
                  json.dump([int(re.search(r'Produced (\\d+) partitions?', j['job_status']).group(1)) for j in jobs], sys.stdout)";
    let produced = run_ok(python().args(["-c", script, &jobs_url]));
    let produced: Vec<usize> = serde_json::from_slice(&produced.stdout).unwrap();
    assert!(
        produced.contains(&6) && !produced.iter().any(|&n| n % 16 == 0 && n > 0),
        "partitions each job produced: {produced:?}"
    );
    for (stage, keys) in [
        ("negatives", "sweep_file,row_index"),
        ("positives", "lens_id"),
        ("sample", "label,sweep_file,row_index,lens_name"),
    ] {
        lenspipe_tests::assert_same_rows(
            &embedded.join(stage),
            &on_cluster.join(stage),
            keys,
            "extraction_timestamp",
            &format!("{stage}: embedded against cluster"),
        );
    }
}
