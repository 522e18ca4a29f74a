//! Where an accepted connection becomes a served one, on the shard that
//! serves it: named, checked against the per-IP limit, counted, and given
//! its task: the fast echo loop for a socket the kernel reads and writes
//! (TCP, Unix), or a TLS handshake then the generic loop.
//!
//! [`serve`] is the one place this happens, whichever listener accepted
//! the connection and whichever shard it came from: a step every
//! connection must pass before it is served (a PROXY protocol header, a
//! new kind of stream listener) goes there.

use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use super::Shared;
use super::accept::{Accepted, AcceptedSocket};
use super::limits::Slots;
use super::registry::Entry;
use super::tls_conn::TlsSocket;
use crate::addr::Transport;
use crate::echo::{EchoOptions, EchoSocket, Ending, echo_socket, echo_stream};
use crate::metrics::{ByteCounter, ErrorKind, Metrics};
use crate::transport::{self, PeerName, StreamSocket};
use crate::units::format_duration;

/// Serves `accepted` on the current shard: see the module documentation.
pub(super) fn serve(shared: &Arc<Shared>, accepted: Accepted) {
    let Accepted {
        entry,
        permit,
        socket,
        transport,
    } = accepted;
    let (peer, ip) = match &socket {
        AcceptedSocket::Tcp(_, addr) => (PeerName::Inet(*addr), Some(addr.ip())),
        AcceptedSocket::Unix(_) => (
            PeerName::Unix(shared.unix_peers.fetch_add(1, Ordering::Relaxed) + 1),
            None,
        ),
    };
    let ip_slot = match (&shared.limits.per_ip, ip) {
        (Some(limit), Some(ip)) => match limit.take(ip) {
            Some(slot) => Some(slot),
            None => {
                shared.metrics.error(transport, ErrorKind::Limit);
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
    let open = Open {
        _entry: entry,
        metrics: shared.metrics.clone(),
        transport,
        _slots: slots,
    };
    shared.metrics.opened(transport);
    let opts = shared.opts;
    let bytes = shared.metrics.bytes(transport);
    match socket {
        AcceptedSocket::Tcp(stream, _) if transport == Transport::Tls => {
            spawn_tls(shared, stream, peer, open);
        }
        AcceptedSocket::Tcp(stream, _) => spawn_echo(stream, peer, opts, bytes, open),
        AcceptedSocket::Unix(stream) => spawn_echo(stream, peer, opts, bytes, open),
    }
}

/// Spawns the fast echo loop for a kernel-driven socket.
fn spawn_echo<S>(stream: S, peer: PeerName, opts: EchoOptions, bytes: ByteCounter, open: Open)
where
    S: StreamSocket + transport::OwnedSocket,
{
    let io = match transport::register_stream(stream) {
        Ok(io) => io,
        Err((stream, e)) => {
            warn!(name = %peer, "cannot register the connection: {e}");
            drop(open);
            drop(stream);
            return;
        }
    };
    info!(name = %peer, "connection accepted");
    tokio::spawn(Connection {
        open,
        echo: echo_socket(io, peer, opts, bytes),
    });
}

/// Spawns a TLS connection's task: its handshake, then its echo.
fn spawn_tls(shared: &Shared, stream: mio::net::TcpStream, peer: PeerName, open: Open) {
    let Some(acceptor) = shared.tls.clone() else {
        drop(open);
        return;
    };
    let io = match transport::register_stream(stream) {
        Ok(io) => io,
        Err((stream, e)) => {
            warn!(name = %peer, "cannot register the connection: {e}");
            drop(open);
            drop(stream);
            return;
        }
    };
    // The TLS stream owns the socket and closes it wherever it ends
    // (inside a failed handshake, say); the socket owns `open`, which it
    // drops first, so the registry entry is gone before the descriptor
    // is closed, with no second descriptor to hold.
    let socket = TlsSocket::new(open, io);
    let (opts, timeout) = (shared.opts, shared.tls_handshake_timeout);
    let metrics = shared.metrics.clone();
    tokio::spawn(async move {
        let Some(mut tls) = handshake(socket, acceptor, timeout, peer, &metrics).await else {
            return;
        };
        info!(name = %peer, "connection accepted");
        // The TCP socket under the TLS stream, for the idle timer; open
        // for as long as `tls` is.
        let fd = tls.get_ref().0.as_raw_fd();
        let queues = move || transport::socket_queues(fd);
        let bytes = metrics.bytes(Transport::Tls);
        let result = echo_stream(&mut tls, peer, opts, bytes, queues).await;
        tls.get_ref()
            .0
            .open()
            .ended(peer, result, opts.idle_timeout);
    });
}

/// Shakes hands as a TLS server, in the connection's own task and within
/// `timeout`. A peer that fails (plain text, garbage, an untrusted client
/// certificate, silence) costs one log line and a count.
async fn handshake(
    socket: TlsSocket,
    acceptor: TlsAcceptor,
    timeout: Duration,
    peer: PeerName,
    metrics: &Metrics,
) -> Option<tokio_rustls::server::TlsStream<TlsSocket>> {
    let why = match tokio::time::timeout(timeout, acceptor.accept(socket)).await {
        Ok(Ok(tls)) => return Some(tls),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no handshake within {}", format_duration(timeout)),
    };
    metrics.error(Transport::Tls, ErrorKind::TlsHandshake);
    info!(name = %peer, "TLS handshake failed: {why}");
    None
}

/// What an open connection holds besides its socket: its place in the
/// registry, its limit slots, and its count in the metrics gauge, all
/// given back when it is dropped.
pub(super) struct Open {
    _entry: Entry,
    metrics: Arc<Metrics>,
    transport: Transport,
    _slots: Slots,
}

impl Open {
    /// Logs how a connection ended, and counts an error.
    pub(super) fn ended(&self, peer: PeerName, result: io::Result<Ending>, idle: Option<Duration>) {
        match result {
            Ok(Ending::Eof) => {}
            Ok(Ending::Idle) => info!(
                name = %peer,
                "idle for {}",
                idle.map(format_duration).unwrap_or_default()
            ),
            Err(e) => {
                self.metrics.error(self.transport, ErrorKind::Io);
                debug!(name = %peer, "connection error: {e}");
            }
        }
        info!(name = %peer, "closing");
    }
}

impl Drop for Open {
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
    open: Open,
    echo: EchoSocket<S>,
}

impl<S: StreamSocket> Future for Connection<S> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let result = ready!(Pin::new(&mut self.echo).poll(cx));
        self.open
            .ended(self.echo.peer(), result, self.echo.idle_timeout());
        Poll::Ready(())
    }
}

#[cfg(test)]
mod tests {
    /// An idle connection's memory is mostly its task, which tokio rounds
    /// up to 128-byte lines with its header: a field added here costs
    /// every idle connection, so growing past this needs a reason.
    #[test]
    fn an_idle_connection_task_stays_small() {
        let size = std::mem::size_of::<super::Connection<mio::net::TcpStream>>();
        assert!(size <= 192, "the connection task grew to {size} bytes");
    }
}
