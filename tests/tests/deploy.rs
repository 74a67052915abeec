//! The deployment files: the Kubernetes manifests validate against the
//! Kubernetes OpenAPI schemas (kubernetes-validate, from PyPI), a broken one
//! fails, and the compose cluster runs exactly the commands Kubernetes runs.

use std::collections::BTreeMap;
use std::path::Path;

use lenspipe_tests::{python, repo};
use serde::Deserialize;
use serde_yaml::Value;

/// The Kubernetes release the manifests are checked against.
const KUBERNETES: &str = "1.37.0";

fn validate(files: &[&Path]) -> std::process::Output {
    python()
        .args([
            "-m",
            "kubernetes_validate",
            "--strict",
            "--quiet",
            "-k",
            KUBERNETES,
        ])
        .args(files)
        .output()
        .expect("python3 runs")
}

fn k8s_documents() -> Vec<Value> {
    let text = std::fs::read_to_string(repo().join("deploy/k8s/lenspipe.yaml")).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .map(|x| match x {
                    Value::String(s) => s.clone(),
                    other => serde_yaml::to_string(other).unwrap().trim().to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Compose's `${VAR:-default}` as Compose expands it with VAR unset.
fn with_defaults(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closed ${") + start;
        let inner = &rest[start + 2..end];
        out.push_str(inner.split_once(":-").map(|(_, d)| d).unwrap_or(""));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Container command lines by Kubernetes workload name: command then args.
fn k8s_commands() -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for doc in k8s_documents() {
        let name = doc["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let pod = match doc["kind"].as_str() {
            Some("Deployment") | Some("Job") => &doc["spec"]["template"]["spec"],
            _ => continue,
        };
        let c = &pod["containers"][0];
        let mut line = strings(&c["command"]);
        line.extend(strings(&c["args"]));
        out.insert(name, line);
    }
    out
}

fn compose() -> Value {
    let text = std::fs::read_to_string(repo().join("deploy/docker-compose.yml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

#[test]
fn kubernetes_manifests_validate_and_a_broken_one_fails() {
    let dir = repo().join("deploy/k8s");
    let manifests: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    assert!(manifests.len() >= 2, "{manifests:?}");
    let refs: Vec<&Path> = manifests.iter().map(|p| p.as_path()).collect();
    let out = validate(&refs);
    assert!(
        out.status.success(),
        "manifests do not validate against Kubernetes {KUBERNETES}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The same file with one field misspelt and one mistyped must fail.
    let text = std::fs::read_to_string(dir.join("lenspipe.yaml")).unwrap();
    for (from, to) in [
        ("backoffLimit: 2", "backoffLimit: two"),
        ("restartPolicy: Never", "restartPolicyy: Never"),
    ] {
        assert!(text.contains(from), "the manifest no longer has '{from}'");
        let tmp = tempfile::tempdir().unwrap();
        let broken = tmp.path().join("broken.yaml");
        std::fs::write(&broken, text.replace(from, to)).unwrap();
        let out = validate(&[&broken]);
        assert!(
            !out.status.success(),
            "'{to}' passed validation:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn compose_runs_the_commands_kubernetes_runs() {
    let k8s = k8s_commands();
    let services = &compose()["services"];
    for (service, workload) in [
        ("lenspipe-scheduler", "lenspipe-scheduler"),
        ("lenspipe-executor", "lenspipe-executor"),
    ] {
        let s = &services[service];
        let mut line = strings(&s["entrypoint"]);
        line.extend(strings(&s["command"]));
        let line: Vec<String> = line.iter().map(|a| with_defaults(a)).collect();
        assert_eq!(
            Some(&line),
            k8s.get(workload),
            "compose service {service} and Kubernetes {workload} run different commands"
        );
    }
    // The Job's command is what deploy/compose-test.sh submits (it reads it
    // from the manifest); it must go through the scheduler Service.
    let job = &k8s["lenspipe-run-all"];
    assert_eq!(&job[..3], ["lenspipe", "run", "all"]);
    let at = job.iter().position(|a| a == "--scheduler").unwrap();
    assert_eq!(job[at + 1], "df://lenspipe-scheduler:50050");
}

#[test]
fn compose_publishes_only_the_scheduler_on_loopback_and_limits_resources() {
    let c = compose();
    let services = c["services"].as_mapping().unwrap();
    let mut published = Vec::new();
    for (name, s) in services {
        let name = name.as_str().unwrap();
        for p in strings(&s["ports"]) {
            published.push((name.to_string(), with_defaults(&p)));
        }
        assert!(
            s.get("mem_limit").is_some(),
            "service {name} has no memory limit"
        );
        if name != "lenspipe" {
            assert!(
                s.get("healthcheck").is_some(),
                "service {name} has no health check"
            );
        }
        assert_eq!(
            strings(&s["networks"]),
            ["lenspipe"],
            "service {name} must be on the private network only"
        );
        assert!(
            s.get("container_name").is_none(),
            "service {name}: a fixed container name prevents scaling and parallel projects"
        );
    }
    assert_eq!(
        published,
        [(
            "lenspipe-scheduler".to_string(),
            "127.0.0.1:50050:50050".to_string()
        )]
    );
}
