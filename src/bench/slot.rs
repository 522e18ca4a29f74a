//! One connection slot's loop, for each of the three modes.
//!
//! A slot is one of the `-c` connections (in churn, one of the `-c`
//! concurrent operations). It owns its buffers for the whole run. After an
//! error it counts it, waits a little (so a broken server is not hammered
//! in a tight loop), and reconnects: one bad connection does not end a
//! measurement, and a server that keeps failing keeps being counted.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::config::Mode;
use super::connect::{Connection, Connector};
use super::exchange::{ExchangeEnd, ExchangePlan, Failure, SlotBuffers};
use super::pattern::Pattern;
use super::record::{FailureKind, Recorder};
use super::schedule::Schedule;

/// One worker thread's state, which every one of its slots shares.
pub(crate) struct Worker {
    pub rec: Recorder,
    pub connector: Connector,
    pub mode: Mode,
    pub plan: ExchangePlan,
    /// Per-connection interval between messages, in open loop.
    pub interval: Option<Duration>,
    /// Total slots in the run, to stagger open-loop schedules.
    pub slots: usize,
    pub connect_timeout: Duration,
    /// Connection ids handed out by this worker: `n * threads + index`,
    /// unique across the run, so every connection gets its own pattern.
    pub next_id: Cell<u64>,
    pub id_step: u64,
}

impl Worker {
    /// A new connection, its source picked by the next connection id.
    async fn connect(&self) -> Result<Connection, Failure> {
        self.connector
            .connect(self.connect_timeout, self.next_id.get())
            .await
    }

    /// The pattern of the next connection: its own, by its id.
    fn next_pattern(&self) -> Pattern {
        let id = self.next_id.get();
        self.next_id.set(id + self.id_step);
        Pattern::new(id)
    }

    /// Slot `slot`'s schedule: the run's total rate spread evenly over the
    /// slots, each offset by its share of one interval.
    fn schedule(&self, slot: usize, start: Instant) -> Option<Schedule> {
        self.interval.map(|interval| {
            let offset = interval.mul_f64(slot as f64 / self.slots as f64);
            Schedule::new(start + offset, interval).precise()
        })
    }
}

/// Doubling pauses after errors, from 10 ms up to half a second, so that
/// a broken server is not hammered in a tight loop.
struct ReconnectBackoff(Duration);

impl ReconnectBackoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_millis(500);

    fn new() -> ReconnectBackoff {
        ReconnectBackoff(Self::FIRST)
    }

    /// Waits, but never past the end of the run.
    async fn wait(&mut self, end: Instant) {
        let until = (Instant::now() + self.0).min(end);
        tokio::time::sleep_until(until.into()).await;
        self.0 = (self.0 * 2).min(Self::MAX);
    }

    fn reset(&mut self) {
        self.0 = Self::FIRST;
    }
}

/// Runs one slot until the end of the run. `connection` is its
/// connection made before the start, if that worked.
pub(crate) async fn run(
    worker: Rc<Worker>,
    slot: usize,
    connection: Option<Connection>,
    start: Instant,
) {
    match worker.mode {
        Mode::Pingpong | Mode::Stream => persistent(&worker, slot, connection, start).await,
        Mode::Churn => churn(&worker, slot, start).await,
    }
}

/// pingpong and stream: one long-lived connection (or UDP socket),
/// reconnected after errors.
async fn persistent(worker: &Worker, slot: usize, mut opened: Option<Connection>, start: Instant) {
    let plan = worker.plan;
    let mut bufs = SlotBuffers::new(&plan);
    let mut schedule = worker.schedule(slot, start);
    let mut backoff = ReconnectBackoff::new();
    while Instant::now() < plan.end {
        let mut conn = match opened.take() {
            Some(c) => c,
            None => match worker.connect().await {
                Ok(c) => c,
                Err(e) => {
                    worker.rec.error(e.kind, || e.detail);
                    backoff.wait(plan.end).await;
                    continue;
                }
            },
        };
        let before = worker.rec.bytes();
        let pattern = worker.next_pattern();
        let result = conn
            .drive(pattern, &plan, &mut bufs, schedule.as_mut(), &worker.rec)
            .await;
        match result {
            Ok(ExchangeEnd::Closed) => backoff.reset(),
            Ok(_) => return,
            Err(e) => {
                worker.rec.error(e.kind, || e.detail);
                drop(conn);
                if worker.rec.bytes() > before {
                    backoff.reset();
                }
                backoff.wait(plan.end).await;
            }
        }
    }
}

/// churn: connect, one message there and back, close; again.
async fn churn(worker: &Worker, slot: usize, start: Instant) {
    let plan = worker.plan;
    let mut bufs = SlotBuffers::new(&plan);
    let mut schedule = worker.schedule(slot, start);
    let mut backoff = ReconnectBackoff::new();
    loop {
        let op_start = match schedule.as_mut() {
            Some(s) => {
                if s.due() >= plan.end {
                    return;
                }
                s.wait().await;
                s.take()
            }
            None => Instant::now(),
        };
        if Instant::now() >= plan.end {
            return;
        }
        let mut conn = match worker.connect().await {
            Ok(Connection::Datagram(_)) => {
                // `BenchConfig::validate` refuses churn over UDP.
                worker.rec.error(FailureKind::Connect, || {
                    "churn needs a stream transport, not udp://".into()
                });
                return;
            }
            Ok(conn) => conn,
            Err(e) => {
                worker.rec.error(e.kind, || e.detail);
                backoff.wait(plan.end).await;
                continue;
            }
        };
        // Over a WebSocket: a handshake, one message and the closing
        // handshake.
        let pattern = worker.next_pattern();
        let result = conn
            .drive(pattern, &plan, &mut bufs, None, &worker.rec)
            .await;
        match result {
            Ok(ExchangeEnd::LimitReached | ExchangeEnd::Closed) => {
                let now = Instant::now();
                worker
                    .rec
                    .completed(now, Some(now.saturating_duration_since(op_start)));
                backoff.reset();
            }
            Ok(ExchangeEnd::Deadline) => return,
            Err(e) => {
                worker.rec.error(e.kind, || e.detail);
                drop(conn);
                backoff.wait(plan.end).await;
            }
        }
    }
}
