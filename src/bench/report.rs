//! What a run measured, for people and for programs: the [`Report`] made
//! from the workers' [`Totals`], printed as text or as one JSON object
//! (the keys of SPEC.md, and a few more).
//!
//! Latencies are reported in microseconds, from the histogram's
//! nanoseconds (see [`record`](super::record)).

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::config::{BenchConfig, Mode};
use super::record::{ErrorCounts, Totals, new_histogram};

/// Everything a run measured, and the parameters it ran with. Serialises
/// to the JSON object `--json` prints, and reads back from it (that is
/// how `--save-hist` files carry the figures a histogram does not hold).
///
/// Latency fields are microseconds. In stream mode latency is not measured
/// (`latency_measured` is false) and every latency field is 0. With a
/// rate, latency counts from when each message was due (`latency_from`:
/// `"due"`), otherwise from when its first byte was written (`"send"`);
/// in churn mode it spans the whole operation, connecting included.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// `pingpong`, `stream` or `churn`.
    pub mode: Mode,
    /// The server, as given.
    pub addr: String,
    /// Concurrent connections (in churn mode, concurrent operations).
    pub connections: usize,
    /// Bytes per message.
    pub size: usize,
    /// Messages in flight per connection.
    pub pipeline: usize,
    /// The total rate asked for, messages per second; `null` for closed loop.
    pub rate: Option<f64>,
    /// Worker threads.
    pub threads: usize,
    /// Warm-up before measuring, in seconds.
    pub warmup_seconds: f64,
    /// The measured time, in seconds.
    pub seconds: f64,
    /// Messages completed in the measured time (stream mode: bytes / size;
    /// churn: operations).
    pub messages: u64,
    /// Bytes echoed back and checked in the measured time.
    pub bytes: u64,
    /// Messages per second.
    pub msgs_per_sec: f64,
    /// Echoed megabytes (10^6 bytes) per second, one direction.
    pub mb_per_sec: f64,
    /// Whether the latency fields hold measurements.
    pub latency_measured: bool,
    /// `"due"` (open loop, `--rate`) or `"send"` (closed loop).
    pub latency_from: String,
    /// Latency samples recorded.
    pub samples: u64,
    /// Smallest latency.
    pub min_us: f64,
    /// Mean latency.
    pub mean_us: f64,
    /// Median latency.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest latency.
    pub max_us: f64,
    /// Errors of every kind, warm-up included.
    pub errors: u64,
    /// Errors by kind.
    pub error_kinds: ErrorCounts,
    /// The first error seen, described.
    pub first_error: Option<String>,
    /// How many runs these figures are of: 1, or more for `echo-bench merge`.
    #[serde(default = "one")]
    pub runs: usize,
    /// The CPU time (user and system, all threads) the bench process used
    /// in the measured window, in seconds: whether the bench itself was
    /// the ceiling. `null` when not measured (a merge of runs that lack it).
    #[serde(default)]
    pub bench_cpu_seconds: Option<f64>,
    /// Source addresses the connections came from (1: the system's choice).
    #[serde(default = "one")]
    pub sources: usize,
    /// What the figures suggest that is worth a look, one line each (a
    /// UDP server's rate limit, say).
    #[serde(default)]
    pub notes: Vec<String>,
    /// The latency histogram, in nanoseconds, for plots and `--save-hist`.
    #[serde(skip, default = "new_histogram")]
    pub histogram: Histogram<u64>,
    /// When the measured window began, by the wall clock (for
    /// `--save-hist`); `None` when not known.
    #[serde(skip)]
    pub window_start: Option<SystemTime>,
    /// The latencies over time: one interval for each second of the
    /// measured window (fewer, longer ones from an older `--save-hist`
    /// file; none when not known), which add up to `histogram`.
    #[serde(skip)]
    pub intervals: Vec<Interval>,
}

/// Part of a run's latencies: those of the messages that completed in one
/// stretch of its measured window, by the wall clock.
#[derive(Debug, Clone)]
pub struct Interval {
    /// When it began.
    pub start: SystemTime,
    /// How long it lasted (a second, or less for the last).
    pub length: Duration,
    /// Its latencies, in nanoseconds.
    pub histogram: Histogram<u64>,
}

