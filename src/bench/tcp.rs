//! The bench's TCP stream: tokio's, minus one system call per message.
//!
//! tokio's `TcpStream` forgets that a socket is drained until a `read`
//! says `EAGAIN`, so a ping-pong connection pays three system calls per
//! message: the write, a read that finds nothing yet, and the read of the
//! echo. The servers it measures pay two. A bench that costs more per
//! message than the server is the bottleneck, and every server then looks
//! the same, so here, as in the server's own echo loop, a short read
//! (fewer bytes than asked for) clears readiness at once: the kernel
//! queue was empty, and the next byte to arrive raises a new edge.
//! Writes likewise: a short write means the send buffer is full.
//!
//! It connects by itself, with mio's non-blocking connect, rather than
//! taking over a tokio stream: moving a socket between the two costs three
//! system calls, which churn mode would pay on every operation.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::exchange::Failure;
use super::record::FailureKind;
use crate::addr::Addr;
use crate::proxy::send::ProxySend;
use crate::transport::{self, ConnectError};

/// A connected TCP stream registered with the current runtime.
pub(crate) struct Tcp {
    io: AsyncFd<mio::net::TcpStream>,
}

impl Tcp {
    /// Connects to `addr`, with `TCP_NODELAY` (echo replies are
    /// latency-bound). Must be called inside a tokio runtime.
    /// From the local address `source` (any port) when given: connections
    /// spread over many source addresses are not limited by one address's
    /// ephemeral ports and `TIME_WAIT`.
    pub async fn connect_from(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<Tcp> {
        let stream = match source {
            None => mio::net::TcpStream::connect(addr)?,
            Some(ip) => mio::net::TcpStream::from_std(bound_socket(addr, ip)?),
        };
        let io = transport::register(stream)?;
        // The steps mio documents for a non-blocking connect: wait until
        // writable, then ask for an error, then for the peer (a spurious
        // wake-up shows as not connected yet).
        loop {
            let mut guard = io.writable().await?;
            if let Some(e) = io.get_ref().take_error()? {
                return Err(e);
            }
            match io.get_ref().peer_addr() {
                Ok(_) => break,
                Err(e)
                    if e.kind() == io::ErrorKind::NotConnected
                        || e.raw_os_error() == Some(libc::EINPROGRESS) =>
                {
                    guard.clear_ready();
                }
                Err(e) => return Err(e),
            }
        }
        io.get_ref().set_nodelay(true)?;
        Ok(Tcp { io })
    }

    /// This end's address, when the system says.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.io.get_ref().local_addr().ok()
    }

    /// Takes over a connected, non-blocking std stream. Must be called
    /// inside a tokio runtime.
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<Tcp> {
        stream.set_nonblocking(true)?;
        let io = transport::register(mio::net::TcpStream::from_std(stream))?;
        Ok(Tcp { io })
    }
}

/// The probe's TCP connection: to `addr` within `timeout` (tokio's
/// stream, which resolves the name and tries each address), with
/// `proxy`'s header sent first when given. Returns the stream and the
/// address that answered; errors name `target`, the address as given.
pub(crate) async fn probe(
    addr: &Addr,
    target: &Addr,
    timeout: std::time::Duration,
    proxy: Option<&ProxySend>,
) -> Result<(tokio::net::TcpStream, SocketAddr), ConnectError> {
    let mut stream = transport::tcp::connect(addr, timeout).await?;
    let err = |error| ConnectError::Connect {
        target: target.to_string(),
        error,
    };
    let peer = stream.peer_addr().map_err(err)?;
    if let Some(p) = proxy {
        let local = stream.local_addr().ok();
        p.write_to(&mut stream, local, Some(peer))
            .await
            .map_err(err)?;
    }
    Ok((stream, peer))
}

/// A slot's plain TCP connection (`tcp://`, and under `ws://` and
/// `http://`): to `peer`, the address the probe reached, from `from` when
/// given, within `timeout`, with `proxy`'s header sent first when given.
/// A failure is a `connect` one, and says which step failed.
pub(crate) async fn connect_slot(
    peer: SocketAddr,
    from: Option<IpAddr>,
    timeout: std::time::Duration,
    proxy: Option<&ProxySend>,
) -> Result<Tcp, Failure> {
    let err = |detail: String| Failure::new(FailureKind::Connect, detail);
    let mut stream = tokio::time::timeout(timeout, Tcp::connect_from(peer, from))
        .await
        .map_err(|_| err(format!("connecting to {peer}: timed out")))?
        .map_err(|e| match from {
            Some(ip) => err(format!("connecting to {peer} from {ip}: {e}")),
            None => err(format!("connecting to {peer}: {e}")),
        })?;
    if let Some(p) = proxy {
        let local = stream.local_addr();
        p.write_to(&mut stream, local, Some(peer))
            .await
            .map_err(|e| err(format!("sending the PROXY header to {peer}: {e}")))?;
    }
    Ok(stream)
}

/// A non-blocking TCP socket bound to `source`, its connect to `addr`
/// begun. The port is left to `connect` (`IP_BIND_ADDRESS_NO_PORT`), which
/// can reuse one for every destination, rather than taken at `bind`.
fn bound_socket(addr: SocketAddr, source: IpAddr) -> io::Result<std::net::TcpStream> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    if source.is_ipv4() {
        let on: libc::c_int = 1;
        // SAFETY: setsockopt reads one int from the pointer given. Best
        // effort: without it (kernels before 4.2) bind picks the port.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    socket.bind(&SocketAddr::new(source, 0).into())?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(socket.into())
}

impl AsyncRead for Tcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let asked = buf.remaining();
        loop {
            let mut guard = ready!(self.io.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|s| s.get_ref().read(unfilled)) {
                Ok(Ok(n)) => {
                    if n < asked {
                        guard.clear_ready();
                    }
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                // `EAGAIN`: readiness is cleared; wait for the next edge.
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for Tcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.io.poll_write_ready(cx))?;
            match guard.try_io(|s| s.get_ref().write(buf)) {
                Ok(Ok(n)) => {
                    if n < buf.len() {
                        guard.clear_ready();
                    }
                    return Poll::Ready(Ok(n));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.io.get_ref().shutdown(Shutdown::Write))
    }
}
