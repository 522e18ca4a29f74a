//! The client: the seed's `echo_client`, plus an `nc`-style pipe mode, both
//! checking that every byte comes back in order.
//!
//! [`send_messages`] sends each message as its own write, half-closes, and
//! logs the conversation exactly as the seed does. [`pipe`] streams any
//! reader to the server and the echo to any writer. Both read while they
//! write, so a message larger than the socket buffers cannot deadlock
//! against a server that stops reading until its replies are read.
//!
//! Over `udp://` there is no stream to half-close: each message (or each
//! chunk of input) is one datagram, and its reply is awaited, with
//! `timeout` and one resend, before the next is sent.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tracing::{debug, info};

use crate::addr::{Addr, Transport};
use crate::pyrepr::PyBytes;
use crate::transport::udp::{ExchangeError, MAX_DATAGRAM, UdpClient};
use crate::transport::{self, BoxStream, ConnectError};

/// The seed's three messages, sent when none are given.
pub const SEED_MESSAGES: [&[u8]; 3] = [b"This is the message. ", b"It will be sent ", b"in parts."];

/// The logger name of the client's lines, as in the seed.
const NAME: &str = "echo_client";

/// How the client reads: large enough that big echoes take few reads.
const CHUNK: usize = 64 * 1024;

/// Where and how patiently to talk.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The server.
    pub addr: Addr,
    /// How long to wait for a connection, and for the echo once it is owed
    /// (over UDP: for each reply, before resending once).
    pub timeout: Duration,
    /// The TLS configuration for `tls://` (from
    /// [`tls::client_config`](crate::transport::tls::client_config));
    /// `None` trusts the system's CAs.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl ClientOptions {
    /// Options for `addr` with `timeout` and the default TLS trust.
    pub fn new(addr: Addr, timeout: Duration) -> ClientOptions {
        ClientOptions {
            addr,
            timeout,
            tls: None,
        }
    }

    async fn connect(&self) -> Result<BoxStream, ConnectError> {
        transport::connect_with(&self.addr, self.timeout, self.tls.as_ref()).await
    }
}

/// How many times a UDP message is resent when no reply comes in time.
pub const UDP_RETRIES: u32 = 1;

/// Why a conversation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// A byte came back different from the one sent.
    #[error(
        "echo mismatch at byte {offset}: sent {}, received {} ({received} bytes received)",
        PyBytes(&[*expected]),
        PyBytes(&[*got])
    )]
    Mismatch {
        /// The 0-based offset of the first wrong byte.
        offset: u64,
        /// The byte sent there.
        expected: u8,
        /// The byte that came back.
        got: u8,
        /// Bytes received so far, the wrong chunk included.
        received: u64,
    },
    /// More came back than was sent: every byte up to `sent` was right,
    /// and then the server went on.
    #[error("extra echo: sent {sent} bytes, received {received}")]
    Extra {
        /// Bytes sent when the extra ones arrived.
        sent: u64,
        /// Bytes received, the extra ones included.
        received: u64,
    },
    /// The server closed before echoing everything.
    #[error("short echo: sent {sent} bytes, received {received}")]
    Short {
        /// Bytes sent.
        sent: u64,
        /// Bytes received back before end of stream.
        received: u64,
    },
    /// The server closed its side before everything was sent, so the rest
    /// could never come back.
    #[error(
        "the server closed the connection before everything was sent (sent {sent} bytes, \
         received {received})"
    )]
    ClosedEarly {
        /// Bytes sent when the server closed.
        sent: u64,
        /// Bytes received, all of them right.
        received: u64,
    },
    /// Nothing moved for the timeout while bytes were owed: the server
    /// took none of what was still to send, or echoed none of what it had.
    #[error(
        "timed out after {waited:?} waiting for the {what} (sent {sent} bytes, received {received})"
    )]
    Timeout {
        /// How long nothing moved.
        waited: Duration,
        /// `echo`, or `server to read` when it would not take more bytes.
        what: &'static str,
        /// Bytes sent.
        sent: u64,
        /// Bytes received.
        received: u64,
    },
    /// Our own output (`--stdin`'s standard output) was closed, as by
    /// `| head`: not the server's fault; the binary ends quietly.
    #[error("the output was closed")]
    OutputClosed,
    /// Reading from or writing to the server, or the local pipe, failed.
    #[error("{context}: {error}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The system's error.
        error: io::Error,
    },
}

fn io_err(context: &'static str) -> impl FnOnce(io::Error) -> ClientError {
    move |error| ClientError::Io { context, error }
}

