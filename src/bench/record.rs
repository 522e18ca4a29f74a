//! What a run records as it goes: each worker thread's `Recorder`
//! (latencies, counts, errors by [`FailureKind`]), the `LiveCounters`
//! the progress display reads, and the [`Totals`] the workers merge at
//! the end. The [`Report`](super::report::Report) is made from those.
//!
//! Latencies are recorded in nanoseconds into an HDR histogram (3
//! significant digits, so every percentile is within 0.1% of the true
//! value), one for each second of the measured window: when a message
//! completes past the end of the current second, that second's histogram
//! is kept (a copy sized to its largest latency, tens of KiB) and added to
//! the whole run's, and the same allocation is reset for the next second.
//! So recording a message stays one comparison and one increment; only the
//! first message of each second pays for the copy. Messages and bytes count only inside the measured window,
//! after the warm-up; errors count from the first byte, warm-up included,
//! because a wrong byte is wrong whenever it comes back.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The length of each interval of the histogram over time.
const SECOND: Duration = Duration::from_secs(1);

/// The kinds of error a run tells apart: each failure the bench counts
/// (in the report's `error_kinds`) is one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
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
    /// Over `http://` and `https://`: a response whose status is not 2xx.
    Status,
}

impl FailureKind {
    /// The name used in `error_kinds` and in the text report.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Connect => "connect",
            FailureKind::Reset => "reset",
            FailureKind::Timeout => "timeout",
            FailureKind::Mismatch => "mismatch",
            FailureKind::ShortEcho => "short_echo",
            FailureKind::Loss => "loss",
            FailureKind::Status => "status",
        }
    }
}

/// How many errors of each [`FailureKind`] a run saw (the report's
/// `error_kinds`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorCounts {
    /// See [`FailureKind::Connect`].
    pub connect: u64,
    /// See [`FailureKind::Reset`].
    pub reset: u64,
    /// See [`FailureKind::Timeout`].
    pub timeout: u64,
    /// See [`FailureKind::Mismatch`].
    pub mismatch: u64,
    /// See [`FailureKind::ShortEcho`].
    pub short_echo: u64,
    /// See [`FailureKind::Loss`].
    pub loss: u64,
    /// See [`FailureKind::Status`].
    pub status: u64,
}

impl ErrorCounts {
    /// All errors, whatever their kind.
    pub fn total(&self) -> u64 {
        self.connect
            + self.reset
            + self.timeout
            + self.mismatch
            + self.short_echo
            + self.loss
            + self.status
    }

