//! `echo-bench --connect ws://…|wss://…` against a real `echo-server` on
//! port 0: ping-pong, stream and churn with every byte checked, open loop
//! at a rate, the JSON report, the plot and the saved histogram merged,
//! clean closes as the server counts them, and a corrupting WebSocket
//! server caught, and Python `websockets` (the scripts/web_peers peer) on the
//! other end.

use std::time::Duration;

use crate::support;
use crate::support::bench::{REPORT_KEYS, bench, json, stderr};
use crate::support::ws::{BadServer, Misbehave};
use crate::support::{ServerProc, sample, scrape};

/// A server with an `http://` listener and metrics; its WebSocket URL and
/// its metrics port.
fn server(extra: &[&str]) -> (ServerProc, String, u16) {
    let mut args = vec!["-l", "http://127.0.0.1:0", "--metrics", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let server = ServerProc::start(&args);
    let line = server.wait_for_line("serving metrics on", Duration::from_secs(5));
    let metrics = line
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.trim_end_matches("/metrics").parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    let url = format!("ws://127.0.0.1:{}/bench", server.port);
    (server, url, metrics)
}

/// The `ws` error counters the server shows that are not zero.
fn ws_errors(metrics_port: u16) -> Vec<String> {
    scrape(metrics_port)
        .lines()
        .filter(|l| l.starts_with("echoes_errors_total{") && l.contains("transport=\"ws\""))
        .filter(|l| !l.ends_with(" 0"))
        .map(String::from)
        .collect()
}

fn run_ok(args: &[&str]) -> serde_json::Value {
    let out = bench(args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["errors"], 0, "{report}");
    report
}

#[test]
fn pingpong_stream_and_churn_check_every_byte() {
    let (server, url, metrics) = server(&[]);
    let common = [
        "--connect",
        url.as_str(),
        "-d",
        "500ms",
        "--warmup",
        "100ms",
        "--json",
    ];
    let mut args = common.to_vec();
    args.extend(["-c", "4", "-s", "1000", "--pipeline", "3"]);
    let report = run_ok(&args);
    for key in REPORT_KEYS {
        assert!(report.get(key).is_some(), "no {key} in {report}");
    }
    assert_eq!(report["mode"], "pingpong");
    assert_eq!(report["addr"], url.as_str());
    let messages = report["messages"].as_u64().unwrap();
    assert!(messages > 0, "{report}");
    assert_eq!(report["bytes"].as_u64(), Some(messages * 1000));
    assert_eq!(report["samples"].as_u64(), Some(messages));
    assert!(report["p50_us"].as_f64().unwrap() > 0.0, "{report}");

    let mut args = common.to_vec();
    args.extend(["-m", "stream", "-c", "2", "-s", "16KiB"]);
    let report = run_ok(&args);
    assert_eq!(report["mode"], "stream");
    assert!(report["bytes"].as_u64().unwrap() >= 16384, "{report}");

    let mut args = common.to_vec();
    args.extend(["-m", "churn", "-c", "3", "-s", "20"]);
    let report = run_ok(&args);
    assert_eq!(report["mode"], "churn");
    let ops = report["messages"].as_u64().unwrap();
    assert!(ops > 0, "{report}");
    // Every session, churned or ended by the run, closed cleanly.
    let errors = ws_errors(metrics);
    assert!(
        errors.is_empty(),
        "{errors:?}\n{}",
        server.lines_with("websocket").join("\n")
    );
    let page = scrape(metrics);
    assert!(
        sample(&page, "echoes_connections_total{transport=\"ws\"}") > ops,
        "{page}"
    );
    drop(server);
}

#[test]
fn open_loop_keeps_its_rate_and_counts_from_when_due() {
    let (_server, url, _) = server(&[]);
    let report = run_ok(&[
        "--connect",
        &url,
        "-c",
        "2",
        "--rate",
        "200",
        "-d",
        "1s",
        "--warmup",
        "200ms",
        "--json",
    ]);
    assert_eq!(report["rate"], 200.0);
    assert_eq!(report["latency_from"], "due");
    let messages = report["messages"].as_u64().unwrap();
    assert!((150..=250).contains(&messages), "{report}");
}

#[test]
fn wss_with_the_trust_flags() {
    let server = ServerProc::start(&["-l", "https://127.0.0.1:0", "--tls-self-signed"]);
    let line = server.wait_for_line("fingerprint", Duration::from_secs(5));
    let pin = line.rsplit(' ').next().unwrap().to_string();
    let url = format!("wss://127.0.0.1:{}/", server.port);
    let base = [
        "--connect",
        url.as_str(),
        "-d",
        "300ms",
        "--warmup",
        "50ms",
        "--json",
    ];
    let mut args = base.to_vec();
    args.extend(["-k", "-c", "2"]);
    run_ok(&args);
    let mut args = base.to_vec();
    args.extend(["--tls-pin", pin.as_str(), "-m", "churn"]);
    run_ok(&args);
    // No trust: the probe fails, one line, exit 1.
    let out = bench(&["--connect", &url, "-d", "300ms"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("echo-bench: error: "), "{err}");
}

#[test]
fn plot_save_hist_and_merge_work_over_ws() {
    let (_server, url, _) = server(&[]);
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("ws.svg");
    let hlog = dir.path().join("ws.hlog");
    let out = bench(&[
        "--connect",
        &url,
        "-c",
        "2",
        "-d",
        "300ms",
        "--warmup",
        "50ms",
        "--plot",
        svg.to_str().unwrap(),
        "--save-hist",
        hlog.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("pingpong against {url}")),
        "{text}"
    );
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
    let merged = bench(&["merge", "--json", hlog.to_str().unwrap()]);
    assert!(merged.status.success(), "{}", stderr(&merged));
    let report = json(&merged);
    assert_eq!(report["addr"], url.as_str());
    assert!(report["messages"].as_u64().unwrap() > 0, "{report}");
}

#[test]
fn a_corrupting_server_is_caught() {
    let bad = BadServer::start(Misbehave::Flip { every: 5, at: 7 });
    let out = bench(&[
        "--connect",
        &bad.url(),
        "-c",
        "2",
        "-s",
        "100",
        "-d",
        "300ms",
        "--warmup",
        "0s",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    assert!(
        report["error_kinds"]["mismatch"].as_u64().unwrap() > 0,
        "{report}"
    );
    // The fifth message of a connection: byte 4 * 100 + 7.
    let first = report["first_error"].as_str().unwrap();
    assert!(first.contains("echo mismatch at byte 407"), "{first}");
    assert!(stderr(&out).contains("mismatch"), "{}", stderr(&out));
}

#[test]
fn wrong_kinds_and_sizes_of_echo_are_errors() {
    for (mode, kind) in [
        (Misbehave::Text, "mismatch"),
        (Misbehave::Huge(1 << 20), "mismatch"),
        (Misbehave::CloseAfter(3), "short_echo"),
    ] {
        let bad = BadServer::start(mode);
        let out = bench(&[
            "--connect",
            &bad.url(),
            "-s",
            "64",
            "-d",
            "300ms",
            "--warmup",
            "0s",
            "--json",
        ]);
        assert_eq!(out.status.code(), Some(1), "{mode:?}: {}", stderr(&out));
        let report = json(&out);
        assert!(
            report["error_kinds"][kind].as_u64().unwrap() > 0,
            "{mode:?}: {report}"
        );
    }
    // A silent server: every message owed times out.
    let bad = BadServer::start(Misbehave::Silent);
    let out = bench(&[
        "--connect",
        &bad.url(),
        "-d",
        "600ms",
        "--warmup",
        "0s",
        "--timeout",
        "200ms",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(json(&out)["error_kinds"]["timeout"].as_u64().unwrap() > 0);
}

/// Another implementation on the other end: Python `websockets` (the
/// peer of scripts/web_peers, on plain asyncio here), which answers a Close at
/// once and drops what it has not echoed yet. Every mode, and the client,
/// get every byte back from it.
#[test]
#[cfg_attr(
    not(has_py_websockets),
    ignore = "needs Python's websockets: run .ci/install (pip install -r .ci/requirements.txt)"
)]
fn python_websockets_gets_the_same_checks() {
    let port = support::free_port();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/web_peers/ws_python.py"
    );
    let peer = ServerProc::start_until(
        std::process::Command::new("python3").args([script, &port.to_string(), "--no-uvloop"]),
        "listening on",
    );
    let url = format!("ws://127.0.0.1:{port}/");
    let common = [
        "--connect",
        url.as_str(),
        "-d",
        "300ms",
        "--warmup",
        "50ms",
        "--json",
    ];
    for extra in [
        &["-c", "4", "-s", "100", "--pipeline", "2"][..],
        &["-m", "stream", "-s", "16KiB"][..],
        &["-m", "churn", "-c", "2"][..],
    ] {
        let mut args = common.to_vec();
        args.extend_from_slice(extra);
        let report = run_ok(&args);
        assert!(report["messages"].as_u64().unwrap() > 0, "{report}");
    }
    let out = support::run(
        std::process::Command::new(support::CLIENT).args(["-c", &url, "--stdin"]),
        &support::pattern(5, 300_000),
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stdout == support::pattern(5, 300_000));
    drop(peer);
}

/// A server that floods pings and never reads: the bench's answers to
/// them cannot pile up; its memory stays bounded, and it ends at its
/// duration, the owed echoes counted as timeouts.
#[test]
fn a_ping_flood_that_never_reads_costs_the_bench_bounded_memory() {
    let bad = BadServer::start(Misbehave::PingFloodDeaf);
    let (code, stderr, peak_kib, took) = support::run_measured(
        std::process::Command::new(env!("CARGO_BIN_EXE_echo-bench")).args([
            "--connect",
            &bad.url(),
            "-d",
            "4s",
            "--timeout",
            "10s",
            "--warmup",
            "0s",
            "--json",
        ]),
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(peak_kib < 64 * 1024, "the bench held {peak_kib} KiB");
}
