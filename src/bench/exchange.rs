//! What every transport's exchange shares: the plan it follows
//! ([`ExchangePlan`]), the buffers it works in ([`SlotBuffers`]), how it
//! ends ([`ExchangeEnd`], or a [`Failure`]), and the loop itself
//! ([`poll_exchange`]) over a transport's [`ExchangeSides`], with the one
//! timer that wakes it when both sides wait ([`ExchangeTimer`]).
//!
//! An *exchange* is one connection's traffic, from its first message to
//! the end of the run, the message limit (churn: one message), or a
//! failure; a *slot* is one of the `-c` connections, which runs exchange
//! after exchange (reconnecting after failures) and keeps its buffers
//! across them.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::config::{BenchConfig, Mode};
use super::record::FailureKind;
use super::schedule::Schedule;

/// The largest read the bench asks for: big transfers take few reads.
pub(crate) const READ_CHUNK: usize = 64 * 1024;

/// The most of a message generated at once: a larger message is written
/// in windows of this many bytes, so memory stays bounded whatever `-s`
/// says. It holds any UDP datagram whole.
pub(crate) const WRITE_CHUNK: usize = 64 * 1024;

/// How an exchange ended without a failure. (The server's
/// [`Ending`](crate::echo::Ending) is the same idea for the other side of
/// the wire: how an echoed connection ended without an I/O error.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExchangeEnd {
    /// The run is over.
    Deadline,
    /// The message limit was reached (churn: one message per connection).
    LimitReached,
    /// The server closed the connection as its protocol lets it, after a
    /// whole answer (HTTP/1.1 `Connection: close`): the slot reconnects,
    /// and nothing is counted against the server.
    Closed,
}

/// Why an exchange (or a connection attempt) failed: what the run counts,
/// and what it says about the first one.
#[derive(Debug)]
pub(crate) struct Failure {
    pub kind: FailureKind,
    pub detail: String,
}

impl Failure {
    /// A failure of `kind`, described by `detail`.
    pub(crate) fn new(kind: FailureKind, detail: impl Into<String>) -> Failure {
        Failure {
            kind,
            detail: detail.into(),
        }
    }

    /// An I/O error while `what` (sending, receiving): its kind says which
    /// failure it is.
    pub(crate) fn io(what: &str, e: &io::Error) -> Failure {
        let kind = match e.kind() {
            io::ErrorKind::TimedOut => FailureKind::Timeout,
            io::ErrorKind::UnexpectedEof => FailureKind::ShortEcho,
            // Over UDP, the ICMP report that nobody listens on the port.
            io::ErrorKind::ConnectionRefused => FailureKind::Connect,
            _ => FailureKind::Reset,
        };
        Failure::new(kind, format!("{what}: {e}"))
    }
}

/// What every exchange of a run does: the same for every connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExchangePlan {
    /// Bytes per message.
    pub size: usize,
    /// Messages in flight at most (`usize::MAX`: as many as the socket takes).
    pub depth: usize,
    /// Record each message's latency and count it (pingpong); otherwise
    /// only bytes are counted and the caller counts operations.
    pub record_messages: bool,
    /// Stop after this many messages.
    pub limit: Option<u64>,
    /// An owed echo with no traffic for this long is an error.
    pub timeout: Duration,
    /// The end of the run.
    pub end: Instant,
}

impl ExchangePlan {
    /// What holds the next message back, with `sent` sent and `owed`
    /// unanswered: `Some(None)` the limit or the depth, `Some(Some(due))`
    /// the schedule (in open loop) until `due`; `None` when it may go.
    pub(crate) fn held_back(
        &self,
        sent: u64,
        owed: usize,
        schedule: Option<&Schedule>,
        now: Instant,
    ) -> Option<Option<Instant>> {
        if self.limit.is_some_and(|limit| sent >= limit) || owed >= self.depth {
            return Some(None);
        }
        match schedule {
            Some(s) if s.due() > now => Some(Some(s.due())),
            _ => None,
        }
    }

