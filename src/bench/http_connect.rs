//! Reaching an HTTP server (`http://`, `https://`): the probe, the
//! [`HttpConnector`] it sets up, and each slot's [`HttpConnection`]: a
//! hyper client connection (HTTP/1.1 with keep-alive, or HTTP/2) over the
//! bench's own TCP stream or the crate's TLS. The exchange loop itself is
//! in [`http`](super::http).
//!
//! hyper's connection task (the one that reads and writes the socket)
//! runs on the worker's runtime beside the slot; it ends once the slot
//! drops its [`HttpConnection`] (HTTP/1.1: the socket closes when idle;
//! HTTP/2: with a GOAWAY), so churn closes every connection it opens.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use hyper::client::conn::{http1, http2};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::config::HttpRequestKind;
use super::exchange::{Failure, WRITE_CHUNK};
use super::pattern::Pattern;
use super::record::FailureKind;
use super::source::{self, Source};
use super::tcp;
use crate::addr::{Addr, Transport};
use crate::proxy::send::ProxySend;
use crate::transport::{BoxStream, ConnectError, web};

/// What every request of a run carries: its method, its URI (the path
/// alone over HTTP/1.1, with a `Host` header; absolute over HTTP/2, whose
/// `:authority` is in it), as built once by the probe.
#[derive(Debug)]
pub(crate) struct Target {
    /// What each message is.
    pub kind: HttpRequestKind,
    pub method: Method,
    pub uri: hyper::Uri,
    /// The `Host` header (HTTP/1.1 only).
    pub host: Option<HeaderValue>,
    pub http2: bool,
    /// The bench's own HTTP/1.1 client's request head, the same for every
    /// message ([`h1`](super::h1)).
    pub h1_head: Box<[u8]>,
}

impl Target {
    /// The target of `kind` requests to `addr` of `size` bytes: the
    /// address's path and query with the kind's knob added.
    pub(crate) fn new(
        addr: &Addr,
        kind: HttpRequestKind,
        size: usize,
        http2: bool,
    ) -> Result<Target, ConnectError> {
        let (Some((host, port)), Some(path)) = (addr.host_port(), addr.web_path()) else {
            return Err(ConnectError::Unsupported(addr.transport()));
        };
        let knob = match kind {
            HttpRequestKind::Echo => Some("echo_body".to_string()),
            HttpRequestKind::Size => Some(format!("size={size}")),
            HttpRequestKind::Reflect | HttpRequestKind::Grpc | HttpRequestKind::GrpcDuplex => None,
        };
        let path = match knob {
            // A gRPC call's path is its method.
            _ if kind == HttpRequestKind::Grpc => super::config::GRPC_UNARY_CALL.to_string(),
            _ if kind == HttpRequestKind::GrpcDuplex => super::config::GRPC_DUPLEX_CALL.to_string(),
            Some(knob) if path.contains('?') => format!("{path}&{knob}"),
            Some(knob) => format!("{path}?{knob}"),
            None => path.to_string(),
        };
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let scheme = match addr.transport() {
            Transport::Https => "https",
            _ => "http",
        };
        let uri = if http2 {
            format!("{scheme}://{authority}{path}")
        } else {
            path
        };
        let bad = |what: String| ConnectError::Connect {
            target: addr.to_string(),
            error: io::Error::new(io::ErrorKind::InvalidInput, what),
        };
        let uri = uri
            .parse()
            .map_err(|e| bad(format!("not a request target: {e}")))?;
        let host = (!http2)
            .then(|| HeaderValue::from_str(&authority))
            .transpose()
            .map_err(|e| bad(format!("not a Host header: {e}")))?;
        let method = match kind {
            HttpRequestKind::Echo | HttpRequestKind::Grpc | HttpRequestKind::GrpcDuplex => {
                Method::POST
            }
            _ => Method::GET,
        };
        let mut h1_head = format!("{method} {uri} HTTP/1.1\r\nhost: {authority}\r\n");
        if kind == HttpRequestKind::Echo {
            h1_head.push_str(&format!(
                "content-type: application/octet-stream\r\ncontent-length: {size}\r\n"
            ));
        }
        h1_head.push_str("\r\n");
        Ok(Target {
            kind,
            method,
            uri,
            host,
            http2,
            h1_head: h1_head.into_bytes().into(),
        })
    }

