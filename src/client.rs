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

use std::cell::Cell;
use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tracing::{Level, debug, event, info};

use crate::addr::{Addr, Transport};
use crate::pyrepr::PyBytes;
use crate::transport::udp::{ExchangeError, MAX_DATAGRAM, UdpClient};
use crate::transport::{BoxStream, ConnectError};

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
    /// A PROXY protocol header to send before the data (not over UDP).
    pub proxy: Option<crate::proxy::send::ProxySend>,
}

impl ClientOptions {
    /// Options for `addr` with `timeout` and the default TLS trust.
    pub fn new(addr: Addr, timeout: Duration) -> ClientOptions {
        ClientOptions {
            addr,
            timeout,
            tls: None,
            proxy: None,
        }
    }

    async fn connect(&self) -> Result<BoxStream, ConnectError> {
        let (tls, proxy) = (self.tls.as_ref(), self.proxy.as_ref());
        crate::proxy::send::connect(&self.addr, self.timeout, tls, proxy).await
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
    /// A byte came back different from the one sent (0-based offset), or
    /// more came back than was sent.
    #[error("echo mismatch at byte {0}")]
    Mismatch(u64),
    /// The server closed before echoing everything.
    #[error("short echo: sent {sent} bytes, received {received}")]
    Short {
        /// Bytes sent.
        sent: u64,
        /// Bytes received back before end of stream.
        received: u64,
    },
    /// Nothing came back for the timeout while echo was owed.
    #[error(
        "timed out after {waited:?} waiting for the echo (sent {sent} bytes, received {received})"
    )]
    Timeout {
        /// How long nothing arrived.
        waited: Duration,
        /// Bytes sent.
        sent: u64,
        /// Bytes received.
        received: u64,
    },
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

impl ClientError {
    fn from_exchange(e: ExchangeError, sent: u64, received: u64) -> ClientError {
        match e {
            ExchangeError::Timeout { tries, timeout } => ClientError::Timeout {
                waited: timeout * tries,
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
    /// Checks `got` against `want`, which is the same length or longer
    /// (the part of what was sent that this echo should match).
    fn check(&mut self, got: &[u8], want: &[u8]) -> Result<(), ClientError> {
        if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
            return Err(ClientError::Mismatch(self.received + i as u64));
        }
        if got.len() > want.len() {
            return Err(ClientError::Mismatch(self.received + want.len() as u64));
        }
        self.received += got.len() as u64;
        Ok(())
    }
}

fn connect_line(addr: &Addr) -> String {
    match addr {
        Addr::Inet { host, port, .. } => format!("connecting to {host} port {port}"),
        Addr::Unix(path) => format!("connecting to {}", path.display()),
    }
}

/// The seed's conversation: send each message, half-close, read and log the
/// echo until the server closes, and check it.
pub async fn send_messages(
    opts: &ClientOptions,
    messages: &[Vec<u8>],
) -> Result<Summary, ClientError> {
    info!(name = NAME, "{}", connect_line(&opts.addr));
    if opts.addr.transport() == Transport::Udp {
        return send_datagrams(opts, messages).await;
    }
    let stream = opts.connect().await?;
    let (mut rd, mut wr) = tokio::io::split(stream);
    let expected: Vec<u8> = messages.concat();
    let sent = expected.len() as u64;
    // Chunks read before the last message is sent wait here, so the log
    // shows the seed's order: every `sending`, then `waiting`, then `received`.
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();

    let reading = async move {
        loop {
            let mut buf = vec![0u8; CHUNK];
            let n = rd
                .read(&mut buf)
                .await
                .map_err(io_err("reading the echo"))?;
            if n == 0 {
                return Ok::<(), ClientError>(());
            }
            buf.truncate(n);
            if tx.send(buf).is_err() {
                return Ok(());
            }
        }
    };
    let talking = async {
        for msg in messages {
            within(opts.timeout, wr.write_all(msg), 0, sent)
                .await?
                .map_err(io_err("sending"))?;
            info!(name = NAME, "sending {}", PyBytes(msg));
        }
        within(opts.timeout, wr.shutdown(), 0, sent)
            .await?
            .map_err(io_err("half-closing"))?;
        info!(name = NAME, "waiting for response");
        let mut checker = Checker { received: 0 };
        while let Some(chunk) = within(opts.timeout, rx.recv(), checker.received, sent).await? {
            info!(name = NAME, "received {}", PyBytes(&chunk));
            let from = (checker.received as usize).min(expected.len());
            checker.check(&chunk, &expected[from..])?;
        }
        info!(name = NAME, "closing");
        if checker.received < sent {
            return Err(ClientError::Short {
                sent,
                received: checker.received,
            });
        }
        Ok(Summary { bytes: sent })
    };
    let ((), summary) = tokio::try_join!(reading, talking)?;
    Ok(summary)
}

/// Awaits `fut` for at most `timeout`, as a [`ClientError::Timeout`].
async fn within<F: Future>(
    timeout: Duration,
    fut: F,
    received: u64,
    sent: u64,
) -> Result<F::Output, ClientError> {
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| ClientError::Timeout {
            waited: timeout,
            sent,
            received,
        })
}

/// `nc`-style: streams `input` to the server until its end, writes the echo
/// to `output` byte for byte, checks it, and returns once the server has
/// closed. The transcript is logged at debug level.
///
/// At most [`PIPE_WINDOW`] bytes are in flight unechoed; past that, input
/// waits, so memory stays bounded whatever the server does.
pub async fn pipe<R, W>(
    opts: &ClientOptions,
    mut input: R,
    mut output: W,
) -> Result<Summary, ClientError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    debug!(name = NAME, "{}", connect_line(&opts.addr));
    if opts.addr.transport() == Transport::Udp {
        return pipe_datagrams(opts, input, output).await;
    }
    let stream = opts.connect().await?;
    let (mut rd, mut wr) = tokio::io::split(stream);
    // Chunks sent and not yet echoed; its capacity bounds memory.
    let (tx, mut rx) = mpsc::channel::<Arc<[u8]>>(PIPE_WINDOW / CHUNK);
    let sent = Cell::new(0u64);
    let input_done = Cell::new(false);