    /// The plan of a run of `config` that ends at `end`.
    pub(crate) fn for_run(config: &BenchConfig, end: Instant) -> ExchangePlan {
        ExchangePlan {
            size: config.size,
            depth: match config.mode {
                Mode::Pingpong => config.pipeline,
                Mode::Stream => usize::MAX,
                Mode::Churn => 1,
            },
            record_messages: config.mode == Mode::Pingpong,
            limit: (config.mode == Mode::Churn).then_some(1),
            timeout: config.timeout,
            end,
        }
    }

    /// For unit tests: `limit` messages of `size` bytes, `depth` in
    /// flight, each recorded; a 5 s timeout, and 30 s to do it in.
    #[cfg(test)]
    pub(crate) fn for_test(size: usize, depth: usize, limit: u64) -> ExchangePlan {
        ExchangePlan {
            size,
            depth,
            record_messages: true,
            limit: Some(limit),
            timeout: Duration::from_secs(5),
            end: Instant::now() + Duration::from_secs(30),
        }
    }
}

/// The buffers of one connection slot, allocated once and reused for
/// every message and every reconnect.
pub(crate) struct SlotBuffers {
    /// The part of the current message being written: all of it, for a
    /// message of up to [`WRITE_CHUNK`] bytes.
    pub write: Vec<u8>,
    pub read: Vec<u8>,
    /// The start time of each message in flight, by message number % depth.
    pub(crate) starts: Vec<Instant>,
}

impl SlotBuffers {
    pub fn new(plan: &ExchangePlan) -> SlotBuffers {
        let in_flight = plan.size.saturating_mul(plan.depth);
        let starts = if plan.record_messages { plan.depth } else { 0 };
        SlotBuffers {
            write: vec![0; plan.size.min(WRITE_CHUNK)],
            // Room for more than is ever owed, so that a read that drains
            // the socket comes back short (see `tcp`); and for anything a
            // broken server sends beyond what it was sent.
            read: vec![0; in_flight.saturating_add(4096).min(READ_CHUNK)],
            starts: vec![Instant::now(); starts],
        }
    }

    /// Notes when message `n` started (its send or due time), if the
    /// plan records messages.
    #[inline]
    pub(crate) fn set_start(&mut self, n: u64, start: Instant) {
        if !self.starts.is_empty() {
            let at = (n % self.starts.len() as u64) as usize;
            self.starts[at] = start;
        }
    }

    /// When message `n` started: the plan must record messages.
    #[inline]
    pub(crate) fn start_of(&self, n: u64) -> Instant {
        self.starts[(n % self.starts.len() as u64) as usize]
    }
}

