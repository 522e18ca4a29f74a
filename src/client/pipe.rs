//! `nc`-style piping over a byte stream: the state machine behind
//! [`pipe`](super::pipe), moving input to the server and its echo to the
//! output at once, from one future, with a bounded window in flight.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tracing::debug;

use super::check::{Checker, Summary};
use super::error::{ClientError, io_err, output_err};
use super::stream::{CHUNK, poll_half_close, poll_read_echo, poll_send};
use super::transcript::NAME;
use super::waits::Waits;
use crate::pyrepr::PyBytes;
use crate::transport::BoxStream;

/// The most bytes [`pipe`](super::pipe) keeps in flight without an echo.
pub const PIPE_WINDOW: usize = 4 * 1024 * 1024;

/// The state of [`pipe`].
pub(super) struct Pipe<R, W> {
    input: R,
    output: W,
    /// A chunk of input, written to the server up to `in_at`.
    inbuf: Vec<u8>,
    in_len: usize,
    in_at: usize,
    input_done: bool,
    shut: bool,
    /// Bytes sent and not yet echoed, oldest first.
    window: VecDeque<u8>,
    sent: u64,
    checker: Checker,
    /// A chunk of echo, written to the output up to `out_at`.
    outbuf: Vec<u8>,
    out_len: usize,
    out_at: usize,
    eof: bool,
    waits: Waits,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Pipe<R, W> {
    /// A pipe from `input` through the server to `output`, waiting at most
    /// `timeout` on the server.
    pub(super) fn new(input: R, output: W, timeout: Duration) -> Pipe<R, W> {
        Pipe {
            input,
            output,
            inbuf: vec![0u8; CHUNK],
            in_len: 0,
            in_at: 0,
            input_done: false,
            shut: false,
            window: VecDeque::new(),
            sent: 0,
            checker: Checker::new(),
            outbuf: vec![0u8; CHUNK],
            out_len: 0,
            out_at: 0,
            eof: false,
            waits: Waits::new(timeout),
        }
    }

    /// Moves what can move, both ways, until nothing can; then waits,
    /// bounded by the timeout where bytes are owed.
    ///
    /// The same loop as [`Talk::poll`](super::talk::Talk::poll), kept
    /// apart on purpose: the steps they share are in `stream`, `check`
    /// and `waits`, and what is left differs in each step (here the input
    /// is read as it goes, the echo is written to an output that may
    /// block, and a wait on that output is not the server's; there the
    /// messages are known and logged as the Python client logs them, and
    /// a failed write asks the server why). One loop over both would need
    /// a trait with a method per difference, longer than the two loops.
    pub(super) fn poll(
        &mut self,
        cx: &mut Context<'_>,
        stream: &mut BoxStream,
    ) -> Poll<Result<Summary, ClientError>> {
        loop {
            let sent = match self.send(cx, stream) {
                Ok(moved) => moved,
                Err(e) => return Poll::Ready(Err(e)),
            };
            let (echoed, out_blocked) = match self.echo(cx, stream) {
                Ok(moved) => moved,
                Err(e) => return Poll::Ready(Err(e)),
            };
            if self.eof && self.out_at == self.out_len {
                return match Pin::new(&mut self.output).poll_flush(cx) {
                    Poll::Ready(Ok(())) => Poll::Ready(self.finish()),
                    Poll::Ready(Err(e)) => Poll::Ready(Err(output_err(e))),
                    Poll::Pending => Poll::Pending,
                };
            }
            if sent || echoed {
                continue;
            }
            let writing = self.in_at < self.in_len || (self.input_done && !self.shut);
            let owed = self.checker.received < self.sent || self.shut;
            // Waiting on our own output is not waiting on the server.
            let (sent, received) = (self.sent, self.checker.received);
            return self
                .waits
                .poll_stalled(cx, writing, owed && !out_blocked, sent, received)
                .map(Err);
        }
    }

    /// Reads input and writes it to the server; whether anything moved.
    fn send(&mut self, cx: &mut Context<'_>, stream: &mut BoxStream) -> Result<bool, ClientError> {
        let mut moved = false;
        loop {
            if self.in_at == self.in_len {
                if self.input_done {
                    break;
                }
                if self.window.len() + CHUNK > PIPE_WINDOW {
                    return Ok(moved);
                }
                let mut buf = ReadBuf::new(&mut self.inbuf);
                match Pin::new(&mut self.input).poll_read(cx, &mut buf) {
                    Poll::Ready(r) => r.map_err(io_err("reading input"))?,
                    Poll::Pending => return Ok(moved),
                }
                self.in_len = buf.filled().len();
                self.in_at = 0;
                self.input_done = self.in_len == 0;
                moved = true;
                continue;
            }
            let pending = &self.inbuf[self.in_at..self.in_len];
            match poll_send(cx, stream, pending) {
                Poll::Ready(Ok(n)) => {
                    // The checker has these before their echo can come back.
                    self.window.extend(&pending[..n]);
                    self.in_at += n;
                    self.sent += n as u64;
                    self.waits.write = None;
                    moved = true;
                    if self.in_at == self.in_len {
                        debug!(
                            name = NAME,
                            "sending {}",
                            PyBytes(&self.inbuf[..self.in_len])
                        );
                    }
                }
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => return Ok(moved),
            }
        }
        if !self.shut {
            match poll_half_close(cx, stream) {
                Poll::Ready(r) => r?,
                Poll::Pending => return Ok(moved),
            }
            self.shut = true;
            self.waits.write = None;
            debug!(name = NAME, "waiting for response");
            moved = true;
        }
        Ok(moved)
    }

    /// Writes the echo to the output and reads more of it; whether
    /// anything moved, and whether the output is what holds it up.
    fn echo(
        &mut self,
        cx: &mut Context<'_>,
        stream: &mut BoxStream,
    ) -> Result<(bool, bool), ClientError> {
        let mut moved = false;
        loop {
            if self.out_at < self.out_len {
                let pending = &self.outbuf[self.out_at..self.out_len];
                match Pin::new(&mut self.output).poll_write(cx, pending) {
                    Poll::Ready(Ok(0)) => return Err(output_err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => {
                        self.out_at += n;
                        moved = true;
                        continue;
                    }
                    Poll::Ready(Err(e)) => return Err(output_err(e)),
                    Poll::Pending => return Ok((moved, true)),
                }
            }
            if self.eof {
                return Ok((moved, false));
            }
            let n = match poll_read_echo(cx, stream, &mut self.outbuf) {
                Poll::Ready(r) => r?,
                Poll::Pending => return Ok((moved, false)),
            };
            moved = true;
            self.waits.echo = None;
            if n == 0 {
                self.eof = true;
                continue;
            }
            debug!(name = NAME, "received {}", PyBytes(&self.outbuf[..n]));
            let owed = n.min(self.window.len());
            let want = &self.window.make_contiguous()[..owed];
            self.checker.check(&self.outbuf[..n], want, self.sent)?;
            self.window.drain(..owed);
            self.out_len = n;
            self.out_at = 0;
        }
    }

    /// The server closed and its echo is written out: judge it.
    fn finish(&mut self) -> Result<Summary, ClientError> {
        debug!(name = NAME, "closing");
        self.checker.at_end(self.sent, self.shut)
    }
}
