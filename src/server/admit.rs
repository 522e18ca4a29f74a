//! Admission: what every stream connection passes between its accept loop
//! and its handler, written once for TCP, Unix, TLS, HTTP and WebSocket.
//!
//! 1. Its peer's name: the socket's address, or a number for a Unix peer.
//! 2. The per-IP limit: a refused connection is reset, counted, and
//!    logged at most once a second ([`super::limits`]).
//! 3. Its lease (registry entry, limit slots, gauge: [`super::lease`])
//!    and its registration with this shard's runtime.
//! 4. Its PROXY header, when its listener wants one, within the header
//!    timeout and the idle policy ([`super::proxy_step`]): read, for the
//!    fast echo (what came with it is echoed first), or peeked, for a
//!    library that reads the stream itself.
//! 5. Its TLS handshake, when its transport has one ([`super::handshake`]).
//! 6. The `connection accepted` line ([`super::lines`]), then its handler
//!    ([`super::handlers`]).
//!
//! A plain TCP or Unix connection with no header to read (the fast path)
//! takes steps 1–3 and 6 right here, and is spawned as its echo task at
//! once; the others are admitted in a task of their own, which goes on
//! as the handler's.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tracing::warn;

#[cfg(feature = "tls")]
use std::net::SocketAddr;

use super::accepted::{Accepted, AcceptedSocket};
#[cfg(feature = "tls")]
use super::handlers;
use super::handlers::EchoTask;
#[cfg(feature = "tls")]
use super::handshake::handshake;
use super::lease::{Leased, Registered};
use super::limits::PerIpLimit;
use super::lines;
use super::proxy_step::{Admitted, Take};
use super::state::ServerState;
#[cfg(feature = "tls")]
use super::tcp_conn::TcpConn;
use crate::addr::Transport;
use crate::echo::echo_socket;
use crate::metrics::ErrorKind;
use crate::proxy::ProxyMode;
use crate::transport::{OwnedSocket, PeerName, StreamSocket};

/// Admits `accepted` on the current shard and hands it to its handler:
/// see the module documentation.
pub(super) fn admit(state: &Arc<ServerState>, accepted: Accepted) {
    let proxy = accepted.proxy;
    let (peer, ip) = match &accepted.socket {
        AcceptedSocket::Tcp(_, addr) => (PeerName::Inet(*addr), Some(addr.ip())),
        AcceptedSocket::Unix(_) => (
            PeerName::Unix(state.unix_peers.fetch_add(1, Ordering::Relaxed) + 1),
            None,
        ),
    };
    let ip_slot = match (&state.limits.per_ip, ip) {
        (Some(limit), Some(ip)) => match limit.take(ip) {
            Some(slot) => Some(slot),
            None => return refuse(state, accepted, peer, limit),
        },
        _ => None,
    };
    let registered = match accepted.lease(&state.metrics, ip_slot).register() {
        Ok(registered) => registered,
        Err(e) => return warn!(name = %peer, "cannot register the connection: {e}"),
    };
    match registered {
        // Without their features, these transports never get here:
        // `ServerConfig::validate` refuses them.
        #[cfg(feature = "tls")]
        Registered::Tcp(conn, addr) if conn.lease().transport() != Transport::Tcp => {
            driven(state, conn, addr, peer, proxy);
        }
        Registered::Tcp(conn, _) => echo(state, conn, peer, proxy),
        Registered::Unix(conn) => echo(state, conn, peer, proxy),
    }
}

/// Refuses a connection over the per-IP limit: counted, logged (at most
/// once a second), reset.
fn refuse(state: &ServerState, accepted: Accepted, peer: PeerName, limit: &PerIpLimit) {
    state.metrics.error(accepted.transport, ErrorKind::Limit);
    limit.log_refusal(peer);
    // Reset rather than close: a flood of refusals must not leave the
    // server a TIME_WAIT socket for each.
    if let AcceptedSocket::Tcp(stream, _) = &accepted.socket {
        let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
    }
    // `accepted` drops whole, its registry entry first.
}

/// Step 4: the PROXY header, when the listener wants one; `None` when the
/// connection is to be closed (logged and counted by the step).
async fn preface<S: StreamSocket>(
    state: &ServerState,
    io: &AsyncFd<S>,
    peer: PeerName,
    (proxy, take): (ProxyMode, Take),
    transport: Transport,
) -> Option<Admitted> {
    if proxy == ProxyMode::Off {
        return Some(Admitted {
            peer,
            header: None,
            first: Vec::new(),
            proxy: peer,
        });
    }
    let idle = state.opts.idle_timeout;
    let metrics = &state.metrics;
    (state.proxy)
        .admit(io, peer, proxy, take, idle, transport, metrics)
        .await
}

