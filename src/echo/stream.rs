//! The echo of a stream a library drives (TLS): plain async reads and
//! writes, with the same idle timer, counters and debug lines as the
//! socket loop, which it cannot share (no splice, no raw socket).

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::debug;

use super::ending::{Ending, ignore_not_connected};
use super::idle::IdleTimer;
use super::options::{BASE_READ, EchoOptions};
use crate::metrics::ByteCounter;
use crate::pyrepr::PyBytes;
use crate::transport::PeerName;

/// Echoes any async byte stream (TLS) until end of stream, an error, or the
/// idle timeout, with a buffer of `read_size` bytes (at most [`BASE_READ`])
/// for the connection,
/// counting bytes in `bytes`. `queues` reads the kernel's queues of the
/// socket underneath, for the idle timeout.
pub async fn echo_stream<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    peer: PeerName,
    opts: EchoOptions,
    bytes: ByteCounter,
    mut queues: impl FnMut() -> Option<(usize, usize)>,
) -> io::Result<Ending> {
    let mut idle = IdleTimer::new(opts.idle_timeout);
    let mut buf = vec![0u8; opts.read_size.min(BASE_READ)];
    loop {
        let n = tokio::select! {
            biased;
            n = stream.read(&mut buf) => n?,
            () = idle.expired(&mut queues) => return Ok(Ending::Idle),
        };
        if n == 0 {
            stream.shutdown().await.or_else(ignore_not_connected)?;
            return Ok(Ending::Eof);
        }
        idle.touch();
        let data = &buf[..n];
        debug!(name = %peer, "received {}", PyBytes(data));
        // Counted as unsent until written: a write that fails or times out
        // leaves it so.
        bytes.received_unsent(n, n);
        tokio::select! {
            biased;
            r = async { stream.write_all(data).await?; stream.flush().await } => r?,
            () = idle.expired(&mut queues) => return Ok(Ending::Idle),
        }
        bytes.sent_later(n);
        idle.touch();
        debug!(name = %peer, "sent {}", PyBytes(data));
    }
}
