//! Where an accepted connection becomes a served one, on the shard that
//! serves it: named, checked against the per-IP limit, counted, and given
//! its task: the fast echo loop for a socket the kernel reads and writes
//! (TCP, Unix), or a library's stream (TLS, HTTP: [`super::driven`]).
//!
//! [`serve`] is the one place this happens, whichever listener accepted
//! the connection and whichever shard it came from: a step every
//! connection must pass before it is served (the PROXY protocol header,
//! read in the connection's own task) and a new kind of stream listener
//! both go there.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tracing::{debug, info, warn};

use super::ServerState;
use super::accept::{Accepted, AcceptedSocket};
#[cfg(feature = "tls")]
use super::driven;
use super::limits::Slots;
use super::proxy_step::{Admitted, Take};
use super::registry::Entry;
use crate::addr::Transport;
use crate::echo::{EchoSocket, Ending, echo_socket};
use crate::metrics::{ErrorKind, Metrics};
use crate::proxy::ProxyMode;
use crate::transport::{self, OwnedSocket, PeerName, StreamSocket};
use crate::units::format_duration;

/// Serves `accepted` on the current shard: see the module documentation.
pub(super) fn serve(state: &Arc<ServerState>, accepted: Accepted) {
    let Accepted {
        entry,
        permit,
        socket,
        transport,
        proxy,
    } = accepted;
    let (peer, ip) = match &socket {
        AcceptedSocket::Tcp(_, addr) => (PeerName::Inet(*addr), Some(addr.ip())),
        AcceptedSocket::Unix(_) => (
            PeerName::Unix(state.unix_peers.fetch_add(1, Ordering::Relaxed) + 1),
            None,
        ),
    };
    let ip_slot = match (&state.limits.per_ip, ip) {
        (Some(limit), Some(ip)) => match limit.take(ip) {
            Some(slot) => Some(slot),
            None => {
                state.metrics.error(transport, ErrorKind::Limit);
                limit.log_refusal(peer);
                // Reset rather than close: a flood of refusals must not
                // leave the server a TIME_WAIT socket for each.
                if let AcceptedSocket::Tcp(stream, _) = &socket {
                    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
                }
                drop(entry);
                return;
            }
        },
        _ => None,
    };
    let slots = (permit.is_some() || ip_slot.is_some()).then(|| Box::new((permit, ip_slot)));
    let lease = Lease {
        _entry: entry,
        metrics: state.metrics.clone(),
        transport,
        _slots: slots,
    };
    state.metrics.opened(transport);
    match socket {
        // Without their features, these transports never get here:
        // `ServerConfig::validate` refuses them.
        #[cfg(feature = "http")]
        AcceptedSocket::Tcp(stream, addr) if transport.is_web() => {
            driven::spawn_http(state, stream, addr, peer, proxy, lease);
        }
        #[cfg(feature = "tls")]
        AcceptedSocket::Tcp(stream, _) if transport == Transport::Tls => {
            driven::spawn_tls(state, stream, peer, proxy, lease);
        }
        AcceptedSocket::Tcp(stream, _) => spawn_echo(state, stream, peer, proxy, lease),
        AcceptedSocket::Unix(stream) => spawn_echo(state, stream, peer, proxy, lease),
    }
}

/// Registers an accepted socket with this shard's runtime; on failure,
/// logs it and closes the connection, its record first.
pub(super) fn register<S: OwnedSocket>(
    stream: S,
    peer: PeerName,
    lease: Lease,
) -> Option<(AsyncFd<S>, Lease)> {
    match transport::register_stream(stream) {
        Ok(io) => Some((io, lease)),
        Err((stream, e)) => {
            warn!(name = %peer, "cannot register the connection: {e}");
            drop(lease);
            drop(stream);
            None
        }
    }
}

