//! The client over `http://` and `https://`: one request, its response
//! body (an echo server's reflection of the request) written out as it
//! comes, and the status checked.
//!
//! HTTP/1.1 by default; with [`HttpRequest::http2`], HTTP/2 (prior
//! knowledge over `http://`, ALPN `h2` over `https://`). The transcript
//! goes to the log as for the other transports: `connecting to …`,
//! `sending GET /path HTTP/1.1`, `received 200 OK`, `closing` (the
//! headers each way at debug level). A status other than 2xx is an error
//! ([`HttpError::Status`]), after the body is written, so that what the
//! server said is still seen. Every wait (the connection, the response
//! head, each piece of the body) is bounded by the timeout, and the body
//! streams through a fixed buffer: memory stays bounded whatever its size.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tracing::{debug, info};

use super::options::{ClientOptions, ClientOptionsError};
use super::transcript::{NAME, connect_line};
use crate::addr::{Addr, Transport};
use crate::transport::{ConnectError, web};

/// What to send.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// The method (`-X`).
    pub method: Method,
    /// Headers to add (`-H`), in order; a `Host` here replaces the one
    /// made from the address.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The body (`--data`); empty for none.
    pub body: Bytes,
    /// Speak HTTP/2 instead of HTTP/1.1 (`--http2`).
    pub http2: bool,
}

