//! `echo-bench --save-hist` and `echo-bench merge`: one run split across
//! three processes, merged, is the run of all their samples together.

use std::path::Path;

use crate::support::bench::{RealServer, bench, finish, json, spawn_bench, stderr};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use serde_json::Value;

/// The intervals of an interval log, read with the `hdrhistogram` crate
/// alone, as any other tool of the format would: each one's start (in
/// seconds since the Unix epoch: there is no BaseTime) and histogram.
fn read_intervals(path: &Path) -> Vec<(f64, Histogram<u64>)> {
    use base64::Engine as _;
    let bytes = std::fs::read(path).unwrap();
    let mut intervals = Vec::new();
    for entry in IntervalLogIterator::new(&bytes) {
        match entry.unwrap() {
            LogEntry::Interval(i) => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(i.encoded_histogram())
                    .unwrap();
                let h: Histogram<u64> = Deserializer::new()
                    .deserialize(&mut raw.as_slice())
                    .unwrap();
                assert!(
                    i.tag().is_some(),
                    "{}: every interval is tagged",
                    path.display()
                );
                intervals.push((i.start_timestamp().as_secs_f64(), h));
            }
            LogEntry::BaseTime(_) => panic!("{}: absolute timestamps, no BaseTime", path.display()),
            LogEntry::StartTime(_) => {}
        }
    }
    intervals
}

/// The histogram in an interval log: its intervals added.
fn read_histogram(path: &Path) -> Histogram<u64> {
    let intervals = read_intervals(path);
    // One per second of the 1 s window (a message at its very end may
    // open a second one).
    assert!((1..=2).contains(&intervals.len()), "{}", intervals.len());
    let mut total: Histogram<u64> = Histogram::new(3).unwrap();
    for (_, h) in &intervals {
        total.add(h).unwrap();
    }
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

/// Two load machines (processes) at once, a few seconds each: each file
/// has an interval per second, and `merge --over-time` adds them by the
/// wall-clock second they began in, every message in one of them.
#[test]
fn merge_over_time_adds_two_runs_second_by_second() {
    use std::collections::BTreeMap;
    let server = RealServer::start();
    let addr = server.tcp().to_string();
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = (0..2)
        .map(|i| dir.path().join(format!("m{i}.hlog")).display().to_string())
        .collect();
    let children: Vec<_> = files
        .iter()
        .map(|file| {
            let args = [
                "--connect",
                &addr,
                "-d",
                "2500ms",
                "--warmup",
                "200ms",
                "--json",
                "--save-hist",
                file,
            ];
            (spawn_bench(&args), args.map(String::from))
        })
        .collect();
    let mut messages = 0;
    for ((child, args), file) in children.into_iter().zip(&files) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = finish(child, &args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let run = json(&out);
        let intervals = read_intervals(Path::new(file));
        // 2.5 s: three intervals, a second apart.
        assert!(
            (3..=4).contains(&intervals.len()),
            "{file}: {}",
            intervals.len()
        );
        assert!((intervals[1].0 - intervals[0].0 - 1.0).abs() < 0.002);
        let in_intervals: u64 = intervals.iter().map(|(_, h)| h.len()).sum();
        assert_eq!(
            in_intervals,
            run["messages"].as_u64().unwrap(),
            "{file}: {run}"
        );
        messages += in_intervals;
    }
    // What the rows must be: both files' intervals, by wall-clock second.
    let mut want: BTreeMap<u64, u64> = BTreeMap::new();
    for file in &files {
        for (start, h) in read_intervals(Path::new(file)) {
            *want.entry(start.floor() as u64).or_default() += h.len();
        }
    }

    let mut args = vec!["merge", "--over-time", "--json"];
    args.extend(files.iter().map(String::as_str));
    let out = bench(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let m = json(&out);
    assert_eq!(m["messages"].as_u64().unwrap(), messages, "{m}");
    let rows = m["intervals"].as_array().unwrap();
    assert_eq!(rows.len(), want.len(), "{m}");
    let mut sum = 0;
    for (row, (second, count)) in rows.iter().zip(&want) {
        let start = row["start"].as_str().unwrap();
        assert!(start.ends_with('Z') && start.len() == 20, "{row}");
        assert_eq!(row["messages"].as_u64().unwrap(), *count, "{second}: {row}");
        if *count > 0 {
            let (p50, p99) = (
                row["p50_us"].as_f64().unwrap(),
                row["p99_us"].as_f64().unwrap(),
            );
            assert!(p50 > 0.0 && p50 <= p99, "{row}");
        }
        sum += row["messages"].as_u64().unwrap();
    }
    assert_eq!(sum, messages, "every message is in one second: {m}");

    // As text: the report, then a line for each second.
    let mut args = vec!["merge", "--over-time"];
    args.extend(files.iter().map(String::as_str));
    let out = bench(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("(2 runs merged)"), "{text}");
    assert!(
        text.contains(&format!("over time   {} interval(s)", want.len())),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.contains(" msgs  p50 ")).count(),
        want.len(),
        "{text}"
    );
    // Without the flag, the report is as it was.
    let mut args = vec!["merge", "--json"];
    args.extend(files.iter().map(String::as_str));
    assert!(json(&bench(&args)).get("intervals").is_none());
}
