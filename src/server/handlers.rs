//! Handlers: what each transport does with a connection that admission
//! ([`super::admit`]) let in. Each runs on the shard that serves the
//! connection, and ends with the `closing` line ([`super::lines`]).
//!
//! - [`EchoTask`]: the fast echo loop (TCP, Unix), over a socket the
//!   kernel reads and writes, as a task of its own.
//! - [`tls_echo`]: the generic echo loop over a TLS stream (`tls://`).
//! - [`http`]: hyper's HTTP/1.1 and h2, and WebSocket (`http://`,
//!   `https://`).
//!
//! UDP has no connection and no admission: its handler is the datagram
//! loop, [`udp::serve`](crate::transport::udp::serve), with its guard.
//! A new stream transport is one handler here plus its bind (see
//! ARCHITECTURE.md).

use std::future::Future;
use std::pin::Pin;
#[cfg(feature = "http")]
use std::sync::Arc;
use std::task::{Context, Poll, ready};

#[cfg(feature = "http")]
use tokio::io::{AsyncRead, AsyncWrite};
#[cfg(feature = "tls")]
use tokio_rustls::server::TlsStream;

use super::lease::Leased;
use super::lines;
#[cfg(feature = "http")]
use super::shard_id;
#[cfg(feature = "tls")]
use super::state::ServerState;
#[cfg(feature = "tls")]
use super::tcp_conn::TcpConn;
#[cfg(feature = "http")]
use crate::addr::Transport;
use crate::echo::EchoSocket;
#[cfg(feature = "http")]
use crate::http::{ConnFacts, HttpServer};
use crate::transport::StreamSocket;
#[cfg(feature = "tls")]
use crate::transport::{self, PeerName};

/// One connection's task on the fast path: its lease and its echo loop,
/// which owns the socket.
///
/// A plain struct rather than an `async` block, so that an idle
/// connection's task holds these fields and nothing else (a unit test
/// bounds its size).
pub(super) type EchoTask<S> = Leased<EchoSocket<S>>;

impl<S: StreamSocket> Future for Leased<EchoSocket<S>> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let result = ready!(Pin::new(self.inner_mut()).poll(cx));
        let (echo, lease) = (self.inner(), self.lease());
        let (peer, idle) = (echo.peer(), echo.idle_timeout());
        lines::ended(lease.metrics(), lease.transport(), peer, result, idle);
        Poll::Ready(())
    }
}

/// Echoes a `tls://` connection whose handshake is done.
#[cfg(feature = "tls")]
pub(super) async fn tls_echo(state: &ServerState, mut tls: TlsStream<TcpConn>, peer: PeerName) {
    use std::os::fd::AsRawFd;
    // The TCP socket under the TLS stream, for the idle timer; open for
    // as long as `tls` is.
    let fd = tls.get_ref().0.as_raw_fd();
    let queues = move || transport::socket_queues(fd);
    let opts = state.opts;
    let transport = tls.get_ref().0.lease().transport();
    let bytes = state.metrics.bytes(transport);
    let result = crate::echo::echo_stream(&mut tls, peer, opts, bytes, queues).await;
    lines::ended(&state.metrics, transport, peer, result, opts.idle_timeout);
}

/// Serves an `http://` or `https://` connection (whose handshake is done)
/// with hyper, told which shard serves it.
#[cfg(feature = "http")]
pub(super) async fn http<T>(
    state: &ServerState,
    http: &Arc<HttpServer>,
    io: T,
    facts: ConnFacts,
    peer: PeerName,
    transport: Transport,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shard = shard_id::current_shard().unwrap_or(0);
    let idle = state.opts.idle_timeout;
    let result = http.serve_connection(io, facts, peer, shard, idle).await;
    lines::ended(&state.metrics, transport, peer, result, idle);
}

#[cfg(test)]
mod tests {
    /// An idle connection's memory is mostly its task, which tokio rounds
    /// up to 128-byte lines with its header: a field added here costs
    /// every idle connection, so growing past this needs a reason. Behind
    /// a PROXY listener too: once its header is read, a connection is
    /// this same task.
    #[test]
    fn an_idle_connection_task_stays_small() {
        let size = std::mem::size_of::<super::EchoTask<mio::net::TcpStream>>();
        assert!(size <= 192, "the connection task grew to {size} bytes");
    }
}
