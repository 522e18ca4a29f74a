//! The kernel's stream sockets as the echo loop drives them: the
//! [`StreamSocket`] trait, and registering a socket with the reactor.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

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