    /// The request for a message whose body is `body`.
    pub(crate) fn request(&self, body: PatternBody) -> Request<PatternBody> {
        let mut req = Request::new(body);
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.version_mut() = if self.http2 {
            Version::HTTP_2
        } else {
            Version::HTTP_11
        };
        if let Some(host) = &self.host {
            req.headers_mut().insert(header::HOST, host.clone());
        }
        let h = req.headers_mut();
        match self.kind {
            HttpRequestKind::Echo => {
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
            }
            HttpRequestKind::Grpc | HttpRequestKind::GrpcDuplex => {
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/grpc"),
                );
                h.insert(header::TE, HeaderValue::from_static("trailers"));
            }
            _ => {}
        }
        req
    }

    /// `POST /?echo_body`, for error messages.
    pub(crate) fn describe(&self) -> String {
        let target = match self.uri.path_and_query() {
            Some(p) => p.as_str(),
            None => "/",
        };
        format!("{} {target}", self.method)
    }
}

/// A request body: `len` bytes of a connection's [`Pattern`] from
/// `offset`, generated [`WRITE_CHUNK`] bytes at a time as hyper asks for
/// them (so a large message is never held whole), after a `head` (a gRPC
/// call's framing); none for a `GET`.
pub(crate) struct PatternBody {
    head: Bytes,
    pattern: Pattern,
    offset: u64,
    left: u64,
    /// A gRPC duplex call's messages, sent as they come: the body ends
    /// when the sender is dropped.
    messages: Option<tokio::sync::mpsc::Receiver<Bytes>>,
}

impl PatternBody {
    /// `len` bytes of `pattern` from `offset`.
    pub(crate) fn new(pattern: Pattern, offset: u64, len: u64) -> PatternBody {
        PatternBody {
            head: Bytes::new(),
            pattern,
            offset,
            left: len,
            messages: None,
        }
    }

    /// The messages from `rx`, each as it is sent, until its sender goes.
    pub(crate) fn messages(rx: tokio::sync::mpsc::Receiver<Bytes>) -> PatternBody {
        PatternBody {
            messages: Some(rx),
            ..PatternBody::empty()
        }
    }

    /// `head`, then `len` bytes of `pattern` from `offset`.
    pub(crate) fn with_head(head: Bytes, pattern: Pattern, offset: u64, len: u64) -> PatternBody {
        PatternBody {
            head,
            ..PatternBody::new(pattern, offset, len)
        }
    }

    /// No body.
    pub(crate) fn empty() -> PatternBody {
        PatternBody::new(Pattern::new(0), 0, 0)
    }
}

impl Body for PatternBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(rx) = self.messages.as_mut() {
            return rx.poll_recv(cx).map(|m| m.map(|m| Ok(Frame::data(m))));
        }
        if !self.head.is_empty() {
            return Poll::Ready(Some(Ok(Frame::data(std::mem::take(&mut self.head)))));
        }
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(WRITE_CHUNK as u64) as usize;
        let mut chunk = BytesMut::zeroed(n);
        self.pattern.fill(self.offset, &mut chunk);
        self.offset += n as u64;
        self.left -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(chunk.freeze()))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0 && self.head.is_empty() && self.messages.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.messages {
            Some(_) => SizeHint::default(),
            None => SizeHint::with_exact(self.left + self.head.len() as u64),
        }
    }
}

/// How the bench reaches an HTTP server: over TCP to the address the
/// probe reached (from each `--source` address in turn), or over TLS
/// (resolving the name for each connection, as the certificate check
/// needs it), offering ALPN `h2` or `http/1.1`.
#[derive(Debug, Clone)]
pub(crate) struct HttpConnector {
    addr: Arc<Addr>,
    /// `http://`: the address that answered the probe.
    peer: Option<SocketAddr>,
    /// `http://`: the addresses to connect from (none: the system's choice).
    sources: Arc<[IpAddr]>,
    /// `https://`: the client configuration, with its ALPN offer.
    tls: Option<Arc<rustls::ClientConfig>>,
    /// A PROXY header to send first (`--proxy-protocol`).
    proxy: Option<ProxySend>,
    target: Arc<Target>,
}

/// What the probe needs to know of the run, besides where to connect.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HttpPlan {
    pub kind: HttpRequestKind,
    pub http2: bool,
    /// Bytes per message.
    pub size: usize,
}

