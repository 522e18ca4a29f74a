//! The client's timeouts: how long it waits without progress once bytes
//! are owed.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::error::ClientError;

/// How long the client waits without progress once bytes are owed: for
/// the server to take what is left to send, and for the echo of what it
/// was sent (or its close, once everything is back). Each wait starts
/// again whenever a byte moves that way.
pub(super) struct Waits {
    timeout: Duration,
    /// Since when a write to the server has been waiting.
    pub(super) write: Option<Instant>,
    /// Since when an echo (or the end of stream) has been owed without a
    /// byte of it arriving.
    pub(super) echo: Option<Instant>,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Waits {
    pub(super) fn new(timeout: Duration) -> Waits {
        Waits {
            timeout,
            write: None,
            echo: None,
            sleep: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    /// Nothing moved: notes what is waited for now (`writing`: for the
    /// server to take more; `owed`: for its echo, or its close), and polls
    /// the timer, as [`poll`](Self::poll).
    pub(super) fn poll_stalled(
        &mut self,
        cx: &mut Context<'_>,
        writing: bool,
        owed: bool,
        sent: u64,
        received: u64,
    ) -> Poll<ClientError> {
        let now = Instant::now();
        Waits::set(&mut self.write, writing, now);
        Waits::set(&mut self.echo, owed, now);
        self.poll(cx, sent, received)
    }

    /// Sets what is being waited for now: `Some(since)` keeps an older
    /// start, `None` ends the wait.
    fn set(slot: &mut Option<Instant>, waiting: bool, now: Instant) {
        match (waiting, *slot) {
            (true, None) => *slot = Some(now),
            (false, _) => *slot = None,
            (true, Some(_)) => {}
        }
    }

    /// Ready with the timeout error once a wait has lasted `timeout`;
    /// otherwise arms the timer for the earliest one.
    fn poll(&mut self, cx: &mut Context<'_>, sent: u64, received: u64) -> Poll<ClientError> {
        let (since, what) = match (self.write, self.echo) {
            (Some(w), Some(e)) if e < w => (e, "echo"),
            (Some(w), _) => (w, "server to read"),
            (None, Some(e)) => (e, "echo"),
            (None, None) => return Poll::Pending,
        };
        let deadline = tokio::time::Instant::from_std(since + self.timeout);
        if self.sleep.deadline() != deadline {
            self.sleep.as_mut().reset(deadline);
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(ClientError::Timeout {
                waited: self.timeout,
                what,
                sent,
                received,
            }),
            Poll::Pending => Poll::Pending,
        }
    }
}
