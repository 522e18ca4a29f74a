//! The per-connection echo loop: the hot path.
//!
//! It does what the seed's `echo()` coroutine does: read what is there (up
//! to `read_size`), write it back, and read again only once it is all
//! written, so a peer that never reads stops being read from and costs at
//! most one chunk of memory. On end of stream nothing is owed (reading
//! stops while anything is), so the loop half-closes and returns.
//!
//! [`echo_socket`] is the fast path for sockets the kernel reads and writes
//! directly. Every read lands in one buffer per worker thread, and is
//! written straight back from it: an idle connection holds no buffer, and
//! a busy one copies nothing unless the kernel refuses part of a write,
//! when just the rest is kept until the socket is writable; meanwhile the
//! socket is registered for writing only, so that what the peer goes on
//! sending wakes nobody ([`registered`]). A short read
//! means the socket is drained, so readiness is cleared without the extra
//! `recv` that would only say `EAGAIN` (unless it stopped at TCP's urgent
//! mark: [`transport::urgent_pending`]). A new connection's first read
//! does not wait for readiness at all: its peer has usually sent by the
//! time it is accepted (docs/design.md, "The first read does not wait").
//!
//! Reads are at most [`BASE_READ`] (64 KiB) bytes, or `read_size` if that
//! is smaller, until a connection streams: once its peer has taken back an
//! echo the kernel first refused (so it reads), every read that fills its
//! buffer makes the next one as large as `read_size` (256 KiB by default),
//! and a short read makes it small again. A bulk stream then costs a
//! quarter of the system calls, and each send wakes the peer with more;
//! messages under 64 KiB never see the difference, and a peer that never
//! reads still holds at most one small chunk. With `zero_copy` (`--zero-copy`),
//! while a connection's reads are large (8 KiB or more), the next chunk
//! goes through the thread's pipe instead, socket to pipe to socket with
//! `splice(2)`, and never reaches user space at all ([`crate::splice`]). [`echo_stream`] is the plain loop
//! for any `AsyncRead + AsyncWrite` (TLS), with a buffer per connection.
//!
//! Nothing here allocates or formats per chunk unless debug logging is on:
//! the `debug!` arguments are evaluated only when a subscriber wants them.
//! Bytes are counted with one relaxed add per chunk on a counter shard of
//! the worker thread's own ([`ByteCounter`]); the rare backlogged chunk
//! costs a second.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tracing::debug;

use crate::metrics::ByteCounter;
use crate::pyrepr::PyBytes;
use crate::splice;
use crate::transport::{self, PeerName, StreamSocket};

mod ending;
mod idle;
mod options;
mod registered;
#[cfg(feature = "tls")]
mod stream;

pub use ending::Ending;
use ending::ignore_not_connected;
use idle::IdleTimer;
pub use options::{BASE_READ, EchoOptions};

use registered::Registered;
#[cfg(feature = "tls")]
pub use stream::echo_stream;

