//! The client's conversation over a byte stream: the state machine behind
//! [`send_messages`](super::send_messages), writing the messages and
//! reading and checking their echo at once, from one future.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::AsyncWrite;
use tracing::info;

use super::check::{Checker, Summary};
use super::error::{ClientError, io_err};
use super::stream::{CHUNK, poll_half_close, poll_read_echo, poll_send};
use super::transcript::NAME;
use super::waits::Waits;
use crate::pyrepr::PyBytes;
use crate::transport::BoxStream;

/// The most received chunks whose `received` line waits for the last
/// `sending` line; past that, chunks are merged, so memory stays bounded.
const DEFERRED: usize = 256;

/// What one read of the echo gave.
enum Got {
    /// Nothing yet.
    Nothing,
    /// Bytes, checked.
    Bytes,
    /// The end of stream: the conversation is over, for better or worse.
    End(Result<Summary, ClientError>),
}

/// The state of [`send_messages`].
pub(super) struct Talk<'a> {
    messages: &'a [Vec<u8>],
    /// The messages, end to end: what the echo must be.
    expected: Vec<u8>,
    /// The message being written, and how much of it is.
    index: usize,
    at: usize,
    sent: u64,
    /// Every message is sent and the write side is closed.
    shut: bool,
    checker: Checker,
    /// Lengths of echoed chunks not logged yet (see [`DEFERRED`]).
    deferred: Vec<usize>,
    /// Echoed bytes logged so far.
    logged: usize,
    buf: Vec<u8>,
    waits: Waits,
}

impl<'a> Talk<'a> {
    /// A conversation sending `messages`, waiting at most `timeout`.
    pub(super) fn new(messages: &'a [Vec<u8>], timeout: Duration) -> Talk<'a> {
        Talk {
            messages,
            expected: messages.concat(),
            index: 0,
            at: 0,
            sent: 0,
            shut: false,
            checker: Checker::new(),
            deferred: Vec::new(),
            logged: 0,
            buf: vec![0u8; CHUNK],
            waits: Waits::new(timeout),
        }
    }
}

impl Talk<'_> {
    /// Moves what can move, both ways, until nothing can; then waits,
    /// bounded by the timeout where bytes are owed.
    ///
    /// The same loop as [`Pipe::poll`](super::pipe::Pipe::poll), kept
    /// apart on purpose: see there why.
    pub(super) fn poll(
        &mut self,
        cx: &mut Context<'_>,
        stream: &mut BoxStream,
    ) -> Poll<Result<Summary, ClientError>> {
        loop {
            let wrote = match self.write_side(cx, stream) {
                Ok(wrote) => wrote,
                Err(e) => return Poll::Ready(Err(self.why_refused(cx, stream).unwrap_or(e))),
            };
            if wrote {
                // The server took bytes: its wait starts again.
                self.waits.write = None;
            }
            let read = match self.read_side(cx, stream) {
                Ok(Got::Nothing) => false,
                Ok(Got::Bytes) => true,
                Ok(Got::End(done)) => return Poll::Ready(done),
                Err(e) => return Poll::Ready(Err(e)),
            };
            if wrote || read {
                continue;
            }
            let owed = self.checker.received < self.sent || self.shut;
            let (sent, received) = (self.sent, self.checker.received);
            let stalled = self
                .waits
                .poll_stalled(cx, !self.shut, owed, sent, received);
            return stalled.map(|e| {
                self.log_deferred();
                Err(e)
            });
        }
    }

    /// Writes what may be written; whether any byte went out.
    fn write_side(
        &mut self,
        cx: &mut Context<'_>,
        stream: &mut BoxStream,
    ) -> Result<bool, ClientError> {
        let mut wrote = false;
        while !self.shut {
            let Some(msg) = self.messages.get(self.index) else {
                match poll_half_close(cx, stream) {
                    Poll::Ready(r) => r?,
                    Poll::Pending => return Ok(wrote),
                }
                self.shut = true;
                info!(name = NAME, "waiting for response");
                self.log_deferred();
                return Ok(true);
            };
            if self.at < msg.len() {
                match poll_send(cx, stream, &msg[self.at..]) {
                    Poll::Ready(Ok(n)) => {
                        self.at += n;
                        self.sent += n as u64;
                        wrote = true;
                        continue;
                    }
                    Poll::Ready(Err(e)) => return Err(e),
                    Poll::Pending => return Ok(wrote),
                }
            }
            // Each message its own write: TLS sends its record now.
            match Pin::new(&mut *stream).poll_flush(cx) {
                Poll::Ready(r) => r.map_err(io_err("sending"))?,
                Poll::Pending => return Ok(wrote),
            }
            info!(name = NAME, "sending {}", PyBytes(msg));
            self.index += 1;
            self.at = 0;
        }
        Ok(wrote)
    }

    /// A write failed (the peer closed): what the peer said before it
    /// did, when it said anything readable. A TLS server refusing a client
    /// certificate sends its alert, then closes; the write's `Broken pipe`
    /// would hide why.
    fn why_refused(&mut self, cx: &mut Context<'_>, stream: &mut BoxStream) -> Option<ClientError> {
        match poll_read_echo(cx, stream, &mut self.buf) {
            Poll::Ready(Err(e)) => Some(e),
            _ => None,
        }
    }

    /// Reads and checks one chunk of what came back.
    fn read_side(
        &mut self,
        cx: &mut Context<'_>,
        stream: &mut BoxStream,
    ) -> Result<Got, ClientError> {
        let n = match poll_read_echo(cx, stream, &mut self.buf) {
            Poll::Ready(r) => r?,
            Poll::Pending => return Ok(Got::Nothing),
        };
        if n == 0 {
            self.log_deferred();
            info!(name = NAME, "closing");
            return Ok(Got::End(self.checker.at_end(self.sent, self.shut)));
        }
        let from = self.checker.received as usize;
        let owed = &self.expected[from.min(self.expected.len())..self.sent as usize];
        let checked = self.checker.check(&self.buf[..n], owed, self.sent);
        if let Err(e) = checked {
            self.log_deferred();
            info!(name = NAME, "received {}", PyBytes(&self.buf[..n]));
            return Err(e);
        }
        if self.shut {
            info!(name = NAME, "received {}", PyBytes(&self.buf[..n]));
            self.logged += n;
        } else if self.deferred.len() < DEFERRED {
            self.deferred.push(n);
        } else if let Some(last) = self.deferred.last_mut() {
            *last += n;
        }
        self.waits.echo = None;
        Ok(Got::Bytes)
    }

    /// Logs the `received` lines held back until the last `sending` line.
    fn log_deferred(&mut self) {
        for n in std::mem::take(&mut self.deferred) {
            let chunk = &self.expected[self.logged..self.logged + n];
            info!(name = NAME, "received {}", PyBytes(chunk));
            self.logged += n;
        }
    }
}
