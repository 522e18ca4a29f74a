//! The Kubernetes manifests in `contrib/k8s/`: they parse as YAML, have
//! the probes, limits and ports docs/scale-out.md promises, their flags
//! are ones the binaries accept, and the bench Job's shell plumbing gives
//! files that `echo-bench merge` reads. No cluster is involved: this is
//! as far as testing them goes here.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support;
use crate::support::bench::{RealServer, bench, stderr};
use serde_json::Value;

fn manifest(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib/k8s")
        .join(name)
}

/// The documents of a YAML file, parsed by Python's yaml module. A missing
/// python3 or yaml module fails the test: CI installs PyYAML
/// (.ci/requirements.txt).
fn yaml(name: &str) -> Vec<Value> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(manifest(name))
        .output()
        .expect("python3 is needed to parse the manifests");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("No module named 'yaml'"),
        "python3 has no yaml module: run .ci/install (PyYAML)"
    );
    assert!(out.status.success(), "{name} does not parse: {err}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// Whether `bin` accepts `args`: clap checks every flag before `--help`.
fn accepts(bin: &str, args: &[String]) -> bool {
    let out = Command::new(bin).args(args).arg("--help").output().unwrap();
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    }
    out.status.success()
}

/// The value of `--flag=VALUE` in `args`.
fn flag<'a>(args: &'a [String], name: &str) -> Vec<&'a str> {
    let prefix = format!("{name}=");
    args.iter()
        .filter_map(|a| a.strip_prefix(&prefix))
        .collect()
}

#[test]
#[cfg_attr(
    not(has_py_yaml),
    ignore = "needs Python's PyYAML: run .ci/install (pip install -r .ci/requirements.txt)"
)]
fn the_deployment_and_services_have_probes_limits_and_ports() {
    let (deployment, services) = (yaml("deployment.yaml"), yaml("service.yaml"));
    let d = &deployment[0];
    assert_eq!(d["kind"], "Deployment");
    let pod = &d["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    let args = strings(&c["args"]);
    assert!(
        accepts(env!("CARGO_BIN_EXE_echo-server"), &args),
        "echo-server refuses {args:?}"
    );
    // The named ports, and what listens on them.
    let ports = c["ports"].as_array().unwrap();
    let port = |name: &str| {
        ports
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no port {name}"))
    };
    assert_eq!(port("echo-tcp")["protocol"], "TCP");
    assert_eq!(port("echo-udp")["protocol"], "UDP");
    let tcp = port("echo-tcp")["containerPort"].as_u64().unwrap();
    let udp = port("echo-udp")["containerPort"].as_u64().unwrap();
    let metrics = port("metrics")["containerPort"].as_u64().unwrap();
    let listen = flag(&args, "--listen");
    assert!(
        listen.contains(&format!("0.0.0.0:{tcp}").as_str()),
        "{listen:?}"
    );
    assert!(
        listen.contains(&format!("udp://0.0.0.0:{udp}").as_str()),
        "{listen:?}"
    );
    assert_eq!(flag(&args, "--metrics"), [format!("0.0.0.0:{metrics}")]);
    // TCP probes on the echo port, both of them.
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(c[probe]["tcpSocket"]["port"], "echo-tcp", "{probe}");
    }
    // Requests and limits for CPU and memory.
    for kind in ["requests", "limits"] {
        for what in ["cpu", "memory"] {
            assert!(c["resources"][kind][what].is_string(), "{kind}.{what}");
        }
    }
    // SIGKILL comes after the shutdown timeout and the preStop pause.
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    let shutdown = flag(&args, "--shutdown-timeout")[0];
    let shutdown: u64 = shutdown.trim_end_matches('s').parse().unwrap();
    let pause = c["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .unwrap();
    assert!(grace > shutdown + pause, "{grace} s of grace");

    let labels = &d["spec"]["template"]["metadata"]["labels"];
    for s in &services {
        assert_eq!(s["kind"], "Service");
        for (k, v) in s["spec"]["selector"].as_object().unwrap() {
            assert_eq!(&labels[k], v, "selector {k}");
        }
        let sp = s["spec"]["ports"].as_array().unwrap();
        for (protocol, target) in [("TCP", "echo-tcp"), ("UDP", "echo-udp")] {
            assert!(
                sp.iter().any(|p| p["port"] == 7
                    && p["protocol"] == protocol
                    && p["targetPort"] == target),
                "{}: no {protocol} port 7",
                s["metadata"]["name"]
            );
        }
    }
    let internal = services
        .iter()
        .find(|s| s["metadata"]["name"] == "echoes")
        .unwrap();
    assert!(
        internal["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["targetPort"] == "metrics")
    );
    let public = services
        .iter()
        .find(|s| s["spec"]["type"] == "LoadBalancer")
        .unwrap();
    assert_eq!(public["spec"]["externalTrafficPolicy"], "Local");
}

#[test]
#[cfg_attr(
    not(has_py_yaml),
    ignore = "needs Python's PyYAML: run .ci/install (pip install -r .ci/requirements.txt)"
)]
fn the_bench_job_is_indexed_and_its_logs_merge() {
    let job = yaml("bench-job.yaml");
    let job = &job[0];
    assert_eq!(job["kind"], "Job");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(spec["completions"], spec["parallelism"]);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let c = &pod["containers"][0];
    let args = strings(&c["args"]);
    assert!(
        accepts(env!("CARGO_BIN_EXE_echo-bench"), &args),
        "echo-bench refuses {args:?}"
    );
    assert_eq!(flag(&args, "--connect"), ["echoes:7"], "the Service");
    for kind in ["requests", "limits"] {
        for what in ["cpu", "memory"] {
            assert!(c["resources"][kind][what].is_string(), "{kind}.{what}");
        }
    }

    // Run the pod's command here, as the pod would, against a local server
    // for a short while, its /tmp in a directory of its own.
    let command = strings(&c["command"]);
    assert_eq!(command[..2], ["/bin/sh", "-c"]);
    let dir = tempfile::tempdir().unwrap();
    let tmp = format!("{}/", dir.path().display());
    let script = command[2].replace("/tmp/", &tmp);
    let server = RealServer::start();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_echo-bench"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let local: Vec<String> = args
        .iter()
        .map(|a| {
            if a.starts_with("--connect=") {
                format!("--connect={}", server.tcp())
            } else if a.starts_with("--duration=") {
                "--duration=500ms".into()
            } else if a.starts_with("--warmup=") {
                "--warmup=100ms".into()
            } else if a.starts_with("--rate=") {
                "--rate=2000".into()
            } else {
                a.clone()
            }
        })
        .collect();
    let mut logs = Vec::new();
    for index in 0..2 {
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(&script)
            .args(&command[3..])
            .args(&local)
            .env("PATH", &path)
            .env("JOB_COMPLETION_INDEX", index.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // `kubectl logs` shows both streams; here there is only stdout.
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let log = dir.path().join(format!("run-{index}.hlog"));
        std::fs::write(&log, &out.stdout).unwrap();
        logs.push(log.display().to_string());
    }
    let mut merge = vec!["merge", "--json"];
    merge.extend(logs.iter().map(String::as_str));
    let out = bench(&merge);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = support::bench::json(&out);
    assert_eq!(v["runs"], 2, "{v}");
    assert_eq!(v["errors"], 0, "{v}");
}
