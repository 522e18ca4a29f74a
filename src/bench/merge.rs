//! `echo-bench merge`: the runs of several load machines, driving one
//! target at once, as one report.
//!
//! Latencies are merged by adding the histograms, so the percentiles are
//! those of every sample of every run together (averaging each run's
//! percentiles would not be). Throughput adds up, each run's rate over its
//! own measured time, since the runs are taken to have run together: a
//! warning says so when their measured windows, by the wall clocks of the
//! machines, did not all overlap. Counts and errors add up. Runs can only
//! be merged when their samples mean the same thing: the same mode, size
//! and pipeline, and all open loop or all closed loop.
//!
//! Over time, the runs' intervals are added up by the wall-clock second
//! they began in (by each machine's clock): the merged report has one
//! interval for each such second, starting on it, so runs that started
//! together (`--start-at`) line up second for second.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, UNIX_EPOCH};

use hdrhistogram::Histogram;

use super::histlog::Saved;
use super::record::{ErrorCounts, new_histogram};
use super::report::{Interval, Report, round2};

/// Why runs could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// Nothing to merge.
    #[error("no runs to merge")]
    Empty,
    /// Two runs measured different things.
    #[error("cannot merge {} ({a}) with {} ({b}): {what} differ", first.display(), second.display())]
    Unlike {
        /// The first file.
        first: std::path::PathBuf,
        /// Its value.
        a: String,
        /// The file that differs.
        second: std::path::PathBuf,
        /// Its value.
        b: String,
        /// What differs.
        what: &'static str,
    },
    /// Adding the histograms failed (they cannot grow to hold each other).
    #[error("cannot add the histogram of {}: {reason}", path.display())]
    Histogram {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
}

/// The merged report, and what the user should know about it.
#[derive(Debug)]
pub struct Merged {
    /// One report for all the runs.
    pub report: Report,
    /// Doubts about the merge (windows that did not overlap), one line each.
    pub warnings: Vec<String>,
}

/// Merges the runs read from `--save-hist` files into one report.
pub fn merge(runs: &[Saved]) -> Result<Merged, MergeError> {
    let first = runs.first().ok_or(MergeError::Empty)?;
    for run in &runs[1..] {
        check_alike(first, run)?;
    }
    let (merged, hist) = add_up(runs)?;
    let mut warnings = Vec::new();
    if let Some(gap) = gap(runs) {
        warnings.push(format!(
            "the runs' measured windows do not all overlap (by their machines' clocks, one \
             ended {:.3} s before another began): throughput was added as if they ran together",
            gap.as_secs_f64()
        ));
    }
    let mut report = merged.with_histogram(hist);
    report.intervals = by_second(runs);
    Ok(Merged { report, warnings })
}

/// Checks that `run`'s samples mean what `first`'s do: the same mode,
/// size and pipeline, and both open loop or both closed loop.
fn check_alike(first: &Saved, run: &Saved) -> Result<(), MergeError> {
    let (base, r) = (&first.report, &run.report);
    let unlike = |what, a: String, b: String| MergeError::Unlike {
        first: first.path.clone(),
        a,
        second: run.path.clone(),
        b,
        what,
    };
    if r.mode != base.mode {
        return Err(unlike(
            "modes",
            base.mode.as_str().into(),
            r.mode.as_str().into(),
        ));
    }
    if r.size != base.size {
        return Err(unlike(
            "message sizes",
            format!("{} B", base.size),
            format!("{} B", r.size),
        ));
    }
    if r.pipeline != base.pipeline {
        return Err(unlike(
            "pipelines",
            format!("pipeline {}", base.pipeline),
            format!("pipeline {}", r.pipeline),
        ));
    }
    if r.rate.is_some() != base.rate.is_some() {
        let kind = |r: &Report| {
            if r.rate.is_some() {
                "open loop, --rate".to_string()
            } else {
                "closed loop".to_string()
            }
        };
        return Err(unlike("latency definitions", kind(base), kind(r)));
    }
    Ok(())
}