/// Writing our output failed: a closed pipe is [`ClientError::OutputClosed`].
fn output_err(error: io::Error) -> ClientError {
    if error.kind() == io::ErrorKind::BrokenPipe {
        ClientError::OutputClosed
    } else {
        ClientError::Io {
            context: "writing output",
            error,
        }
    }
}

impl ClientError {
    fn from_exchange(e: ExchangeError, sent: u64, received: u64) -> ClientError {
        match e {
            ExchangeError::Timeout { tries, timeout } => ClientError::Timeout {
                waited: timeout * tries,
                what: "echo",
                sent,
                received,
            },
            ExchangeError::Connect(c) => ClientError::Connect(c),
            too_large @ ExchangeError::TooLarge(_) => ClientError::Io {
                context: "sending",
                error: io::Error::new(io::ErrorKind::InvalidInput, too_large.to_string()),
            },
        }
    }
}

/// What a successful conversation moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Bytes sent, and received back identical.
    pub bytes: u64,
}

/// Compares the echo, as it arrives, with what was sent.
struct Checker {
    received: u64,
}

impl Checker {
    /// Checks `got` against `want`, the bytes sent from this offset on
    /// that are still owed: a wrong byte is a mismatch there, bytes past
    /// `want` (`sent` bytes in all) are extra. Counts `got` either way.
    fn check(&mut self, got: &[u8], want: &[u8], sent: u64) -> Result<(), ClientError> {
        let at = self.received;
        self.received += got.len() as u64;
        if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
            return Err(ClientError::Mismatch {
                offset: at + i as u64,
                expected: want[i],
                got: got[i],
                received: self.received,
            });
        }
        if got.len() > want.len() {
            return Err(ClientError::Extra {
                sent,
                received: self.received,
            });
        }
        Ok(())
    }
}

fn connect_line(addr: &Addr) -> String {
    match addr {
        Addr::Inet { host, port, .. } => format!("connecting to {host} port {port}"),
        Addr::Unix(path) => format!("connecting to {}", path.display()),
    }
}

