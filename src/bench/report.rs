//! What a run measured: the live `Recorder` each worker thread fills, and
//! the [`Report`] they merge into, printed as text or as one JSON object.
//!
//! Latencies are recorded in nanoseconds into an HDR histogram (3
//! significant digits, so every percentile is within 0.1% of the true
//! value) and reported in microseconds. Messages and bytes count only
//! inside the measured window, after the warm-up; errors count from the
//! first byte, warm-up included, because a wrong byte is wrong whenever it
//! comes back.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::{BenchConfig, Mode};

/// The kinds of error a run tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A connection could not be made (refused, timed out, out of descriptors).
    Connect,
    /// An established connection failed: reset, broken pipe, or any other
    /// I/O error mid-run.
    Reset,
    /// An echo was owed and nothing moved for the timeout.
    Timeout,
    /// A byte came back different from the one sent.
    Mismatch,
    /// The server closed the connection before echoing everything (over
    /// UDP: a reply shorter than its datagram).
    ShortEcho,
    /// Over UDP: a datagram whose reply did not come within the timeout.
    Loss,
}

impl ErrorKind {
    /// The name used in `error_kinds` and in the text report.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Reset => "reset",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Mismatch => "mismatch",
            ErrorKind::ShortEcho => "short_echo",
            ErrorKind::Loss => "loss",
        }
    }
}

/// How many errors of each kind a run saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorCounts {
    /// See [`ErrorKind::Connect`].
    pub connect: u64,
    /// See [`ErrorKind::Reset`].
    pub reset: u64,
    /// See [`ErrorKind::Timeout`].
    pub timeout: u64,
    /// See [`ErrorKind::Mismatch`].
    pub mismatch: u64,
    /// See [`ErrorKind::ShortEcho`].
    pub short_echo: u64,
    /// See [`ErrorKind::Loss`].
    pub loss: u64,
}

impl ErrorCounts {
    /// All errors, whatever their kind.
    pub fn total(&self) -> u64 {
        self.connect + self.reset + self.timeout + self.mismatch + self.short_echo + self.loss
    }

    fn slot(&mut self, kind: ErrorKind) -> &mut u64 {
        match kind {
            ErrorKind::Connect => &mut self.connect,
            ErrorKind::Reset => &mut self.reset,
            ErrorKind::Timeout => &mut self.timeout,
            ErrorKind::Mismatch => &mut self.mismatch,
            ErrorKind::ShortEcho => &mut self.short_echo,
            ErrorKind::Loss => &mut self.loss,
        }
    }

    /// Adds another run's counts to these.
    pub fn add(&mut self, other: &ErrorCounts) {
        self.connect += other.connect;
        self.reset += other.reset;
        self.timeout += other.timeout;
        self.mismatch += other.mismatch;
        self.short_echo += other.short_echo;
        self.loss += other.loss;
    }

    /// `mismatch 2, short_echo 1`: the kinds that occurred.
    pub fn describe(&self) -> String {
        let kinds = [
            (ErrorKind::Connect, self.connect),
            (ErrorKind::Reset, self.reset),
            (ErrorKind::Timeout, self.timeout),
            (ErrorKind::Mismatch, self.mismatch),
            (ErrorKind::ShortEcho, self.short_echo),
            (ErrorKind::Loss, self.loss),
        ];
        let mut out = String::new();
        for (kind, n) in kinds.into_iter().filter(|(_, n)| *n > 0) {
            if !out.is_empty() {
                out.push_str(", ");
            }
            let _ = write!(out, "{} {n}", kind.as_str());
        }
        out
    }
}

/// A new latency histogram: nanoseconds from 1 ns to an hour, 3
/// significant digits. Its whole range is allocated up front (about
/// 250 KiB), so recording never allocates; longer values still fit, as
/// it grows if it must.
pub fn new_histogram() -> Histogram<u64> {
    const HOUR_NS: u64 = 3_600_000_000_000;
    let mut hist = Histogram::new_with_bounds(1, HOUR_NS, 3)
        .or_else(|_| Histogram::new(3))
        .unwrap_or_else(|_| Histogram::new(2).expect("2 significant digits are valid"));
    hist.auto(true);
    hist
}

/// Figures every worker shares with the progress display.
#[derive(Debug, Default)]
pub(crate) struct Live {
    /// Messages completed inside the measured window.
    pub messages: AtomicU64,
    /// Bytes echoed inside the measured window.
    pub bytes: AtomicU64,
    /// Errors so far.
    pub errors: AtomicU64,
}

