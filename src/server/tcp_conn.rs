//! The TCP socket under a connection that a library drives (rustls for
//! `tls://`, hyper for `http://`, both for `https://`): an
//! `AsyncRead + AsyncWrite` that also holds the connection's [`Lease`]
//! record.
//!
//! Holding the record here, rather than in the task, ties the registry
//! entry to the socket itself: the library closes the socket wherever its
//! stream ends (inside a failed handshake, after a WebSocket session),
//! and the record always goes first, so the registry never holds a
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

use super::spawn::Lease;
use crate::transport::{self, StreamSocket};

/// See the module documentation.
pub(super) struct TcpConn {
    // Fields drop in order: the record (and its registry entry) before
    // the socket closes.
    lease: Lease,
    io: AsyncFd<mio::net::TcpStream>,
}

impl TcpConn {
    pub(super) fn new(lease: Lease, io: AsyncFd<mio::net::TcpStream>) -> TcpConn {
        TcpConn { lease, io }
    }

    /// The connection's record.
    pub(super) fn lease(&self) -> &Lease {
        &self.lease
    }

    /// The server's address the connection came in on.
    #[cfg(feature = "http")]
    pub(super) fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.io.get_ref().local_addr()
    }
}

impl AsRawFd for TcpConn {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

impl AsyncRead for TcpConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let io = &self.get_mut().io;
        loop {
            let mut guard = ready!(io.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match io.get_ref().recv(unfilled) {
                Ok(n) => {
                    if n > 0 && n < unfilled.len() && !transport::urgent_pending(io) {
                        guard.clear_ready();
                    }
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => guard.clear_ready(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl TcpConn {
    fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        mut f: impl FnMut(&mio::net::TcpStream) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        loop {
            let mut guard = ready!(self.io.poll_write_ready(cx))?;
            match f(self.io.get_ref()) {
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
        Poll::Ready(self.io.get_ref().shutdown_write())
    }
}
