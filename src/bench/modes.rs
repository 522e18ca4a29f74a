//! The three modes as loops over connection slots.
//!
//! A slot is one of the `-c` connections (in churn, one of the `-c`
//! concurrent operations). It owns its buffers for the whole run. After an
//! error it counts it, waits a little (so a broken server is not hammered
//! in a tight loop), and reconnects: one bad connection does not end a
//! measurement, and a server that keeps failing keeps being counted.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::Mode;
use super::conn::{Buffers, Connector, Finish, Link, Schedule, Spec, drive};
use super::pattern::Pattern;
use super::report::{ErrorKind, Recorder};
use super::udp;
use super::ws;

/// What every slot of one worker shares.
pub(crate) struct Worker {
    pub rec: Recorder,
    pub connector: Connector,
    pub mode: Mode,
    pub spec: Spec,
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

/// Doubling pauses after errors, from 10 ms up to half a second.
struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_millis(500);

    fn new() -> Backoff {
        Backoff(Self::FIRST)
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

/// Runs one slot until the end of the run. `stream` is its connection made
/// before the start, if that worked.
pub(crate) async fn run_slot(
    worker: Rc<Worker>,
    slot: usize,
    stream: Option<Link>,
    start: Instant,
) {
    match worker.mode {
        Mode::Pingpong | Mode::Stream => persistent(&worker, slot, stream, start).await,
        Mode::Churn => churn(&worker, slot, start).await,
    }
}

/// pingpong and stream: one long-lived connection (or UDP socket),
/// reconnected after errors.
async fn persistent(worker: &Worker, slot: usize, mut stream: Option<Link>, start: Instant) {
    let spec = worker.spec;
    let mut bufs = Buffers::new(&spec);
    let mut schedule = worker.schedule(slot, start);
    let mut backoff = Backoff::new();
    while Instant::now() < spec.end {
        let mut conn = match stream.take() {
            Some(s) => s,
            None => match worker
                .connector
                .connect(worker.connect_timeout, worker.next_id.get())
                .await
            {
                Ok(s) => s,
                Err(e) => {
                    worker.rec.error(e.kind, || e.detail);
                    backoff.wait(spec.end).await;
                    continue;
                }
            },
        };
        let before = worker.rec.bytes();
        let pattern = worker.next_pattern();
        let result = match &mut conn {
            Link::Stream(conn) => {
                drive(
                    &mut **conn,
                    pattern,
                    &spec,
                    &mut bufs,
                    schedule.as_mut(),
                    &worker.rec,
                )
                .await
            }
            Link::Datagram(socket) => {
                udp::drive(
                    socket,
                    pattern,
                    &spec,
                    &mut bufs,
                    schedule.as_mut(),
                    &worker.rec,
                )
                .await
            }
            Link::Ws(link) => {
                ws::drive(
                    link,
                    pattern,
                    &spec,
                    &mut bufs,
                    schedule.as_mut(),
                    &worker.rec,
                )
                .await
            }
        };
        match result {
            Ok(_) => return,
            Err(e) => {
                worker.rec.error(e.kind, || e.detail);
                drop(conn);
                if worker.rec.bytes() > before {
                    backoff.reset();
                }
                backoff.wait(spec.end).await;
            }
        }
    }
}

/// churn: connect, one message there and back, close; again.
async fn churn(worker: &Worker, slot: usize, start: Instant) {
    let spec = worker.spec;
    let mut bufs = Buffers::new(&spec);
    let mut schedule = worker.schedule(slot, start);
    let mut backoff = Backoff::new();
    loop {
        let op_start = match schedule.as_mut() {
            Some(s) => {
                if s.due() >= spec.end {
                    return;
                }
                s.wait().await;
                s.take()
            }
            None => Instant::now(),
        };
        if Instant::now() >= spec.end {
            return;
        }
        let connecting = worker
            .connector
            .connect(worker.connect_timeout, worker.next_id.get());
        let mut conn = match connecting.await {
            Ok(link @ (Link::Stream(_) | Link::Ws(_))) => link,
            Ok(Link::Datagram(_)) => {
                // `BenchConfig::validate` refuses churn over UDP.
                worker.rec.error(ErrorKind::Connect, || {
                    "churn needs a stream transport, not udp://".into()
                });
                return;
            }
            Err(e) => {
                worker.rec.error(e.kind, || e.detail);
                backoff.wait(spec.end).await;
                continue;
            }
        };
        let pattern = worker.next_pattern();
        let result = match &mut conn {
            Link::Stream(s) => drive(&mut **s, pattern, &spec, &mut bufs, None, &worker.rec).await,
            // A handshake, one message and the closing handshake.
            Link::Ws(link) => ws::drive(link, pattern, &spec, &mut bufs, None, &worker.rec).await,
            Link::Datagram(_) => Ok(Finish::Deadline),
        };
        match result {
            Ok(Finish::Limit) => {
                let now = Instant::now();
                worker
                    .rec
                    .completed(now, Some(now.saturating_duration_since(op_start)));
                backoff.reset();
            }
            Ok(Finish::Deadline) => return,
            Err(e) => {
                worker.rec.error(e.kind, || e.detail);
                drop(conn);
                backoff.wait(spec.end).await;
            }
        }
    }
}
