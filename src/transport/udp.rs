//! UDP, RFC 862: every datagram is sent back to its sender, the same bytes,
//! nothing more, unless the [reflection guard](super::udp_guard) says no.
//!
//! The server side is one loop per socket with one 64 KiB buffer, enough
//! for any datagram (65,507 bytes over IPv4, 65,527 over IPv6): receive,
//! check the source, send back. The client side sends one datagram and
//! waits for its reply, resending once if none comes in time.
//!
//! An echo server over UDP on a free port, and a client that sends one
//! datagram and awaits its reply:
//!
//! ```
//! use std::time::Duration;
//! use echoes::transport::udp::UdpClient;
//! use echoes::{Server, ServerConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::bind(ServerConfig::new("udp://127.0.0.1:0".parse()?)).await?;
//! let addr = server.local_addrs()[0].clone(); // with the port picked
//! let shutdown = server.shutdown_handle();
//! let running = tokio::spawn(server.run());
//!
//! let client = UdpClient::connect(&addr).await?;
//! // Wait up to 5 s for the reply, resending once.
//! let reply = client.exchange(b"one datagram", None, Duration::from_secs(5), 1).await?;
//! assert_eq!(reply, b"one datagram");
//!
//! shutdown.shutdown();
//! running.await??;
//! # Ok(())
//! # }
//! ```

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tracing::{debug, warn};

use super::udp_guard::{self, Guard};
use super::{ConnectError, PeerName};
use crate::addr::{Addr, Transport};
use crate::metrics::{ErrorKind, Metrics, UdpResult};
use crate::pyrepr::PyBytes;

/// The largest UDP payload over IPv4, and so the largest message the
/// client sends.
pub const MAX_DATAGRAM: usize = 65_507;

/// Binds a UDP socket; IPv6 sockets are IPv6-only, as for TCP.
pub fn bind(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Answers datagrams on `socket` until the future is dropped, each allowed
/// by `guard` (see the module documentation), counting them in `metrics`.
pub async fn serve(socket: UdpSocket, guard: Arc<Guard>, metrics: Arc<Metrics>) {
    let bytes = metrics.bytes(Transport::Udp);
    // One buffer for the socket's life: larger than any datagram, so none
    // is truncated.
    let mut buf = vec![0u8; 64 * 1024];
    let mut failures = 0u32;
    loop {
        let (n, src) = match socket.recv_from(&mut buf).await {
            Ok(got) => {
                failures = 0;
                got
            }
            Err(e) => {
                metrics.error(Transport::Udp, ErrorKind::Io);
                // Errors here are about some earlier datagram (an ICMP
                // report) or the system (out of memory): log the first of a
                // burst, back off, carry on.
                if failures == 0 {
                    warn!(name = "main", "udp receive failed: {e}");
                }
                failures = failures.saturating_add(1);
                let delay =
                    Duration::from_millis(1 << failures.min(10)).min(Duration::from_secs(1));
                tokio::time::sleep(delay).await;
                continue;
            }
        };
        let data = &buf[..n];
        let peer = PeerName::Inet(src);
        debug!(name = %peer, "received {}", PyBytes(data));
        match guard.check(src, Instant::now()) {
            UdpResult::Answered => match socket.send_to(data, src).await {
                Ok(_) => {
                    bytes.echoed(n);
                    metrics.udp(UdpResult::Answered);
                    debug!(name = %peer, "sent {}", PyBytes(data));
                }
                Err(e) => {
                    bytes.received_unsent(n, n);
                    metrics.error(Transport::Udp, ErrorKind::Io);
                    debug!(name = %peer, "send failed: {e}");
                }
            },
            refused => {
                bytes.received_unsent(n, n);
                metrics.udp(refused);
                debug!(name = %peer, "{}", udp_guard::reason(refused));
            }
        }
    }
}

/// A client's UDP socket, connected to one server so that only its replies
/// (and its ICMP errors, as `ECONNREFUSED`) come back.
#[derive(Debug)]
pub struct UdpClient {
    socket: UdpSocket,
    target: String,
}

/// Why a datagram exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The message does not fit in one datagram.
    #[error("a message of {0} bytes does not fit in one UDP datagram (at most 65507)")]
    TooLarge(usize),
    /// No reply came, even after resending.
    #[error("no reply after {tries} tries, {timeout:?} each")]
    Timeout {
        /// Datagrams sent.
        tries: u32,
        /// How long each was waited for.
        timeout: Duration,
    },
    /// The server's host said nobody listens there, or the socket failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
}

impl UdpClient {
    /// Resolves `addr` and connects a UDP socket to its first address that
    /// the system can route to.
    pub async fn connect(addr: &Addr) -> Result<UdpClient, ConnectError> {
        let (host, port, targets) = super::resolve_inet(addr).await?;
        let target = format!("{host} port {port}");
        let socket = super::first_that_connects(targets, &target, |to| async move {
            let local: SocketAddr = if to.is_ipv6() {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            } else {
                (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
            };
            let socket = UdpSocket::bind(local).await?;
            socket.connect(to).await?;
            Ok(socket)
        })
        .await?;
        Ok(UdpClient { socket, target })
    }

    /// Sends `msg` as one datagram and returns the reply, waiting `timeout`
    /// for it and resending up to `retries` times. A reply equal to
    /// `stale` (the previous message, whose late duplicate may still be on
    /// its way after a resend) is skipped.
    pub async fn exchange(
        &self,
        msg: &[u8],
        stale: Option<&[u8]>,
        timeout: Duration,
        retries: u32,
    ) -> Result<Vec<u8>, ExchangeError> {
        if msg.len() > MAX_DATAGRAM {
            return Err(ExchangeError::TooLarge(msg.len()));
        }
        let mut buf = vec![0u8; 64 * 1024];
        for _ in 0..=retries {
            self.socket.send(msg).await.map_err(|e| self.err(e))?;
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                let n = match tokio::time::timeout_at(deadline, self.socket.recv(&mut buf)).await {
                    Err(_) => break,
                    Ok(r) => r.map_err(|e| self.err(e))?,
                };
                let reply = &buf[..n];
                if reply != msg && stale == Some(reply) {
                    debug!(name = "echo_client", "skipping a late duplicate reply");
                    continue;
                }
                return Ok(reply.to_vec());
            }
        }
        Err(ExchangeError::Timeout {
            tries: retries + 1,
            timeout,
        })
    }

    fn err(&self, error: io::Error) -> ExchangeError {
        ExchangeError::Connect(ConnectError::Connect {
            target: self.target.clone(),
            error,
        })
    }
}
