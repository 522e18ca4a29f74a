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
mod error;
mod peer;
mod resolve;
mod socket;
mod stream;
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

pub use error::ConnectError;
pub use peer::PeerName;
#[cfg(feature = "bench")]
pub(crate) use resolve::{first_that_connects, resolve_inet};
#[cfg(feature = "tls")]
pub(crate) use socket::socket_queues;
pub(crate) use socket::{
    OwnedSocket, StreamSocket, register, register_stream, register_writer, urgent_pending,
};
pub use stream::{AsyncStream, BoxStream};
