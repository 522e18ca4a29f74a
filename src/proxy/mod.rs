//! The PROXY protocol, v1 and v2 (HAProxy's `proxy-protocol.txt`): how a
//! balancer in front of the server (HAProxy's `send-proxy`, nginx's
//! `proxy_protocol on`, an AWS NLB) tells it who the real client is.
//!
//! As in quinn, the protocol is kept apart from the runtime: [`parse()`]
//! and [`encode()`] are pure functions over bytes, [`ProxyHeader`] is what a
//! header says, owned; the server's `accept` step (inside the crate) is
//! the thin async step that reads a header off an accepted socket, and [`ProxySend`] the client's, which writes
//! one after connecting.
//!
//! On the server, a listener's [`ProxyMode`] says whether a header is
//! required (`--proxy-protocol`), used when present (`?proxy=optional` on
//! the address), or not expected (the default). The header comes before
//! anything else, TLS included. Over UDP the protocol is not used.
//!
//! ```
//! use echoes::proxy::{self, Parse, Version};
//!
//! let (client, server) = ("198.51.100.7:40000".parse()?, "203.0.113.1:443".parse()?);
//! let mut buf = [0u8; proxy::MAX_STREAM_HEADER];
//! let n = proxy::encode_stream(Version::V1, client, server, &mut buf);
//! assert_eq!(&buf[..n], b"PROXY TCP4 198.51.100.7 203.0.113.1 40000 443\r\n");
//! let Parse::Header(header) = proxy::parse(&buf[..n])? else { panic!("a whole header") };
//! assert_eq!(header.client(), Some(client));
//! // Half a header is not an error, just not enough yet.
//! assert!(matches!(proxy::parse(&buf[..10])?, Parse::Incomplete));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub(crate) mod crc32c;
pub(crate) mod encode;
pub(crate) mod header;
pub(crate) mod parse;
pub(crate) mod send;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

pub use encode::{EncodeError, MAX_STREAM_HEADER, encode, encode_stream, encode_unknown};
pub use header::{Addresses, Command, Protocol, ProxyHeader, Ssl, Tlvs, Version};
pub use parse::{HeaderError, Parse, V1_MAX_LEN, V1_SIGNATURE, V2_MAX_LEN, V2_SIGNATURE, parse};
pub use send::{ProxySend, parse_source};

/// The default time a peer has to send its whole header.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether a listener expects a PROXY header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ProxyMode {
    /// No header is expected: whatever comes is data.
    #[default]
    Off,
    /// A header is used when the first bytes are one; otherwise they are
    /// data. Anyone who can connect can claim any address: only for
    /// listeners that trusted proxies and direct clients share.
    Optional,
    /// Every connection must start with a valid header, or it is closed.
    Required,
}

impl ProxyMode {
    /// `off`, `optional` or `required`, as `?proxy=` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyMode::Off => "off",
            ProxyMode::Optional => "optional",
            ProxyMode::Required => "required",
        }
    }
}

impl fmt::Display for ProxyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProxyMode {
    type Err = String;

    fn from_str(s: &str) -> Result<ProxyMode, String> {
        match s {
            "off" => Ok(ProxyMode::Off),
            "optional" => Ok(ProxyMode::Optional),
            "required" => Ok(ProxyMode::Required),
            _ => Err(format!(
                "unknown PROXY protocol mode '{s}' (expected off, optional or required)"
            )),
        }
    }
}

/// The server's PROXY protocol settings, given to
/// [`ServerConfig::proxy`](crate::ServerConfig::proxy): built as
/// `ServerConfig` is, [`ProxySettings::default`] then setters.
///
/// ```
/// use std::time::Duration;
/// use echoes::proxy::{ProxyMode, ProxySettings};
///
/// let mut proxy = ProxySettings::default();
/// proxy.mode(ProxyMode::Required).header_timeout(Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySettings {
    pub(crate) mode: ProxyMode,
    pub(crate) header_timeout: Duration,
}

impl Default for ProxySettings {
    fn default() -> Self {
        ProxySettings {
            mode: ProxyMode::Off,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
        }
    }
}

impl ProxySettings {
    /// The mode of every stream listener without one of its own
    /// (`--proxy-protocol`: [`ProxyMode::Required`]; a listener's own is
    /// [`ListenAddr::proxy`](crate::server::ListenAddr)), and of sockets
    /// passed by systemd. Default: [`ProxyMode::Off`].
    pub fn mode(&mut self, mode: ProxyMode) -> &mut Self {
        self.mode = mode;
        self
    }

    /// How long a peer has to send its whole header
    /// (`--proxy-header-timeout`). Default: [`DEFAULT_HEADER_TIMEOUT`].
    pub fn header_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.header_timeout = timeout;
        self
    }
}

#[cfg(test)]
mod tests;