/// The figures of all the runs added up, as a report (its latency fields
/// still to be taken from the histogram), and the histograms added.
fn add_up(runs: &[Saved]) -> Result<(Report, Histogram<u64>), MergeError> {
    let base = &runs[0].report;
    let mut hist = new_histogram();
    let mut errors = ErrorCounts::default();
    let mut first_error = None;
    let mut addrs = BTreeSet::new();
    let mut merged = zeroed(base);
    // The bench's CPU adds up, if every run measured it.
    merged.bench_cpu_seconds = runs
        .iter()
        .map(|r| r.report.bench_cpu_seconds)
        .sum::<Option<f64>>()
        .map(round2);
    let (mut msgs_per_sec, mut bytes_per_sec) = (0.0, 0.0);
    for run in runs {
        let r = &run.report;
        hist.add(&r.histogram).map_err(|e| MergeError::Histogram {
            path: run.path.clone(),
            reason: format!("{e:?}"),
        })?;
        errors.add(&r.error_kinds);
        if first_error.is_none()
            && let Some(e) = &r.first_error
        {
            first_error = Some(format!("in {}: {e}", run.path.display()));
        }
        addrs.insert(r.addr.clone());
        add_run(&mut merged, r);
        if r.seconds > 0.0 {
            msgs_per_sec += r.messages as f64 / r.seconds;
            bytes_per_sec += r.bytes as f64 / r.seconds;
        }
    }
    merged.addr = addrs.into_iter().collect::<Vec<_>>().join(", ");
    merged.msgs_per_sec = round2(msgs_per_sec);
    merged.mb_per_sec = round2(bytes_per_sec / 1e6);
    merged.errors = errors.total();
    merged.error_kinds = errors;
    merged.first_error = first_error;
    merged.latency_measured = runs.iter().all(|r| r.report.latency_measured);
    Ok((merged, hist))
}

/// The runs' intervals added up by the wall-clock second each began in:
/// one interval per second, starting on it, as long as the longest added
/// to it (a second; longer for an older file's single interval).
fn by_second(runs: &[Saved]) -> Vec<Interval> {
    let mut seconds: BTreeMap<u64, Interval> = BTreeMap::new();
    for interval in runs.iter().flat_map(|r| &r.report.intervals) {
        let second = interval
            .start
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let sum = seconds.entry(second).or_insert_with(|| Interval {
            start: UNIX_EPOCH + Duration::from_secs(second),
            length: Duration::ZERO,
            // Sized to what it will hold, as a run's seconds are.
            histogram: Histogram::new(3).unwrap_or_else(|_| new_histogram()),
        });
        sum.length = sum.length.max(interval.length);
        // Both auto-resize: adding cannot run out of range.
        let _ = sum.histogram.add(&interval.histogram);
    }
    seconds.into_values().collect()
}

/// `base` with every figure that adds up set to nothing yet.
fn zeroed(base: &Report) -> Report {
    let mut merged = base.clone();
    merged.connections = 0;
    merged.threads = 0;
    merged.rate = base.rate.map(|_| 0.0);
    merged.seconds = 0.0;
    merged.warmup_seconds = 0.0;
    merged.messages = 0;
    merged.bytes = 0;
    merged.runs = 0;
    merged.window_start = None;
    merged.intervals.clear();
    merged.sources = 0;
    merged.notes.clear();
    merged
}

/// Adds run `r`'s parameters and counts to `merged`: sums, the longest
/// times, the earliest window start, and its notes not seen yet.
fn add_run(merged: &mut Report, r: &Report) {
    merged.connections += r.connections;
    merged.threads += r.threads;
    merged.rate = merged.rate.zip(r.rate).map(|(a, b)| a + b);
    merged.seconds = merged.seconds.max(r.seconds);
    merged.warmup_seconds = merged.warmup_seconds.max(r.warmup_seconds);
    merged.messages += r.messages;
    merged.bytes += r.bytes;
    merged.runs += r.runs;
    merged.sources += r.sources;
    for note in &r.notes {
        if !merged.notes.contains(note) {
            merged.notes.push(note.clone());
        }
    }
    merged.window_start = match (merged.window_start, r.window_start) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
}

