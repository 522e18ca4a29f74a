//! The answer to `sse=N`: N server-sent events (`text/event-stream`, the
//! WHATWG HTML standard's §9.2), one every `interval=` (the first at
//! once), so a client sees whether something between it and the server
//! holds a stream back.
//!
//! Event K of N (K from 1) is, byte for byte, [`sse_event(K, N)`](sse_event):
//!
//! ```text
//! id: 3
//! data: 3/5 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ
//!
//! ```
//!
//! The stream is a response body polled by its connection, never a task
//! of its own: it ends after event N, when the client goes away (the
//! connection drops it), and at once when the server begins to shut down
//! (graceful shutdown then finishes the response; a client sees fewer
//! than N events).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame};
use tokio::time::Sleep;

use crate::shutdown::ShutdownHandle;

use super::body::BoxError;

/// What follows the event number in every event's `data:` line.
pub const SSE_PATTERN: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Event `k` of `n` as it goes out: `id: K`, `data: K/N` and
/// [`SSE_PATTERN`], and the blank line that ends it.
///
/// ```
/// assert_eq!(
///     echoes::http::sse_event(3, 5),
///     "id: 3\ndata: 3/5 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\n\n"
/// );
/// ```
pub fn sse_event(k: u32, n: u32) -> String {
    format!("id: {k}\ndata: {k}/{n} {SSE_PATTERN}\n\n")
}

/// The body of an `sse=` answer.
pub struct SseBody {
    next: u32,
    count: u32,
    interval: Duration,
    /// Until the next event; `None` while it is due.
    timer: Option<Pin<Box<Sleep>>>,
    /// Resolves when the server begins to shut down.
    shutdown: Pin<Box<dyn Future<Output = ()> + Send + Sync>>,
    ended: bool,
}

impl SseBody {
    /// `count` events, `interval` apart, ending early when `shutdown`
    /// begins.
    pub fn new(count: u32, interval: Duration, shutdown: ShutdownHandle) -> SseBody {
        SseBody {
            next: 1,
            count,
            interval,
            timer: None,
            shutdown: Box::pin(async move { shutdown.wait_shutdown().await }),
            ended: false,
        }
    }
}

impl Body for SseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.ended || self.next > self.count {
            return Poll::Ready(None);
        }
        if self.shutdown.as_mut().poll(cx).is_ready() {
            self.ended = true;
            return Poll::Ready(None);
        }
        if let Some(timer) = self.timer.as_mut() {
            ready!(timer.as_mut().poll(cx));
        }
        let event = sse_event(self.next, self.count);
        self.next += 1;
        let due = tokio::time::Instant::now() + self.interval;
        match self.timer.as_mut() {
            Some(timer) => timer.as_mut().reset(due),
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(due))),
        }
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(event)))))
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.next > self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn events_come_in_order_an_interval_apart() {
        let start = tokio::time::Instant::now();
        let interval = Duration::from_millis(30);
        let mut body = SseBody::new(3, interval, ShutdownHandle::new());
        let mut got = Vec::new();
        let mut at = Vec::new();
        while let Some(frame) = body.frame().await {
            let data = frame.unwrap().into_data().unwrap();
            got.push(String::from_utf8(data.to_vec()).unwrap());
            at.push(start.elapsed());
        }
        let want: Vec<_> = (1..=3).map(|k| sse_event(k, 3)).collect();
        assert_eq!(got, want);
        assert!(body.is_end_stream());
        // The first at once, then one an interval after another.
        assert!(at[0] < interval, "{at:?}");
        assert!(at[2] >= 2 * interval, "{at:?}");
    }

    #[tokio::test]
    async fn shutdown_ends_the_stream_at_once() {
        let shutdown = ShutdownHandle::new();
        let mut body = SseBody::new(10, Duration::from_secs(60), shutdown.clone());
        assert!(body.frame().await.is_some());
        let start = tokio::time::Instant::now();
        let stop = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            shutdown.shutdown();
        });
        assert!(body.frame().await.is_none());
        assert!(body.is_end_stream());
        assert!(start.elapsed() < Duration::from_secs(10));
        stop.await.unwrap();
    }
}