/// The measured window: from the end of the warm-up to the end of the run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub from: Instant,
    pub to: Instant,
}

impl Window {
    fn contains(&self, t: Instant) -> bool {
        t >= self.from && t <= self.to
    }
}

/// One worker thread's live figures, shared by its connection tasks.
///
/// Single-threaded by design (`Cell`/`RefCell`): each worker runs its
/// connections on one current-thread runtime, so recording a message is
/// a few plain additions and one histogram increment.
pub(crate) struct Recorder {
    window: Cell<Window>,
    hist: RefCell<Histogram<u64>>,
    messages: Cell<u64>,
    bytes: Cell<u64>,
    /// Messages and bytes not yet added to `live`: the workers share it,
    /// so each adds to it only now and then, never once per message (a
    /// shared cache line written by every thread would serialise them).
    unshared: Cell<(u64, u64)>,
    errors: Cell<ErrorCounts>,
    first_error: RefCell<Option<String>>,
    live: Arc<Live>,
}

impl Recorder {
    pub fn new(live: Arc<Live>) -> Recorder {
        let now = Instant::now();
        Recorder {
            window: Cell::new(Window { from: now, to: now }),
            hist: RefCell::new(new_histogram()),
            messages: Cell::new(0),
            bytes: Cell::new(0),
            unshared: Cell::new((0, 0)),
            errors: Cell::new(ErrorCounts::default()),
            first_error: RefCell::new(None),
            live,
        }
    }

    pub fn set_window(&self, window: Window) {
        self.window.set(window);
    }

    /// For unit tests: a recorder whose window opens now and lasts an
    /// hour, so that everything a test does counts.
    #[cfg(test)]
    pub(crate) fn counting_from_now() -> Recorder {
        let rec = Recorder::new(Arc::new(Live::default()));
        let now = Instant::now();
        rec.set_window(Window {
            from: now,
            to: now + Duration::from_secs(3600),
        });
        rec
    }

    /// `n` bytes of echo arrived, checked, at `now`.
    #[inline]
    pub fn received(&self, now: Instant, n: usize) {
        if self.window.get().contains(now) {
            self.bytes.set(self.bytes.get() + n as u64);
            let (m, b) = self.unshared.get();
            self.share((m, b + n as u64));
        }
    }

    /// Adds what `live` has not seen yet to it once there is enough of it
    /// (a few hundred messages, or a megabyte); otherwise keeps it back.
    #[inline]
    fn share(&self, (messages, bytes): (u64, u64)) {
        if messages >= 256 || bytes >= 1 << 20 {
            self.flush_live(messages, bytes);
        } else {
            self.unshared.set((messages, bytes));
        }
    }

    fn flush_live(&self, messages: u64, bytes: u64) {
        self.live.messages.fetch_add(messages, Ordering::Relaxed);
        self.live.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.unshared.set((0, 0));
    }

    /// A message (or churn operation) completed at `now`; `latency` is
    /// `None` where latency is not measured (stream mode).
    #[inline]
    pub fn completed(&self, now: Instant, latency: Option<Duration>) {
        if !self.window.get().contains(now) {
            return;
        }
        self.messages.set(self.messages.get() + 1);
        let (m, b) = self.unshared.get();
        self.share((m + 1, b));
        if let Some(latency) = latency {
            let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
            let mut hist = self.hist.borrow_mut();
            if hist.record(ns.max(1)).is_err() {
                hist.saturating_record(ns);
            }
        }
    }

    /// Stream mode counts messages from bytes, at the end.
    pub fn set_messages(&self, n: u64) {
        self.messages.set(n);
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.get()
    }

    /// Counts an error; `detail` is formatted only for the first one, which
    /// the report shows so the user sees a concrete example.
    ///
    /// With debug logging (`-v`), every error is logged as it happens.
    pub fn error(&self, kind: ErrorKind, detail: impl FnOnce() -> String) {
        let mut errors = self.errors.get();
        *errors.slot(kind) += 1;
        self.errors.set(errors);
        self.live.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.borrow_mut();
        let logged = tracing::enabled!(tracing::Level::DEBUG);
        if first.is_none() || logged {
            let detail = detail();
            if logged {
                tracing::debug!(name = "echo-bench", "{}: {detail}", kind.as_str());
            }
            first.get_or_insert(detail);
        }
    }