/// How long before the latest-starting run's window the earliest-ending
/// one ended, if it did: `None` when all the windows overlap (or their
/// start is unknown).
fn gap(runs: &[Saved]) -> Option<Duration> {
    let windows: Vec<_> = runs
        .iter()
        .filter_map(|r| {
            let start = r.report.window_start?;
            Some((
                start,
                start + Duration::from_secs_f64(r.report.seconds.max(0.0)),
            ))
        })
        .collect();
    let latest_start = windows.iter().map(|w| w.0).max()?;
    let earliest_end = windows.iter().map(|w| w.1).min()?;
    latest_start
        .duration_since(earliest_end)
        .ok()
        .filter(|g| !g.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::config::{BenchConfig, Mode};
    use crate::bench::record::Totals;
    use std::time::UNIX_EPOCH;

    fn run(
        name: &str,
        at_ms: u64,
        samples: &[u64],
        tweak: fn(BenchConfig) -> BenchConfig,
    ) -> Saved {
        let mut totals = Totals::default();
        for &ns in samples {
            totals.hist.record(ns).unwrap();
        }
        totals.messages = samples.len() as u64;
        totals.bytes = 100 * samples.len() as u64;
        let config = BenchConfig::new("127.0.0.1:7".parse().unwrap())
            .duration(Duration::from_secs(2))
            .connections(3)
            .clone();
        let config = tweak(config);
        let mut report = Report::new(&config, totals);
        report.window_start = Some(UNIX_EPOCH + Duration::from_millis(at_ms));
        Saved {
            path: name.into(),
            report,
        }
    }

    #[test]
    fn latencies_are_those_of_every_sample_together() {
        // One fast machine and one slow one: the merged median is neither's.
        let fast: Vec<u64> = (1..=1000).map(|i| i * 1000).collect();
        let slow: Vec<u64> = (1..=1000).map(|i| 1_000_000 + i * 1000).collect();
        let a = run("a", 0, &fast, |c| c);
        let b = run("b", 100, &slow, |c| c);
        let m = merge(&[a, b]).unwrap();
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        let r = &m.report;
        assert_eq!((r.samples, r.messages, r.runs), (2000, 2000, 2));
        assert_eq!(r.connections, 6);
        assert_eq!(r.msgs_per_sec, 1000.0);
        assert_eq!(r.bytes, 200_000);
        assert!((r.p50_us - 1000.0).abs() <= 1.0, "{}", r.p50_us);
        assert!((r.max_us - 2000.0).abs() <= 2.0, "{}", r.max_us);
        assert!(r.to_text().contains("(2 runs merged)"), "{}", r.to_text());
    }

    #[test]
    fn unlike_runs_are_refused() {
        let a = run("a.hlog", 0, &[1000], |c| c);
        type Tweak = fn(BenchConfig) -> BenchConfig;
        let cases: [(Tweak, &str); 4] = [
            (
                |mut c| {
                    c.mode(Mode::Churn);
                    c
                },
                "modes",
            ),
            (
                |mut c| {
                    c.size(65);
                    c
                },
                "sizes",
            ),
            (
                |mut c| {
                    c.pipeline(2);
                    c
                },
                "pipelines",
            ),
            (
                |mut c| {
                    c.rate(10.0);
                    c
                },
                "open loop",
            ),
        ];
        for (tweak, word) in cases {
            let b = run("b.hlog", 0, &[1000], tweak);
            let e = merge(&[a.clone(), b]).unwrap_err().to_string();
            assert!(e.contains(word) && e.contains("b.hlog"), "{e}");
        }
        assert!(matches!(merge(&[]), Err(MergeError::Empty)));
    }

    #[test]
    fn intervals_add_up_by_the_wall_clock_second_they_began_in() {
        let with_seconds = |name: &str, at_ms: u64, counts: &[u64]| {
            let mut r = run(name, at_ms, &[1000], |c| c);
            let start = UNIX_EPOCH + Duration::from_millis(at_ms);
            let hists = counts
                .iter()
                .map(|&n| {
                    let mut h = new_histogram();
                    h.record_n(1000, n).unwrap();
                    h
                })
                .collect();
            r.report.intervals = Interval::seconds(hists, start, Duration::from_secs(2));
            r
        };
        // Both start in second 100 (at .250 and .900); b's runs into 102.
        let a = with_seconds("a", 100_250, &[5, 7]);
        let b = with_seconds("b", 100_900, &[1, 2, 4]);
        let m = merge(&[a, b]).unwrap();
        let got: Vec<(u64, u64)> = m
            .report
            .intervals
            .iter()
            .map(|i| {
                let s = i.start.duration_since(UNIX_EPOCH).unwrap();
                assert_eq!(s.subsec_nanos(), 0, "starts on the second");
                (s.as_secs(), i.histogram.len())
            })
            .collect();
        assert_eq!(got, [(100, 6), (101, 9), (102, 4)]);
    }

    #[test]
    fn windows_that_do_not_overlap_are_warned_about() {
        let a = run("a", 0, &[1000], |c| c);
        let b = run("b", 5_000, &[1000], |c| c);
        let m = merge(&[a, b]).unwrap();
        assert_eq!(m.warnings.len(), 1);
        assert!(m.warnings[0].contains("3.000 s"), "{:?}", m.warnings);
    }
}
