//! `echo-bench` as an operator meets it: output paths checked before the
//! run, the report printed whatever happens after it, connections spread
//! over many source addresses, its own CPU time reported, and UDP losses
//! at a server's rate limit explained.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::support;
use crate::support::ServerProc;
use crate::support::bench::{bench, finish, json, spawn_bench, stderr};

#[test]
fn a_missing_output_folder_fails_before_the_run() {
    let server = support::bench::RealServer::start();
    let addr = server.tcp().to_string();
    for flag in ["--plot", "--save-hist"] {
        let started = Instant::now();
        let out = bench(&[
            "--connect",
            &addr,
            "-d",
            "5s",
            flag,
            "/no/such/folder/x.out",
        ]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("cannot write /no/such/folder/x.out"),
            "{}",
            stderr(&out)
        );
        assert!(started.elapsed() < Duration::from_secs(3), "it ran first");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn the_report_is_printed_even_when_a_file_cannot_be_written_after_the_run() {
    let server = support::bench::RealServer::start();
    let addr = server.tcp().to_string();
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("plots");
    std::fs::create_dir(&folder).unwrap();
    let plot = folder.join("latency.svg");
    let plot = plot.to_str().unwrap();
    let args = [
        "--connect",
        &addr,
        "-d",
        "1s",
        "--warmup",
        "0s",
        "--plot",
        plot,
    ];
    let child = spawn_bench(&args);
    // The folder is there when the run starts, and gone when it ends.
    std::thread::sleep(Duration::from_millis(400));
    std::fs::remove_dir(&folder).unwrap();
    let out = finish(child, &args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("throughput"), "no report: {report:?}");
    assert!(stderr(&out).contains("cannot write"), "{}", stderr(&out));
}

#[test]
fn connections_come_from_many_loopback_addresses_and_cpu_is_reported() {
    let server = ServerProc::start(&["-l", "127.0.0.1:0"]);
    let addr = server.addr().to_string();
    let out = bench(&[
        "--connect",
        &addr,
        "-m",
        "churn",
        "-c",
        "4",
        "-d",
        "1s",
        "--warmup",
        "0s",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["sources"], 253, "{v}");
    assert!(
        v["bench_cpu_seconds"].as_f64().is_some_and(|c| c > 0.0),
        "{v}"
    );
    // The server saw them: peers named echo_127.0.0.N_PORT.
    let peers = |server: &ServerProc| -> BTreeSet<String> {
        server
            .lines_with("connection accepted")
            .iter()
            .filter_map(|l| l.split('_').nth(1).map(String::from))
            .collect()
    };
    let ops = v["messages"].as_u64().unwrap();
    let seen = peers(&server);
    assert!(
        seen.len() >= 20.min(ops as usize),
        "{ops} ops from {seen:?}"
    );

    // --source none: the system's choice, one address; the text report
    // names the bench's CPU.
    let server = ServerProc::start(&["-l", "127.0.0.1:0"]);
    let addr = server.addr().to_string();
    let out = bench(&[
        "--connect",
        &addr,
        "-m",
        "churn",
        "-c",
        "2",
        "-d",
        "1s",
        "--warmup",
        "0s",
        "--source",
        "none",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("bench cpu"), "{text}");
    assert_eq!(peers(&server), BTreeSet::from(["127.0.0.1".to_string()]));
}

#[test]
fn udp_losses_at_the_servers_rate_limit_are_explained() {
    let server = ServerProc::start(&["-l", "udp://127.0.0.1:0"]);
    let addr = format!("udp://127.0.0.1:{}", server.port);
    let out = bench(&[
        "--connect",
        &addr,
        "-c",
        "4",
        "-d",
        "2s",
        "--warmup",
        "0s",
        "--timeout",
        "100ms",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let hint = "the server may be rate-limiting this source: see --udp-rate";
    assert!(stderr(&out).contains(hint), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(hint));
    // Without the limit, nothing is lost and nothing is said.
    let server = ServerProc::start(&["-l", "udp://127.0.0.1:0", "--udp-rate", "0"]);
    let addr = format!("udp://127.0.0.1:{}", server.port);
    let out = bench(&["--connect", &addr, "-c", "2", "-d", "1s", "--warmup", "0s"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("rate-limiting"), "{}", stderr(&out));
}

#[test]
fn quiet_verbose_and_json_logs() {
    let server = support::bench::RealServer::start();
    let addr = server.tcp().to_string();
    let out = bench(&["-q", "--connect", &addr, "-d", "1s", "--warmup", "0s"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    // -v logs each error as it happens.
    let refused = format!("127.0.0.1:{}", support::free_port());
    let out = bench(&["-v", "--log-format", "json", "--connect", &refused]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    for line in stderr(&out).lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
}