/// The peer a connection is logged as, and how it came (` via proxy …`),
/// once its PROXY header, if its listener wants one, is read off `io`
/// (`take`: see [`Take`]); `None` when the connection is to be closed.
pub(super) async fn admit<S: StreamSocket>(
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

/// Spawns the fast echo loop for a kernel-driven socket, after its PROXY
/// header when its listener wants one.
fn spawn_echo<S>(
    state: &Arc<ServerState>,
    stream: S,
    peer: PeerName,
    proxy: ProxyMode,
    lease: Lease,
) where
    S: StreamSocket + OwnedSocket,
{
    let Some((io, lease)) = register(stream, peer, lease) else {
        return;
    };
    let opts = state.opts;
    let bytes = state.metrics.bytes(lease.transport);
    if proxy == ProxyMode::Off {
        info!(name = %peer, "connection accepted");
        tokio::spawn(Connection {
            lease,
            echo: echo_socket(io, peer, opts, bytes),
        });
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        // Locals drop in reverse order: the registry entry (in `lease`)
        // before the socket.
        let io = io;
        let lease = lease;
        let how = (proxy, Take::Read);
        let Some(accepted) = admit(&state, &io, peer, how, lease.transport).await else {
            return;
        };
        let peer = accepted.peer;
        info!(name = %peer, "connection accepted{}", accepted.via());
        // What came with the header is echoed first.
        let echo = echo_socket(io, peer, opts, bytes).owing(accepted.first);
        // A task of its own, as a plain connection's: this one's state
        // holds the header's read (its buffer, its deadline's timer) and
        // would be kept, at about 1.3 KB, for the connection's whole life.
        tokio::spawn(Connection { lease, echo });
    });
}

/// A connection's lease on the server: what it holds besides its socket,
/// its place in the registry, its limit slots, and its count in the
/// metrics gauge, all given back when it is dropped.
pub(super) struct Lease {
    _entry: Entry,
    metrics: Arc<Metrics>,
    transport: Transport,
    _slots: Slots,
}

impl Lease {
    /// The transport the connection is counted under.
    #[cfg(feature = "http")]
    pub(super) fn transport(&self) -> Transport {
        self.transport
    }

    /// Logs how a connection ended, and counts an error.
    pub(super) fn ended(&self, peer: PeerName, result: io::Result<Ending>, idle: Option<Duration>) {
        ended(&self.metrics, self.transport, peer, result, idle);
    }
}

/// Logs how a connection of `transport` ended, and counts an error.
pub(super) fn ended(
    metrics: &Metrics,
    transport: Transport,
    peer: PeerName,
    result: io::Result<Ending>,
    idle: Option<Duration>,
) {
    match result {
        Ok(Ending::Eof) => {}
        Ok(Ending::Idle) => info!(
            name = %peer,
            "idle for {}",
            idle.map(format_duration).unwrap_or_default()
        ),
        Err(e) => {
            metrics.error(transport, ErrorKind::Io);
            debug!(name = %peer, "connection error: {e}");
        }
    }
    info!(name = %peer, "closing");
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.metrics.closed(self.transport);
    }
}

/// One connection's task on the fast path: its echo loop and what it holds
/// while open.
///
/// A plain struct rather than an `async` block, so that an idle
/// connection's task holds these fields and nothing else.
pub(super) struct Connection<S: StreamSocket> {
    // Fields drop in order: the registry entry goes before the socket
    // (inside `echo`) closes, however the task ends.
    lease: Lease,
    echo: EchoSocket<S>,
}

impl<S: StreamSocket> Future for Connection<S> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let result = ready!(Pin::new(&mut self.echo).poll(cx));
        self.lease
            .ended(self.echo.peer(), result, self.echo.idle_timeout());
        Poll::Ready(())
    }
}

#[cfg(test)]
mod tests {
    /// An idle connection's memory is mostly its task, which tokio rounds
    /// up to 128-byte lines with its header: a field added here costs
    /// every idle connection, so growing past this needs a reason. Behind
    /// a PROXY listener too: once its header is read, a connection is
    /// this same task (`spawn_echo`).
    #[test]
    fn an_idle_connection_task_stays_small() {
        let size = std::mem::size_of::<super::Connection<mio::net::TcpStream>>();
        assert!(size <= 192, "the connection task grew to {size} bytes");
    }
}
