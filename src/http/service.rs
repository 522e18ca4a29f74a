//! What answers a request: a WebSocket upgrade, the test page, or the
//! knobs and then a reflection (or a pattern body, or the body echoed).
//!
//! Nothing here reads a file, runs a command, or reaches anything beyond
//! the server: every answer is made from the request and the server's own
//! settings.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::upgrade::OnUpgrade;
use hyper::{Method, Request, Response, StatusCode, Version};
use tokio::sync::{Notify, mpsc};
use tracing::debug;

use crate::addr::Transport;
use crate::metrics::ErrorKind;
use crate::transport::PeerName;

use super::body::{self, EchoBody, PatternBody, ReadError, ResBody, Tracked};
use super::facts::ConnFacts;
use super::io::IoState;
use super::knobs::Knobs;
use super::reflect::{self, Reflection};
use super::sse::SseBody;
use super::{H2_MAX_WEBSOCKETS, HttpServer, TEST_PAGE_PATH, health, host, page, websocket};

/// A WebSocket to run once its handshake response is out.
pub struct Session {
    /// Resolves to the stream.
    pub upgrade: OnUpgrade,
    /// Its place among the connection's WebSockets, given back with it:
    /// held for its `Drop`, never read.
    #[allow(dead_code)]
    pub carried: Carried,
}

/// One WebSocket in its connection's count ([`Ctx::websockets`]).
pub struct Carried(Arc<AtomicUsize>);

impl Carried {
    fn new(count: &Arc<AtomicUsize>) -> Carried {
        count.fetch_add(1, Ordering::Relaxed);
        Carried(count.clone())
    }
}

impl Drop for Carried {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the requests of one connection share.
pub struct Ctx {
    /// The server's settings and counters.
    pub server: Arc<HttpServer>,
    /// The connection's facts.
    pub facts: ConnFacts,
    /// The connection's name in the logs.
    pub peer: PeerName,
    /// The shard serving the connection.
    pub shard: usize,
    /// Where upgrades go, to be run by the connection.
    pub sessions: mpsc::UnboundedSender<Session>,
    /// Asks the connection to close after the current answers (`close`
    /// over HTTP/2, where `Connection: close` does not exist).
    pub close: Arc<Notify>,
    /// What the connection's stream has seen, and its requests under way.
    pub io: Arc<IoState>,
    /// WebSockets this connection carries now (more than one only over
    /// HTTP/2, at most [`H2_MAX_WEBSOCKETS`]).
    pub websockets: Arc<AtomicUsize>,
}

/// hyper's service for one connection.
#[derive(Clone)]
pub struct Handler(pub Arc<Ctx>);

impl hyper::service::Service<Request<Incoming>> for Handler {
    type Response = Response<Tracked>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Tracked>, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let ctx = self.0.clone();
        let busy = ctx.io.request();
        Box::pin(async move { Ok(handle(&ctx, req).await.map(|b| Tracked::new(b, busy))) })
    }
}

async fn handle(ctx: &Ctx, req: Request<Incoming>) -> Response<ResBody> {
    // Made only for the debug line: formatting it cost a few percent of
    // a small request's CPU when nobody logs it.
    let line = tracing::enabled!(tracing::Level::DEBUG).then(|| {
        format!(
            "{} {} {}",
            req.method(),
            req.uri(),
            reflect::version_name(req.version())
        )
    });
    let mut response = route(ctx, req).await;
    if let Some(line) = line {
        debug!(name = %ctx.peer, "{line}: {}", response.status());
    }
    let h = response.headers_mut();
    if let Some(name) = &ctx.server.name_header {
        h.insert("x-echo-server", name.clone());
    }
    h.insert("x-echo-shard", HeaderValue::from(ctx.shard));
    response
}

