//! What a client is told ([`ClientOptions`]) and the one check of it
//! ([`ClientOptions::validate`]), made before anything connects.

use std::time::Duration;

use crate::addr::{Addr, Transport};
use crate::proxy::send::ProxySend;
use crate::transport::{BoxStream, ClientTls, ConnectError};

/// The default wait for a connection, and for the echo once it is owed:
/// `echo-client --timeout`'s default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how patiently to talk: build one with [`ClientOptions::new`],
/// change what you care about with its setters (each says its default),
/// and give it to [`send_messages`](super::send_messages),
/// [`pipe`](super::pipe) or [`http::request`](super::http::request), which
/// check it first ([`ClientOptions::validate`]).
///
/// ```
/// use std::time::Duration;
/// use echoes::ClientOptions;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut opts = ClientOptions::new("127.0.0.1:7".parse()?);
/// opts.timeout(Duration::from_secs(2));
/// opts.validate()?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    pub(crate) addr: Addr,
    pub(crate) timeout: Duration,
    pub(crate) tls: Option<ClientTls>,
    pub(crate) proxy: Option<ProxySend>,
}

impl ClientOptions {
    /// Options for the server at `addr`, every other setting at its
    /// default.
    pub fn new(addr: Addr) -> ClientOptions {
        ClientOptions {
            addr,
            timeout: DEFAULT_TIMEOUT,
            tls: None,
            proxy: None,
        }
    }

    /// How long to wait for a connection, and for the echo once it is
    /// owed (over UDP: for each reply, before resending once); more than
    /// 0.
    ///
    /// Default: [`DEFAULT_TIMEOUT`] (10 s).
    pub fn timeout(&mut self, timeout: Duration) -> &mut Self {
        self.timeout = timeout;
        self
    }

    /// The TLS configuration for `tls://`, `wss://` and `https://` (with
    /// the `tls` feature, from
    /// [`tls::client_config`](crate::transport::tls::client_config)).
    ///
    /// Default: `None`, which trusts the system's CAs.
    pub fn tls(&mut self, tls: impl Into<Option<ClientTls>>) -> &mut Self {
        self.tls = tls.into();
        self
    }

    /// A PROXY protocol header to send before the data; streams only,
    /// not `udp://`.
    ///
    /// Default: `None`, no header.
    pub fn proxy(&mut self, proxy: impl Into<Option<ProxySend>>) -> &mut Self {
        self.proxy = proxy.into();
        self
    }

    /// The server.
    pub fn addr(&self) -> &Addr {
        &self.addr
    }

    /// Checks the values and their combination: the error says what to
    /// change. The conversations call it first; a program calls it
    /// itself to report a bad setting before it starts anything.
    pub fn validate(&self) -> Result<(), ClientOptionsError> {
        if self.timeout.is_zero() {
            return Err(ClientOptionsError::ZeroTimeout);
        }
        if self.proxy.is_some() && self.addr.transport() == Transport::Udp {
            return Err(ClientOptionsError::ProxyOverUdp);
        }
        Ok(())
    }

    /// A stream to the server, through TLS and past the PROXY header as
    /// set.
    pub(super) async fn connect(&self) -> Result<BoxStream, ConnectError> {
        let (tls, proxy) = (self.tls.as_ref(), self.proxy.as_ref());
        crate::transport::connect_with(&self.addr, self.timeout, tls, proxy).await
    }
}

/// Why options cannot be used: one variant per cause. The messages speak
/// of the values, not of any command line's flags: `echo-client` says
/// each with its own flags.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
// Not `#[non_exhaustive]`: a program that says each variant in its own
// words (the binaries) matches them all, and a new cause should make it
// say that one too.
pub enum ClientOptionsError {
    /// A zero timeout, which no wait could meet.
    #[error("the timeout must be more than 0")]
    ZeroTimeout,
    /// A PROXY protocol header over UDP.
    #[error("the PROXY protocol needs a stream: it is not used over udp://")]
    ProxyOverUdp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_options_say_what_is_wrong() {
        let tcp = ClientOptions::new("127.0.0.1:7".parse().unwrap());
        assert_eq!(tcp.timeout, DEFAULT_TIMEOUT);
        assert_eq!(tcp.validate(), Ok(()));
        let zero = tcp.clone().timeout(Duration::ZERO).clone();
        assert_eq!(zero.validate(), Err(ClientOptionsError::ZeroTimeout));
        let header = ProxySend::new(crate::proxy::Version::V2);
        assert_eq!(tcp.clone().proxy(header.clone()).validate(), Ok(()));
        let mut udp = ClientOptions::new("udp://127.0.0.1:7".parse().unwrap());
        assert_eq!(
            udp.proxy(header).validate(),
            Err(ClientOptionsError::ProxyOverUdp)
        );
    }
}
