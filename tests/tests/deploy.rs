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

/// The numeric user and group the image runs as (`USER uid:gid` in the Dockerfile).
fn image_user() -> (i64, i64) {
    let text = std::fs::read_to_string(repo().join("deploy/Dockerfile")).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the Dockerfile sets USER");
    let (u, g) = line.trim().split_once(':').expect("USER uid:gid");
    (
        u.parse().expect("numeric uid"),
        g.parse().expect("numeric gid"),
    )
}

/// `text` with the `n`th (from 0) occurrence of `from` replaced by `to`.
fn replace_nth(text: &str, from: &str, to: &str, n: usize) -> String {
    let (at, _) = text.match_indices(from).nth(n).expect("an occurrence");
    format!("{}{}{}", &text[..at], to, &text[at + from.len()..])
}

fn documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap())
        .collect()
}

/// The pod template of a workload, if the document is one.
fn pod_spec(doc: &Value) -> Option<&Value> {
    match doc["kind"].as_str()? {
        "Pod" => Some(&doc["spec"]),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            Some(&doc["spec"]["template"]["spec"])
        }
        "CronJob" => Some(&doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]),
        _ => None,
    }
}

fn pod_labels(doc: &Value) -> Option<&Value> {
    match doc["kind"].as_str()? {
        "Pod" => Some(&doc["metadata"]["labels"]),
        "CronJob" => Some(&doc["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]),
        _ => Some(&doc["spec"]["template"]["metadata"]["labels"]),
    }
}

/// Every hardening setting a pod or container lacks, one line each.
fn k8s_hardening_problems(docs: &[Value]) -> Vec<String> {
    let (uid, gid) = image_user();
    let mut problems = Vec::new();
    let mut pods = 0;
    for doc in docs {
        let Some(pod) = pod_spec(doc) else { continue };
        pods += 1;
        let name = doc["metadata"]["name"].as_str().unwrap_or("?");
        if pod["automountServiceAccountToken"].as_bool() != Some(false) {
            problems.push(format!("{name}: automountServiceAccountToken is not false"));
        }
        if pod["hostNetwork"].as_bool() == Some(true) || pod["hostPID"].as_bool() == Some(true) {
            problems.push(format!("{name}: shares a host namespace"));
        }
        let empty_dirs: Vec<&str> = pod["volumes"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter(|v| v.get("emptyDir").is_some())
            .filter_map(|v| v["name"].as_str())
            .collect();
        let containers = pod["containers"]
            .as_sequence()
            .into_iter()
            .chain(pod["initContainers"].as_sequence())
            .flatten();
        for c in containers {
            let cname = format!("{name}/{}", c["name"].as_str().unwrap_or("?"));
            let sc = &c["securityContext"];
            let expected: [(&str, Value); 6] = [
                ("runAsNonRoot", Value::Bool(true)),
                ("runAsUser", Value::from(uid)),
                ("runAsGroup", Value::from(gid)),
                ("readOnlyRootFilesystem", Value::Bool(true)),
                ("allowPrivilegeEscalation", Value::Bool(false)),
                ("privileged", Value::Bool(false)),
            ];
            for (key, want) in expected {
                let have = sc.get(key);
                // privileged defaults to false; the others must be said.
                let ok = match have {
                    Some(v) => *v == want,
                    None => key == "privileged",
                };
                if !ok {
                    problems.push(format!(
                        "{cname}: securityContext.{key} is {have:?}, not {want:?}"
                    ));
                }
            }
            if strings(&sc["capabilities"]["drop"]) != ["ALL"] {
                problems.push(format!("{cname}: capabilities.drop is not [ALL]"));
            }
            if sc["capabilities"].get("add").is_some() {
                problems.push(format!("{cname}: adds capabilities"));
            }
            if sc["seccompProfile"]["type"].as_str() != Some("RuntimeDefault") {
                problems.push(format!("{cname}: seccompProfile is not RuntimeDefault"));
            }
            // Writable places are emptyDirs, and /tmp is one of them.
            let mounts: Vec<&Value> = c["volumeMounts"]
                .as_sequence()
                .into_iter()
                .flatten()
                .collect();
            for m in &mounts {
                let vol = m["name"].as_str().unwrap_or("?");
                if !empty_dirs.contains(&vol) && m["readOnly"].as_bool() != Some(true) {
                    problems.push(format!(
                        "{cname}: writable mount of {vol}, which is not an emptyDir"
                    ));
                }
            }
            if !mounts
                .iter()
                .any(|m| m["mountPath"].as_str() == Some("/tmp"))
            {
                problems.push(format!("{cname}: no writable /tmp on its read-only root"));
            }
        }
    }
    if pods == 0 {
        problems.push("no pod templates found".into());
    }
    problems
}

#[test]
fn every_kubernetes_pod_and_container_is_hardened() {
    let text = std::fs::read_to_string(repo().join("deploy/k8s/lenspipe.yaml")).unwrap();
    let docs = documents(&text);
    let workloads = docs.iter().filter(|d| pod_spec(d).is_some()).count();
    assert_eq!(workloads, 3, "scheduler, executor and Job");
    let problems = k8s_hardening_problems(&docs);
    assert!(
        problems.is_empty(),
        "not hardened:\n{}",
        problems.join("\n")
    );

    // The check sees each setting go missing, in any workload.
    // Container settings are the lines indented 12 (pod settings 8).
    let container = |l: &str| format!("            {l}\n");
    for (from, to) in [
        (
            "      automountServiceAccountToken: false\n".to_string(),
            "      automountServiceAccountToken: true\n".to_string(),
        ),
        (
            container("readOnlyRootFilesystem: true"),
            container("readOnlyRootFilesystem: false"),
        ),
        (container("allowPrivilegeEscalation: false"), String::new()),
        (
            container("capabilities: {drop: [ALL]}"),
            container("capabilities: {drop: [NET_RAW]}"),
        ),
        (
            container("seccompProfile: {type: RuntimeDefault}"),
            container("seccompProfile: {type: Unconfined}"),
        ),
        (container("runAsNonRoot: true"), String::new()),
        (container("runAsUser: 65534"), container("runAsUser: 0")),
    ] {
        let (from, to) = (from.as_str(), to.as_str());
        let n = text.matches(from).count();
        assert_eq!(n, workloads, "'{from}' is not once per workload");
        for skip in 0..n {
            let broken = replace_nth(&text, from, to, skip);
            assert!(
                !k8s_hardening_problems(&documents(&broken)).is_empty(),
                "occurrence {skip} of '{from}' replaced by '{to}' went unnoticed"
            );
        }
    }
}

/// A policy's pods, the components it admits (None: any lenspipe pod) and
/// the ports it opens.
type Admitted = (
    &'static str,
    Option<&'static [&'static str]>,
    &'static [i64],
);

fn labels_match(selector: &Value, labels: &Value) -> bool {
    selector["matchLabels"]
        .as_mapping()
        .is_some_and(|m| m.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

#[test]
fn network_policies_admit_the_scheduler_only_from_lenspipe_executors_and_clients() {
    let docs = k8s_documents();
    let policies: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == "NetworkPolicy")
        .collect();
    // Every lenspipe pod is covered by an ingress policy.
    for doc in &docs {
        let Some(labels) = pod_labels(doc).filter(|_| pod_spec(doc).is_some()) else {
            continue;
        };
        let name = doc["metadata"]["name"].as_str().unwrap();
        assert!(
            policies
                .iter()
                .any(|p| labels_match(&p["spec"]["podSelector"], labels)
                    && strings(&p["spec"]["policyTypes"]).contains(&"Ingress".to_string())),
            "no ingress NetworkPolicy selects the pods of {name}"
        );
    }
    let policy_for = |component: &str| -> &Value {
        let labels: Value = serde_yaml::from_str(&format!(
            "{{app.kubernetes.io/name: lenspipe, app.kubernetes.io/component: {component}}}"
        ))
        .unwrap();
        policies
            .iter()
            .find(|p| labels_match(&p["spec"]["podSelector"], &labels))
            .unwrap_or_else(|| panic!("no NetworkPolicy for the {component} pods"))
    };
    // (allowed source components, allowed ports) per policy; None: any lenspipe pod.
    let expect: [Admitted; 3] = [
        ("scheduler", Some(&["executor", "client"]), &[50050]),
        ("executor", None, &[50051, 50052]),
        ("client", Some(&[]), &[]),
    ];
    for (component, sources, ports) in expect {
        let p = policy_for(component);
        let rules = p["spec"]["ingress"]
            .as_sequence()
            .cloned()
            .unwrap_or_default();
        let mut seen_ports = Vec::new();
        let mut seen_sources = Vec::new();
        for rule in &rules {
            let from = rule["from"].as_sequence().cloned().unwrap_or_default();
            // An empty `from` admits every source; an empty `ports` every port.
            assert!(
                !from.is_empty(),
                "{component}: an ingress rule admits every source"
            );
            let rule_ports = rule["ports"].as_sequence().cloned().unwrap_or_default();
            assert!(
                !rule_ports.is_empty(),
                "{component}: an ingress rule admits every port"
            );
            for port in &rule_ports {
                assert_eq!(port["protocol"], "TCP");
                seen_ports.push(port["port"].as_i64().expect("numeric port"));
            }
            for peer in &from {
                assert!(
                    peer.get("namespaceSelector").is_none() && peer.get("ipBlock").is_none(),
                    "{component}: a source outside the namespace's pods: {peer:?}"
                );
                let m = &peer["podSelector"]["matchLabels"];
                assert_eq!(
                    m["app.kubernetes.io/name"], "lenspipe",
                    "{component}: {peer:?}"
                );
                assert!(
                    peer["podSelector"].get("matchExpressions").is_none(),
                    "{component}: {peer:?}"
                );
                seen_sources.push(m["app.kubernetes.io/component"].as_str().map(String::from));
            }
        }
        seen_ports.sort();
        seen_ports.dedup();
        assert_eq!(seen_ports, ports, "{component}: ports admitted");
        match sources {
            Some(s) => {
                let mut seen: Vec<String> = seen_sources
                    .into_iter()
                    .map(|c| {
                        c.unwrap_or_else(|| panic!("{component}: any lenspipe pod is admitted"))
                    })
                    .collect();
                seen.sort();
                let mut want: Vec<String> = s.iter().map(|x| x.to_string()).collect();
                want.sort();
                assert_eq!(seen, want, "{component}: sources admitted");
            }
            None => assert!(!seen_sources.is_empty()),
        }
    }
    // The ports the policies name are the ones the containers listen on.
    let cmds = k8s_commands();
    let arg = |workload: &str, flag: &str| -> i64 {
        let c = &cmds[workload];
        let at = c.iter().position(|a| a == flag).unwrap();
        c[at + 1].parse().unwrap()
    };
    assert_eq!(arg("lenspipe-scheduler", "--bind-port"), 50050);
    assert_eq!(arg("lenspipe-executor", "--bind-port"), 50051);
    assert_eq!(arg("lenspipe-executor", "--bind-grpc-port"), 50052);
}

/// Every hardening setting a compose service lacks, one line each.
fn compose_hardening_problems(c: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let services = c["services"].as_mapping().expect("services");
    if services.is_empty() {
        problems.push("no services".into());
    }
    for (name, s) in services {
        let name = name.as_str().unwrap();
        if s["read_only"].as_bool() != Some(true) {
            problems.push(format!("{name}: read_only is not true"));
        }
        if strings(&s["cap_drop"]) != ["ALL"] {
            problems.push(format!("{name}: cap_drop is not [ALL]"));
        }
        if s.get("cap_add").is_some() || s["privileged"].as_bool() == Some(true) {
            problems.push(format!("{name}: gains capabilities"));
        }
        if !strings(&s["security_opt"]).contains(&"no-new-privileges:true".to_string()) {
            problems.push(format!("{name}: security_opt lacks no-new-privileges:true"));
        }
        if !strings(&s["tmpfs"])
            .iter()
            .any(|t| t == "/tmp" || t.starts_with("/tmp:"))
        {
            problems.push(format!("{name}: no tmpfs at /tmp on its read-only root"));
        }
        // Only the store overrides the image's user (to own the files it writes).
        if s.get("user").is_some() && name != "lenspipe-s3" {
            problems.push(format!("{name}: overrides the image's user"));
        }
        for key in ["pid", "network_mode", "ipc"] {
            if s.get(key)
                .is_some_and(|v| v.as_str().is_some_and(|v| v.starts_with("host")))
            {
                problems.push(format!("{name}: {key} shares the host's"));
            }
        }
    }
    problems
}

#[test]
fn every_compose_service_is_read_only_without_capabilities_or_new_privileges() {
    let text = std::fs::read_to_string(repo().join("deploy/docker-compose.yml")).unwrap();
    let problems = compose_hardening_problems(&serde_yaml::from_str(&text).unwrap());
    assert!(
        problems.is_empty(),
        "not hardened:\n{}",
        problems.join("\n")
    );
    for (from, to) in [
        ("    read_only: true\n", ""),
        ("    cap_drop: [ALL]\n", "    cap_drop: [NET_RAW]\n"),
        ("    security_opt: [\"no-new-privileges:true\"]\n", ""),
        ("    tmpfs: [\"/tmp\"]\n", ""),
    ] {
        let n = text.matches(from).count();
        assert_eq!(
            n,
            compose()["services"].as_mapping().unwrap().len(),
            "'{from}' is not once per service"
        );
        for skip in 0..n {
            let broken = replace_nth(&text, from, to, skip);
            assert!(
                !compose_hardening_problems(&serde_yaml::from_str(&broken).unwrap()).is_empty(),
                "service {skip}: '{from}' replaced by '{to}' went unnoticed"
            );
        }
    }
}
