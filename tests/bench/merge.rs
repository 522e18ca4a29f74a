//! `echo-bench --save-hist` and `echo-bench merge`: one run split across
//! three processes, merged, is the run of all their samples together.

use std::path::Path;

use crate::support::bench::{RealServer, bench, finish, json, spawn_bench, stderr};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use serde_json::Value;

/// The histogram in an interval log, read with the `hdrhistogram` crate
/// alone, as any other tool of the format would.
fn read_histogram(path: &Path) -> Histogram<u64> {
    use base64::Engine as _;
    let bytes = std::fs::read(path).unwrap();
    let mut total: Histogram<u64> = Histogram::new(3).unwrap();
    let mut intervals = 0;
    for entry in IntervalLogIterator::new(&bytes) {
        if let LogEntry::Interval(i) = entry.unwrap() {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(i.encoded_histogram())
                .unwrap();
            let h: Histogram<u64> = Deserializer::new()
                .deserialize(&mut raw.as_slice())
                .unwrap();
            total.add(&h).unwrap();
            intervals += 1;
        }
    }
    assert_eq!(intervals, 1, "one interval: the measured window");
    total
}

/// Microseconds to 0.1 µs, as the report shows them.
fn us(ns: u64) -> f64 {
    (ns as f64 / 100.0).round() / 10.0
}

#[test]
fn three_processes_merged_are_one_run_of_all_their_samples() {
    let server = RealServer::start();
    let addr = server.tcp().to_string();
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = (0..3)
        .map(|i| {
            dir.path()
                .join(format!("run{i}.hlog"))
                .display()
                .to_string()
        })
        .collect();
    // The three run at once, as three load machines would.
    let children: Vec<_> = files
        .iter()
        .map(|file| {
            let args = [
                "--connect",
                &addr,
                "-c",
                "2",
                "-s",
                "128",
                "-d",
                "1s",
                "--warmup",
                "200ms",
                "--json",
                "--save-hist",
                file,
            ];
            (spawn_bench(&args), args.map(String::from))
        })
        .collect();
    let runs: Vec<Value> = children
        .into_iter()
        .map(|(child, args)| {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = finish(child, &args);
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            json(&out)
        })
        .collect();

    let mut union: Histogram<u64> = Histogram::new(3).unwrap();
    for (run, file) in runs.iter().zip(&files) {
        let h = read_histogram(Path::new(file));
        assert_eq!(h.len(), run["samples"].as_u64().unwrap(), "{file}: {run}");
        union.add(&h).unwrap();
    }
    let sum = |key: &str| runs.iter().map(|r| r[key].as_u64().unwrap()).sum::<u64>();

    let mut args = vec!["merge", "--json"];
    args.extend(files.iter().map(String::as_str));
    let merged_file = dir.path().join("all.hlog");
    let plot = dir.path().join("all.svg");
    args.extend(["--save-hist", merged_file.to_str().unwrap()]);
    args.extend(["--plot", plot.to_str().unwrap()]);
    let out = bench(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // (A warning that the windows did not overlap is possible, if one
    // process started a second late on a very busy machine.)
    assert!(!stderr(&out).contains("error"), "{}", stderr(&out));
    let m = json(&out);

    // Counts add up.
    assert_eq!(m["runs"], 3, "{m}");
    assert_eq!(m["samples"].as_u64().unwrap(), union.len(), "{m}");
    assert_eq!(m["samples"].as_u64().unwrap(), sum("samples"), "{m}");
    assert_eq!(m["messages"].as_u64().unwrap(), sum("messages"), "{m}");
    assert_eq!(m["bytes"].as_u64().unwrap(), sum("bytes"), "{m}");
    assert_eq!(m["connections"], 6);
    assert_eq!(m["errors"], 0);
    let rates: f64 = runs
        .iter()
        .map(|r| r["msgs_per_sec"].as_f64().unwrap())
        .sum();
    assert!(
        (m["msgs_per_sec"].as_f64().unwrap() - rates).abs() < 1.0,
        "{m}"
    );
    // Percentiles are those of every sample together, to the histogram's
    // precision.
    for (key, q) in [
        ("p50_us", 0.5),
        ("p90_us", 0.9),
        ("p99_us", 0.99),
        ("p999_us", 0.999),
        ("max_us", 1.0),
    ] {
        let want = us(union.value_at_quantile(q));
        let got = m[key].as_f64().unwrap();
        assert!(
            (got - want).abs() <= want * 0.001 + 0.1,
            "{key}: merged {got}, union {want}"
        );
    }
    // The text report says what it is, and the plot is drawn.
    let mut text_args = vec!["merge"];
    text_args.extend(files.iter().map(String::as_str));
    let text = bench(&text_args);
    assert_eq!(text.status.code(), Some(0), "{}", stderr(&text));
    assert!(String::from_utf8_lossy(&text.stdout).contains("(3 runs merged)"));
    assert!(
        std::fs::read_to_string(&plot)
            .unwrap()
            .contains("<polyline")
    );
    // A merged file merges again, to the same.
    let again = bench(&["merge", "--json", merged_file.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let again = json(&again);
    for key in [
        "samples", "messages", "bytes", "p50_us", "p999_us", "max_us", "runs",
    ] {
        assert_eq!(again[key], m[key], "{key}");
    }
}

#[test]
fn files_that_cannot_be_merged_are_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.hlog");
    std::fs::write(&garbage, "not a histogram\n").unwrap();
    let missing = dir.path().join("missing.hlog");
    let (garbage, missing) = (garbage.to_str().unwrap(), missing.to_str().unwrap());
    let table: [(&[&str], i32, &str); 4] = [
        (&["merge"], 2, "FILE"),
        (&["merge", missing], 1, "cannot read"),
        (&["merge", garbage], 1, "garbage.hlog"),
        (&["--json", "merge", garbage], 2, "merge"),
    ];
    for (args, code, word) in table {
        let out = bench(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        let first = err.lines().next().unwrap_or_default();
        assert!(first.contains("error"), "{args:?}: {err}");
        if code == 1 {
            assert!(
                first.contains(word),
                "{args:?}: {first:?} should say {word}"
            );
            assert_eq!(err.lines().count(), 1, "one line: {err}");
        } else {
            // clap's usage errors name the argument on the next line.
            assert!(err.contains(word), "{args:?}: {err:?} should say {word}");
        }
        assert!(out.stdout.is_empty());
    }
}
