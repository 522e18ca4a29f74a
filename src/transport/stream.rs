//! The client side's byte stream, of whatever transport.

use tokio::io::{AsyncRead, AsyncWrite};

/// Any client-side byte stream: TCP, TLS or Unix.
pub trait AsyncStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncStream for T {}

/// A connected client stream of whatever transport the address named.
pub type BoxStream = Box<dyn AsyncStream>;