    let sending = async {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = input
                .read(&mut buf)
                .await
                .map_err(io_err("reading input"))?;
            if n == 0 {
                break;
            }
            let chunk: Arc<[u8]> = Arc::from(&buf[..n]);
            // The checker gets its copy before a byte is on the wire: its
            // echo may come back before `write_all` returns.
            tx.send(chunk.clone()).await.map_err(|_| ClientError::Io {
                context: "sending",
                error: io::ErrorKind::BrokenPipe.into(),
            })?;
            sent.set(sent.get() + n as u64);
            wr.write_all(&chunk).await.map_err(io_err("sending"))?;
            debug!(name = NAME, "sending {}", PyBytes(&chunk));
        }
        wr.shutdown().await.map_err(io_err("half-closing"))?;
        input_done.set(true);
        drop(tx);
        debug!(name = NAME, "waiting for response");
        Ok::<(), ClientError>(())
    };
    let receiving = async {
        let mut checker = Checker { received: 0 };
        let mut owed: VecDeque<u8> = VecDeque::new();
        let mut buf = vec![0u8; CHUNK];
        loop {
            let waiting_for_echo = input_done.get() || checker.received < sent.get();
            let read = rd.read(&mut buf);
            let n = if waiting_for_echo {
                within(opts.timeout, read, checker.received, sent.get()).await?
            } else {
                read.await
            }
            .map_err(io_err("reading the echo"))?;
            if n == 0 {
                break;
            }
            let got = &buf[..n];
            debug!(name = NAME, "received {}", PyBytes(got));
            while owed.len() < n {
                match rx.recv().await {
                    Some(chunk) => owed.extend(chunk.iter()),
                    None => break,
                }
            }
            let avail = n.min(owed.len());
            checker.check(got, &owed.make_contiguous()[..avail])?;
            owed.drain(..avail);
            output
                .write_all(got)
                .await
                .map_err(io_err("writing output"))?;
        }
        output.flush().await.map_err(io_err("writing output"))?;
        event!(Level::DEBUG, name = NAME, "closing");
        Ok::<u64, ClientError>(checker.received)
    };
    let ((), received) = tokio::try_join!(sending, receiving)?;
    if received < sent.get() {
        return Err(ClientError::Short {
            sent: sent.get(),
            received,
        });
    }
    Ok(Summary { bytes: received })
}

/// The most bytes [`pipe`] keeps in flight without an echo.
pub const PIPE_WINDOW: usize = 4 * 1024 * 1024;

/// The seed's conversation over UDP: each message one datagram, its reply
/// awaited (and checked) before the next is sent.
async fn send_datagrams(
    opts: &ClientOptions,
    messages: &[Vec<u8>],
) -> Result<Summary, ClientError> {
    let client = UdpClient::connect(&opts.addr).await?;
    let sent: u64 = messages.iter().map(|m| m.len() as u64).sum();
    let mut checker = Checker { received: 0 };
    let mut previous: Option<&[u8]> = None;
    for msg in messages {
        info!(name = NAME, "sending {}", PyBytes(msg));
        let reply = client
            .exchange(msg, previous, opts.timeout, UDP_RETRIES)
            .await
            .map_err(|e| ClientError::from_exchange(e, sent, checker.received))?;
        info!(name = NAME, "received {}", PyBytes(&reply));
        check_datagram(&mut checker, &reply, msg)?;
        previous = Some(msg);
    }
    info!(name = NAME, "closing");
    Ok(Summary { bytes: sent })
}

/// A datagram's reply must be exactly the message: a wrong byte is a
/// mismatch there, a short reply is short.
fn check_datagram(checker: &mut Checker, reply: &[u8], msg: &[u8]) -> Result<(), ClientError> {
    let before = checker.received;
    checker.check(reply, msg)?;
    if reply.len() < msg.len() {
        return Err(ClientError::Mismatch(before + reply.len() as u64));
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
        check_datagram(&mut checker, &reply, msg)?;
        output
            .write_all(&reply)
            .await
            .map_err(io_err("writing output"))?;
        previous.clear();
        previous.extend_from_slice(msg);
    }
    output.flush().await.map_err(io_err("writing output"))?;
    debug!(name = NAME, "closing");
    Ok(Summary { bytes: sent })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checker_finds_first_wrong_byte() {
        let mut c = Checker { received: 0 };
        assert!(c.check(b"abc", b"abcdef").is_ok());
        assert!(matches!(
            c.check(b"dXf", b"def"),
            Err(ClientError::Mismatch(4))
        ));
        let mut c = Checker { received: 10 };
        assert!(matches!(
            c.check(b"ab!", b"ab"),
            Err(ClientError::Mismatch(12))
        ));
    }
}
