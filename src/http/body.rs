//! Request bodies, read within a limit and hashed as they stream in, and
//! the response bodies: a buffer, the [`pattern`], or the
//! request body streamed back as it comes (`echo_body`).
//!
//! Memory stays bounded: a body is kept only up to `--http-max-body`
//! (past it the request gets 413 and the rest is never read), a pattern
//! body is made a chunk at a time, and an echoed body passes through a
//! frame at a time, as the client takes it.

use std::error::Error as StdError;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use sha2::{Digest, Sha256};

use crate::addr::Transport;
use crate::metrics::{ErrorKind, Metrics};

use super::pattern;

/// Any error a response body can end with.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// A response body of any of the kinds this server sends.
pub type ResBody = BoxBody<Bytes, BoxError>;

/// A response body, and the request it answers marked as under way until
/// it is sent or dropped (see [`IoState::request`](super::io::IoState::request)).
pub struct Tracked {
    body: ResBody,
    _busy: super::io::Busy,
}

impl Tracked {
    /// `body`, with `busy` held until it ends.
    pub fn new(body: ResBody, busy: super::io::Busy) -> Tracked {
        Tracked { body, _busy: busy }
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A response body holding `data`.
pub fn full(data: impl Into<Bytes>) -> ResBody {
    Full::new(data.into()).map_err(|e| match e {}).boxed()
}

/// An empty response body.
pub fn empty() -> ResBody {
    Empty::new().map_err(|e| match e {}).boxed()
}

/// A request body as it was read: kept whole, since it was within the limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// The bytes.
    pub data: Vec<u8>,
}

impl Seen {
    /// The body's SHA-256: taken only by the reflection, which shows it,
    /// not for every request whose body is read and dropped.
    pub fn sha256(&self) -> [u8; 32] {
        Sha256::digest(&self.data).into()
    }
}

/// Why a request body was not read whole.
#[derive(Debug)]
pub enum ReadError {
    /// It is (or would be, by its `Content-Length`) over the limit.
    TooLarge,
    /// The connection failed or the client gave up mid-body.
    Failed(hyper::Error),
}

/// Reads a request body of at most `limit` bytes, hashing it as it comes;
/// one over the limit is refused before anything is read when its length
/// is announced, and as soon as it passes the limit otherwise.
pub async fn read_limited(mut body: Incoming, limit: u64) -> Result<Seen, ReadError> {
    if body.size_hint().lower() > limit {
        return Err(ReadError::TooLarge);
    }
    let mut data = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(ReadError::Failed)?;
        let Ok(chunk) = frame.into_data() else {
            continue; // trailers
        };
        if (data.len() + chunk.len()) as u64 > limit {
            return Err(ReadError::TooLarge);
        }
        data.extend_from_slice(&chunk);
    }
    Ok(Seen { data })
}

/// `len` bytes of the [`pattern`], made 16 KiB at a time.
#[derive(Debug)]
pub struct PatternBody {
    offset: u64,
    len: u64,
}

impl PatternBody {
    /// The largest chunk made at once.
    const CHUNK: u64 = 16 * 1024;

    /// A body of the first `len` bytes of the pattern.
    pub fn new(len: u64) -> PatternBody {
        PatternBody { offset: 0, len }
    }
}

impl Body for PatternBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let left = self.len - self.offset;
        if left == 0 {
            return Poll::Ready(None);
        }
        let mut chunk = vec![0u8; left.min(Self::CHUNK) as usize];
        pattern::fill(self.offset, &mut chunk);
        self.offset += chunk.len() as u64;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))))
    }

    fn is_end_stream(&self) -> bool {
        self.offset == self.len
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len - self.offset)
    }
}

/// The request body, streamed back as it comes, within a limit: one that
/// passes the limit mid-way (its length not announced) ends the response
/// with an error, which aborts it, and is counted as `body_too_large`.
pub struct EchoBody {
    body: Incoming,
    seen: u64,
    limit: u64,
    metrics: Arc<Metrics>,
}

impl EchoBody {
    /// Echoes `body` of at most `limit` bytes.
    pub fn new(body: Incoming, limit: u64, metrics: Arc<Metrics>) -> EchoBody {
        EchoBody {
            body,
            seen: 0,
            limit,
            metrics,
        }
    }
}

impl Body for EchoBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let frame = match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
            None => return Poll::Ready(None),
            Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
            Some(Ok(frame)) => frame,
        };
        if let Some(data) = frame.data_ref() {
            self.seen += data.len() as u64;
            if self.seen > self.limit {
                self.metrics.error(Transport::Http, ErrorKind::BodyTooLarge);
                return Poll::Ready(Some(Err(format!(
                    "the body passed this server's --http-max-body of {}",
                    crate::units::describe_size(self.limit)
                )
                .into())));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pattern_body_is_the_pattern_in_chunks() {
        let body = PatternBody::new(40_000);
        assert_eq!(body.size_hint().exact(), Some(40_000));
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(bytes.len(), 40_000);
        assert_eq!(pattern::first_mismatch(0, &bytes), None);
    }
}
