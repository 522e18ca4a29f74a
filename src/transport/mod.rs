//! The transport seam: what the server and client need from a kind of socket.
//!
//! Stream sockets that the kernel can read and write directly (TCP, Unix)
//! implement `StreamSocket` (inside the crate) and are driven by the
//! readiness-based echo loop, which reads into a per-thread buffer. Streams
//! that need user-space processing (TLS) are plain `AsyncRead + AsyncWrite`
//! and go through the generic loop. The client side connects any stream
//! address into a [`BoxStream`]; UDP is datagrams, not a stream, and has its
//! own [`udp::UdpClient`].

mod connect;
pub mod tcp;
#[cfg(feature = "tls")]
pub mod tls;
pub mod udp;
mod udp_batch;
pub mod udp_guard;
pub mod udp_rate;
pub mod unix;
#[cfg(feature = "http")]
pub mod web;

pub(crate) use connect::not_built;
pub use connect::{ClientTls, connect, connect_with};

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::addr::{Addr, ResolveError, Transport};

/// A connected, non-blocking stream socket the echo loop can drive with
/// readiness alone.
///
/// The methods are the three system calls the hot path makes; they must not
/// block, and report `WouldBlock` when the kernel has nothing to give or no
/// room to take. It owns its descriptor ([`OwnedSocket`]), so the echo loop
/// may register it anew with the reactor (for writing only, while an echo
/// is stuck).
pub(crate) trait StreamSocket: OwnedSocket + Send + Sync + Unpin + 'static {
    /// Reads what is there, up to `buf.len()` bytes; `Ok(0)` is end of stream.
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes as much of `buf` as the kernel takes.
    fn send(&self, buf: &[u8]) -> io::Result<usize>;
    /// Half-closes: no more writes; the peer reads end of stream.
    fn shutdown_write(&self) -> io::Result<()>;

    /// Bytes the kernel holds for this connection: written but not yet
    /// taken by the peer, and received but not yet read. When they change,
    /// traffic moved that the echo loop did not see (a slow reader draining
    /// a large send buffer), so the idle timer asks for them, but only when
    /// it is about to fire: never on the hot path. `None` when unknown.
    fn kernel_queues(&self) -> Option<(usize, usize)> {
        socket_queues(self.as_raw_fd())
    }
}

/// mio's TCP and Unix streams are both plain sockets that `Read` and
/// `Write` through a shared reference and half-close with `shutdown`: one
/// implementation serves them both.
macro_rules! impl_stream_socket {
    ($($socket:ty),+) => {$(
        impl StreamSocket for $socket {
            fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
                io::Read::read(&mut &*self, buf)
            }
            fn send(&self, buf: &[u8]) -> io::Result<usize> {
                io::Write::write(&mut &*self, buf)
            }
            fn shutdown_write(&self) -> io::Result<()> {
                self.shutdown(std::net::Shutdown::Write)
            }
        }
    )+};
}

impl_stream_socket!(mio::net::TcpStream, mio::net::UnixStream);

/// The bytes the kernel holds for the socket `fd`: written but not yet
/// taken by the peer, and received but not yet read (see
/// [`StreamSocket::kernel_queues`]). `None` when unknown.
pub(crate) fn socket_queues(fd: RawFd) -> Option<(usize, usize)> {
    let (mut out, mut inq): (libc::c_int, libc::c_int) = (0, 0);
    // SAFETY: both ioctls only write one int through the pointer given;
    // a stale or foreign descriptor makes them fail, nothing worse.
    let ok = unsafe {
        libc::ioctl(fd, libc::TIOCOUTQ, &mut out) == 0
            && libc::ioctl(fd, libc::FIONREAD, &mut inq) == 0
    };
    ok.then(|| (out.max(0) as usize, inq.max(0) as usize))
}

/// Sockets that own their descriptor for their whole life: mio's types.
/// Only these are handed to [`register`], which relies on it.
pub(crate) trait OwnedSocket: AsRawFd {}
impl OwnedSocket for mio::net::TcpStream {}
impl OwnedSocket for mio::net::TcpListener {}
impl OwnedSocket for mio::net::UnixStream {}
impl OwnedSocket for mio::net::UnixListener {}

/// Registers a socket with the tokio reactor, for reading and writing.
///
/// Must be called inside a tokio runtime.
pub(crate) fn register<T: OwnedSocket>(socket: T) -> io::Result<AsyncFd<T>> {
    // SAFETY: an `OwnedSocket` owns its descriptor: it stays open, and
    // `as_raw_fd` returns the same one, until the socket is dropped, which
    // happens only when the `AsyncFd` holding it is dropped.
    unsafe { AsyncFd::register(socket) }.map_err(|e| e.into_parts().1)
}

/// Registers an accepted connection's socket with the tokio reactor, for
/// reading, writing and TCP urgent data (`EPOLLPRI`: see
/// [`urgent_pending`]). On failure the socket comes back with the error,
/// so the caller decides when it is closed.
///
/// Must be called inside a tokio runtime.
pub(crate) fn register_stream<T: OwnedSocket>(socket: T) -> Result<AsyncFd<T>, (T, io::Error)> {
    let interest = Interest::READABLE | Interest::WRITABLE | Interest::PRIORITY;
    // SAFETY: as for `register`.
    unsafe { AsyncFd::register_with_interest(socket, interest) }.map_err(|e| e.into_parts())
}

