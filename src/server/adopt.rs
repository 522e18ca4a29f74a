//! Sockets passed by systemd (`LISTEN_FDS`), adopted as endpoints.
//!
//! Sockets passed for the same address (a `.socket` unit that lists it
//! several times with `ReusePort=yes`) make one endpoint with several
//! sockets, so each shard can get its own: the fast path, with no
//! privilege in the server. An endpoint with fewer sockets than shards is
//! served by one accept loop per socket that hands connections to the
//! shards in turn (see [`super::shard`]). Sibling sockets are not opened
//! beside a passed one: the kernel lets a socket join a `SO_REUSEPORT`
//! group only when the same user made both, and systemd makes its sockets
//! as root, for a service that usually is not (`DynamicUser=`), and for
//! ports it may not bind.

use std::path::PathBuf;

use tracing::{debug, info};

use super::endpoint::{BoundAddr, Endpoint, RawSocket, fmt_host_port, scheme_prefix};
use super::error::ServerError;
use crate::activation::{InheritedSocket, SocketKind};
use crate::addr::Transport;
use crate::proxy::ProxyMode;
use crate::transport::tcp;

/// Adopts every passed socket, grouping those of one address (and the
/// same TLS-ness) into one endpoint. Logs `starting up on … (from
/// systemd)` once per endpoint.
/// `proxy` is the mode of every stream socket (`--proxy-protocol`).
pub(super) fn adopt_all(
    inherited: Vec<InheritedSocket>,
    shards: usize,
    proxy: ProxyMode,
) -> Result<Vec<Endpoint>, ServerError> {
    let mut endpoints: Vec<(Option<(SocketKind, bool)>, Endpoint)> = Vec::new();
    for socket in inherited {
        // Unnamed Unix sockets are never the same address.
        let key = match &socket.kind {
            SocketKind::Unix(None) => None,
            kind => Some((kind.clone(), socket.wants_tls())),
        };
        let (raw, transport, bound) = adopt(socket)?;
        if let Some((_, endpoint)) = endpoints
            .iter_mut()
            .find(|(k, _)| key.is_some() && *k == key)
        {
            endpoint.sockets.push(raw);
            continue;
        }
        let label = match &bound {
            BoundAddr::Inet(a) => format!(
                "{}{}",
                scheme_prefix(transport),
                fmt_host_port(&a.ip().to_string(), a.port())
            ),
            BoundAddr::Unix(p) => format!("unix:{}", p.display()),
        };
        info!(name = "main", "starting up on {label} (from systemd)");
        let endpoint = Endpoint {
            transport,
            bound,
            sockets: vec![raw],
            file: None,
            proxy: match transport {
                Transport::Udp => ProxyMode::Off,
                _ => proxy,
            },
        };
        endpoints.push((key, endpoint));
    }
    for (_, e) in &endpoints {
        debug!(
            name = "main",
            "{}: {} socket(s) from systemd for {shards} shard(s)",
            e.addr(),
            e.sockets.len()
        );
    }
    Ok(endpoints.into_iter().map(|(_, e)| e).collect())
}

/// Takes over one socket the service manager passed.
fn adopt(socket: InheritedSocket) -> Result<(RawSocket, Transport, BoundAddr), ServerError> {
    let wants_tls = socket.wants_tls();
    let InheritedSocket { fd, kind, .. } = socket;
    let err = |what: String| move |error| ServerError::Bind { addr: what, error };
    Ok(match kind {
        SocketKind::Tcp(local) => {
            let transport = if wants_tls {
                Transport::Tls
            } else {
                Transport::Tcp
            };
            let label = fmt_host_port(&local.ip().to_string(), local.port());
            let std = std::net::TcpListener::from(fd);
            // Accepted sockets inherit these, as from the listeners we bind.
            let sock = socket2::SockRef::from(&std);
            sock.set_tcp_nodelay(true)
                .and_then(|()| tcp::set_accepted_options(&sock))
                .map_err(err(label))?;
            let listener = mio::net::TcpListener::from_std(std);
            (RawSocket::Tcp(listener), transport, BoundAddr::Inet(local))
        }
        SocketKind::Udp(local) => {
            let udp = std::net::UdpSocket::from(fd);
            (RawSocket::Udp(udp), Transport::Udp, BoundAddr::Inet(local))
        }
        SocketKind::Unix(path) => {
            let path = path.unwrap_or_else(|| PathBuf::from("(unnamed)"));
            let std = std::os::unix::net::UnixListener::from(fd);
            let listener = mio::net::UnixListener::from_std(std);
            (
                RawSocket::Unix(listener),
                Transport::Unix,
                BoundAddr::Unix(path),
            )
        }
    })
}