impl Interval {
    /// The intervals of a window that began at `start` and lasted
    /// `window`, from its seconds' histograms in order.
    pub fn seconds(
        hists: Vec<Histogram<u64>>,
        start: SystemTime,
        window: Duration,
    ) -> Vec<Interval> {
        const SECOND: Duration = Duration::from_secs(1);
        let mut offset = Duration::ZERO;
        hists
            .into_iter()
            .map(|histogram| {
                let interval = Interval {
                    start: start + offset,
                    length: window.saturating_sub(offset).min(SECOND),
                    histogram,
                };
                offset += SECOND;
                interval
            })
            .collect()
    }
}

fn one() -> usize {
    1
}

/// Nanoseconds to microseconds, to 0.1 µs.
fn us(ns: u64) -> f64 {
    (ns as f64 / 100.0).round() / 10.0
}

/// `x` to two decimals, as the report gives rates.
pub(crate) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl Report {
    /// The report of a run of `config` that measured `totals`.
    pub fn new(config: &BenchConfig, totals: Totals) -> Report {
        let seconds = config.duration.as_secs_f64();
        let messages = totals.messages;
        let per_sec = |x: f64| if seconds > 0.0 { x / seconds } else { 0.0 };
        Report {
            mode: config.mode,
            addr: config.addr.to_string(),
            connections: config.connections,
            size: config.size,
            pipeline: config.pipeline,
            rate: config.rate,
            threads: config.threads.min(config.connections),
            warmup_seconds: config.warmup.as_secs_f64(),
            seconds,
            messages,
            bytes: totals.bytes,
            msgs_per_sec: round2(per_sec(messages as f64)),
            mb_per_sec: round2(per_sec(totals.bytes as f64) / 1e6),
            latency_measured: config.mode != Mode::Stream,
            latency_from: if config.rate.is_some() { "due" } else { "send" }.to_string(),
            samples: 0,
            min_us: 0.0,
            mean_us: 0.0,
            p50_us: 0.0,
            p90_us: 0.0,
            p99_us: 0.0,
            p999_us: 0.0,
            max_us: 0.0,
            errors: totals.errors.total(),
            error_kinds: totals.errors,
            first_error: totals.first_error,
            runs: 1,
            bench_cpu_seconds: None,
            sources: 1,
            notes: Vec::new(),
            histogram: new_histogram(),
            window_start: None,
            intervals: Vec::new(),
        }
        .with_histogram(totals.hist)
    }

    /// The same report with `hist` as its latencies: the percentiles and
    /// the other latency fields are taken from it (all 0 where latency is
    /// not measured).
    pub fn with_histogram(mut self, hist: Histogram<u64>) -> Report {
        let measured = self.latency_measured && !hist.is_empty();
        let at = |q: f64| {
            if measured {
                us(hist.value_at_quantile(q))
            } else {
                0.0
            }
        };
        self.samples = if measured { hist.len() } else { 0 };
        self.min_us = if measured { us(hist.min_nz()) } else { 0.0 };
        self.mean_us = if measured {
            round2(hist.mean() / 1e3)
        } else {
            0.0
        };
        self.p50_us = at(0.5);
        self.p90_us = at(0.9);
        self.p99_us = at(0.99);
        self.p999_us = at(0.999);
        self.max_us = if measured { us(hist.max()) } else { 0.0 };
        self.histogram = hist;
        self
    }

    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        // Every field is a number, string, bool or null: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The report as a few lines for people.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write_parameters(&mut out);
        let unit = if self.mode == Mode::Churn {
            "ops"
        } else {
            "msgs"
        };
        let _ = writeln!(
            out,
            "  throughput  {:.1} {unit}/s, {:.2} MB/s ({} {unit}, {} bytes)",
            self.msgs_per_sec, self.mb_per_sec, self.messages, self.bytes
        );
        self.write_latency(&mut out);
        if let Some(cpu) = self.bench_cpu_seconds {
            let cores = if self.seconds > 0.0 {
                cpu / self.seconds
            } else {
                0.0
            };
            let _ = writeln!(
                out,
                "  bench cpu   {cpu:.2} s in the measured time ({cores:.2} cores of {} thread(s))",
                self.threads
            );
        }
        if self.errors == 0 {
            let _ = writeln!(out, "  errors      0");
        } else {
            let _ = writeln!(
                out,
                "  errors      {} ({})",
                self.errors,
                self.error_kinds.describe()
            );
            if let Some(first) = &self.first_error {
                let _ = writeln!(out, "  first error {first}");
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "  note        {note}");
        }
        out
    }

    /// The text report's first line: what was run, against what.
    fn write_parameters(&self, out: &mut String) {
        let rate = match self.rate {
            Some(r) => format!(", open loop at {r} msg/s"),
            None => String::new(),
        };
        let pipeline = if self.pipeline > 1 {
            format!(", pipeline {}", self.pipeline)
        } else {
            String::new()
        };
        let runs = if self.runs > 1 {
            format!(" ({} runs merged)", self.runs)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{} against {}{runs}: {} connection(s) x {} B{pipeline}{rate}, {:.2} s measured after {:.2} s warm-up",
            self.mode.as_str(),
            self.addr,
            self.connections,
            self.size,
            self.seconds,
            self.warmup_seconds,
        );
    }

    /// The text report's latency line.
    fn write_latency(&self, out: &mut String) {
        if !self.latency_measured {
            let _ = writeln!(out, "  latency     not measured in stream mode");
            return;
        }
        let _ = writeln!(
            out,
            "  latency     p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (from {}, {} samples)",
            fmt_us(self.p50_us),
            fmt_us(self.p90_us),
            fmt_us(self.p99_us),
            fmt_us(self.p999_us),
            fmt_us(self.max_us),
            if self.latency_from == "due" {
                "when due"
            } else {
                "send"
            },
            self.samples,
        );
    }
}

