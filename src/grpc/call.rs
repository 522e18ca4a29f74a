//! One gRPC call's bodies, between hyper and tonic: the request's message
//! bytes counted in, the answer's counted out, the call counted open
//! while its answer lasts, and the metadata that gRPC's interop tests ask
//! to be echoed (`x-grpc-test-echo-initial` in the answer's headers,
//! `x-grpc-test-echo-trailing-bin` in its trailers) added where tonic has
//! no way to put it: a successful call's trailers.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body_util::BodyExt as _;
use http_body_util::combinators::BoxBody;
use hyper::Response;
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use sync_wrapper::SyncWrapper;

use crate::metrics::{ErrorKind, Label, Metrics};

/// A body's error, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An answer's body, as the HTTP listener sends every answer's.
pub type AnswerBody = BoxBody<Bytes, BoxError>;

/// The initial metadata a call asks to get back.
const ECHO_INITIAL: HeaderName = HeaderName::from_static("x-grpc-test-echo-initial");
/// The trailing metadata a call asks to get back.
const ECHO_TRAILING: HeaderName = HeaderName::from_static("x-grpc-test-echo-trailing-bin");

/// What a call asked to have echoed.
#[derive(Debug, Default)]
pub struct Echoed {
    initial: Option<HeaderValue>,
    trailing: Option<HeaderValue>,
}

impl Echoed {
    /// Reads the echo requests from a call's headers.
    pub fn from_request(headers: &HeaderMap) -> Echoed {
        Echoed {
            initial: headers.get(&ECHO_INITIAL).cloned(),
            trailing: headers.get(&ECHO_TRAILING).cloned(),
        }
    }
}

/// A request body whose data is counted as gRPC bytes received.
pub struct Counted<B> {
    inner: B,
    metrics: Arc<Metrics>,
}

impl<B> Counted<B> {
    /// Counts `inner`'s data into `metrics`.
    pub fn new(inner: B, metrics: Arc<Metrics>) -> Counted<B> {
        Counted { inner, metrics }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Counted<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(data) = frame.as_ref().and_then(|f| f.as_ref().ok()?.data_ref()) {
            self.metrics.received(Label::Grpc, data.len());
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// tonic's answer made the server's: echoed metadata added, bytes and
/// the call counted, and its status counted when it is an error the
/// call did not ask for.
pub fn answer(
    response: Response<tonic::body::Body>,
    echo: Echoed,
    asked_status: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
) -> Response<AnswerBody> {
    let (mut parts, body) = response.into_parts();
    if let Some(v) = echo.initial {
        parts.headers.insert(ECHO_INITIAL, v);
    }
    metrics.opened(Label::Grpc);
    let mut call = CallBody {
        inner: SyncWrapper::new(body),
        trailing: echo.trailing,
        asked_status,
        metrics,
    };
    // Trailers-Only (an error before any message): the status, and so
    // the trailing metadata, are in the headers, and the body must be
    // seen to be empty from the start, or hyper would end the stream
    // with an empty DATA frame, which gRPC clients refuse.
    if parts.headers.contains_key("grpc-status") {
        call.finish(&mut parts.headers);
        let empty = http_body_util::Empty::new().map_err(|never| match never {});
        return Response::from_parts(parts, empty.boxed());
    }
    Response::from_parts(parts, call.boxed())
}

/// The answer's body, counted; closes the call in the metrics when
/// dropped (sent in full, or cut off).
struct CallBody {
    /// tonic's body is `Send` but not `Sync`, and the server's bodies are
    /// both: polled only through `&mut`, it needs no `Sync` of its own.
    inner: SyncWrapper<tonic::body::Body>,
    trailing: Option<HeaderValue>,
    asked_status: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
}

impl CallBody {
    /// Adds the echoed trailer to the call's trailers, and counts its
    /// status: `INTERNAL` as a protocol error (tonic's answer to broken
    /// framing or protobuf), `RESOURCE_EXHAUSTED` as a message too large,
    /// unless the call asked for that status.
    fn finish(&mut self, trailers: &mut HeaderMap) {
        if let Some(v) = self.trailing.take() {
            trailers.insert(ECHO_TRAILING, v);
        }
        if self.asked_status.load(Ordering::Relaxed) {
            return;
        }
        let kind = match trailers.get("grpc-status").map(HeaderValue::as_bytes) {
            Some(b"13") => ErrorKind::Protocol,
            Some(b"8") => ErrorKind::MessageTooLarge,
            // tonic says OUT_OF_RANGE for a message over the limit; gRPC
            // (and its other servers) say RESOURCE_EXHAUSTED.
            Some(b"11") if trailers.get("grpc-message").is_some_and(too_large) => {
                trailers.insert("grpc-status", HeaderValue::from_static("8"));
                ErrorKind::MessageTooLarge
            }
            _ => return,
        };
        self.metrics.error(Label::Grpc, kind);
    }
}

/// Whether a `grpc-message` is tonic's word for a message over the limit
/// (percent-encoded, as gRPC sends it).
fn too_large(message: &HeaderValue) -> bool {
    message
        .as_bytes()
        .starts_with(b"Error,%20decoded%20message%20length%20too%20large")
}

impl Body for CallBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let frame = match ready!(Pin::new(self.inner.get_mut()).poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            Some(Err(status)) => return Poll::Ready(Some(Err(status.into()))),
            None => return Poll::Ready(None),
        };
        let frame = match frame.into_data() {
            Ok(data) => {
                self.metrics.sent(Label::Grpc, data.len());
                Frame::data(data)
            }
            Err(frame) => match frame.into_trailers() {
                Ok(mut trailers) => {
                    self.finish(&mut trailers);
                    Frame::trailers(trailers)
                }
                Err(other) => other,
            },
        };
        Poll::Ready(Some(Ok(frame)))
    }
}

impl Drop for CallBody {
    fn drop(&mut self) {
        self.metrics.closed(Label::Grpc);
    }
}