thread_local! {
    /// The read buffer of this worker thread, shared by all its connections.
    /// It is only borrowed between two awaits, never across one, so a task
    /// that moves to another thread simply uses that thread's buffer.
    static READ_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Echoes a readiness-driven socket until end of stream, an error, or the
/// idle timeout, counting bytes in `bytes`. See the module documentation
/// for how.
///
/// It is a hand-written future rather than an `async fn`: it waits through
/// `poll_read_ready`/`poll_write_ready`, which keep the waker in the
/// socket's own slot, so an idle connection's task is just this struct
/// (about a hundred bytes) instead of a stack of nested readiness futures.
pub fn echo_socket<S: StreamSocket>(
    io: AsyncFd<S>,
    peer: PeerName,
    opts: EchoOptions,
    bytes: ByteCounter,
) -> EchoSocket<S> {
    EchoSocket {
        io: Registered::Fd(io),
        peer,
        bytes,
        read_size: opts.read_size,
        zero_copy: opts.zero_copy,
        bulk: false,
        streaming: false,
        reads_back: false,
        writing_only: false,
        read_first: true,
        pending: None,
        idle: IdleTimer::new(opts.idle_timeout),
    }
}

/// The future returned by [`echo_socket`]. It owns the socket, which is
/// closed when the future is dropped.
pub struct EchoSocket<S: StreamSocket> {
    io: Registered<S>,
    peer: PeerName,
    bytes: ByteCounter,
    read_size: usize,
    zero_copy: bool,
    /// Whether the last read was large: the next one then goes through the
    /// thread's pipe (see [`crate::splice`]).
    bulk: bool,
    /// Whether the last read filled its buffer, and the peer reads back:
    /// the next read may then be as large as `read_size`.
    streaming: bool,
    /// Whether the peer has taken back an echo the kernel first refused.
    /// Until it has, reads stay at [`BASE_READ`], so that a peer that never
    /// reads costs no more than that.
    reads_back: bool,
    /// Whether the socket is registered for writing only, while an echo is
    /// stuck ([`registered`]).
    writing_only: bool,
    /// Whether the next read is the connection's first: tried at once,
    /// without waiting for readiness (see `poll_echo`).
    read_first: bool,
    /// What the kernel would not take yet; `None`, a null pointer, except
    /// under backpressure.
    pending: Option<Box<Pending>>,
    idle: IdleTimer,
}

/// A chunk the kernel took only part of.
struct Pending {
    /// The whole chunk, so that the `sent` line can show it (only the
    /// unsent rest of a spliced chunk, which is never logged).
    chunk: Vec<u8>,
    /// How much of it is written.
    written: usize,
}

/// What one step of the loop did: `None` means "go on".
type Step = Poll<io::Result<Option<Ending>>>;

impl<S: StreamSocket> Future for EchoSocket<S> {
    type Output = io::Result<Ending>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<Ending>> {
        let this = self.get_mut();
        loop {
            let step = if this.pending.is_none() {
                this.poll_echo(cx)
            } else {
                this.poll_flush(cx)
            };
            match step {
                Poll::Ready(Ok(None)) => continue,
                Poll::Ready(Ok(Some(ending))) => return Poll::Ready(Ok(ending)),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => break,
            }
        }
        // Waiting on the socket: is that wait now too long?
        let sock = this.io.fd().ok().map(AsyncFd::get_ref);
        match this
            .idle
            .poll_expired(cx, || sock.and_then(|s| s.kernel_queues()))
        {
            Poll::Ready(()) => Poll::Ready(Ok(Ending::Idle)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: StreamSocket> EchoSocket<S> {
    /// Who the connection is with.
    pub fn peer(&self) -> PeerName {
        self.peer
    }

    /// Starts the loop owing `chunk`: bytes already read off the socket
    /// (those that came with a PROXY header, say), written back before
    /// anything more is read. They count as received now.
    pub fn owing(mut self, chunk: Vec<u8>) -> Self {
        if !chunk.is_empty() {
            debug!(name = %self.peer, "received {}", PyBytes(&chunk));
            self.bytes.received_unsent(chunk.len(), chunk.len());
            self.pending = Some(Box::new(Pending { chunk, written: 0 }));
        }
        self
    }

    /// The idle timeout this loop enforces.
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle.timeout()
    }

    /// How much the next read may take: see the module documentation.
    fn next_read(&self) -> usize {
        if self.streaming {
            self.read_size
        } else {
            self.read_size.min(BASE_READ)
        }
    }

    /// Reads what is there and writes it straight back, through this
    /// thread's buffer or, while reads are large, its pipe; keeps what the
    /// kernel refuses in `pending`.
    fn poll_echo(&mut self, cx: &mut Context<'_>) -> Step {
        let want = self.next_read();
        let writing_only = self.writing_only;
        // Registered for writing only, a stuck echo has just gone out, and
        // the socket most likely holds more; a new connection's peer has
        // most likely sent already (by the time it is accepted, its first
        // bytes have usually arrived), and waiting for readiness would
        // cost it a turn of the reactor: read at once, spending tokio's
        // budget as a wait for readiness would.
        let at_once = writing_only || std::mem::take(&mut self.read_first);
        let io = self.io.fd()?;
        let (mut guard, budget) = if at_once {
            (None, Some(ready!(tokio::task::coop::poll_proceed(cx))))
        } else {
            (Some(ready!(io.poll_read_ready(cx))?), None)
        };
        let sock = io.get_ref();
        // Chunks that are logged must pass through memory to be shown.
        let spliced = if self.bulk && !tracing::enabled!(tracing::Level::DEBUG) {
            splice::with_pipe(|pipe| echo_spliced(pipe, sock, want, &mut self.pending, &self.bytes))
        } else {
            None
        };
        // Whether the chunk went through the pipe (not recv's fallback).
        let from_pipe = matches!(spliced, Some(Ok(Chunk::Echoed(_))));
        let chunk = match spliced {
            // splice(2) stops at TCP's urgent mark, saying `EAGAIN` or, once
            // the peer half-closed, end of stream, with data still queued:
            // recv(2) reads past the mark, and tells a real end of stream.
            Some(Ok(Chunk::Drained | Chunk::Eof)) | None => {
                echo_copied(sock, self.peer, want, &mut self.pending, &self.bytes)
            }
            Some(chunk) => chunk,
        }?;
        let drained = match chunk {
            Chunk::Echoed(n) => {
                self.streaming = self.reads_back && n == want;
                self.bulk = self.zero_copy && n >= BULK;
                self.idle.touch();
                if let Some(budget) = &budget {
                    budget.made_progress();
                }
                // A short read emptied the socket, unless it stopped at the
                // urgent mark; more data is a new edge, which tokio's
                // readiness tick will not miss. (A splice also stops short
                // where the pipe runs out of slots, with data left: the
                // next one tells.)
                n < want && !from_pipe && !transport::urgent_pending(io)
            }
            Chunk::Drained => true,
            Chunk::Retry => false,
            Chunk::Eof => {
                // Nothing is owed: reading stops while anything is pending.
                sock.shutdown_write().or_else(ignore_not_connected)?;
                return Poll::Ready(Ok(Some(Ending::Eof)));
            }
        };
        if drained {
            if let Some(guard) = guard.as_mut() {
                guard.clear_ready();
            } else if writing_only && self.pending.is_none() {
                // Nothing more to read, and nothing stuck: wait for data
                // again. The new registration reports any already there.
                self.io.register(false)?;
                self.writing_only = false;
            }
        }
        Poll::Ready(Ok(None))
    }

    /// Writes what the kernel refused before, as it makes room; meanwhile
    /// only room to write wakes the connection.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Step {
        let Some(pending) = self.pending.as_mut() else {
            return Poll::Ready(Ok(None));
        };
        let io = self.io.fd()?;
        // Still registered for reading too, the echo has only just been
        // refused: try again at once (the kernel may have made room), and
        // wait for room alone if it still refuses. (tokio's readiness is of
        // no help here: a registration made anew while the send buffer was
        // full has never seen the socket writable.)
        let mut guard = if self.writing_only {
            Some(ready!(io.poll_write_ready(cx))?)
        } else {
            None
        };
        let sock = io.get_ref();
        match sock.send(&pending.chunk[pending.written..]) {
            Ok(w) => {
                pending.written += w;
                self.bytes.sent_later(w);
                self.idle.touch();
                if pending.written == pending.chunk.len() {
                    debug!(name = %self.peer, "sent {}", PyBytes(&pending.chunk));
                    // Freed, not kept: an idle connection holds no buffer.
                    self.pending = None;
                    // Refused, then taken once the peer made room: it
                    // reads, so it may stream.
                    self.reads_back |= self.writing_only;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if let Some(guard) = guard.as_mut() {
                    guard.clear_ready();
                }
                // The send buffer is full: what the kernel holds now is
                // what "nothing moved" will be judged by.
                self.idle.note_queues(|| sock.kernel_queues());
                if !self.writing_only {
                    self.io.register(true)?;
                    self.writing_only = true;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Poll::Ready(Err(e)),
        }
        Poll::Ready(Ok(None))
    }
}

/// Reads at or above this size make the next read a splice: a bulk
/// transfer is under way, and copying it costs more than the pipe does.
const BULK: usize = 8 * 1024;

/// What one read-and-write-back did.
enum Chunk {
    /// This many bytes were read, and written back or kept in `pending`.
    Echoed(usize),
    /// Nothing to read: the socket is drained.
    Drained,
    /// Interrupted; try again.
    Retry,
    /// End of stream.
    Eof,
}

/// One chunk through this thread's read buffer: `recv` then `send`.
fn echo_copied<S: StreamSocket>(
    sock: &S,
    peer: PeerName,
    read_size: usize,
    pending: &mut Option<Box<Pending>>,
    bytes: &ByteCounter,
) -> io::Result<Chunk> {
    READ_BUF.with_borrow_mut(|buf| {
        if buf.len() < read_size {
            buf.resize(read_size, 0);
        }
        let n = match sock.recv(&mut buf[..read_size]) {
            Ok(0) => return Ok(Chunk::Eof),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Chunk::Drained),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(Chunk::Retry),
            Err(e) => return Err(e),
        };
        let data = &buf[..n];
        debug!(name = %peer, "received {}", PyBytes(data));
        let sent = match sock.send(data) {
            Ok(w) => w,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => {
                bytes.received_unsent(n, n);
                return Err(e);
            }
        };
        if sent == n {
            bytes.echoed(n);
            debug!(name = %peer, "sent {}", PyBytes(data));
        } else {
            bytes.received_unsent(n, n - sent);
            *pending = Some(Box::new(Pending {
                chunk: data.to_vec(),
                written: sent,
            }));
        }
        Ok(Chunk::Echoed(n))
    })
}

/// One chunk through this thread's pipe: socket to pipe, pipe to socket,
/// no copy. What the socket will not take is read out of the pipe into
/// `pending` (so `pending` holds only the unsent rest), leaving the pipe
/// empty for the thread's other connections, whatever happens.
fn echo_spliced<S: StreamSocket>(
    pipe: &splice::Pipe,
    sock: &S,
    read_size: usize,
    pending: &mut Option<Box<Pending>>,
    bytes: &ByteCounter,
) -> io::Result<Chunk> {
    let fd = sock.as_raw_fd();
    let n = match pipe.fill(fd, read_size) {
        Ok(0) => return Ok(Chunk::Eof),
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Chunk::Drained),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(Chunk::Retry),
        Err(e) => return Err(e),
    };
    let mut sent = 0;
    while sent < n {
        match pipe.flush_to(fd, n - sent) {
            Ok(0) => break,
            Ok(w) => sent += w,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                pipe.discard(n - sent);
                bytes.received_unsent(n, n - sent);
                return Err(e);
            }
        }
    }
    if sent == n {
        bytes.echoed(n);
    } else {
        let mut rest = Vec::new();
        if let Err(e) = pipe.read_into(&mut rest, n - sent) {
            pipe.discard(n - sent - rest.len());
            bytes.received_unsent(n, n - sent);
            return Err(e);
        }
        bytes.received_unsent(n, n - sent);
        *pending = Some(Box::new(Pending {
            chunk: rest,
            written: 0,
        }));
    }
    Ok(Chunk::Echoed(n))
}

#[cfg(test)]
mod tests;
