//! `echo-bench --start-at TIME`: the measured window begins at that
//! wall-clock instant, not before (connections and warm-up come first),
//! and a time long past, too far ahead or malformed is bad usage.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::bench::{RealServer, bench, json, stderr};

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn the_measured_window_begins_at_the_start_time() {
    let server = RealServer::start();
    let addr = server.tcp().to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("at.hlog");
    // Two seconds ahead, on a whole millisecond (the file's precision).
    let at = ((unix_now() + 2.0) * 1000.0).round() / 1000.0;
    let spawned = Instant::now();
    let args = [
        "--connect",
        &addr,
        "--start-at",
        &format!("@{at:.3}"),
        "-d",
        "1s",
        "--warmup",
        "300ms",
        "--json",
        "--save-hist",
        file.to_str().unwrap(),
    ];
    let out = bench(&args);
    let took = spawned.elapsed();
    let ended = unix_now();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let run = json(&out);
    assert_eq!(run["errors"], 0, "{run}");
    assert!(run["messages"].as_u64().unwrap() > 0, "{run}");
    assert!(
        run["notes"].as_array().unwrap().is_empty(),
        "on time: {run}"
    );
    // It waited for the start, then measured a whole second.
    assert!(ended >= at + 1.0, "ended at {ended}, start at {at}");
    assert!(took >= Duration::from_millis(2900), "{took:?}");
    // The file says the window began at the start time, not before.
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains(&format!("#[StartTime: {at:.3} ")),
        "{at:.3}: {text}"
    );
    let first = text
        .lines()
        .find(|l| l.starts_with("Tag="))
        .and_then(|l| l.split(',').nth(1))
        .and_then(|t| t.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no interval in {text}"));
    assert!(
        (first - at).abs() < 0.0015,
        "first interval at {first}, start {at}"
    );
}

#[test]
fn a_start_long_past_too_far_ahead_or_malformed_is_bad_usage() {
    let now = unix_now() as u64;
    let cases = [
        (format!("@{}", now - 10), "in the past"),
        (format!("@{}", now + 25 * 3600), "more than 24 h ahead"),
        ("2026-12-07T10:00:00".to_string(), "not a time"),
        ("tomorrow".to_string(), "not a time"),
    ];
    for (time, word) in cases {
        // Refused before anything is reached: no server is needed.
        let out = bench(&["--connect", "127.0.0.1:1", "--start-at", &time]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{time}: {err}");
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.contains("--start-at") && first.contains(word),
            "{time}: {first}"
        );
        assert!(out.stdout.is_empty());
    }
}
