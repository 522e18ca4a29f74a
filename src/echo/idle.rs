//! The echo loops' idle timeout.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use tokio::time::Sleep;

/// The idle timeout, cheap enough for the hot path: traffic only stores the
/// time (`touch`), and the one timer per connection is re-armed only when
/// it fires early, instead of being reset on every chunk. Without a
/// timeout it is a null pointer, so it costs an idle connection nothing.
///
/// "No traffic" means none either way, including what the kernel moves on
/// its own: a peer that reads slowly drains a send buffer of megabytes
/// long before the socket turns writable again, and is live all the same.
/// So when the timer is due, it compares the kernel's queues (sent but not
/// taken, received but not read) with the last look at them; a change
/// counts as traffic. Empty queues mean nothing can be moving: idle at
/// once. With data queued and no earlier look, the look is taken then and
/// judged one timeout later, so such a connection is closed after between
/// one and two timeouts of silence.
pub(super) struct IdleTimer(Option<Box<IdleState>>);

/// The kernel's queues of a socket: (unsent, unread) bytes; `None` when
/// they cannot be read.
pub(super) type Queues = Option<(usize, usize)>;

struct IdleState {
    timeout: Duration,
    last: Instant,
    /// The kernel's queues when last looked at, since the last `touch`.
    queues: Queues,
    sleep: Pin<Box<Sleep>>,
}

impl IdleTimer {
    /// The timeout, if there is one.
    pub(super) fn timeout(&self) -> Option<Duration> {
        self.0.as_ref().map(|state| state.timeout)
    }

    pub(super) fn new(timeout: Option<Duration>) -> IdleTimer {
        IdleTimer(timeout.map(|timeout| {
            Box::new(IdleState {
                timeout,
                last: Instant::now(),
                queues: None,
                sleep: Box::pin(tokio::time::sleep(timeout)),
            })
        }))
    }

    pub(super) fn touch(&mut self) {
        if let Some(state) = &mut self.0 {
            state.last = Instant::now();
            state.queues = None;
        }
    }

    /// Takes a look at the kernel's queues now (only with a timeout: it
    /// costs system calls).
    pub(super) fn note_queues(&mut self, queues: impl FnOnce() -> Queues) {
        if let Some(state) = &mut self.0 {
            state.queues = queues();
        }
    }

    /// Resolves once nothing has moved for the timeout; never without one.
    #[cfg(feature = "tls")]
    pub(super) async fn expired(&mut self, mut queues: impl FnMut() -> Queues) {
        std::future::poll_fn(|cx| self.poll_expired(cx, &mut queues)).await;
    }

    /// `queues` reads the kernel's queues, only when the timer is due.
    pub(super) fn poll_expired(
        &mut self,
        cx: &mut Context<'_>,
        queues: impl FnMut() -> Queues,
    ) -> Poll<()> {
        let Some(state) = &mut self.0 else {
            return Poll::Pending;
        };
        let mut queues = queues;
        loop {
            ready!(state.sleep.as_mut().poll(cx));
            let now = Instant::now();
            let mut deadline = state.last + state.timeout;
            if now >= deadline {
                match queues() {
                    None | Some((0, 0)) => return Poll::Ready(()),
                    seen if seen == state.queues => return Poll::Ready(()),
                    seen => {
                        // Moved since the last look, or never looked at:
                        // judge again one timeout from now.
                        state.queues = seen;
                        state.last = now;
                        deadline = now + state.timeout;
                    }
                }
            }
            state.sleep.as_mut().reset(deadline.into());
        }
    }
}
