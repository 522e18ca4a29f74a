//! Why a transport fails: a client's connect, and TLS's set-up.

use std::io;
#[cfg(feature = "tls")]
use std::path::PathBuf;

use crate::addr::{ResolveError, Transport};

/// Why a client could not connect.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The host name did not resolve.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// Every address was tried and none accepted the connection.
    #[error("cannot connect to {target}: {error}")]
    Connect {
        /// `HOST port PORT` or the unix path.
        target: String,
        /// The last address's error.
        error: io::Error,
    },
    /// The TCP connection was made, but the TLS handshake failed (an
    /// untrusted certificate, a peer that does not speak TLS, …).
    #[error("TLS handshake with {target} failed: {error}")]
    Handshake {
        /// `HOST port PORT`.
        target: String,
        /// rustls's reason, as an I/O error.
        error: io::Error,
    },
    /// TLS could not be set up on this side (an unreadable CA file, no
    /// system CAs, …).
    #[cfg(feature = "tls")]
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The address needs a protocol this build of the library leaves out
    /// (`default-features = false`, say).
    #[error("{transport}:// needs echoes built with its `{feature}` feature")]
    NotBuilt {
        /// The address's transport.
        transport: Transport,
        /// The Cargo feature that brings it.
        feature: &'static str,
    },
    /// The WebSocket opening handshake failed (the server answered with
    /// another status than 101, closed, or did not answer in time).
    #[error("WebSocket handshake with {target} failed: {reason}")]
    WebSocket {
        /// The `ws://` or `wss://` address.
        target: String,
        /// What went wrong.
        reason: String,
    },
    /// The transport is not a byte stream this function can connect (UDP:
    /// use [`UdpClient`](super::udp::UdpClient)).
    #[error("{0}:// is not supported here")]
    Unsupported(Transport),
}

#[cfg(feature = "tls")]
/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("cannot read {what} {}: {error}", path.display())]
    Read {
        /// "certificate", "private key" or "CA certificate".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The system's error.
        error: io::Error,
    },
    /// A file held no usable PEM item of the kind needed.
    #[error("invalid {what} {}: {reason}", path.display())]
    Invalid {
        /// "certificate", "private key" or "CA certificate".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// rustls refused the configuration (a key that does not match the
    /// certificate, an unusable CA, …).
    #[error("{context}: {error}")]
    Config {
        /// What was being set up.
        context: &'static str,
        /// rustls's reason.
        error: rustls::Error,
    },
    /// The self-signed certificate could not be made.
    #[error("cannot make a self-signed certificate: {0}")]
    SelfSigned(#[from] rcgen::Error),
    /// No trusted CA certificate could be found on this system.
    #[error(
        "no trusted CA certificates found on this system; use --tls-ca PEM, --tls-pin or --insecure"
    )]
    NoSystemRoots,
}
