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
//! when just the rest is kept until the socket is writable. A short read
//! means the socket is drained, so readiness is cleared without the extra
//! `recv` that would only say `EAGAIN`. [`echo_stream`] is the plain loop
//! for any `AsyncRead + AsyncWrite` (TLS), with a buffer per connection.
//!
//! Nothing here allocates or formats per chunk unless debug logging is on:
//! the `debug!` arguments are evaluated only when a subscriber wants them.
//! Waiting on readiness does not count against tokio's cooperative budget,
//! so the loop spends a unit of it per chunk echoed: a peer that keeps its
//! socket full cannot hold a worker thread from the other connections.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Sleep;
use tracing::debug;

use crate::pyrepr::PyBytes;
use crate::transport::{PeerName, StreamSocket};

/// What every connection of one server shares.
#[derive(Debug, Clone, Copy)]
pub struct EchoOptions {
    /// The largest single read, in bytes (the seed's is 128).
    pub read_size: usize,
    /// Close a connection with no traffic either way for this long.
    pub idle_timeout: Option<Duration>,
}

/// How a connection ended, when it ended without an I/O error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The peer half-closed and everything was echoed.
    Eof,
    /// Nothing moved either way for the idle timeout.
    Idle,
}

thread_local! {
    /// The read buffer of this worker thread, shared by all its connections.
    /// It is only borrowed between two awaits, never across one, so a task
    /// that moves to another thread simply uses that thread's buffer.
    static READ_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// What one pass over a readable socket did.
enum Step {
    /// Everything read was written back.
    Echoed,
    /// The kernel took only part; the rest is in `pending`.
    Backlogged,
    /// Nothing to read after all.
    Spurious,
    Eof,
}

/// Echoes a readiness-driven socket until end of stream, an error, or the
/// idle timeout. See the module documentation for how.
pub async fn echo_socket<S: StreamSocket>(
    io: &AsyncFd<S>,
    peer: PeerName,
    opts: EchoOptions,
) -> io::Result<Ending> {
    let mut idle = IdleTimer::new(opts.idle_timeout);
    // Bytes the kernel would not take yet: the whole chunk, so that the
    // `sent` line can show it, and how much of it is already written.
    let mut pending: Vec<u8> = Vec::new();
    let mut written = 0;
    loop {
        let step = {
            let mut guard = tokio::select! {
                biased;
                guard = io.readable() => guard?,
                () = idle.expired(|| io.get_ref().kernel_queues()) => return Ok(Ending::Idle),
            };
            READ_BUF.with_borrow_mut(|buf| {
                if buf.len() < opts.read_size {
                    buf.resize(opts.read_size, 0);
                }
                let buf = &mut buf[..opts.read_size];
                let n = match io.get_ref().recv(buf) {
                    Ok(0) => return Ok(Step::Eof),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        guard.clear_ready();
                        return Ok(Step::Spurious);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(Step::Spurious),
                    Err(e) => return Err(e),
                };
                if n < buf.len() {
                    // A short read emptied the socket; more data is a new
                    // edge, which tokio's readiness tick will not miss.
                    guard.clear_ready();
                }
                let data = &buf[..n];
                debug!(name = %peer, "received {}", PyBytes(data));
                let sent = match io.get_ref().send(data) {
                    Ok(w) => w,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                    Err(e) => return Err(e),
                };
                if sent == n {
                    debug!(name = %peer, "sent {}", PyBytes(data));
                    Ok(Step::Echoed)
                } else {
                    pending.extend_from_slice(data);
                    written = sent;
                    Ok(Step::Backlogged)
                }
            })?
        };
        match step {
            Step::Echoed => {
                idle.touch();
                // Readiness alone never yields: a peer that keeps its socket
                // full would own this thread. The runtime's budget (no
                // system call) yields after a bounded run of chunks.
                tokio::task::coop::consume_budget().await;
            }
            Step::Spurious => {}
            Step::Eof => {
                // Nothing is owed: reading stops while anything is pending.
                io.get_ref()
                    .shutdown_write()
                    .or_else(ignore_not_connected)?;
                return Ok(Ending::Eof);
            }
            Step::Backlogged => {
                idle.touch();
                while written < pending.len() {
                    let mut guard = tokio::select! {
                        biased;
                        guard = io.writable() => guard?,
                        () = idle.expired(|| io.get_ref().kernel_queues()) => return Ok(Ending::Idle),
                    };
                    match io.get_ref().send(&pending[written..]) {
                        Ok(w) => {
                            written += w;
                            idle.touch();
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            guard.clear_ready();
                            // The send buffer is full: what the kernel holds
                            // now is what "nothing moved" will be judged by.
                            idle.note_queues(|| io.get_ref().kernel_queues());
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                debug!(name = %peer, "sent {}", PyBytes(&pending));
                // Freed, not kept: an idle connection holds no buffer.
                pending = Vec::new();
                written = 0;
            }
        }
    }
}

/// Echoes any async byte stream (TLS) until end of stream, an error, or the
/// idle timeout, with a buffer of `read_size` bytes for the connection.
pub async fn echo_stream<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    peer: PeerName,
    opts: EchoOptions,
) -> io::Result<Ending> {
    let mut idle = IdleTimer::new(opts.idle_timeout);
    let mut buf = vec![0u8; opts.read_size];
    loop {
        let n = tokio::select! {
            biased;
            n = stream.read(&mut buf) => n?,
            () = idle.expired(|| None) => return Ok(Ending::Idle),
        };
        if n == 0 {
            stream.shutdown().await.or_else(ignore_not_connected)?;
            return Ok(Ending::Eof);
        }
        idle.touch();
        let data = &buf[..n];
        debug!(name = %peer, "received {}", PyBytes(data));
        tokio::select! {
            biased;
            r = async { stream.write_all(data).await?; stream.flush().await } => r?,
            () = idle.expired(|| None) => return Ok(Ending::Idle),
        }
        idle.touch();
        debug!(name = %peer, "sent {}", PyBytes(data));
    }
}

/// A peer that reset before our half-close is not an error worth reporting.
fn ignore_not_connected(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotConnected {
        Ok(())
    } else {
        Err(e)
    }
}

/// The idle timeout, cheap enough for the hot path: traffic only stores the
/// time (`touch`), and the one timer per connection is re-armed only when
/// it fires early, instead of being reset on every chunk.
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
struct IdleTimer {
    timeout: Option<Duration>,
    last: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    /// The kernel's queues when last looked at, since the last `touch`.
    queues: Option<(usize, usize)>,
}

impl IdleTimer {
    fn new(timeout: Option<Duration>) -> IdleTimer {
        let last = Instant::now();
        IdleTimer {
            timeout,
            last,
            sleep: timeout.map(|t| Box::pin(tokio::time::sleep(t))),
            queues: None,
        }
    }

    fn touch(&mut self) {
        if self.timeout.is_some() {
            self.last = Instant::now();
            self.queues = None;
        }
    }

    /// Takes a look at the kernel's queues now (only with a timeout: it
    /// costs system calls).
    fn note_queues(&mut self, queues: impl FnOnce() -> Option<(usize, usize)>) {
        if self.timeout.is_some() {
            self.queues = queues();
        }
    }

    /// Resolves once nothing has moved for the timeout; never without one.
    /// `queues` reads the kernel's queues (`None` when it cannot).
    async fn expired(&mut self, mut queues: impl FnMut() -> Option<(usize, usize)>) {
        let (Some(timeout), Some(sleep)) = (self.timeout, self.sleep.as_mut()) else {
            return std::future::pending().await;
        };
        loop {
            sleep.as_mut().await;
            let mut deadline = self.last + timeout;
            let now = Instant::now();
            if now >= deadline {
                match queues() {
                    None | Some((0, 0)) => return,
                    now_queued if now_queued == self.queues => return,
                    now_queued => {
                        // Moved since the last look, or never looked at:
                        // judge again one timeout from now.
                        self.queues = now_queued;
                        self.last = now;
                        deadline = now + timeout;
                    }
                }
            }
            sleep.as_mut().reset(deadline.into());
        }
    }
}