/// The fast echo's admission: at once without a PROXY header, after it
/// (read in a task of its own) with one.
fn echo<S>(state: &Arc<ServerState>, conn: Leased<AsyncFd<S>>, peer: PeerName, proxy: ProxyMode)
where
    S: StreamSocket + OwnedSocket,
{
    let opts = state.opts;
    let transport = conn.lease().transport();
    let bytes = state.metrics.bytes(transport);
    if proxy == ProxyMode::Off {
        lines::accepted(peer, "");
        let task: EchoTask<S> = conn.map(|io| echo_socket(io, peer, opts, bytes));
        tokio::spawn(task);
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        let how = (proxy, Take::Read);
        let Some(admitted) = preface(&state, conn.inner(), peer, how, transport).await else {
            return;
        };
        let peer = admitted.peer;
        lines::accepted(peer, admitted.via());
        // What came with the header is echoed first.
        let task: EchoTask<S> =
            conn.map(|io| echo_socket(io, peer, opts, bytes).owing(admitted.first));
        // A task of its own, as a plain connection's: this one's state
        // holds the header's read (its buffer, its deadline's timer) and
        // would be kept, at about 1.3 KB, for the connection's whole life.
        tokio::spawn(task);
    });
}

/// Admission of the connections a library drives (`tls://`, `http://`,
/// `https://`): header peeked, so that the handshake or the request finds
/// its bytes in the kernel, then the handshake; in the connection's own
/// task, which goes on as its handler.
#[cfg(feature = "tls")]
fn driven(
    state: &Arc<ServerState>,
    conn: TcpConn,
    addr: SocketAddr,
    peer: PeerName,
    proxy: ProxyMode,
) {
    let state = state.clone();
    tokio::spawn(async move {
        let transport = conn.lease().transport();
        let how = (proxy, Take::Peek);
        let Some(admitted) = preface(&state, conn.inner(), peer, how, transport).await else {
            return;
        };
        if transport == Transport::Tls {
            return tls(&state, conn, admitted).await;
        }
        #[cfg(feature = "http")]
        http(&state, conn, addr, admitted, transport).await;
        #[cfg(not(feature = "http"))]
        let _ = addr;
    });
}

#[cfg(feature = "tls")]
async fn tls(state: &ServerState, conn: TcpConn, admitted: Admitted) {
    let Some(acceptor) = state.tls.clone() else {
        return;
    };
    let (timeout, peer) = (state.tls_handshake_timeout, admitted.peer);
    let Some(tls) = handshake(conn, acceptor, timeout, peer, &state.metrics).await else {
        return;
    };
    lines::accepted(peer, admitted.via());
    handlers::tls_echo(state, tls, peer).await;
}

#[cfg(feature = "http")]
async fn http(
    state: &ServerState,
    conn: TcpConn,
    addr: SocketAddr,
    admitted: Admitted,
    transport: Transport,
) {
    use crate::http::{ConnFacts, ProxyFacts, TlsFacts};
    let Some(http) = state.http.clone() else {
        return;
    };
    let peer = admitted.peer;
    let mut facts = ConnFacts {
        // The client a PROXY header named, if one did.
        peer: match peer {
            PeerName::Inet(client) => client,
            PeerName::Unix(_) => addr,
        },
        local: conn.local_addr().unwrap_or(addr),
        tls: None,
        proxy: match (&admitted.header, admitted.proxy) {
            (Some(header), PeerName::Inet(proxy)) => Some(ProxyFacts::of(header, proxy)),
            _ => None,
        },
    };
    if !matches!(transport, Transport::Https | Transport::Wss) {
        lines::accepted(peer, admitted.via());
        return handlers::http(state, &http, conn, facts, peer, transport).await;
    }
    let Some(acceptor) = state.https_tls.clone() else {
        return;
    };
    let timeout = state.tls_handshake_timeout;
    let Some(tls) = handshake(conn, acceptor, timeout, peer, &state.metrics).await else {
        return;
    };
    facts.tls = Some(TlsFacts::of(tls.get_ref().1));
    lines::accepted(peer, admitted.via());
    handlers::http(state, &http, tls, facts, peer, transport).await;
}