impl Default for HttpRequest {
    fn default() -> HttpRequest {
        HttpRequest {
            method: Method::GET,
            headers: Vec::new(),
            body: Bytes::new(),
            http2: false,
        }
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The options cannot be used ([`ClientOptions::validate`]).
    #[error(transparent)]
    Options(#[from] ClientOptionsError),
    /// The server could not be reached.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The server answered with a status other than 2xx.
    #[error("the server answered {} {}", .0.as_u16(), .0.canonical_reason().unwrap_or(""))]
    Status(StatusCode),
    /// The HTTP exchange failed (a malformed response, a closed
    /// connection, …).
    #[error("{context}: {error}")]
    Http {
        /// What was being done.
        context: &'static str,
        /// hyper's reason.
        error: hyper::Error,
    },
    /// Nothing came for the timeout while the response was owed.
    #[error("timed out after {0:?} waiting for the response")]
    Timeout(Duration),
    /// Writing the body out failed.
    #[error("writing output: {0}")]
    Output(io::Error),
    /// The request could not be made from what was given.
    #[error("invalid request: {0}")]
    Request(String),
}

/// Parses a `-H` header, `Name: value` (as curl takes it).
pub fn parse_header(s: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| format!("'{s}' is not a header: expected 'Name: value'"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("'{}' is not a valid header name", name.trim()))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| format!("the value of {name} has a character a header cannot carry"))?;
    Ok((name, value))
}

/// Parses a `-X` method (`GET`, `POST`, any token).
pub fn parse_method(s: &str) -> Result<Method, String> {
    Method::from_bytes(s.as_bytes()).map_err(|_| format!("'{s}' is not a valid HTTP method"))
}

/// The request to send to `addr`: its path, a `Host` from its host and
/// port (unless `req` names one), a `User-Agent`, `req`'s headers and body.
fn build(addr: &Addr, req: &HttpRequest) -> Result<Request<Full<Bytes>>, HttpError> {
    let (Some((host, port)), Some(path)) = (addr.host_port(), addr.web_path()) else {
        return Err(ConnectError::Unsupported(addr.transport()).into());
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
    // HTTP/2 carries the authority in the URI (`:authority`); HTTP/1.1
    // in `Host`, with the path alone on the request line.
    let uri = if req.http2 {
        format!("{scheme}://{authority}{path}")
    } else {
        path.to_string()
    };
    let mut builder = Request::builder()
        .method(req.method.clone())
        .uri(uri)
        .version(if req.http2 {
            Version::HTTP_2
        } else {
            Version::HTTP_11
        });
    let has_host = req.headers.iter().any(|(n, _)| n == header::HOST);
    if !req.http2 && !has_host {
        builder = builder.header(header::HOST, authority);
    }
    builder = builder.header(
        header::USER_AGENT,
        concat!("echo-client/", env!("CARGO_PKG_VERSION")),
    );
    for (name, value) in &req.headers {
        builder = builder.header(name, value);
    }
    builder
        .body(Full::new(req.body.clone()))
        .map_err(|e| HttpError::Request(e.to_string()))
}

async fn within<F: Future>(timeout: Duration, fut: F) -> Result<F::Output, HttpError> {
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| HttpError::Timeout(timeout))
}

/// Sends `req` to `opts.addr` (`http://` or `https://`), writes the
/// response body to `output` as it arrives, and returns the status: an
/// error when it is not 2xx. The options are checked first
/// ([`ClientOptions::validate`]).
pub async fn request<W>(
    opts: &ClientOptions,
    req: &HttpRequest,
    mut output: W,
) -> Result<StatusCode, HttpError>
where
    W: AsyncWrite + Unpin,
{
    opts.validate()?;
    let addr = &opts.addr;
    let request = build(addr, req)?;
    info!(name = NAME, "{}", connect_line(addr));
    let alpn: &[&[u8]] = if req.http2 { &[b"h2"] } else { &[b"http/1.1"] };
    let tls = match addr.transport() {
        Transport::Https => Some(web::tls_config(opts.tls.as_ref(), alpn)?),
        _ => None,
    };
    let proxy = opts.proxy.as_ref();
    let stream = TokioIo::new(web::connect_stream(addr, opts.timeout, tls.as_ref(), proxy).await?);
    let hyper_err = |context| move |error| HttpError::Http { context, error };
    let (mut sender, conn): (_, std::pin::Pin<Box<dyn Future<Output = _> + Send>>) = if req.http2 {
        let (s, c) = within(
            opts.timeout,
            hyper::client::conn::http2::handshake(TokioExecutor::new(), stream),
        )
        .await?
        .map_err(hyper_err("HTTP/2 handshake"))?;
        (Sender::H2(s), Box::pin(c))
    } else {
        let (s, c) = hyper::client::conn::http1::handshake(stream)
            .await
            .map_err(hyper_err("HTTP/1.1 handshake"))?;
        (Sender::H1(s), Box::pin(c))
    };
    // The connection runs in its own task; it ends when the response is
    // read and the sender dropped.
    let driver = tokio::spawn(conn);
    log_request(&request);
    let response = within(opts.timeout, sender.send(request))
        .await?
        .map_err(hyper_err("sending the request"))?;
    let status = response.status();
    info!(
        name = NAME,
        "received {} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    for (name, value) in response.headers() {
        debug!(
            name = NAME,
            "< {name}: {}",
            String::from_utf8_lossy(value.as_bytes())
        );
    }
    let mut body = response.into_body();
    while let Some(frame) = within(opts.timeout, body.frame()).await? {
        let frame = frame.map_err(hyper_err("reading the response"))?;
        if let Some(data) = frame.data_ref() {
            output.write_all(data).await.map_err(HttpError::Output)?;
        }
    }
    output.flush().await.map_err(HttpError::Output)?;
    drop(sender);
    driver.abort();
    info!(name = NAME, "closing");
    if !status.is_success() {
        return Err(HttpError::Status(status));
    }
    Ok(status)
}

fn log_request(request: &Request<Full<Bytes>>) {
    info!(
        name = NAME,
        "sending {} {} {:?}",
        request.method(),
        request.uri(),
        request.version()
    );
    for (name, value) in request.headers() {
        debug!(
            name = NAME,
            "> {name}: {}",
            String::from_utf8_lossy(value.as_bytes())
        );
    }
}

/// The sending half of an HTTP/1.1 or HTTP/2 connection.
enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> hyper::Result<hyper::Response<hyper::body::Incoming>> {
        match self {
            Sender::H1(s) => s.send_request(request).await,
            Sender::H2(s) => s.send_request(request).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_as_curl_takes_them() {
        let (n, v) = parse_header("X-Trace:  abc 1 ").unwrap();
        assert_eq!((n.as_str(), v.to_str().unwrap()), ("x-trace", "abc 1"));
        let (n, v) = parse_header("Empty:").unwrap();
        assert_eq!((n.as_str(), v.as_bytes()), ("empty", &b""[..]));
        for bad in ["no colon", "bad name: x", ": x", "X: a\nb"] {
            assert!(parse_header(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_method("PATCH").unwrap(), Method::PATCH);
        assert!(parse_method("GE T").is_err());
    }

    #[test]
    fn requests_carry_the_path_host_and_headers() {
        let addr: Addr = "http://[::1]:8080/a?b=1".parse().unwrap();
        let req = HttpRequest {
            method: Method::POST,
            headers: vec![parse_header("X-One: 1").unwrap()],
            body: Bytes::from_static(b"hi"),
            http2: false,
        };
        let r = build(&addr, &req).unwrap();
        assert_eq!(r.uri(), "/a?b=1");
        assert_eq!(r.headers()["host"], "[::1]:8080");
        assert_eq!(r.headers()["x-one"], "1");
        let own_host = HttpRequest {
            headers: vec![parse_header("Host: example.com").unwrap()],
            ..HttpRequest::default()
        };
        let r = build(&"http://h:1".parse().unwrap(), &own_host).unwrap();
        assert_eq!(r.uri(), "/");
        assert_eq!(r.headers().get_all("host").iter().count(), 1);
        assert_eq!(r.headers()["host"], "example.com");
        let h2 = HttpRequest {
            http2: true,
            ..HttpRequest::default()
        };
        let r = build(&"https://h:1/x".parse().unwrap(), &h2).unwrap();
        assert_eq!(r.uri(), "https://h:1/x");
    }
}