async fn route(ctx: &Ctx, mut req: Request<Incoming>) -> Response<ResBody> {
    let metrics = &ctx.server.metrics;
    if let Err(bad) = host::check(req.version(), req.headers()) {
        metrics.error(Transport::Http, ErrorKind::BadRequest);
        let mut r = plain(StatusCode::BAD_REQUEST, bad.reason());
        close_after(ctx, &mut r, req.version() == Version::HTTP_2);
        return r;
    }
    if websocket::is_upgrade(&req) {
        return upgrade(ctx, &mut req);
    }
    if req.method() == Method::CONNECT {
        // A 2xx would tell the client its tunnel is up (RFC 9110 §9.3.6):
        // nothing is connected here, so say so.
        metrics.error(Transport::Http, ErrorKind::BadRequest);
        let mut r = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "CONNECT opens a tunnel, and this echo server connects to nothing \
             (a WebSocket over HTTP/2 is CONNECT with :protocol websocket)",
        );
        r.headers_mut().insert(
            header::ALLOW,
            HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
        );
        close_after(ctx, &mut r, req.version() == Version::HTTP_2);
        return r;
    }
    #[cfg(feature = "grpc")]
    if crate::grpc::is_grpc(&req) {
        return ctx.server.grpc.call(req, ctx.shard).await;
    }
    let shutting_down = ctx.server.shutdown.is_shutdown();
    let health = health::answer(
        &ctx.server.serving,
        shutting_down,
        req.method(),
        req.uri().path(),
    );
    if let Some((status, text)) = health {
        let mut r = Response::new(body::full(format!("{text}\n")));
        *r.status_mut() = status;
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return r;
    }
    if matches!(*req.method(), Method::GET | Method::HEAD) && req.uri().path() == TEST_PAGE_PATH {
        return page::response(&ctx.server.config);
    }
    let server = &ctx.server;
    let limits = server.config.limits();
    let knobs = match Knobs::parse(
        req.uri().query(),
        req.headers(),
        limits,
        &server.default_knobs,
    ) {
        Ok(k) => k,
        Err(why) => {
            metrics.error(Transport::Http, ErrorKind::BadKnob);
            return plain(StatusCode::BAD_REQUEST, &format!("bad knob: {why}"));
        }
    };
    let h2 = req.version() == Version::HTTP_2;
    let mut response = if knobs.echo_body {
        wait(knobs.delay).await;
        echo_body(ctx, req)
    } else {
        let r = answer(ctx, req, &knobs).await;
        if r.status() != StatusCode::PAYLOAD_TOO_LARGE {
            wait(knobs.delay).await;
        }
        r
    };
    if let Some(status) = knobs.status {
        *response.status_mut() = status;
        if matches!(status.as_u16(), 204 | 205 | 304) {
            *response.body_mut() = body::empty();
            response.headers_mut().remove(header::CONTENT_TYPE);
        }
    }
    add_headers(&mut response, &knobs);
    if knobs.close {
        close_after(ctx, &mut response, h2);
    }
    response
}

/// The `header=` knobs' headers: the first of a name replaces what the
/// server set (`Content-Type`, say), a repeat adds another field line.
fn add_headers(response: &mut Response<ResBody>, knobs: &Knobs) {
    let h = response.headers_mut();
    for (i, (name, value)) in knobs.headers.iter().enumerate() {
        if knobs.headers[..i].iter().any(|(n, _)| n == name) {
            h.append(name.clone(), value.clone());
        } else {
            h.insert(name.clone(), value.clone());
        }
    }
}

