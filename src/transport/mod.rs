//! The transport seam: what the server and client need from a kind of socket.
//!
//! Stream sockets that the kernel can read and write directly (TCP, Unix)
//! implement `StreamSocket` (inside the crate) and are driven by the
//! readiness-based echo loop, which reads into a per-thread buffer. Streams
//! that need user-space processing (TLS) are plain `AsyncRead + AsyncWrite`
//! and go through the generic loop. The client side connects any stream
//! address into a [`BoxStream`]; UDP is datagrams, not a stream, and has its
//! own [`udp::UdpClient`].
//!
//! Any stream address connects the same way; each kind of socket's
//! details are in its own section below.
//!
//! ```
//! use std::time::Duration;
//! use echoes::transport::{self, UdpClient};
//! use echoes::{Server, ServerConfig};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = ServerConfig::new("127.0.0.1:0".parse()?);
//! config.listen(["127.0.0.1:0".parse::<echoes::Addr>()?, "udp://127.0.0.1:0".parse()?]);
//! let server = Server::bind(config).await?;
//! let (tcp, udp) = (server.local_addrs()[0].clone(), server.local_addrs()[1].clone());
//! let shutdown = server.shutdown_handle();
//! let running = tokio::spawn(server.run());
//!
//! let mut conn = transport::connect(&tcp, Duration::from_secs(5)).await?;
//! conn.write_all(b"a stream").await?;
//! conn.shutdown().await?;
//! let mut echo = Vec::new();
//! conn.read_to_end(&mut echo).await?;
//! assert_eq!(echo, b"a stream");
//!
//! let client = UdpClient::connect(&udp).await?;
//! let reply = client.exchange(b"a datagram", None, Duration::from_secs(5), 1).await?;
//! assert_eq!(reply, b"a datagram");
//!
//! shutdown.shutdown();
//! running.await??;
//! # Ok(())
//! # }
//! ```

mod connect;
mod error;
mod peer;
mod resolve;
mod socket;
mod stream;
pub(crate) mod tcp;
#[cfg(feature = "tls")]
pub(crate) mod tls;
pub(crate) mod udp;
mod udp_batch;
pub(crate) mod udp_guard;
pub(crate) mod udp_rate;
pub(crate) mod unix;
#[cfg(feature = "http")]
pub(crate) mod web;

pub(crate) use connect::not_built;
pub use connect::{ClientTls, connect, connect_with};

pub use error::ConnectError;
#[cfg(feature = "tls")]
pub use error::TlsError;
pub use peer::PeerName;
#[cfg(feature = "bench")]
pub(crate) use resolve::{first_that_connects, resolve_inet};
#[cfg(any(feature = "tls", test))]
pub(crate) use socket::socket_queues;
pub(crate) use socket::{
    OwnedSocket, StreamSocket, register, register_stream, register_writer, urgent_pending,
};
pub use stream::{AsyncStream, BoxStream};
#[cfg(feature = "tls")]
pub use tls::{
    CertSource, Fingerprint, HANDSHAKE_TIMEOUT, TlsClientSettings, TlsServerSettings,
    client_config, default_client_config,
};
pub use udp::{ExchangeError, MAX_DATAGRAM, UdpClient};
pub use udp_guard::DEFAULT_RATE as DEFAULT_UDP_RATE;
#[cfg(feature = "http")]
pub use web::{connect_ws, ws_config};
