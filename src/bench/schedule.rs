//! Open loop (`--rate`): when each message of one connection is due, and
//! the [`Pacer`] that wakes it then.

use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::pacer::Pacer;

/// When each message of one connection is due.
pub(crate) struct Schedule {
    base: Instant,
    interval_ns: f64,
    next: u64,
    due: Instant,
    /// Wakes the connection when a message is due; without one (outside
    /// a runtime, or if the system has no timerfd) tokio's timer does,
    /// to the millisecond.
    pacer: Option<Pacer>,
}

impl Schedule {
    /// Messages every `interval`, the first at `base`.
    pub fn new(base: Instant, interval: Duration) -> Schedule {
        Schedule {
            base,
            interval_ns: interval.as_nanos() as f64,
            next: 0,
            due: base,
            pacer: None,
        }
    }

    /// The same schedule, woken to the microsecond (see [`Pacer`]) when
    /// the system allows. Must be called inside a tokio runtime.
    pub fn precise(mut self) -> Schedule {
        self.pacer = Pacer::new().ok();
        self
    }

    /// Waits until the next message is due.
    pub async fn wait(&mut self) {
        let due = self.due;
        match self.pacer.as_mut() {
            Some(pacer) => std::future::poll_fn(|cx| pacer.poll_until(cx, due)).await,
            None => tokio::time::sleep_until(due.into()).await,
        }
    }

    /// When the next message is due.
    pub fn due(&self) -> Instant {
        self.due
    }

    /// Takes the next message's due time and moves on. Computed from the
    /// base each time, so rounding never accumulates into drift.
    pub fn take(&mut self) -> Instant {
        let due = self.due;
        self.next += 1;
        self.due = self.base + Duration::from_nanos((self.next as f64 * self.interval_ns) as u64);
        due
    }

    /// Ready once `due` has passed, woken by the pacer; `None` when there
    /// is no pacer (tokio's timer must wait instead).
    pub(crate) fn poll_pacer(&mut self, cx: &mut Context<'_>, due: Instant) -> Option<Poll<()>> {
        self.pacer.as_mut().map(|pacer| pacer.poll_until(cx, due))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_do_not_drift() {
        let base = Instant::now();
        let mut s = Schedule::new(base, Duration::from_nanos(333));
        for _ in 0..3000 {
            s.take();
        }
        assert_eq!(s.due() - base, Duration::from_nanos(999_000));
    }
}