/// Whether a read that came back short may have stopped at TCP's urgent
/// mark rather than drained the socket, for a socket registered with
/// [`register_stream`]; forgets the mark it reports.
///
/// With `SO_OOBINLINE` (set on every listener), a byte sent with
/// `MSG_OOB` stays in the stream, but a read stops just before it, with
/// the rest still queued. A read loop that takes a short read as "drained"
/// and waits for the next edge would then wait for data that is already
/// there. The kernel reports urgent data as `EPOLLPRI`, which tokio keeps
/// as readiness of its own: one atomic load, no system call. It also
/// reports yes once the peer has half-closed, which costs that loop one
/// more read before end of stream.
pub(crate) fn urgent_pending<T: AsRawFd>(io: &AsyncFd<T>) -> bool {
    let mut pending = false;
    // The closure runs only while tokio holds the readiness; its
    // `WouldBlock` makes tokio clear it (unless a new event came since).
    let _ = io.try_io(Interest::PRIORITY, |_| {
        pending = true;
        Err::<(), _>(io::ErrorKind::WouldBlock.into())
    });
    pending
}

/// Registers a connection's socket for writing only: data that arrives
/// meanwhile wakes nobody. On failure the socket comes back with the error.
///
/// Must be called inside a tokio runtime.
pub(crate) fn register_writer<T: OwnedSocket>(socket: T) -> Result<AsyncFd<T>, (T, io::Error)> {
    // SAFETY: as for `register`.
    unsafe { AsyncFd::register_with_interest(socket, tokio::io::Interest::WRITABLE) }
        .map_err(|e| e.into_parts())
}

/// Who is at the other end of a connection, as the logs name it.
///
/// It formats as the Python example's logger name, `echo_{host}_{port}` (IPv6 without
/// brackets: `echo_::1_64624`) or `echo_unix_{n}`, on demand: a connection
/// costs no string unless a line is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerName {
    /// A TCP, TLS or UDP peer.
    Inet(SocketAddr),
    /// The n-th peer of a Unix socket server (Unix peers have no useful address).
    Unix(u64),
}

impl fmt::Display for PeerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerName::Inet(addr) => write!(f, "echo_{}_{}", addr.ip().to_canonical(), addr.port()),
            PeerName::Unix(n) => write!(f, "echo_unix_{n}"),
        }
    }
}

/// Any client-side byte stream: TCP, TLS or Unix.
pub trait AsyncStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncStream for T {}

/// A connected client stream of whatever transport the address named.
pub type BoxStream = Box<dyn AsyncStream>;

/// Why a client could not connect.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The host name did not resolve.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// Every address was tried and none accepted the connection.
    #[error("cannot connect to {target}: {error}")]
    Connect {
        /// `HOST port PORT` or the unix path.
        target: String,
        /// The last address's error.
        error: io::Error,
    },
    /// The TCP connection was made, but the TLS handshake failed (an
    /// untrusted certificate, a peer that does not speak TLS, …).
    #[error("TLS handshake with {target} failed: {error}")]
    Handshake {
        /// `HOST port PORT`.
        target: String,
        /// rustls's reason, as an I/O error.
        error: io::Error,
    },
    /// TLS could not be set up on this side (an unreadable CA file, no
    /// system CAs, …).
    #[cfg(feature = "tls")]
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The address needs a protocol this build of the library leaves out
    /// (`default-features = false`, say).
    #[error("{transport}:// needs echoes built with its `{feature}` feature")]
    NotBuilt {
        /// The address's transport.
        transport: Transport,
        /// The Cargo feature that brings it.
        feature: &'static str,
    },
    /// The WebSocket opening handshake failed (the server answered with
    /// another status than 101, closed, or did not answer in time).
    #[error("WebSocket handshake with {target} failed: {reason}")]
    WebSocket {
        /// The `ws://` or `wss://` address.
        target: String,
        /// What went wrong.
        reason: String,
    },
    /// The transport is not a byte stream this function can connect (UDP:
    /// use [`udp::UdpClient`]).
    #[error("{0}:// is not supported here")]
    Unsupported(Transport),
}

/// The host and port of an IP address (`tcp://`, `tls://`, `udp://`) and
/// the socket addresses its host resolves to, in the order to try them.
pub(crate) async fn resolve_inet(
    addr: &Addr,
) -> Result<(&str, u16, Vec<SocketAddr>), ConnectError> {
    let Addr::Inet { host, port, .. } = addr else {
        return Err(ConnectError::Unsupported(addr.transport()));
    };
    let targets = addr.resolve().await?;
    Ok((host, *port, targets))
}

/// Runs `attempt` on each of `targets` in turn and returns the first
/// success; when every one fails, the last one's error, as
/// [`ConnectError::Connect`] naming `target`.
pub(crate) async fn first_that_connects<T, F, Fut>(
    targets: Vec<SocketAddr>,
    target: &str,
    mut attempt: F,
) -> Result<T, ConnectError>
where
    F: FnMut(SocketAddr) -> Fut,
    Fut: Future<Output = io::Result<T>>,
{
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address to try");
    for to in targets {
        match attempt(to).await {
            Ok(done) => return Ok(done),
            Err(e) => last = e,
        }
    }
    Err(ConnectError::Connect {
        target: target.to_string(),
        error: last,
    })
}

#[cfg(test)]
mod tests {
    use super::PeerName;

    #[test]
    fn peer_names_match_the_seed() {
        let v6 = PeerName::Inet("[::1]:64624".parse().unwrap());
        assert_eq!(v6.to_string(), "echo_::1_64624");
        let v4 = PeerName::Inet("127.0.0.1:5".parse().unwrap());
        assert_eq!(v4.to_string(), "echo_127.0.0.1_5");
        let mapped = PeerName::Inet("[::ffff:127.0.0.1]:5".parse().unwrap());
        assert_eq!(mapped.to_string(), "echo_127.0.0.1_5");
        assert_eq!(PeerName::Unix(3).to_string(), "echo_unix_3");
    }
}