/// Connects once and asks for the address's path (a `GET`, whatever the
/// request kind), to prove the server speaks HTTP (HTTP/2, with `http2`):
/// a fatal error otherwise, before the run starts. Any status will do:
/// a 503 from the run's requests is the run's to count.
pub(crate) async fn probe(
    addr: &Addr,
    timeout: Duration,
    tls: Option<&Arc<rustls::ClientConfig>>,
    source: &Source,
    proxy: Option<&ProxySend>,
    plan: HttpPlan,
) -> Result<HttpConnector, ConnectError> {
    let under = web::stream_addr(addr)?;
    let target = Arc::new(Target::new(addr, plan.kind, plan.size, plan.http2)?);
    let (peer, tls, stream): (_, _, BoxStream) = match addr.transport() {
        Transport::Http => {
            let (stream, peer) = tcp::probe(&under, addr, timeout, proxy).await?;
            (Some(peer), None, Box::new(stream))
        }
        _ => {
            let alpn: &[&[u8]] = if plan.http2 { &[b"h2"] } else { &[b"http/1.1"] };
            let config = web::tls_config(tls, alpn)?;
            let stream =
                crate::transport::connect_with(&under, timeout, Some(&config), proxy).await?;
            (None, Some(config), stream)
        }
    };
    let not_http = |why: String| ConnectError::Connect {
        target: addr.to_string(),
        error: io::Error::other(why),
    };
    let version = if plan.http2 { "HTTP/2" } else { "HTTP/1.1" };
    // A gRPC server need not answer a GET: ask it for a call, of no bytes.
    let (probe_kind, probe_body) = match plan.kind {
        HttpRequestKind::Grpc | HttpRequestKind::GrpcDuplex => (
            HttpRequestKind::Grpc,
            PatternBody::with_head(super::grpc::request_head(0), Pattern::new(0), 0, 0),
        ),
        _ => (HttpRequestKind::Reflect, PatternBody::empty()),
    };
    let probe_target = Target::new(addr, probe_kind, 0, plan.http2)?;
    let ask = async {
        let mut conn = HttpConnection::handshake(stream, target.clone()).await?;
        conn.ready().await?;
        let response = conn.send(probe_target.request(probe_body)).await;
        response.map_err(|e| e.detail)
    };
    match tokio::time::timeout(timeout, ask).await {
        Ok(Ok(_)) => {}
        Ok(Err(why)) => return Err(not_http(format!("no {version} answer: {why}"))),
        Err(_) => {
            return Err(not_http(format!("no {version} answer within {timeout:?}")));
        }
    }
    let sources = match peer {
        Some(peer) => source.addrs_for(peer, Transport::Tcp).into(),
        None => Arc::from([]),
    };
    Ok(HttpConnector {
        addr: Arc::new(addr.clone()),
        peer,
        sources,
        tls,
        proxy: proxy.cloned(),
        target,
    })
}

impl HttpConnector {
    /// How many source addresses connections spread over (1: the
    /// system's choice).
    pub(crate) fn sources(&self) -> usize {
        self.sources.len().max(1)
    }

    /// A new connection, its HTTP/2 handshake done, within `timeout`;
    /// `seq` picks its source address.
    pub(crate) async fn connect(&self, timeout: Duration, seq: u64) -> Result<HttpLink, Failure> {
        let err = |detail: String| Failure::new(FailureKind::Connect, detail);
        let stream: BoxStream = match &self.peer {
            Some(peer) => {
                let from = source::pick(&self.sources, seq);
                Box::new(tcp::connect_slot(*peer, from, timeout, self.proxy.as_ref()).await?)
            }
            None => {
                let under = web::stream_addr(&self.addr).map_err(|e| err(e.to_string()))?;
                crate::transport::connect_with(
                    &under,
                    timeout,
                    self.tls.as_ref(),
                    self.proxy.as_ref(),
                )
                .await
                .map_err(|e| err(e.to_string()))?
            }
        };
        if !self.target.http2 {
            return Ok(HttpLink::Own(OwnH1 {
                stream,
                target: self.target.clone(),
            }));
        }
        tokio::time::timeout(
            timeout,
            HttpConnection::handshake(stream, self.target.clone()),
        )
        .await
        .map_err(|_| err(format!("the HTTP handshake timed out after {timeout:?}")))?
        .map_err(|e| Failure::new(FailureKind::Connect, e))
        .map(HttpLink::Hyper)
    }
}

/// A slot's connection to an HTTP server, as [`HttpConnector::connect`]
/// made it.
pub(crate) enum HttpLink {
    /// HTTP/2 (and gRPC): hyper's client.
    Hyper(HttpConnection),
    /// HTTP/1.1: the bench's own client ([`h1`](super::h1)).
    Own(OwnH1),
}

