//! Connecting a client stream: every stream address (`tcp://`, `tls://`,
//! `unix:`), with a PROXY header first when the caller asks for one. One
//! path for the client, the bench and the web clients.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncWrite;

use super::error::ConnectError;
use super::stream::BoxStream;
#[cfg(feature = "tls")]
use super::tls;
use super::{tcp, unix};
use crate::addr::{Addr, Transport};
use crate::proxy::send::ProxySend;

/// Connects to `addr`, trying each resolved address in turn, each attempt
/// bounded by `timeout`. TLS trusts the system's CAs; see [`connect_with`].
pub async fn connect(addr: &Addr, timeout: Duration) -> Result<BoxStream, ConnectError> {
    connect_plain(addr, timeout, None).await
}

/// A client's TLS configuration: rustls's, shared. Without the `tls`
/// feature it is a type with no value, so an `Option` of it is always
/// `None` and the signatures that take one stay the same.
#[cfg(feature = "tls")]
pub type ClientTls = std::sync::Arc<rustls::ClientConfig>;

/// A client's TLS configuration: without the `tls` feature, none can be
/// made.
#[cfg(not(feature = "tls"))]
#[derive(Debug, Clone)]
pub enum ClientTls {}

/// The Cargo feature `transport` needs, when this build leaves it out:
/// `tls` for `tls://`, `http` for the web schemes.
pub(crate) fn not_built(transport: Transport) -> Option<&'static str> {
    match transport {
        Transport::Tls if !cfg!(feature = "tls") => Some("tls"),
        t if t.is_web() && !cfg!(feature = "http") => Some("http"),
        _ => None,
    }
}

/// Shakes hands as a TLS client over `tcp`, already connected to `addr`
/// (and past a PROXY header, say), with `tls_config` (`None`: the
/// system's CAs).
pub(crate) async fn tls_over(
    tcp: tokio::net::TcpStream,
    addr: &Addr,
    timeout: Duration,
    tls_config: Option<&ClientTls>,
) -> Result<BoxStream, ConnectError> {
    #[cfg(feature = "tls")]
    {
        let config = match tls_config {
            Some(c) => c.clone(),
            None => tls::default_client_config()?,
        };
        Ok(Box::new(tls::handshake(tcp, addr, timeout, config).await?))
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = (tcp, addr, timeout, tls_config);
        Err(ConnectError::NotBuilt {
            transport: Transport::Tls,
            feature: "tls",
        })
    }
}

/// As [`connect_with`], without a preface.
async fn connect_plain(
    addr: &Addr,
    timeout: Duration,
    tls_config: Option<&ClientTls>,
) -> Result<BoxStream, ConnectError> {
    match addr {
        Addr::Unix(path) => Ok(Box::new(unix::connect(path, timeout).await?)),
        Addr::Inet { transport, .. } => match transport {
            Transport::Tcp => Ok(Box::new(tcp::connect(addr, timeout).await?)),
            #[cfg(feature = "tls")]
            Transport::Tls => {
                let config = match tls_config {
                    Some(c) => c.clone(),
                    None => tls::default_client_config()?,
                };
                Ok(Box::new(tls::connect(addr, timeout, config).await?))
            }
            #[cfg(not(feature = "tls"))]
            Transport::Tls => {
                let _ = tls_config;
                Err(ConnectError::NotBuilt {
                    transport: Transport::Tls,
                    feature: "tls",
                })
            }
            other => Err(ConnectError::Unsupported(*other)),
        },
        Addr::Web { transport, .. } => Err(ConnectError::Unsupported(*transport)),
    }
}

/// Connects to `addr` as [`connect`] does, with the TLS client
/// configuration to use for `tls://` (`None`: the system's CAs; other
/// transports ignore it), and, with `proxy`, writes its PROXY header
/// first: after the TCP (or Unix) connection is made, before any TLS
/// handshake. `udp://` has no stream to put it on. The client, the bench
/// and the web clients all connect through here.
pub async fn connect_with(
    addr: &Addr,
    timeout: Duration,
    tls_config: Option<&ClientTls>,
    proxy: Option<&ProxySend>,
) -> Result<BoxStream, ConnectError> {
    let Some(proxy) = proxy else {
        return connect_plain(addr, timeout, tls_config).await;
    };
    let failed = |error: io::Error| ConnectError::Connect {
        target: addr.to_string(),
        error: io::Error::new(error.kind(), format!("sending the PROXY header: {error}")),
    };
    match addr {
        Addr::Unix(path) => {
            let mut stream = unix::connect(path, timeout).await?;
            send(proxy, &mut stream, None, None, timeout)
                .await
                .map_err(failed)?;
            Ok(Box::new(stream))
        }
        // Web clients connect their stream address (tcp:// or tls://)
        // here: `transport::web::connect_stream`.
        Addr::Web { transport, .. } => Err(ConnectError::Unsupported(*transport)),
        Addr::Inet { transport, .. } => {
            if !matches!(transport, Transport::Tcp | Transport::Tls) {
                return Err(ConnectError::Unsupported(*transport));
            }
            let mut stream = tcp::connect(addr, timeout).await?;
            let (local, peer) = (stream.local_addr().ok(), stream.peer_addr().ok());
            send(proxy, &mut stream, local, peer, timeout)
                .await
                .map_err(failed)?;
            if *transport == Transport::Tcp {
                return Ok(Box::new(stream));
            }
            tls_over(stream, addr, timeout, tls_config).await
        }
    }
}

/// Writes `proxy`'s header within `timeout`.
async fn send<W: AsyncWrite + Unpin>(
    proxy: &ProxySend,
    stream: &mut W,
    local: Option<SocketAddr>,
    peer: Option<SocketAddr>,
    timeout: Duration,
) -> io::Result<()> {
    match tokio::time::timeout(timeout, proxy.write_to(stream, local, peer)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "timed out")),
    }
}