/// The `delay` knob's wait. No delay is no wait: tokio's timer counts in
/// whole milliseconds, so even a zero sleep waits for the next tick, which
/// held every request about a millisecond (0.4x hyper's keep-alive rate).
async fn wait(delay: std::time::Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

/// Reads the body within the limit and answers with a pattern body or a
/// reflection.
async fn answer(ctx: &Ctx, req: Request<Incoming>, knobs: &Knobs) -> Response<ResBody> {
    let (parts, incoming) = req.into_parts();
    let config = &ctx.server.config;
    let seen = match body::read_limited(incoming, config.max_body).await {
        Ok(seen) => seen,
        Err(ReadError::TooLarge) => return too_large(ctx, parts.version),
        Err(ReadError::Failed(e)) => {
            return plain(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the body: {e}"),
            );
        }
    };
    if let Some(count) = knobs.sse {
        let events = SseBody::new(count, knobs.interval(), ctx.server.shutdown.clone());
        let mut r = Response::new(http_body_util::BodyExt::boxed(events));
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        return r;
    }
    if let Some(size) = knobs.size {
        let mut r = Response::new(http_body_util::BodyExt::boxed(PatternBody::new(size)));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return r;
    }
    let req = reflect::Request {
        method: &parts.method,
        uri: &parts.uri,
        version: parts.version,
        headers: &parts.headers,
    };
    let reflection = Reflection::new(&req, &seen, &ctx.facts, &config.name, ctx.shard);
    let (text, kind) = if reflect::wants_text(&parts.headers) {
        (reflection.to_text(), "text/plain; charset=utf-8")
    } else {
        (reflection.to_json(), "application/json")
    };
    let mut r = Response::new(body::full(text));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    r
}

/// The request body back as it came, with its content type.
fn echo_body(ctx: &Ctx, req: Request<Incoming>) -> Response<ResBody> {
    let limit = ctx.server.config.max_body;
    if hyper::body::Body::size_hint(req.body()).lower() > limit {
        return too_large(ctx, req.version());
    }
    let kind = req.headers().get(header::CONTENT_TYPE).cloned();
    let body = EchoBody::new(req.into_body(), limit, ctx.server.metrics.clone());
    let mut r = Response::new(http_body_util::BodyExt::boxed(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        kind.unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    r
}

/// 413, counted. Over HTTP/1 the unread rest of the body means the
/// connection closes; over HTTP/2 only the request's own stream ends
/// (hyper resets it, unread), and the connection's others go on.
fn too_large(ctx: &Ctx, version: Version) -> Response<ResBody> {
    ctx.server
        .metrics
        .error(Transport::Http, ErrorKind::BodyTooLarge);
    let mut r = plain(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!(
            "the body is over this server's --http-max-body of {}",
            crate::units::describe_size(ctx.server.config.max_body)
        ),
    );
    if version != Version::HTTP_2 {
        close_after(ctx, &mut r, false);
    }
    r
}

/// Closes the connection after `response`: `Connection: close` over
/// HTTP/1, a graceful shutdown (GOAWAY) over HTTP/2.
fn close_after(ctx: &Ctx, response: &mut Response<ResBody>, h2: bool) {
    if h2 {
        ctx.close.notify_one();
    } else {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
}

/// Answers a WebSocket upgrade, and hands the stream to come to the
/// connection.
fn upgrade(ctx: &Ctx, req: &mut Request<Incoming>) -> Response<ResBody> {
    let carried = ctx.websockets.load(Ordering::Relaxed);
    if req.version() == Version::HTTP_2 && carried >= H2_MAX_WEBSOCKETS {
        ctx.server.metrics.error(Transport::Http, ErrorKind::Limit);
        return plain(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("this connection already carries {carried} WebSockets, the most one may"),
        );
    }
    match websocket::accept(req) {
        Ok(accepted) => {
            if ctx
                .sessions
                .send(Session {
                    upgrade: accepted.upgrade,
                    carried: Carried::new(&ctx.websockets),
                })
                .is_err()
            {
                return plain(StatusCode::SERVICE_UNAVAILABLE, "the connection is closing");
            }
            debug!(name = %ctx.peer, "websocket on {}", req.uri());
            accepted.response.map(|()| body::empty())
        }
        Err(refused) => {
            ctx.server
                .metrics
                .error(Transport::Http, ErrorKind::BadRequest);
            let mut r = plain(refused.status, refused.reason);
            if refused.status == StatusCode::UPGRADE_REQUIRED {
                r.headers_mut().insert(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static("13"),
                );
            }
            r
        }
    }
}

/// A short text answer: `echoes: WHY`.
fn plain(status: StatusCode, why: &str) -> Response<ResBody> {
    let mut r = Response::new(body::full(format!("echoes: {why}\n")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::task::{Context, Waker};
    use std::time::Duration;

    use super::wait;

    /// A request without the `delay` knob is answered at once: tokio's
    /// timer would have held it until its next millisecond tick, which
    /// capped a keep-alive connection at about a request a millisecond.
    #[tokio::test]
    async fn no_delay_is_no_wait() {
        let mut cx = Context::from_waker(Waker::noop());
        assert!(
            std::pin::pin!(wait(Duration::ZERO))
                .poll(&mut cx)
                .is_ready()
        );
        let mut delayed = std::pin::pin!(wait(Duration::from_millis(50)));
        assert!(delayed.as_mut().poll(&mut cx).is_pending());
    }
}