/// A connection the bench's own HTTP/1.1 client drives: every slot's
/// over HTTP/1.1 (the probe's is hyper's).
pub(crate) struct OwnH1 {
    pub stream: BoxStream,
    pub target: Arc<Target>,
}

/// hyper's half of a connection that sends requests.
enum Sender {
    H1(http1::SendRequest<PatternBody>),
    H2(http2::SendRequest<PatternBody>),
}

/// A response on its way.
pub(crate) type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<hyper::body::Incoming>, hyper::Error>>>>;

/// One slot's HTTP connection: hyper's sender; its connection task runs
/// beside it.
pub(crate) struct HttpConnection {
    sender: Sender,
    pub(crate) target: Arc<Target>,
}

impl HttpConnection {
    /// The HTTP/1.1 or HTTP/2 handshake over `stream`, and hyper's
    /// connection task spawned on this runtime.
    async fn handshake(stream: BoxStream, target: Arc<Target>) -> Result<HttpConnection, String> {
        let io = TokioIo::new(stream);
        let sender = if target.http2 {
            let (sender, conn) = http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Sender::H2(sender)
        } else {
            let (sender, conn) = http1::handshake(io)
                .await
                .map_err(|e| format!("HTTP/1.1 handshake: {e}"))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Sender::H1(sender)
        };
        Ok(HttpConnection { sender, target })
    }

    /// Whether another request may be sent now (HTTP/1.1: the last
    /// response is read whole; HTTP/2: the connection is open).
    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Failure>> {
        let ready = match &mut self.sender {
            Sender::H1(s) => s.poll_ready(cx),
            Sender::H2(s) => s.poll_ready(cx),
        };
        ready.map_err(|e| hyper_failure("sending", &e))
    }

    async fn ready(&mut self) -> Result<(), String> {
        std::future::poll_fn(|cx| self.poll_ready(cx))
            .await
            .map_err(|e| e.detail)
    }

    /// Sends `req`: its response comes from the future.
    pub(crate) fn start(&mut self, req: Request<PatternBody>) -> ResponseFuture {
        match &mut self.sender {
            Sender::H1(s) => Box::pin(s.send_request(req)),
            Sender::H2(s) => Box::pin(s.send_request(req)),
        }
    }

    async fn send(
        &mut self,
        req: Request<PatternBody>,
    ) -> Result<Response<hyper::body::Incoming>, Failure> {
        self.start(req)
            .await
            .map_err(|e| hyper_failure("receiving", &e))
    }
}

/// What a hyper error while `what` (sending, receiving) means for the run.
pub(crate) fn hyper_failure(what: &str, e: &hyper::Error) -> Failure {
    use std::error::Error as _;
    let mut source = e.source();
    while let Some(inner) = source {
        if let Some(io) = inner.downcast_ref::<io::Error>() {
            return Failure::io(what, io);
        }
        source = inner.source();
    }
    let kind = if e.is_incomplete_message() || e.is_closed() || e.is_canceled() {
        FailureKind::ShortEcho
    } else {
        FailureKind::Reset
    };
    Failure::new(kind, format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str, kind: HttpRequestKind, http2: bool) -> Target {
        Target::new(&url.parse().unwrap(), kind, 100, http2).unwrap()
    }

    #[test]
    fn each_kind_adds_its_knob_to_the_path() {
        let t = target("http://127.0.0.1:8/", HttpRequestKind::Echo, false);
        assert_eq!(t.describe(), "POST /?echo_body");
        assert_eq!(t.host.as_ref().unwrap(), "127.0.0.1:8");
        let t = target(
            "http://127.0.0.1:8/a?status=503",
            HttpRequestKind::Size,
            false,
        );
        assert_eq!(t.describe(), "GET /a?status=503&size=100");
        let t = target("https://[::1]:8/r", HttpRequestKind::Reflect, true);
        assert_eq!(t.uri.to_string(), "https://[::1]:8/r");
        assert!(t.host.is_none());
    }

    #[tokio::test]
    async fn a_pattern_body_is_the_pattern_in_chunks() {
        use http_body_util::BodyExt;
        let p = Pattern::new(3);
        let len = WRITE_CHUNK as u64 * 2 + 5;
        let body = PatternBody::new(p, 10, len);
        assert_eq!(body.size_hint().exact(), Some(len));
        let bytes = body.collect().await.unwrap().to_bytes();
        let mut want = vec![0; len as usize];
        p.fill(10, &mut want);
        assert_eq!(bytes, want);
        assert!(PatternBody::empty().is_end_stream());
    }
}
