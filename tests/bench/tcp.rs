//! `echo-bench` end to end: the real binary against fake servers that
//! misbehave in one known way each, and against the real `echoes::Server`.
//! Every server is on 127.0.0.1, port 0, and every run lasts at most about
//! two seconds (and is killed after twenty, should it hang).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use crate::support::bench::{REPORT_KEYS, RealServer, bench, json, stderr};
use serde_json::Value;

/// What a fake server does with the bytes of one connection.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Echoes faithfully.
    Echo,
    /// Echoes, with the byte at this offset of each connection flipped.
    Corrupt(u64),
    /// Echoes this many bytes of each connection, then closes.
    CloseAfter(u64),
    /// Echoes, but stops for this long once (in the whole server's life)
    /// when a connection's stream reaches the given offset.
    PauseOnce { at: u64, pause: Duration },
}

/// A blocking thread-per-connection echo server that misbehaves as told.
/// Stops accepting when dropped; its connection threads end when the
/// bench closes their connections.
struct FakeServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl FakeServer {
    fn start(behaviour: Behaviour) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let paused = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let paused = paused.clone();
                thread::spawn(move || serve(conn, behaviour, &paused));
            }
        });
        FakeServer { addr, stop }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(mut conn: TcpStream, behaviour: Behaviour, paused: &AtomicBool) {
    let _ = conn.set_nodelay(true);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = [0u8; 16384];
    let mut off = 0u64;
    loop {
        let n = match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let range = off..off + n as u64;
        match behaviour {
            Behaviour::Echo => {}
            Behaviour::Corrupt(at) => {
                if range.contains(&at) {
                    buf[(at - off) as usize] ^= 0x01;
                }
            }
            Behaviour::CloseAfter(limit) => {
                if range.end >= limit {
                    let _ = conn.write_all(&buf[..(limit - off) as usize]);
                    return;
                }
            }
            Behaviour::PauseOnce { at, pause } => {
                if range.end > at && !paused.swap(true, Ordering::Relaxed) {
                    thread::sleep(pause);
                }
            }
        }
        off = range.end;
        if conn.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}

/// Runs against `addr`, as JSON; for 1 s after 200 ms of warm-up unless
/// `extra` says otherwise.
fn run_json(addr: SocketAddr, extra: &[&str]) -> (Output, Value) {
    let addr = addr.to_string();
    let mut args = vec!["--connect", &addr, "--json"];
    if !extra.contains(&"-d") {
        args.extend(["-d", "1s"]);
    }
    if !extra.contains(&"--warmup") {
        args.extend(["--warmup", "200ms"]);
    }
    args.extend_from_slice(extra);
    let out = bench(&args);
    let v = json(&out);
    (out, v)
}

#[test]
fn a_flipped_byte_is_a_mismatch_and_exit_1() {
    let server = FakeServer::start(Behaviour::Corrupt(1000));
    let (out, v) = run_json(server.addr, &["-c", "2", "-s", "64"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(v["error_kinds"]["mismatch"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(v["error_kinds"]["short_echo"], 0);
    assert!(v["errors"].as_u64().unwrap() >= v["error_kinds"]["mismatch"].as_u64().unwrap());
    let err = stderr(&out);
    assert!(
        err.contains("mismatch at byte 1000"),
        "the first error names the byte: {err}"
    );
}

#[test]
fn an_early_close_is_a_short_echo() {
    // 64-byte messages: the first comes back whole, the second in part.
    let server = FakeServer::start(Behaviour::CloseAfter(100));
    let (out, v) = run_json(server.addr, &["-c", "1", "-s", "64"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(v["error_kinds"]["short_echo"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(v["error_kinds"]["mismatch"], 0);
    assert!(stderr(&out).contains("short echo"), "{}", stderr(&out));
}

/// The timing test must not share two cores with the heavy real runs of
/// this file: a bench that waits for a core reports the wait as latency.
static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_stall_shows_in_the_tail_at_a_fixed_rate() {
    let _alone = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    // 500 msg/s for 1.5 s: 750 messages. The server stops for 200 ms once,
    // 0.2 s in: the 100 messages due in those 200 ms are late by 200 ms
    // down to 0. Counted from when they were due, about 50 of them (7%)
    // are over 100 ms, so even p99 shows the stall; a bench with
    // coordinated omission would count one late message and a clean p99.
    let pause = Duration::from_millis(200);
    let paused = FakeServer::start(Behaviour::PauseOnce { at: 6400, pause });
    let control = FakeServer::start(Behaviour::Echo);
    let args = [
        "-c", "1", "-s", "64", "--rate", "500", "-d", "1500ms", "--warmup", "0",
    ];
    let (out, stalled) = run_json(paused.addr, &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (out, clean) = run_json(control.addr, &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let us = |v: &Value, k: &str| v[k].as_f64().unwrap();
    assert_eq!(stalled["latency_from"], "due");
    assert!(us(&stalled, "max_us") >= 190_000.0, "{stalled}");
    assert!(us(&stalled, "p999_us") >= 190_000.0, "{stalled}");
    assert!(us(&stalled, "p99_us") >= 100_000.0, "{stalled}");
    // Without the pause, p99 would need a 115 ms hiccup to reach 100 ms.
    assert!(us(&clean, "p99_us") < 100_000.0, "{clean}");
    assert!(us(&clean, "p99_us") < us(&stalled, "p99_us") / 2.0);
    // The rate was kept in both: messages are sent on schedule, not
    // after the previous echo.
    for v in [&stalled, &clean] {
        let m = v["messages"].as_u64().unwrap();
        assert!((700..=760).contains(&m), "{v}");
    }
}

#[test]
fn json_has_every_documented_field() {
    let server = FakeServer::start(Behaviour::Echo);
    let (out, v) = run_json(server.addr, &["-c", "3", "-s", "100", "--pipeline", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    let more = ["pipeline", "rate", "warmup_seconds", "latency_from"];
    for key in REPORT_KEYS.into_iter().chain(more) {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    assert_eq!(v["mode"], "pingpong");
    assert_eq!(v["connections"], 3);
    assert_eq!(v["size"], 100);
    assert_eq!(v["pipeline"], 2);
    assert_eq!(v["seconds"], 1.0);
    assert_eq!(v["warmup_seconds"], 0.2);
    assert_eq!(v["errors"], 0);
    assert_eq!(v["rate"], Value::Null);
    for kind in [
        "connect",
        "reset",
        "timeout",
        "mismatch",
        "short_echo",
        "loss",
    ] {
        assert_eq!(v["error_kinds"][kind], 0, "{kind}");
    }
    let messages = v["messages"].as_u64().unwrap();
    assert!(messages > 0);
    assert_eq!(v["bytes"].as_u64().unwrap(), messages * 100);
    assert_eq!(v["msgs_per_sec"].as_f64().unwrap(), messages as f64);
    let p = |k: &str| v[k].as_f64().unwrap();
    assert!(p("p50_us") > 0.0);
    assert!(p("p50_us") <= p("p90_us") && p("p90_us") <= p("p99_us"));
    assert!(p("p99_us") <= p("p999_us") && p("p999_us") <= p("max_us"));
}

#[test]
fn every_mode_runs_clean_against_the_real_server() {
    let _alone = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let server = RealServer::start();
    let dir = tempfile::tempdir().unwrap();
    let plot = dir.path().join("latency.svg");
    let plot_arg = plot.to_str().unwrap();
    let runs: [&[&str]; 5] = [
        &[
            "-m", "pingpong", "-c", "4", "-s", "1KiB", "--plot", plot_arg,
        ],
        &[
            "-m",
            "pingpong",
            "-c",
            "2",
            "-s",
            "200KiB",
            "--pipeline",
            "3",
        ],
        &["-m", "stream", "-c", "2", "-s", "64KiB"],
        &["-m", "churn", "-c", "4", "-s", "64"],
        &["-m", "churn", "-c", "2", "-s", "64", "--rate", "300"],
    ];
    for args in runs {
        let (out, v) = run_json(server.tcp(), args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(v["errors"], 0, "{args:?}: {v}");
        assert!(v["messages"].as_u64().unwrap() > 0, "{args:?}: {v}");
        assert!(v["mb_per_sec"].as_f64().unwrap() > 0.0, "{args:?}: {v}");
        if v["mode"] == "stream" {
            assert_eq!(v["latency_measured"], false);
            assert_eq!(v["p50_us"], 0.0);
        } else {
            assert!(v["p50_us"].as_f64().unwrap() > 0.0, "{args:?}: {v}");
        }
    }
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("<polyline"),
        "{svg}"
    );
    assert!(svg.contains("99.9%"));
}

#[test]
fn the_text_report_is_for_people() {
    let server = RealServer::start();
    let addr = server.tcp().to_string();
    let out = bench(&["--connect", &addr, "-d", "300ms", "--warmup", "0"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for word in [
        "pingpong",
        "msgs/s",
        "MB/s",
        "p50",
        "p99.9",
        "max",
        "errors      0",
    ] {
        assert!(text.contains(word), "missing {word}: {text}");
    }
    // No progress bar when standard error is not a terminal.
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
}

#[test]
fn bad_input_gets_one_clear_line() {
    // A port nothing listens on: bind one, then let it go.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let table: [(&[&str], i32, &str); 14] = [
        (&["-c", "0"], 2, "--connections"),
        (&["-s", "0"], 2, "--size"),
        (&["--pipeline", "0"], 2, "--pipeline"),
        (&["--rate", "0"], 2, "--rate"),
        (&["--rate", "fast"], 2, "--rate"),
        (&["-d", "0"], 2, "--duration"),
        (&["-d", "10x"], 2, "duration"),
        (&["--mode", "bogus"], 2, "bogus"),
        (&["--connect", "nowhere"], 2, "HOST:PORT"),
        (&["--no-such-flag"], 2, "--no-such-flag"),
        (&["--mode", "stream", "--rate", "10"], 2, "stream"),
        (&["--mode", "churn", "--pipeline", "2"], 2, "pingpong"),
        (&["--mode", "stream", "--plot", "x.svg"], 2, "stream"),
        (&["--connect", &closed, "-d", "1s"], 1, "cannot connect"),
    ];
    for (args, code, word) in table {
        let out = bench(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        let first = err.lines().next().unwrap_or_default();
        assert!(first.starts_with("echo-bench: error:"), "{args:?}: {err}");
        assert!(
            first.contains(word),
            "{args:?}: {first:?} should mention {word}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
        if code == 1 {
            assert_eq!(err.lines().count(), 1, "one line: {err}");
        }
    }
}
