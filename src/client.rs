//! The client: the Python example's `echo_client` (the seed: see the crate
//! documentation), plus an `nc`-style pipe mode, both checking that every
//! byte comes back in order.
//!
//! [`send_messages`] sends each message as its own write, half-closes, and
//! logs the conversation exactly as the Python client does. [`pipe`] streams any
//! reader to the server and the echo to any writer. Both read while they
//! write, from one future that polls both sides (`talk` and `pipe`), so a
//! message larger than the socket buffers cannot deadlock against a server
//! that stops reading until its replies are read, and both check the echo
//! as it arrives: a server that sends wrong or extra bytes is caught at
//! once, and the client's memory stays bounded whatever it sends. Every
//! wait is bounded by the timeout once bytes are owed (`waits`).
//!
//! Over `udp://` there is no stream to half-close: each message (or each
//! chunk of input) is one datagram, and its reply is awaited, with
//! `timeout` and one resend, before the next is sent. Over `ws://` and
//! `wss://`, each message is one WebSocket message ([`ws`]); `http://` and
//! `https://` send one request instead ([`http`]).

#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "http")]
pub mod ws;

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::{debug, info};

mod pipe;
mod talk;
mod waits;

use pipe::Pipe;
use talk::Talk;

use crate::addr::{Addr, Transport};
use crate::pyrepr::PyBytes;
use crate::transport::udp::{ExchangeError, MAX_DATAGRAM, UdpClient};
use crate::transport::{BoxStream, ConnectError};

/// The three messages the Python client sends, sent when none are given.
pub const SEED_MESSAGES: [&[u8]; 3] = [b"This is the message. ", b"It will be sent ", b"in parts."];

/// The logger name of the client's lines, as the Python client names them.
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
    /// The TLS configuration for `tls://` (with the `tls` feature, from
    /// `transport::tls::client_config`); `None` trusts the system's CAs.
    pub tls: Option<crate::transport::ClientTls>,
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
        crate::transport::connect_with(&self.addr, self.timeout, tls, proxy).await
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
    /// Over WebSocket: the echo of a message came back as the other type
    /// of message (binary for text, or text for binary).
    #[error("echo mismatch at byte {offset}: sent a {sent} message, received a {received} one")]
    WrongType {
        /// The 0-based offset of the message's first byte.
        offset: u64,
        /// `text` or `binary`.
        sent: &'static str,
        /// `text` or `binary`.
        received: &'static str,
    },
    /// More came back than was sent: every byte up to `sent` was right,
    /// and then the server went on. The first extra byte is the first
    /// wrong one, so it reads as SPEC.md's mismatch at its offset.
    #[error(
        "echo mismatch at byte {sent}: an extra byte past the {sent} sent (received {received})"
    )]
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

/// An I/O error while `context`, a TLS one in words a user can act on.
fn io_err(context: &'static str) -> impl FnOnce(io::Error) -> ClientError {
    #[cfg(feature = "tls")]
    let hinted = crate::transport::tls::with_trust_hint;
    #[cfg(not(feature = "tls"))]
    let hinted = std::convert::identity;
    move |error| ClientError::Io {
        context,
        error: hinted(error),
    }
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
        Addr::Inet { host, port, .. } | Addr::Web { host, port, .. } => {
            format!("connecting to {host} port {port}")
        }
        Addr::Unix(path) => format!("connecting to {}", path.display()),
    }
}

/// The Python client's conversation: send each message, half-close, read
/// and log the echo until the server closes, and check it.
///
/// The echo is read and checked while the messages are written, so a
/// server that sends back more than it was given, or the wrong bytes, is
/// caught at once, and memory stays bounded (one read buffer, and the
/// messages themselves) whatever the server sends. Echoed chunks that
/// arrive before the last message is sent are logged after it, as the
/// Python client's log shows them: only their lengths are kept, since their bytes
/// are those sent. Every wait is bounded by the timeout once bytes are
/// owed: for the server to take what is left to send, and for the next
/// byte of the echo (or the close).
pub async fn send_messages(
    opts: &ClientOptions,
    messages: &[Vec<u8>],
) -> Result<Summary, ClientError> {
    if let Some(feature) = crate::transport::not_built(opts.addr.transport()) {
        let transport = opts.addr.transport();
        return Err(ConnectError::NotBuilt { transport, feature }.into());
    }
    #[cfg(feature = "http")]
    if matches!(opts.addr.transport(), Transport::Ws | Transport::Wss) {
        return ws::send_messages(opts, messages).await;
    }
    info!(name = NAME, "{}", connect_line(&opts.addr));
    if opts.addr.transport() == Transport::Udp {
        return send_datagrams(opts, messages).await;
    }
    let mut stream = opts.connect().await?;
    let mut talk = Talk::new(messages, opts.timeout);
    std::future::poll_fn(|cx| talk.poll(cx, &mut stream)).await
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
    if let Some(feature) = crate::transport::not_built(opts.addr.transport()) {
        let transport = opts.addr.transport();
        return Err(ConnectError::NotBuilt { transport, feature }.into());
    }
    #[cfg(feature = "http")]
    if matches!(opts.addr.transport(), Transport::Ws | Transport::Wss) {
        return ws::pipe(opts, input, output).await;
    }
    debug!(name = NAME, "{}", connect_line(&opts.addr));
    if opts.addr.transport() == Transport::Udp {
        return pipe_datagrams(opts, input, output).await;
    }
    let mut stream = opts.connect().await?;
    let mut pipe = Pipe::new(input, output, opts.timeout);
    std::future::poll_fn(|cx| pipe.poll(cx, &mut stream)).await
}

/// The most bytes [`pipe`] keeps in flight without an echo.
pub const PIPE_WINDOW: usize = 4 * 1024 * 1024;

/// The same conversation over UDP: each message one datagram, its reply
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
        assert_eq!(
            e.to_string(),
            "echo mismatch at byte 12: an extra byte past the 12 sent (received 13)"
        );
    }
}