/// A latency for people: `850.2us`, `12.34ms`, `1.20s`.
pub fn fmt_us(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.1}us")
    } else if us < 1_000_000.0 {
        format!("{:.2}ms", us / 1e3)
    } else {
        format!("{:.2}s", us / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn config(mode: Mode) -> BenchConfig {
        BenchConfig::new("127.0.0.1:7".parse().unwrap())
            .mode(mode)
            .connections(4)
            .size(100)
            .duration(Duration::from_secs(2))
            .clone()
    }

    #[test]
    fn percentiles_come_from_the_histogram() {
        let mut totals = Totals::default();
        // 1000 samples: 1 µs .. 1000 µs.
        for i in 1..=1000u64 {
            totals.hist.record(i * 1000).unwrap();
        }
        totals.messages = 1000;
        totals.bytes = 100_000;
        let r = Report::new(&config(Mode::Pingpong), totals);
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.002 + 0.1;
        assert!(close(r.p50_us, 500.0), "{}", r.p50_us);
        assert!(close(r.p90_us, 900.0), "{}", r.p90_us);
        assert!(close(r.p99_us, 990.0), "{}", r.p99_us);
        assert!(close(r.p999_us, 999.0), "{}", r.p999_us);
        assert!(close(r.max_us, 1000.0), "{}", r.max_us);
        assert!(close(r.min_us, 1.0), "{}", r.min_us);
        assert_eq!(r.samples, 1000);
        assert_eq!(r.msgs_per_sec, 500.0);
        assert_eq!(r.mb_per_sec, 0.05);
        assert_eq!(r.latency_from, "send");
    }

    #[test]
    fn json_has_the_documented_keys() {
        let mut totals = Totals::default();
        totals.hist.record(5_000).unwrap();
        totals.errors.short_echo = 1;
        let r = Report::new(&config(Mode::Churn), totals);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        for key in [
            "mode",
            "connections",
            "size",
            "seconds",
            "messages",
            "msgs_per_sec",
            "mb_per_sec",
            "p50_us",
            "p90_us",
            "p99_us",
            "p999_us",
            "max_us",
            "errors",
            "error_kinds",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["mode"], "churn");
        assert_eq!(v["errors"], 1);
        assert_eq!(v["error_kinds"]["short_echo"], 1);
        assert_eq!(v["error_kinds"]["mismatch"], 0);
        assert_eq!(v["p50_us"], 5.0);
        assert!(r.to_text().contains("short_echo 1"));
    }

    #[test]
    fn stream_mode_reports_no_latency() {
        let totals = Totals {
            bytes: 4_000_000,
            messages: 40_000,
            ..Totals::default()
        };
        let r = Report::new(&config(Mode::Stream), totals);
        assert!(!r.latency_measured);
        assert_eq!((r.p50_us, r.p999_us, r.max_us), (0.0, 0.0, 0.0));
        assert_eq!(r.mb_per_sec, 2.0);
        assert!(r.to_text().contains("not measured"));
    }

    #[test]
    fn latencies_read_well() {
        assert_eq!(fmt_us(850.25), "850.2us");
        assert_eq!(fmt_us(12_340.0), "12.34ms");
        assert_eq!(fmt_us(1_200_000.0), "1.20s");
    }
}
