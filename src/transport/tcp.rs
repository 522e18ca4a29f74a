//! TCP: binding listeners, accepting, and connecting.
//!
//! Listeners and accepted streams are `mio` sockets (non-blocking, close-on-exec,
//! accepted with `accept4`) registered with tokio through `AsyncFd`, so the
//! echo loop controls readiness itself: it can tell tokio a socket is drained
//! after a short read instead of paying one more `recv` to hear `EAGAIN`.
//!
//! An echo server over TCP inside a test, on a free port, and a client
//! that half-closes and reads the echo to the end:
//!
//! ```
//! use std::time::Duration;
//! use echoes::transport;
//! use echoes::{Server, ServerConfig};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::bind(ServerConfig::new("tcp://127.0.0.1:0".parse()?)).await?;
//! let addr = server.local_addrs()[0].clone(); // with the port picked
//! let shutdown = server.shutdown_handle();
//! let running = tokio::spawn(server.run());
//!
//! let mut conn = transport::connect(&addr, Duration::from_secs(5)).await?;
//! conn.write_all(b"over TCP").await?;
//! conn.shutdown().await?; // half-close: the server echoes, then closes
//! let mut echo = Vec::new();
//! conn.read_to_end(&mut echo).await?;
//! assert_eq!(echo, b"over TCP");
//!
//! shutdown.shutdown();
//! running.await??;
//! # Ok(())
//! # }
//! ```

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpStream;

use super::error::ConnectError;
use crate::addr::Addr;

/// The listen backlog asked for; the kernel caps it at `net.core.somaxconn`.
/// Connections beyond `--max-connections` wait here, so it is generous.
pub const BACKLOG: i32 = 4096;

/// Binds a listening TCP socket. IPv6 sockets are IPv6-only, so that
/// `localhost` can hold `::1` and `127.0.0.1` on one port as two sockets,
/// each logging its peers in their own family.
pub fn bind(addr: SocketAddr) -> io::Result<mio::net::TcpListener> {
    listener(addr, false)
}

/// As [`bind`], one of a group that shares the port (`SO_REUSEPORT`): the
/// kernel spreads incoming connections over the group's sockets, one per
/// server shard. Every socket of the group must set it, and belong to the
/// same user.
pub fn bind_reuse_port(addr: SocketAddr) -> io::Result<mio::net::TcpListener> {
    listener(addr, true)
}

fn listener(addr: SocketAddr, reuse_port: bool) -> io::Result<mio::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Lets a restarted server bind while old connections sit in TIME_WAIT;
    // on Linux it does not let two listeners share a port.
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    // Echo replies are latency-bound: never hold them back for Nagle.
    // Accepted sockets inherit it, which saves a system call per connection.
    socket.set_tcp_nodelay(true)?;
    set_accepted_options(&socket)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(mio::net::TcpListener::from_std(socket.into()))
}

/// What every accepted connection needs, set on the listener, which its
/// accepted sockets inherit (no system call per connection): urgent data
/// (`MSG_OOB`, telnet's Synch) stays in line (`SO_OOBINLINE`), so it is
/// echoed in order like any other byte instead of vanishing from the
/// stream. Also for listeners the server did not make (systemd's).
pub fn set_accepted_options(listener: &Socket) -> io::Result<()> {
    listener.set_out_of_band_inline(true)
}

/// Connects to the first address of `addr` that answers.
pub async fn connect(addr: &Addr, timeout: Duration) -> Result<TcpStream, ConnectError> {
    let (host, port, targets) = super::resolve::resolve_inet(addr).await?;
    let target = format!("{host} port {port}");
    let stream = super::resolve::first_that_connects(targets, &target, |to| async move {
        match tokio::time::timeout(timeout, TcpStream::connect(to)).await {
            Ok(connected) => connected,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection timed out",
            )),
        }
    })
    .await?;
    stream
        .set_nodelay(true)
        .map_err(|error| ConnectError::Connect { target, error })?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn accepted_sockets_inherit_nodelay_and_oobinline() {
        let listener = super::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = std::net::TcpStream::connect(addr).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let accepted = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(std::time::Instant::now() < deadline, "no connection");
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        assert!(accepted.nodelay().unwrap());
        let inline = socket2::SockRef::from(&accepted).out_of_band_inline();
        assert!(inline.unwrap(), "SO_OOBINLINE is inherited");
    }
}