    fn slot(&mut self, kind: FailureKind) -> &mut u64 {
        match kind {
            FailureKind::Connect => &mut self.connect,
            FailureKind::Reset => &mut self.reset,
            FailureKind::Timeout => &mut self.timeout,
            FailureKind::Mismatch => &mut self.mismatch,
            FailureKind::ShortEcho => &mut self.short_echo,
            FailureKind::Loss => &mut self.loss,
            FailureKind::Status => &mut self.status,
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
        self.status += other.status;
    }

    /// `mismatch 2, short_echo 1`: the kinds that occurred.
    pub fn describe(&self) -> String {
        let kinds = [
            (FailureKind::Connect, self.connect),
            (FailureKind::Reset, self.reset),
            (FailureKind::Timeout, self.timeout),
            (FailureKind::Mismatch, self.mismatch),
            (FailureKind::ShortEcho, self.short_echo),
            (FailureKind::Loss, self.loss),
            (FailureKind::Status, self.status),
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
pub(crate) struct LiveCounters {
    /// Messages completed inside the measured window.
    pub messages: AtomicU64,
    /// Bytes echoed inside the measured window.
    pub bytes: AtomicU64,
    /// Errors so far.
    pub errors: AtomicU64,
}

/// The measured window: from the end of the warm-up to the end of the run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MeasuredWindow {
    pub from: Instant,
    pub to: Instant,
}

impl MeasuredWindow {
    fn contains(&self, t: Instant) -> bool {
        t >= self.from && t <= self.to
    }
}

/// `hist` copied into a histogram just big enough for its values (a
/// full-range one is about 250 KiB; a second's latencies need far less).
fn compact(hist: &Histogram<u64>) -> Histogram<u64> {
    let mut small =
        Histogram::new_with_bounds(1, hist.max().max(2), 3).unwrap_or_else(|_| new_histogram());
    small.auto(true);
    // Auto-resizing: adding cannot run out of range.
    let _ = small.add(hist);
    small
}

/// One worker thread's live figures, shared by its connection tasks.
///
/// Single-threaded by design (`Cell`/`RefCell`): each worker runs its
/// connections on one current-thread runtime, so recording a message is
/// a few plain additions and one histogram increment.
pub(crate) struct Recorder {
    window: Cell<MeasuredWindow>,
    /// The latencies of the current second of the window.
    hist: RefCell<Histogram<u64>>,
    /// When the current second ends.
    next_second: Cell<Instant>,
    /// The seconds before it, each its own histogram, in order.
    seconds: RefCell<Vec<Histogram<u64>>>,
    /// The seconds before it, added up.
    whole: RefCell<Histogram<u64>>,
    messages: Cell<u64>,
    bytes: Cell<u64>,
    /// Messages and bytes not yet added to `live`: the workers share it,
    /// so each adds to it only now and then, never once per message (a
    /// shared cache line written by every thread would serialise them).
    unshared: Cell<(u64, u64)>,
    errors: Cell<ErrorCounts>,
    first_error: RefCell<Option<String>>,
    live: Arc<LiveCounters>,
}

impl Recorder {
    pub fn new(live: Arc<LiveCounters>) -> Recorder {
        let now = Instant::now();
        Recorder {
            window: Cell::new(MeasuredWindow { from: now, to: now }),
            hist: RefCell::new(new_histogram()),
            next_second: Cell::new(now + SECOND),
            seconds: RefCell::new(Vec::new()),
            whole: RefCell::new(new_histogram()),
            messages: Cell::new(0),
            bytes: Cell::new(0),
            unshared: Cell::new((0, 0)),
            errors: Cell::new(ErrorCounts::default()),
            first_error: RefCell::new(None),
            live,
        }
    }

    /// Sets the measured window: only what happens inside it counts, and
    /// its seconds are recorded apart.
    pub fn set_window(&self, window: MeasuredWindow) {
        self.window.set(window);
        self.next_second.set(window.from + SECOND);
    }

    /// For unit tests: a recorder whose window opens now and lasts an
    /// hour, so that everything a test does counts.
    #[cfg(test)]
    pub(crate) fn counting_from_now() -> Recorder {
        let rec = Recorder::new(Arc::new(LiveCounters::default()));
        let now = Instant::now();
        rec.set_window(MeasuredWindow {
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
        if now >= self.next_second.get() {
            self.next_seconds(now);
        }
        if let Some(latency) = latency {
            let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
            let mut hist = self.hist.borrow_mut();
            if hist.record(ns.max(1)).is_err() {
                hist.saturating_record(ns);
            }
        }
    }

    /// Ends the current second, and any after it that saw nothing, up to
    /// the one `now` is in (a message a task timed just before the turn
    /// of a second may land in the next one: a few microseconds early).
    #[cold]
    fn next_seconds(&self, now: Instant) {
        let mut next = self.next_second.get();
        while now >= next {
            self.end_second();
            next += SECOND;
        }
        self.next_second.set(next);
    }

    /// Keeps the current second's histogram and starts the next one.
    fn end_second(&self) {
        let mut hist = self.hist.borrow_mut();
        self.seconds.borrow_mut().push(compact(&hist));
        // Both auto-resize: adding cannot run out of range.
        let _ = self.whole.borrow_mut().add(&*hist);
        hist.reset();
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
    pub fn error(&self, kind: FailureKind, detail: impl FnOnce() -> String) {
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

    /// This worker's totals, to merge with the others', once the run is
    /// over: every second of the window so far has its histogram, the
    /// ones in which nothing completed too.
    pub fn totals(&self) -> Totals {
        let (messages, bytes) = self.unshared.get();
        self.flush_live(messages, bytes);
        let end = Instant::now().min(self.window.get().to);
        let mut next = self.next_second.get();
        self.end_second();
        while next < end {
            self.end_second();
            next += SECOND;
        }
        self.next_second.set(next + SECOND);
        Totals {
            hist: self.whole.borrow().clone(),
            seconds: self.seconds.borrow().clone(),
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
    /// The same latencies, one histogram for each second of the measured
    /// window, in order (the last may be shorter than a second); empty
    /// when not recorded that way.
    pub seconds: Vec<Histogram<u64>>,
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
            seconds: Vec::new(),
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
        for (i, second) in other.seconds.into_iter().enumerate() {
            match self.seconds.get_mut(i) {
                Some(mine) => {
                    let _ = mine.add(&second);
                }
                None => self.seconds.push(second),
            }
        }
        self.messages += other.messages;
        self.bytes += other.bytes;
        self.errors.add(&other.errors);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn each_second_of_the_window_has_its_histogram() {
        let rec = Recorder::new(Arc::new(LiveCounters::default()));
        let to = Instant::now();
        let from = to - Duration::from_millis(4500);
        rec.set_window(MeasuredWindow { from, to });
        let ms = |n: u64| from + Duration::from_millis(n);
        rec.completed(ms(10), Some(Duration::from_micros(5)));
        rec.completed(ms(999), Some(Duration::from_micros(6)));
        rec.completed(ms(1000), Some(Duration::from_micros(7)));
        // Nothing in the third second; the fourth's comes after the stall.
        rec.completed(ms(3200), Some(Duration::from_millis(1200)));
        let t = rec.totals();
        let counts: Vec<u64> = t.seconds.iter().map(|h| h.len()).collect();
        // Five seconds, the last half of one, the empty ones too.
        assert_eq!(counts, [2, 1, 0, 1, 0]);
        assert_eq!(t.hist.len(), 4);
        assert_eq!(t.seconds[3].max() / 1_000_000, 1200);
        // Workers' seconds add up second by second.
        let mut all = t.clone();
        all.merge(t);
        let counts: Vec<u64> = all.seconds.iter().map(|h| h.len()).collect();
        assert_eq!(counts, [4, 2, 0, 2, 0]);
        assert_eq!(all.hist.len(), 8);
    }

    #[test]
    fn the_window_decides_what_counts() {
        let live = Arc::new(LiveCounters::default());
        let rec = Recorder::new(live.clone());
        let t0 = Instant::now();
        let from = t0 + Duration::from_secs(1);
        rec.set_window(MeasuredWindow {
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
        rec.error(FailureKind::Timeout, || "late".into()); // errors always count
        rec.error(FailureKind::Timeout, || {
            unreachable!("only the first is described")
        });
        let t = rec.totals();
        assert_eq!((t.messages, t.bytes, t.hist.len()), (1, 10, 1));
        assert_eq!(t.errors.timeout, 2);
        assert_eq!(t.first_error.as_deref(), Some("late"));
        assert_eq!(live.messages.load(Ordering::Relaxed), 1);
        assert_eq!(live.errors.load(Ordering::Relaxed), 2);
    }
}