/// One transport's two sides of an exchange, which [`poll_exchange`]
/// polls in turn over the same `Io`, from a single future: so both wakers
/// are registered, and a message larger than the socket buffers cannot
/// deadlock against a server that stops reading until its echo is read.
pub(crate) trait ExchangeSides<Io: ?Sized> {
    /// The plan the exchange follows.
    fn plan(&self) -> &ExchangePlan;
    /// Writes what may be written. Returns whether anything went out, and
    /// the due time being waited for, if the schedule is what holds it back.
    fn write_side(
        &mut self,
        cx: &mut Context<'_>,
        io: &mut Io,
        now: Instant,
    ) -> Result<(bool, Option<Instant>), Failure>;
    /// Reads and checks what is owed. Returns whether anything came in,
    /// and whether the exchange is over (the message limit is reached,
    /// or [`Self::ending`] says why else).
    fn read_side(&mut self, cx: &mut Context<'_>, io: &mut Io) -> Result<(bool, bool), Failure>;
    /// How the exchange ended, once [`Self::read_side`] said it is over.
    fn ending(&self) -> ExchangeEnd {
        ExchangeEnd::LimitReached
    }
    /// Whether an echo is owed (or a message is half written).
    fn owed(&self) -> bool;
    /// The failure when nothing moved for the timeout with an echo owed.
    fn timed_out(&self) -> Failure;
    /// The exchange's timer, and its schedule in open loop.
    fn timer(&mut self) -> (&mut ExchangeTimer, Option<&mut Schedule>);
}

/// The exchange loop: both sides until neither can move, then the one
/// timer; until the end of the run, the message limit, or a failure.
pub(crate) fn poll_exchange<Io, X>(
    x: &mut X,
    cx: &mut Context<'_>,
    io: &mut Io,
    mut sleep: Pin<&mut tokio::time::Sleep>,
) -> Poll<Result<ExchangeEnd, Failure>>
where
    Io: ?Sized,
    X: ExchangeSides<Io>,
{
    loop {
        let now = Instant::now();
        if now >= x.plan().end {
            return Poll::Ready(Ok(ExchangeEnd::Deadline));
        }
        let (wrote, due) = x.write_side(cx, io, now)?;
        let (read, finished) = x.read_side(cx, io)?;
        if finished {
            return Poll::Ready(Ok(x.ending()));
        }
        if wrote || read {
            continue;
        }
        let owed = x.owed();
        let (timer, schedule) = x.timer();
        match timer.idle(cx, now, owed, due, schedule, sleep.as_mut()) {
            Idle::Again => continue,
            Idle::Pending => return Poll::Pending,
            Idle::TimedOut => return Poll::Ready(Err(x.timed_out())),
        }
    }
}

/// What an exchange loop does next once neither side could move.
enum Idle {
    /// Something is ready (a due time passed, or the timer fired): go round.
    Again,
    /// The timer and the socket will wake the task.
    Pending,
    /// Nothing moved for the timeout with an echo owed.
    TimedOut,
}

/// The one timer of an exchange, and the watch on an owed echo: one
/// `Sleep` serves the end of the run, the open-loop due time and the
/// timeout, re-armed only when its target moves.
pub(crate) struct ExchangeTimer {
    /// An owed echo with no traffic for this long is an error.
    timeout: Duration,
    /// The end of the run.
    end: Instant,
    /// The last time anything moved either way.
    last_progress: Instant,
    /// When to look at `last_progress` again for the timeout.
    timeout_check: Instant,
}

impl ExchangeTimer {
    /// A timer for an exchange of `plan` that starts now.
    pub(crate) fn new(plan: &ExchangePlan) -> ExchangeTimer {
        let now = Instant::now();
        ExchangeTimer {
            timeout: plan.timeout,
            end: plan.end,
            last_progress: now,
            timeout_check: now + plan.timeout,
        }
    }

    /// Something moved at `now`.
    #[inline]
    pub(crate) fn progressed(&mut self, now: Instant) {
        self.last_progress = now;
    }

    /// Both sides wait: on the socket, on the pipeline, or on the schedule
    /// (for `due`, when that is what holds the writer back). Arms `sleep`
    /// for the earliest thing to look at, or says that the echo `owed`
    /// timed out.
    fn idle(
        &mut self,
        cx: &mut Context<'_>,
        now: Instant,
        owed: bool,
        due: Option<Instant>,
        schedule: Option<&mut Schedule>,
        mut sleep: Pin<&mut tokio::time::Sleep>,
    ) -> Idle {
        if owed && now >= self.timeout_check {
            let quiet = now.saturating_duration_since(self.last_progress);
            if quiet >= self.timeout {
                return Idle::TimedOut;
            }
            self.timeout_check = self.last_progress + self.timeout;
        }
        let mut wake = self.end;
        if let (Some(due), Some(schedule)) = (due, schedule) {
            match schedule.poll_pacer(cx, due) {
                Some(Poll::Ready(())) => return Idle::Again,
                Some(Poll::Pending) => {}
                None => wake = wake.min(due),
            }
        }
        if owed {
            wake = wake.min(self.timeout_check);
        } else if self.timeout_check <= now {
            // Nothing owed: the next wait for an echo starts the clock.
            self.timeout_check = now + self.timeout;
        }
        let wake = tokio::time::Instant::from_std(wake);
        if sleep.deadline() != wake {
            sleep.as_mut().reset(wake);
        }
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Idle::Again,
            Poll::Pending => Idle::Pending,
        }
    }
}
