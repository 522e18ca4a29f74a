//! Connections whose stream a library drives: `tls://` (rustls, then the
//! generic echo loop) and `http://` / `https://` (hyper, with rustls for
//! the handshake). Each runs in its own task on the shard that serves it:
//! the PROXY header when its listener wants one (peeked, so the handshake
//! or the request finds its bytes in the kernel), the handshake within
//! its timeout, then the echo or the HTTP service.

#[cfg(feature = "http")]
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::info;

use super::ServerState;
use super::proxy_step::Take;
#[cfg(feature = "http")]
use super::spawn;
use super::spawn::{Lease, admit, register};
use super::tcp_conn::TcpConn;
use crate::addr::Transport;
use crate::echo::echo_stream;
#[cfg(feature = "http")]
use crate::http::{ConnFacts, ProxyFacts, TlsFacts};
use crate::metrics::{ErrorKind, Metrics};
use crate::proxy::ProxyMode;
use crate::transport::{self, PeerName};
use crate::units::format_duration;

/// Spawns a `tls://` connection's task: its PROXY header, its handshake,
/// then its echo.
pub(super) fn spawn_tls(
    state: &Arc<ServerState>,
    stream: mio::net::TcpStream,
    peer: PeerName,
    proxy: ProxyMode,
    lease: Lease,
) {
    let Some(acceptor) = state.tls.clone() else {
        drop(lease);
        return;
    };
    let Some((io, lease)) = register(stream, peer, lease) else {
        return;
    };
    let state = state.clone();
    tokio::spawn(async move {
        // Locals drop in reverse order: the registry entry (in `lease`)
        // before the socket.
        let io = io;
        let lease = lease;
        let how = (proxy, Take::Peek);
        let Some(accepted) = admit(&state, &io, peer, how, Transport::Tls).await else {
            return;
        };
        let (peer, via) = (accepted.peer, accepted.via().to_string());
        // The socket owns `lease` from here, and drops it first.
        let socket = TcpConn::new(lease, io);
        let (opts, timeout) = (state.opts, state.tls_handshake_timeout);
        let metrics = &state.metrics;
        let handshake = handshake(socket, acceptor, timeout, peer, metrics, Transport::Tls);
        let Some(mut tls) = handshake.await else {
            return;
        };
        info!(name = %peer, "connection accepted{via}");
        // The TCP socket under the TLS stream, for the idle timer; open
        // for as long as `tls` is.
        let fd = tls.get_ref().0.as_raw_fd();
        let queues = move || transport::socket_queues(fd);
        let bytes = metrics.bytes(Transport::Tls);
        let result = echo_stream(&mut tls, peer, opts, bytes, queues).await;
        tls.get_ref()
            .0
            .lease()
            .ended(peer, result, opts.idle_timeout);
    });
}

#[cfg(feature = "http")]
/// Spawns an `http://` or `https://` connection's task: its PROXY header,
/// its handshake (with ALPN) on `https://`, the connection's facts, then
/// [`HttpServer::serve_connection`](crate::http::HttpServer::serve_connection),
/// told which shard serves it.
pub(super) fn spawn_http(
    state: &Arc<ServerState>,
    stream: mio::net::TcpStream,
    addr: SocketAddr,
    peer: PeerName,
    proxy: ProxyMode,
    lease: Lease,
) {
    let transport = lease.transport();
    let (Some(http), acceptor) = (state.http.clone(), state.https_tls.clone()) else {
        drop(lease);
        return;
    };
    let acceptor = match transport {
        Transport::Https => match acceptor {
            Some(a) => Some(a),
            None => {
                drop(lease);
                return;
            }
        },
        _ => None,
    };
    let Some((io, lease)) = register(stream, peer, lease) else {
        return;
    };
    let state = state.clone();
    tokio::spawn(async move {
        let io = io;
        let lease = lease;
        let how = (proxy, Take::Peek);
        let Some(accepted) = admit(&state, &io, peer, how, transport).await else {
            return;
        };
        let (peer, via) = (accepted.peer, accepted.via().to_string());
        let socket = TcpConn::new(lease, io);
        let mut facts = ConnFacts {
            // The client a PROXY header named, if one did.
            peer: match peer {
                PeerName::Inet(client) => client,
                PeerName::Unix(_) => addr,
            },
            local: socket.local_addr().unwrap_or(addr),
            tls: None,
            proxy: match (&accepted.header, accepted.proxy) {
                (Some(header), PeerName::Inet(proxy)) => Some(ProxyFacts::of(header, proxy)),
                _ => None,
            },
        };
        let shard = super::current_shard().unwrap_or(0);
        let (idle, metrics) = (state.opts.idle_timeout, &state.metrics);
        let result = match acceptor {
            Some(acceptor) => {
                let timeout = state.tls_handshake_timeout;
                let handshake = handshake(socket, acceptor, timeout, peer, metrics, transport);
                let Some(tls) = handshake.await else {
                    return;
                };
                facts.tls = Some(TlsFacts::of(tls.get_ref().1));
                info!(name = %peer, "connection accepted{via}");
                http.serve_connection(tls, facts, peer, shard, idle).await
            }
            None => {
                info!(name = %peer, "connection accepted{via}");
                http.serve_connection(socket, facts, peer, shard, idle)
                    .await
            }
        };
        spawn::ended(metrics, transport, peer, result, idle);
    });
}

/// Shakes hands as a TLS server, in the connection's own task and within
/// `timeout`. A peer that fails (plain text, garbage, an untrusted client
/// certificate, silence) costs one log line and a count.
async fn handshake(
    socket: TcpConn,
    acceptor: TlsAcceptor,
    timeout: Duration,
    peer: PeerName,
    metrics: &Metrics,
    transport: Transport,
) -> Option<TlsStream<TcpConn>> {
    let accept = acceptor.accept(socket).into_fallible();
    let (why, refused) = match tokio::time::timeout(timeout, accept).await {
        Ok(Ok(tls)) => return Some(tls),
        Ok(Err((e, socket))) => (e.to_string(), Some(socket)),
        Err(_) => (
            format!("no handshake within {}", format_duration(timeout)),
            None,
        ),
    };
    metrics.error(transport, ErrorKind::TlsHandshake);
    info!(name = %peer, "TLS handshake failed: {why}");
    if let Some(socket) = refused {
        close_after_alert(socket).await;
    }
    None
}

/// How long a refused TLS peer has to read the alert that says why.
const ALERT_LINGER: Duration = Duration::from_millis(500);

/// Closes a socket whose handshake failed so that its peer can read the
/// alert rustls sent (a client certificate required, say): the write
/// side first, then what the peer still sends is read and dropped, for at
/// most [`ALERT_LINGER`]. Closed at once with unread data, the socket
/// would send a reset, and the peer's next write would see only `Broken
/// pipe`, the alert lost.
async fn close_after_alert(mut socket: TcpConn) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let drain = async {
        let _ = socket.shutdown().await;
        let mut sink = [0u8; 1024];
        while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
    };
    let _ = tokio::time::timeout(ALERT_LINGER, drain).await;
}
