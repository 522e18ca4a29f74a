//! What binding makes: an [`Endpoint`] per address, with its sockets not
//! yet registered with any runtime, and how the logs name one.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::addr::{Addr, Transport};
use crate::proxy::ProxyMode;
use crate::transport::unix::SocketFile;

/// One address the server serves, and its sockets: one per shard when the
/// server bound them, or as many as systemd passed.
pub(super) struct Endpoint {
    pub(super) transport: Transport,
    pub(super) bound: BoundAddr,
    pub(super) sockets: Vec<RawSocket>,
    /// The Unix socket file this server made, removed once its socket is
    /// closed at shutdown (`None` for systemd's: it removes its own).
    pub(super) file: Option<SocketFile>,
    /// Whether its connections start with a PROXY header.
    pub(super) proxy: ProxyMode,
}

/// A bound socket, not yet registered with any runtime.
pub(super) enum RawSocket {
    Tcp(mio::net::TcpListener),
    Unix(mio::net::UnixListener),
    Udp(std::net::UdpSocket),
}

/// Where an endpoint is bound.
#[derive(Debug, Clone)]
pub(super) enum BoundAddr {
    Inet(SocketAddr),
    Unix(PathBuf),
}

impl Endpoint {
    /// The address, with the real port, as a user would write it.
    pub(super) fn addr(&self) -> Addr {
        match &self.bound {
            BoundAddr::Inet(a) if self.transport.is_web() => Addr::Web {
                transport: self.transport,
                host: a.ip().to_string(),
                port: a.port(),
                path: String::new(),
            },
            BoundAddr::Inet(a) => Addr::Inet {
                transport: self.transport,
                host: a.ip().to_string(),
                port: a.port(),
            },
            BoundAddr::Unix(p) => Addr::Unix(p.clone()),
        }
    }
}

/// How the `starting up` line names a transport: plain TCP keeps the
/// bare `HOST port PORT` of the Python example's line.
pub(super) fn scheme_prefix(transport: Transport) -> &'static str {
    match transport {
        Transport::Tcp => "",
        Transport::Tls => "tls://",
        Transport::Udp => "udp://",
        Transport::Unix => "unix:",
        // `ws://` is served by an `http://` listener, `wss://` by `https://`.
        Transport::Http | Transport::Ws => "http://",
        Transport::Https | Transport::Wss => "https://",
    }
}

/// `HOST port PORT`, as the logs and errors name an address.
pub(super) fn fmt_host_port(host: &str, port: u16) -> String {
    format!("{host} port {port}")
}
