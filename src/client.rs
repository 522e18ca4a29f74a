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
//! `wss://`, each message is one WebSocket message; `http://` and
//! `https://` send one request instead ([`http_request`]).
//!
//! The seed's conversation against a server in the same test:
//!
//! ```
//! use echoes::client::{self, SEED_MESSAGES};
//! use echoes::{ClientOptions, Server, ServerConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::bind(ServerConfig::new("127.0.0.1:0".parse()?)).await?;
//! let addr = server.local_addrs()[0].clone();
//! let shutdown = server.shutdown_handle();
//! let running = tokio::spawn(server.run());
//!
//! let messages: Vec<Vec<u8>> = SEED_MESSAGES.iter().map(|m| m.to_vec()).collect();
//! let summary = client::send_messages(&ClientOptions::new(addr), &messages).await?;
//! assert_eq!(summary.bytes, 46); // every byte came back, in order
//!
//! shutdown.shutdown();
//! running.await??;
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "http")]
pub(crate) mod http;
#[cfg(feature = "http")]
pub(crate) mod ws;

mod check;
mod error;
mod options;
mod pipe;
mod stream;
mod talk;
mod transcript;
mod waits;

pub use check::Summary;
pub use error::ClientError;
#[cfg(feature = "http")]
pub use http::{HttpError, HttpRequest, parse_header, parse_method, request as http_request};
pub use options::{ClientOptions, ClientOptionsError, DEFAULT_TIMEOUT};
pub use pipe::PIPE_WINDOW;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::{debug, info};

use check::Checker;
use error::{io_err, output_err};
use pipe::Pipe;
use talk::Talk;
use transcript::{NAME, connect_line};

use crate::addr::Transport;
use crate::pyrepr::PyBytes;
use crate::transport::ConnectError;
use crate::transport::udp::{MAX_DATAGRAM, UdpClient};

/// The three messages the Python client sends, sent when none are given.
pub const SEED_MESSAGES: [&[u8]; 3] = [b"This is the message. ", b"It will be sent ", b"in parts."];

/// How many times a UDP message is resent when no reply comes in time.
pub const UDP_RETRIES: u32 = 1;

/// What every conversation checks before it connects: the options, and
/// that this build speaks the address's protocol.
fn ready(opts: &ClientOptions) -> Result<(), ClientError> {
    opts.validate()?;
    let transport = opts.addr.transport();
    match crate::transport::not_built(transport) {
        Some(feature) => Err(ConnectError::NotBuilt { transport, feature }.into()),
        None => Ok(()),
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
/// byte of the echo (or the close). The options are checked first
/// ([`ClientOptions::validate`]).
pub async fn send_messages(
    opts: &ClientOptions,
    messages: &[Vec<u8>],
) -> Result<Summary, ClientError> {
    ready(opts)?;
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
/// The options are checked first ([`ClientOptions::validate`]).
pub async fn pipe<R, W>(opts: &ClientOptions, input: R, output: W) -> Result<Summary, ClientError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    ready(opts)?;
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

/// The same conversation over UDP: each message one datagram, its reply
/// awaited (and checked) before the next is sent.
async fn send_datagrams(
    opts: &ClientOptions,
    messages: &[Vec<u8>],
) -> Result<Summary, ClientError> {
    let client = UdpClient::connect(&opts.addr).await?;
    let mut sent = 0u64;
    let mut checker = Checker::new();
    let mut previous: Option<&[u8]> = None;
    for msg in messages {
        info!(name = NAME, "sending {}", PyBytes(msg));
        sent += msg.len() as u64;
        let reply = client
            .exchange(msg, previous, opts.timeout, UDP_RETRIES)
            .await
            .map_err(|e| ClientError::from_exchange(e, sent, checker.received))?;
        info!(name = NAME, "received {}", PyBytes(&reply));
        checker.check_whole(&reply, msg, sent)?;
        previous = Some(msg);
    }
    info!(name = NAME, "closing");
    Ok(Summary { bytes: sent })
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
    let mut checker = Checker::new();
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
        checker.check_whole(&reply, msg, sent)?;
        output.write_all(&reply).await.map_err(output_err)?;
        previous.clear();
        previous.extend_from_slice(msg);
    }
    output.flush().await.map_err(output_err)?;
    debug!(name = NAME, "closing");
    Ok(Summary { bytes: sent })
}
