//! The steps over a byte stream that both of its state machines take
//! ([`Talk`](super::talk) for the messages, [`Pipe`](super::pipe) for
//! `--stdin`): one write to the server, the half-close, one read of the
//! echo, each an error in the client's words.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::error::{ClientError, io_err};
use crate::transport::BoxStream;

/// How the client reads: large enough that big echoes take few reads.
pub(super) const CHUNK: usize = 64 * 1024;

/// Writes `bytes` to the server: how many it took. A server that takes
/// none is an error, not progress.
pub(super) fn poll_send(
    cx: &mut Context<'_>,
    stream: &mut BoxStream,
    bytes: &[u8],
) -> Poll<Result<usize, ClientError>> {
    match Pin::new(stream).poll_write(cx, bytes) {
        Poll::Ready(Ok(0)) => Poll::Ready(Err(ClientError::Io {
            context: "sending",
            error: io::ErrorKind::WriteZero.into(),
        })),
        Poll::Ready(r) => Poll::Ready(r.map_err(io_err("sending"))),
        Poll::Pending => Poll::Pending,
    }
}

/// Closes the write side: everything is sent.
pub(super) fn poll_half_close(
    cx: &mut Context<'_>,
    stream: &mut BoxStream,
) -> Poll<Result<(), ClientError>> {
    Pin::new(stream)
        .poll_shutdown(cx)
        .map_err(io_err("half-closing"))
}

/// Reads what came back into `buf`: how many bytes, 0 at the end of the
/// stream.
pub(super) fn poll_read_echo(
    cx: &mut Context<'_>,
    stream: &mut BoxStream,
    buf: &mut [u8],
) -> Poll<Result<usize, ClientError>> {
    let mut buf = ReadBuf::new(buf);
    Pin::new(stream)
        .poll_read(cx, &mut buf)
        .map_ok(|()| buf.filled().len())
        .map_err(io_err("reading the echo"))
}