/// How long the client waits without progress once bytes are owed: for
/// the server to take what is left to send, and for the echo of what it
/// was sent (or its close, once everything is back). Each wait starts
/// again whenever a byte moves that way.
struct Waits {
    timeout: Duration,
    /// Since when a write to the server has been waiting.
    write: Option<Instant>,
    /// Since when an echo (or the end of stream) has been owed without a
    /// byte of it arriving.
    echo: Option<Instant>,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Waits {
    fn new(timeout: Duration) -> Waits {
        Waits {
            timeout,
            write: None,
            echo: None,
            sleep: Box::pin(tokio::time::sleep(timeout)),
        }
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

/// The most received chunks whose `received` line waits for the last
/// `sending` line; past that, chunks are merged, so memory stays bounded.
const DEFERRED: usize = 256;

/// The seed's conversation: send each message, half-close, read and log the
/// echo until the server closes, and check it.
///
/// The echo is read and checked while the messages are written, so a
/// server that sends back more than it was given, or the wrong bytes, is
/// caught at once, and memory stays bounded (one read buffer, and the
/// messages themselves) whatever the server sends. Echoed chunks that
/// arrive before the last message is sent are logged after it, as the
/// seed's log shows them: only their lengths are kept, since their bytes
/// are those sent. Every wait is bounded by the timeout once bytes are
/// owed: for the server to take what is left to send, and for the next
/// byte of the echo (or the close).
pub async fn send_messages(
    opts: &ClientOptions,
    messages: &[Vec<u8>],
) -> Result<Summary, ClientError> {
    info!(name = NAME, "{}", connect_line(&opts.addr));
    if opts.addr.transport() == Transport::Udp {
        return send_datagrams(opts, messages).await;
    }
    let mut stream = opts.connect().await?;
    let mut talk = Talk {
        messages,
        expected: messages.concat(),
        index: 0,
        at: 0,
        sent: 0,
        shut: false,
        checker: Checker { received: 0 },
        deferred: Vec::new(),
        logged: 0,
        buf: vec![0u8; CHUNK],
        waits: Waits::new(opts.timeout),
    };
    std::future::poll_fn(|cx| talk.poll(cx, &mut stream)).await
}

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
struct Talk<'a> {
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

impl Talk<'_> {
    fn poll(
        &mut self,
        cx: &mut Context<'_>,
        stream: &mut BoxStream,
    ) -> Poll<Result<Summary, ClientError>> {
        loop {
            let wrote = match self.write_side(cx, stream) {
                Ok(wrote) => wrote,
                Err(e) => return Poll::Ready(Err(e)),
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
            let now = Instant::now();
            Waits::set(&mut self.waits.write, !self.shut, now);
            let owed = self.checker.received < self.sent || self.shut;
            Waits::set(&mut self.waits.echo, owed, now);
            return match self.waits.poll(cx, self.sent, self.checker.received) {
                Poll::Ready(e) => {
                    self.log_deferred();
                    Poll::Ready(Err(e))
                }
                Poll::Pending => Poll::Pending,
            };
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
                match Pin::new(&mut *stream).poll_shutdown(cx) {
                    Poll::Ready(r) => r.map_err(io_err("half-closing"))?,
                    Poll::Pending => return Ok(wrote),
                }
                self.shut = true;
                info!(name = NAME, "waiting for response");
                self.log_deferred();
                return Ok(true);
            };
            if self.at < msg.len() {
                match Pin::new(&mut *stream).poll_write(cx, &msg[self.at..]) {
                    Poll::Ready(Ok(0)) => {
                        return Err(ClientError::Io {
                            context: "sending",
                            error: io::ErrorKind::WriteZero.into(),
                        });
                    }
                    Poll::Ready(Ok(n)) => {
                        self.at += n;
                        self.sent += n as u64;
                        wrote = true;
                        continue;
                    }
                    Poll::Ready(Err(e)) => return Err(io_err("sending")(e)),
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

    /// Reads and checks one chunk of what came back.
    fn read_side(
        &mut self,
        cx: &mut Context<'_>,
        stream: &mut BoxStream,
    ) -> Result<Got, ClientError> {
        let mut buf = ReadBuf::new(&mut self.buf);
        match Pin::new(&mut *stream).poll_read(cx, &mut buf) {
            Poll::Ready(r) => r.map_err(io_err("reading the echo"))?,
            Poll::Pending => return Ok(Got::Nothing),
        }
        let n = buf.filled().len();
        let received = self.checker.received;
        if n == 0 {
            self.log_deferred();
            info!(name = NAME, "closing");
            let done = if !self.shut {
                Err(ClientError::ClosedEarly {
                    sent: self.sent,
                    received,
                })
            } else if received < self.sent {
                Err(ClientError::Short {
                    sent: self.sent,
                    received,
                })
            } else {
                Ok(Summary { bytes: self.sent })
            };
            return Ok(Got::End(done));
        }
        let from = received as usize;
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
/// `nc`-style: streams `input` to the server until its end, writes the echo
/// to `output` byte for byte, checks it as it arrives, and returns once
/// the server has closed. The transcript is logged at debug level.
///
/// At most [`PIPE_WINDOW`] bytes are in flight unechoed; past that, input
/// waits, so memory stays bounded whatever the server does. Every wait on
/// the server is bounded by the timeout once bytes are owed: for it to
/// take what is left to send, and for the echo of what it was sent (or
/// its close). A wait on `output` (a slow consumer) is not the server's,
/// and pauses the echo's. A closed `output` is [`ClientError::OutputClosed`].
pub async fn pipe<R, W>(opts: &ClientOptions, input: R, output: W) -> Result<Summary, ClientError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    debug!(name = NAME, "{}", connect_line(&opts.addr));
    if opts.addr.transport() == Transport::Udp {
        return pipe_datagrams(opts, input, output).await;
    }
    let mut stream = opts.connect().await?;
    let mut pipe = Pipe {
        input,
        output,
        inbuf: vec![0u8; CHUNK],
        in_len: 0,
        in_at: 0,
        input_done: false,
        shut: false,
        window: VecDeque::new(),
        sent: 0,
        checker: Checker { received: 0 },
        outbuf: vec![0u8; CHUNK],
        out_len: 0,
        out_at: 0,
        eof: false,
        waits: Waits::new(opts.timeout),
    };
    std::future::poll_fn(|cx| pipe.poll(cx, &mut stream)).await
}

/// The most bytes [`pipe`] keeps in flight without an echo.
pub const PIPE_WINDOW: usize = 4 * 1024 * 1024;

/// The state of [`pipe`].
struct Pipe<R, W> {
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
    fn poll(
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
            let now = Instant::now();
            let writing = self.in_at < self.in_len || (self.input_done && !self.shut);
            Waits::set(&mut self.waits.write, writing, now);
            let owed = self.checker.received < self.sent || self.shut;
            // Waiting on our own output is not waiting on the server.
            Waits::set(&mut self.waits.echo, owed && !out_blocked, now);
            return match self.waits.poll(cx, self.sent, self.checker.received) {
                Poll::Ready(e) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            };
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
            match Pin::new(&mut *stream).poll_write(cx, pending) {
                Poll::Ready(Ok(0)) => {
                    return Err(ClientError::Io {
                        context: "sending",
                        error: io::ErrorKind::WriteZero.into(),
                    });
                }
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
                Poll::Ready(Err(e)) => return Err(io_err("sending")(e)),
                Poll::Pending => return Ok(moved),
            }
        }
        if !self.shut {
            match Pin::new(&mut *stream).poll_shutdown(cx) {
                Poll::Ready(r) => r.map_err(io_err("half-closing"))?,
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
            let mut buf = ReadBuf::new(&mut self.outbuf);
            match Pin::new(&mut *stream).poll_read(cx, &mut buf) {
                Poll::Ready(r) => r.map_err(io_err("reading the echo"))?,
                Poll::Pending => return Ok((moved, false)),
            }
            let n = buf.filled().len();
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
        let received = self.checker.received;
        if !self.shut {
            return Err(ClientError::ClosedEarly {
                sent: self.sent,
                received,
            });
        }
        if received < self.sent {
            return Err(ClientError::Short {
                sent: self.sent,
                received,
            });
        }
        Ok(Summary { bytes: received })
    }
}

/// The seed's conversation over UDP: each message one datagram, its reply
/// awaited (and checked) before the next is sent.
async fn send_datagrams(
    opts: &ClientOptions,
    messages: &[Vec<u8>],
) -> Result<Summary, ClientError> {
    let client = UdpClient::connect(&opts.addr).await?;
    let mut sent = 0u64;
    let mut checker = Checker { received: 0 };
    let mut previous: Option<&[u8]> = None;
    for msg in messages {
        info!(name = NAME, "sending {}", PyBytes(msg));
        sent += msg.len() as u64;
        let reply = client
            .exchange(msg, previous, opts.timeout, UDP_RETRIES)
            .await
            .map_err(|e| ClientError::from_exchange(e, sent, checker.received))?;
        info!(name = NAME, "received {}", PyBytes(&reply));
        check_datagram(&mut checker, &reply, msg, sent)?;
        previous = Some(msg);
    }
    info!(name = NAME, "closing");
    Ok(Summary { bytes: sent })
}

/// A datagram's reply must be exactly the message: a wrong byte is a
/// mismatch there, a longer reply is extra, a shorter one short.
fn check_datagram(
    checker: &mut Checker,
    reply: &[u8],
    msg: &[u8],
    sent: u64,
) -> Result<(), ClientError> {
    checker.check(reply, msg, sent)?;
    if reply.len() < msg.len() {
        return Err(ClientError::Short {
            sent,
            received: checker.received,
        });
    }
    Ok(())
}

/// `nc -u`-style: each chunk read from `input` (at most one datagram's
/// worth) is sent and its reply awaited and written to `output`.
async fn pipe_datagrams<R, W>(
    opts: &ClientOptions,
    mut input: R,
    mut output: W,
) -> Result<Summary, ClientError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let client = UdpClient::connect(&opts.addr).await?;
    let mut checker = Checker { received: 0 };
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut previous: Vec<u8> = Vec::new();
    let mut sent = 0u64;
    loop {
        let n = input
            .read(&mut buf)
            .await
            .map_err(io_err("reading input"))?;
        if n == 0 {
            break;
        }
        let msg = &buf[..n];
        sent += n as u64;
        debug!(name = NAME, "sending {}", PyBytes(msg));
        let stale = (!previous.is_empty()).then_some(previous.as_slice());
        let reply = client
            .exchange(msg, stale, opts.timeout, UDP_RETRIES)
            .await
            .map_err(|e| ClientError::from_exchange(e, sent, checker.received))?;
        debug!(name = NAME, "received {}", PyBytes(&reply));
        check_datagram(&mut checker, &reply, msg, sent)?;
        output.write_all(&reply).await.map_err(output_err)?;
        previous.clear();
        previous.extend_from_slice(msg);
    }
    output.flush().await.map_err(output_err)?;
    debug!(name = NAME, "closing");
    Ok(Summary { bytes: sent })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checker_finds_first_wrong_byte_and_calls_extra_bytes_extra() {
        let mut c = Checker { received: 0 };
        assert!(c.check(b"abc", b"abcdef", 6).is_ok());
        assert!(matches!(
            c.check(b"dXf", b"def", 6),
            Err(ClientError::Mismatch {
                offset: 4,
                expected: b'e',
                got: b'X',
                received: 6
            })
        ));
        let mut c = Checker { received: 10 };
        let e = c.check(b"ab!", b"ab", 12).unwrap_err();
        assert!(
            matches!(
                e,
                ClientError::Extra {
                    sent: 12,
                    received: 13
                }
            ),
            "{e:?}"
        );
        assert_eq!(e.to_string(), "extra echo: sent 12 bytes, received 13");
    }
}
