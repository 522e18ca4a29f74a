//! The TCP socket under a connection that a library drives (rustls for
//! `tls://`, hyper for `http://`, both for `https://`): an
//! `AsyncRead + AsyncWrite` that is also the connection's
//! [`Leased`] value.
//!
//! Holding the lease here, rather than in the task, ties the registry
//! entry to the socket itself: the library closes the socket wherever its
//! stream ends (inside a failed handshake, after a WebSocket session),
//! and the lease always goes first, so the registry never holds a
//! descriptor number that could have been reused, and no duplicate
//! descriptor is needed to make sure of it (which failed, and dropped the
//! connection, with one descriptor left).
//!
//! Reads clear readiness after a short read, as tokio's own sockets do,
//! except at TCP's urgent mark (see [`transport::urgent_pending`]).

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::lease::Leased;
use crate::transport::{self, StreamSocket};

/// See the module documentation.
pub(super) type TcpConn = Leased<AsyncFd<mio::net::TcpStream>>;

impl TcpConn {
    /// The server's address the connection came in on.
    #[cfg(feature = "http")]
    pub(super) fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.inner().get_ref().local_addr()
    }
}

impl AsRawFd for TcpConn {
    fn as_raw_fd(&self) -> RawFd {
        self.inner().as_raw_fd()
    }
}

impl AsyncRead for TcpConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let io = self.get_mut().inner();
        loop {
            let mut guard = ready!(io.poll_read_ready(cx))?;
            match recv_uninit(io.as_raw_fd(), buf) {
                Ok((n, room)) => {
                    if n > 0 && n < room && !transport::urgent_pending(io) {
                        guard.clear_ready();
                    }
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => guard.clear_ready(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// One `recv` into the unfilled part of `buf`, which need not be
/// initialised: hyper hands over a read buffer of several KiB each time,
/// and zeroing it first (`ReadBuf::initialize_unfilled`) cost more than
/// any other user-space work of a small request (BENCHMARKS.md, perf
/// round 3). Marks what arrived as filled; returns its length and the
/// room there was.
fn recv_uninit(fd: RawFd, buf: &mut ReadBuf<'_>) -> io::Result<(usize, usize)> {
    // SAFETY: the kernel only writes to the memory, at most `room` bytes
    // of it, and no byte is read before `assume_init` below marks those
    // it wrote.
    let unfilled = unsafe { buf.unfilled_mut() };
    let room = unfilled.len();
    // SAFETY: `unfilled` is `room` writable bytes that live across the call.
    let n = unsafe { libc::recv(fd, unfilled.as_mut_ptr().cast(), room, 0) };
    let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    // SAFETY: `recv` wrote the first `n` bytes.
    unsafe { buf.assume_init(n) };
    buf.advance(n);
    Ok((n, room))
}

impl TcpConn {
    fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        mut f: impl FnMut(&mio::net::TcpStream) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        loop {
            let mut guard = ready!(self.inner().poll_write_ready(cx))?;
            match f(self.inner().get_ref()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => guard.clear_ready(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                done => return Poll::Ready(done),
            }
        }
    }
}

impl AsyncWrite for TcpConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_io(cx, |s| s.send(data))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_io(cx, |mut s| io::Write::write_vectored(&mut s, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.inner().get_ref().shutdown_write())
    }
}
