//! The byte stream of one HTTP connection, as hyper reads and writes it.
//!
//! [`ConnIo`] wraps the socket (or the TLS stream) and, on the way:
//!
//! - counts the bytes each way in the metrics, under `http` (until the
//!   connection becomes a WebSocket, whose messages are counted instead);
//! - notes what the connection's driver needs to know ([`IoState`]): when
//!   anything last moved (for `--idle-timeout`), whether the peer has sent
//!   anything at all, and whether it sent something since the last answer
//!   (a request under way, so a header timeout is a 408, not an idle
//!   keep-alive connection closing);
//! - hands the stream back when hyper drops it, so that the driver can
//!   still answer 408 to a request head that came too slowly: hyper's
//!   header timeout ends the connection without a word.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

use crate::addr::Transport;
use crate::metrics::Metrics;

/// What the connection's driver learns from its stream.
#[derive(Debug)]
pub struct IoState {
    start: Instant,
    /// Microseconds from `start` to the last byte moved, either way; only
    /// kept when `timed` (it costs a clock read per read and write).
    last: AtomicU64,
    timed: bool,
    read_any: AtomicBool,
    read_since_write: AtomicBool,
    /// Whether the peer opened with HTTP/2's connection preface.
    h2: AtomicBool,
    /// Requests under way: being answered, or their answer still sending.
    requests: AtomicUsize,
    /// Microseconds from `start` to when the last request under way ended.
    quiet_since: AtomicU64,
}

/// The HTTP/2 client connection preface begins so (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

impl IoState {
    /// A fresh state; `timed` keeps the time of the last traffic.
    pub fn new(timed: bool) -> IoState {
        IoState {
            start: Instant::now(),
            last: AtomicU64::new(0),
            timed,
            read_any: AtomicBool::new(false),
            read_since_write: AtomicBool::new(false),
            h2: AtomicBool::new(false),
            requests: AtomicUsize::new(0),
            quiet_since: AtomicU64::new(0),
        }
    }

    /// Whether the connection speaks HTTP/2.
    pub fn is_h2(&self) -> bool {
        self.h2.load(Relaxed)
    }

    /// Since when no request has been under way, if none is: the
    /// connection's start, or the end of its last request's answer.
    pub fn quiet_since(&self) -> Option<Instant> {
        (self.requests.load(Relaxed) == 0)
            .then(|| self.start + Duration::from_micros(self.quiet_since.load(Relaxed)))
    }

    /// A request under way until the returned guard is dropped (with its
    /// answer's body, so a long answer keeps the connection busy).
    pub fn request(self: &Arc<Self>) -> Busy {
        self.requests.fetch_add(1, Relaxed);
        Busy(self.clone())
    }

    /// When bytes last moved either way (the connection's start at first);
    /// always the start unless the state is timed.
    pub fn last_traffic(&self) -> Instant {
        self.start + Duration::from_micros(self.last.load(Relaxed))
    }

    /// Whether the peer has sent anything at all.
    pub fn read_any(&self) -> bool {
        self.read_any.load(Relaxed)
    }

    /// Whether the peer sent something after the server last wrote: a
    /// request is under way.
    pub fn read_since_write(&self) -> bool {
        self.read_since_write.load(Relaxed)
    }

    fn touch(&self) {
        if self.timed {
            let micros = self.start.elapsed().as_micros();
            self.last
                .store(u64::try_from(micros).unwrap_or(u64::MAX), Relaxed);
        }
    }
}

/// One request under way on a connection: see [`IoState::request`].
#[derive(Debug)]
pub struct Busy(Arc<IoState>);

impl Drop for Busy {
    fn drop(&mut self) {
        let state = &self.0;
        if state.requests.fetch_sub(1, Relaxed) == 1 {
            let micros = u64::try_from(state.start.elapsed().as_micros()).unwrap_or(u64::MAX);
            state.quiet_since.store(micros, Relaxed);
        }
    }
}

/// A connection's stream, counted and watched. See the module docs.
pub struct ConnIo<T> {
    io: Option<T>,
    state: Arc<IoState>,
    metrics: Arc<Metrics>,
    /// Whether bytes are counted under `http` (not once it is a WebSocket).
    counted: bool,
    back: Option<oneshot::Sender<T>>,
}

impl<T> ConnIo<T> {
    /// Wraps `io`; when this is dropped, `io` goes to `back`, if given.
    pub fn new(
        io: T,
        state: Arc<IoState>,
        metrics: Arc<Metrics>,
        back: Option<oneshot::Sender<T>>,
    ) -> ConnIo<T> {
        ConnIo {
            io: Some(io),
            state,
            metrics,
            counted: true,
            back,
        }
    }

    /// From now on the bytes are a WebSocket's, counted by message: stop
    /// counting them here, and keep the stream when dropped.
    pub fn into_websocket(mut self) -> ConnIo<T> {
        self.counted = false;
        self.back = None;
        self
    }

    fn io(&mut self) -> Pin<&mut T>
    where
        T: Unpin,
    {
        // Only `Drop` takes it, and nothing polls a dropped value.
        Pin::new(self.io.as_mut().expect("the stream is there until drop"))
    }
}

impl<T> Drop for ConnIo<T> {
    fn drop(&mut self) {
        if let (Some(io), Some(back)) = (self.io.take(), self.back.take()) {
            // Nobody waiting for it: the stream simply closes.
            let _ = back.send(io);
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ConnIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = self.io().poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            let this = &*self;
            this.state.touch();
            if !this.state.read_any.load(Relaxed) {
                let first = &buf.filled()[before..];
                let h2 = first.starts_with(&H2_PREFACE[..first.len().min(H2_PREFACE.len())]);
                this.state.h2.store(h2 && first.len() >= 3, Relaxed);
            }
            this.state.read_any.store(true, Relaxed);
            this.state.read_since_write.store(true, Relaxed);
            if this.counted {
                this.metrics.received(Transport::Http, n);
            }
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ConnIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = self.io().poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = result {
            self.wrote(n);
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = self.io().poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = result {
            self.wrote(n);
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.io.as_ref().is_some_and(T::is_write_vectored)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io().poll_shutdown(cx)
    }
}

impl<T> ConnIo<T> {
    fn wrote(&self, n: usize) {
        if n > 0 {
            self.state.touch();
            self.state.read_since_write.store(false, Relaxed);
            if self.counted {
                self.metrics.sent(Transport::Http, n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn counts_notes_and_hands_back() {
        let metrics = Arc::new(Metrics::new());
        let state = Arc::new(IoState::new(true));
        let (mut peer, ours) = tokio::io::duplex(64);
        let (tx, rx) = oneshot::channel();
        let mut io = ConnIo::new(ours, state.clone(), metrics.clone(), Some(tx));
        assert!(!state.read_any());
        peer.write_all(b"GET").await.unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(io.read(&mut buf).await.unwrap(), 3);
        assert!(state.read_any() && state.read_since_write());
        io.write_all(b"HTTP/1.1").await.unwrap();
        assert!(!state.read_since_write());
        assert!(state.last_traffic() > state.start);
        let s = metrics.snapshot(Transport::Http);
        assert_eq!((s.received, s.sent), (3, 8));
        drop(io);
        let mut back = rx.await.expect("the stream comes back");
        back.write_all(b"!").await.unwrap();
        let mut got = [0u8; 9];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"HTTP/1.1!");
    }
}
