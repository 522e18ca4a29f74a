//! Why a conversation failed ([`ClientError`]), and the I/O errors in
//! its words.

use std::io;
use std::time::Duration;

use super::options::ClientOptionsError;
use crate::pyrepr::PyBytes;
use crate::transport::ConnectError;
use crate::transport::udp::ExchangeError;

/// Why a conversation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The options cannot be used ([`ClientOptions::validate`](super::ClientOptions::validate)).
    #[error(transparent)]
    Options(#[from] ClientOptionsError),
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
pub(super) fn io_err(context: &'static str) -> impl FnOnce(io::Error) -> ClientError {
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
pub(super) fn output_err(error: io::Error) -> ClientError {
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
    pub(super) fn from_exchange(e: ExchangeError, sent: u64, received: u64) -> ClientError {
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