    /// This worker's totals, to merge with the others'.
    pub fn totals(&self) -> Totals {
        let (messages, bytes) = self.unshared.get();
        self.flush_live(messages, bytes);
        Totals {
            hist: self.hist.borrow().clone(),
            messages: self.messages.get(),
            bytes: self.bytes.get(),
            errors: self.errors.get(),
            first_error: self.first_error.borrow().clone(),
        }
    }
}

/// What one worker (or all of them, merged) measured.
#[derive(Debug, Clone)]
pub struct Totals {
    /// Latencies in nanoseconds.
    pub hist: Histogram<u64>,
    /// Messages completed in the measured window.
    pub messages: u64,
    /// Bytes echoed back, checked, in the measured window.
    pub bytes: u64,
    /// Errors by kind, for the whole run.
    pub errors: ErrorCounts,
    /// A description of the first error seen.
    pub first_error: Option<String>,
}

impl Default for Totals {
    fn default() -> Totals {
        Totals {
            hist: new_histogram(),
            messages: 0,
            bytes: 0,
            errors: ErrorCounts::default(),
            first_error: None,
        }
    }
}

impl Totals {
    /// Adds another worker's figures to these.
    pub fn merge(&mut self, other: Totals) {
        // Both histograms auto-resize, so adding cannot run out of range.
        let _ = self.hist.add(&other.hist);
        self.messages += other.messages;
        self.bytes += other.bytes;
        self.errors.add(&other.errors);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

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
}

fn one() -> usize {
    1
}

/// Nanoseconds to microseconds, to 0.1 µs.
fn us(ns: u64) -> f64 {
    (ns as f64 / 100.0).round() / 10.0
}

fn round2(x: f64) -> f64 {
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
        if self.latency_measured {
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
        } else {
            let _ = writeln!(out, "  latency     not measured in stream mode");
        }
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
    use crate::bench::BenchConfig;

    fn config(mode: Mode) -> BenchConfig {
        let mut c = BenchConfig::new("127.0.0.1:7".parse().unwrap());
        c.mode = mode;
        c.connections = 4;
        c.size = 100;
        c.duration = Duration::from_secs(2);
        c
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
    fn merging_adds_everything() {
        let mut a = Totals::default();
        a.hist.record(10).unwrap();
        a.messages = 1;
        a.errors.mismatch = 2;
        a.first_error = Some("first".into());
        let mut b = Totals::default();
        b.hist.record(1_000_000).unwrap();
        b.messages = 3;
        b.errors.reset = 1;
        b.first_error = Some("second".into());
        a.merge(b);
        assert_eq!(a.hist.len(), 2);
        assert_eq!(a.messages, 4);
        assert_eq!(a.errors.total(), 3);
        assert_eq!(a.errors.describe(), "reset 1, mismatch 2");
        assert_eq!(a.first_error.as_deref(), Some("first"));
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
    fn the_window_decides_what_counts() {
        let live = Arc::new(Live::default());
        let rec = Recorder::new(live.clone());
        let t0 = Instant::now();
        let from = t0 + Duration::from_secs(1);
        rec.set_window(Window {
            from,
            to: from + Duration::from_secs(1),
        });
        rec.completed(t0, Some(Duration::from_millis(1))); // warm-up
        rec.received(t0, 10);
        rec.completed(from, Some(Duration::from_millis(2)));
        rec.received(from, 10);
        rec.completed(
            from + Duration::from_secs(2),
            Some(Duration::from_millis(3)),
        ); // after
        rec.error(ErrorKind::Timeout, || "late".into()); // errors always count
        rec.error(ErrorKind::Timeout, || {
            unreachable!("only the first is described")
        });
        let t = rec.totals();
        assert_eq!((t.messages, t.bytes, t.hist.len()), (1, 10, 1));
        assert_eq!(t.errors.timeout, 2);
        assert_eq!(t.first_error.as_deref(), Some("late"));
        assert_eq!(live.messages.load(Ordering::Relaxed), 1);
        assert_eq!(live.errors.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn latencies_read_well() {
        assert_eq!(fmt_us(850.25), "850.2us");
        assert_eq!(fmt_us(12_340.0), "12.34ms");
        assert_eq!(fmt_us(1_200_000.0), "1.20s");
    }
}
