//! Why a server may not start: a configuration refused before anything
//! is bound ([`ServerConfigError`]), or a failure while binding and
//! starting ([`ServerError`]).

use std::io;

use crate::addr::{Addr, ResolveError, Transport};
#[cfg(feature = "tls")]
use crate::transport::tls;

/// A setting out of range, or settings that do not fit together: why
/// [`ServerConfig::validate`](super::ServerConfig::validate) refuses a
/// configuration. The messages name settings, not flags; `echo-server`
/// says each variant with its flags.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
// Not `#[non_exhaustive]`: a program that says each variant in its own
// words (the binaries) matches them all, and a new cause should make it
// say that one too.
pub enum ServerConfigError {
    /// The read size is 0.
    #[error("the read size must be at least 1 byte")]
    ZeroReadSize,
    /// The read size is over `max`
    /// ([`MAX_READ_SIZE`](super::MAX_READ_SIZE)).
    #[error(
        "the read size must be at most {}: one read never returns more than the kernel's \
         socket buffer holds",
        crate::units::describe_size(*max as u64)
    )]
    ReadSizeTooLarge {
        /// The largest read size.
        max: usize,
    },
    /// A connection limit is over `max`
    /// ([`MAX_CONNECTION_LIMIT`](super::MAX_CONNECTION_LIMIT)).
    #[error("a connection limit must be at most {max}")]
    LimitTooLarge {
        /// The largest limit.
        max: usize,
    },
    /// The number of threads is 0 or over `max`
    /// ([`MAX_THREADS`](super::MAX_THREADS)).
    #[error("the number of threads must be at least 1 and at most {max}")]
    Threads {
        /// The most threads.
        max: usize,
    },
    /// No address to listen on, and no inherited socket.
    #[error("no address to listen on")]
    NoAddress,
    /// A listener whose protocol this build of the library leaves out
    /// (`default-features = false`, say).
    #[error("{scheme}:// needs echoes built with its `{feature}` feature")]
    NotBuilt {
        /// The listener's scheme.
        scheme: Transport,
        /// The Cargo feature that brings it.
        feature: &'static str,
    },
    /// Two listeners on one place: the same port (other than 0) of the
    /// same host, or the same Unix path. Caught before anything is bound.
    #[error("{second} is the same place as {first}: each address can be listened on once")]
    DuplicateListener {
        /// The listener given first.
        first: Addr,
        /// The one that repeats it.
        second: Addr,
    },
    /// A `tls://` or `https://` listener (or an inherited socket named
    /// `tls`), and no certificate.
    #[error("{scheme}:// needs a certificate")]
    TlsWithoutCertificate {
        /// The scheme of the first listener that needs one.
        scheme: Transport,
    },
    /// A certificate, and no `tls://` or `https://` address to use it.
    #[error("a certificate is set, but no tls:// or https:// address listens")]
    CertificateWithoutTls,
    /// A listening web address with a path: the server answers every path.
    #[error("{addr}: a listening address takes no path (the server answers every path)")]
    PathOnListener {
        /// The address as given.
        addr: Addr,
    },
    /// The largest WebSocket frame is larger than the largest message
    /// ([`HttpConfig`](crate::http::HttpConfig)'s `ws_max_frame` and
    /// `ws_max_message`).
    #[error(
        "the largest WebSocket frame ({frame} bytes) is larger than the largest message ({message} bytes)"
    )]
    FrameOverMessage {
        /// The frame limit.
        frame: usize,
        /// The message limit.
        message: usize,
    },
    /// The HTTP default knobs
    /// ([`HttpConfig::default_knobs`](crate::http::HttpConfig::default_knobs))
    /// are malformed or past the HTTP limits; `why` says which knob and why,
    /// as a request's 400 would.
    #[error("the default HTTP knobs: {why}")]
    DefaultKnobs {
        /// What is wrong with them.
        why: String,
    },
    /// The metrics address is not a plain `HOST:PORT`.
    #[error("the metrics page takes HOST:PORT (plain HTTP), not {addr}")]
    MetricsNotTcp {
        /// The address as given.
        addr: Addr,
    },
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A host name did not resolve.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// A socket could not be bound (port in use, no permission, no such
    /// address, a live server on a unix socket path).
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        /// The address as the user would write it.
        addr: String,
        /// The system's error.
        error: io::Error,
    },
    /// The configuration was refused before anything was bound.
    #[error(transparent)]
    Config(#[from] ServerConfigError),
    /// The certificate, key or CA could not be used.
    #[error(transparent)]
    #[cfg(feature = "tls")]
    Tls(#[from] tls::TlsError),
    /// A shard's thread or runtime could not be started.
    #[error("cannot start shard {shard}: {error}")]
    Shard {
        /// Which shard, from 0.
        shard: usize,
        /// The system's error.
        error: io::Error,
    },
}
