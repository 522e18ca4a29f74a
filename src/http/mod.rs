//! The `http://` and `https://` listeners: HTTP/1.1 and HTTP/2 on the same
//! socket (hyper, with hyper-util's automatic version detection: h2c with
//! prior knowledge, and ALPN `h2` or `http/1.1` over TLS), answering every
//! request with a reflection of itself, and every WebSocket upgrade with a
//! WebSocket echo.
//!
//! One file, one idea:
//!
//! | module | what it holds |
//! | --- | --- |
//! | `conn` | one connection from accept to close: hyper, graceful shutdown, 408, idle timeout, its WebSocket sessions |
//! | `io` | the connection's byte stream as hyper sees it: counted, timed, handed back for a last word |
//! | `service` | what answers a request: the test page, an upgrade, or the knobs and a reflection |
//! | `host` | the Host rules of RFC 9112 §3.2 |
//! | `knobs` | `status`, `delay`, `size`, `close`, `echo_body`, `header`, `sse`, `interval` from the query or `x-echo-*` headers, and the server's defaults |
//! | `body` | the request body read within a limit and hashed, and the response bodies |
//! | `pattern` | the checkable pattern of a `size=` body |
//! | `sse` | the server-sent events of an `sse=` answer, ended by their count, the client, or shutdown |
//! | `reflect` | the reflection, as JSON or text |
//! | `health` | the serving switch that gRPC health reports, read and flipped at [`HEALTH_PATH`] |
//! | `facts` | what the connection knows of its peer: addresses, TLS details |
//! | `websocket` | the RFC 6455 handshake (and RFC 8441 over HTTP/2) and the echo |
//! | `page` | the browser test page at [`TEST_PAGE_PATH`] |
//!
//! The server ([`crate::server`]) accepts, applies the connection limits,
//! shakes hands for TLS, and hands each connection to
//! [`HttpServer::serve_connection`].
//!
//! An HTTP echo server inside a test, asked for a status with a knob:
//!
//! ```
//! use echoes::http::HttpConfig;
//! use echoes::{Server, ServerConfig, Transport};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = ServerConfig::new("http://127.0.0.1:0".parse()?);
//! let mut http = HttpConfig::default();
//! http.name("doc-example");
//! config.http(http);
//! let server = Server::bind(config).await?;
//! let addr = server.socket_addrs(Transport::Http)[0];
//! let shutdown = server.shutdown_handle();
//! let running = tokio::spawn(server.run());
//!
//! let mut conn = tokio::net::TcpStream::connect(addr).await?;
//! conn.write_all(b"GET /orders?status=201 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
//!     .await?;
//! let mut answer = String::new();
//! conn.read_to_string(&mut answer).await?;
//! assert!(answer.starts_with("HTTP/1.1 201 Created"));
//! assert!(answer.contains("x-echo-server: doc-example"));
//! assert!(answer.contains(r#""path": "/orders""#));
//!
//! shutdown.shutdown();
//! running.await??;
//! # Ok(())
//! # }
//! ```

pub(crate) mod body;
pub(crate) mod conn;
pub(crate) mod facts;
pub(crate) mod health;
pub(crate) mod host;
pub(crate) mod io;
mod json;
pub(crate) mod knobs;
pub(crate) mod page;
pub(crate) mod pattern;
pub(crate) mod reflect;
pub(crate) mod service;
pub(crate) mod sse;
pub(crate) mod websocket;

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;

pub use facts::{CertFacts, ConnFacts, ProxyFacts, TlsFacts};
pub use health::HEALTH_PATH;
pub use knobs::{DEFAULT_SSE_INTERVAL, MAX_HEADER_KNOB_BYTES, MAX_HEADER_KNOBS, MAX_SSE_EVENTS};
pub use pattern::{byte_at, first_mismatch};
pub use sse::{SSE_PATTERN, sse_event};

use crate::metrics::Metrics;
use crate::shutdown::ShutdownHandle;

/// Where the browser test page is served (`GET` only; any other request
/// there is reflected like any path).
pub const TEST_PAGE_PATH: &str = "/.well-known/echoes";

/// The default `--http-max-delay`.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(30);
/// The default `--http-max-size`: 64 MiB.
pub const DEFAULT_MAX_SIZE: u64 = 64 << 20;
/// The default `--http-max-body`: 1 MiB, nginx's `client_max_body_size`.
pub const DEFAULT_MAX_BODY: u64 = 1 << 20;
/// The default largest request head (request line and headers): 64 KiB.
pub const DEFAULT_MAX_HEAD: usize = 64 << 10;
/// The default `--http-header-timeout`: a request head must arrive within
/// this long of its first byte; a keep-alive connection idle this long is
/// closed.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// The default `--http-max-streams`: the most streams one HTTP/2
/// connection may have open at once (RFC 9113 recommends no fewer than
/// 100).
pub const H2_MAX_STREAMS: u32 = 100;
/// What one HTTP/2 stream may have queued to send, unsent because the
/// peer does not read: with [`H2_MAX_STREAMS`], an HTTP/2 connection holds
/// at most 6.25 MiB of answers however large a window its peer grants
/// (hyper's default is about 400 KiB a stream, 78 MiB a connection).
pub const H2_SEND_BUFFER: usize = 64 << 10;
/// The most WebSockets one HTTP/2 connection may carry (RFC 8441): each
/// holds up to `--ws-max-message` of an unfinished message, so this
/// bounds what one connection, and one peer within
/// `--max-connections-per-ip`, can hold.
pub const H2_MAX_WEBSOCKETS: usize = 4;

/// The default `--ws-max-message`: 64 MiB.
pub const DEFAULT_WS_MAX_MESSAGE: usize = 64 << 20;
/// The default `--ws-max-frame`: 16 MiB.
pub const DEFAULT_WS_MAX_FRAME: usize = 16 << 20;

/// The settings of every `http://` and `https://` listener of a server,
/// given to [`ServerConfig::http`](crate::ServerConfig::http). Built as
/// [`ServerConfig`](crate::ServerConfig) is: [`HttpConfig::default`],
/// then setters, each of which says its default; the server checks them
/// with the rest ([`ServerConfig::validate`](crate::ServerConfig::validate)).
///
/// ```
/// use std::time::Duration;
/// use echoes::http::HttpConfig;
///
/// let mut http = HttpConfig::default();
/// http.name("edge-1").max_body(4 << 20).header_timeout(Some(Duration::from_secs(5)));
/// let mut config = echoes::ServerConfig::new("http://127.0.0.1:0".parse().unwrap());
/// config.http(http);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    pub(crate) name: String,
    pub(crate) max_delay: Duration,
    pub(crate) max_size: u64,
    pub(crate) max_body: u64,
    pub(crate) max_head: usize,
    pub(crate) header_timeout: Option<Duration>,
    pub(crate) ws_max_message: usize,
    pub(crate) ws_max_frame: usize,
    pub(crate) default_knobs: String,
    pub(crate) max_streams: u32,
    pub(crate) max_age: Option<Duration>,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            name: host_name(),
            max_delay: DEFAULT_MAX_DELAY,
            max_size: DEFAULT_MAX_SIZE,
            max_body: DEFAULT_MAX_BODY,
            max_head: DEFAULT_MAX_HEAD,
            header_timeout: Some(DEFAULT_HEADER_TIMEOUT),
            ws_max_message: DEFAULT_WS_MAX_MESSAGE,
            ws_max_frame: DEFAULT_WS_MAX_FRAME,
            default_knobs: String::new(),
            max_streams: H2_MAX_STREAMS,
            max_age: None,
        }
    }
}

impl HttpConfig {
    /// The server's name (`--name`), in every reflection and in the
    /// `x-echo-server` response header. Default: this machine's host name
    /// ([`host_name`]).
    pub fn name(&mut self, name: impl Into<String>) -> &mut Self {
        self.name = name.into();
        self
    }

    /// The longest `delay=` a request may ask for; [`Duration::MAX`] for
    /// no limit. Default: [`DEFAULT_MAX_DELAY`], 30 s.
    pub fn max_delay(&mut self, max: Duration) -> &mut Self {
        self.max_delay = max;
        self
    }

    /// The largest `size=` a request may ask for, in bytes; `u64::MAX`
    /// for no limit. Default: [`DEFAULT_MAX_SIZE`], 64 MiB.
    pub fn max_size(&mut self, max: u64) -> &mut Self {
        self.max_size = max;
        self
    }

    /// The largest request body, in bytes; a larger one gets 413.
    /// Default: [`DEFAULT_MAX_BODY`], 1 MiB.
    pub fn max_body(&mut self, max: u64) -> &mut Self {
        self.max_body = max;
        self
    }

    /// The largest request head (request line and headers), in bytes; a
    /// larger one gets 431. Taken as at least 8 KiB. Default:
    /// [`DEFAULT_MAX_HEAD`], 64 KiB.
    pub fn max_head(&mut self, max: usize) -> &mut Self {
        self.max_head = max;
        self
    }

    /// How long a request head may take to arrive (a slower one gets
    /// 408), and a keep-alive connection may wait for its next request;
    /// `None` for no limit. Default: [`DEFAULT_HEADER_TIMEOUT`], 30 s.
    pub fn header_timeout(&mut self, timeout: Option<Duration>) -> &mut Self {
        self.header_timeout = timeout;
        self
    }

    /// The largest WebSocket message, in bytes. Default:
    /// [`DEFAULT_WS_MAX_MESSAGE`], 64 MiB.
    pub fn ws_max_message(&mut self, max: usize) -> &mut Self {
        self.ws_max_message = max;
        self
    }

    /// The largest WebSocket frame, in bytes; at most the largest message
    /// (checked by [`ServerConfig::validate`](crate::ServerConfig::validate)).
    /// Default: [`DEFAULT_WS_MAX_FRAME`], 16 MiB.
    pub fn ws_max_frame(&mut self, max: usize) -> &mut Self {
        self.ws_max_frame = max;
        self
    }

    /// Knobs for every request that does not turn them itself, in the
    /// query syntax of a request (`status=503&delay=100ms`, a leading `?`
    /// allowed): a request's own knob wins, `header=` counts as one knob,
    /// and so do the body knobs `size`, `echo_body` and `sse`. They are
    /// held to the same limits as a request's, and checked by
    /// [`ServerConfig::validate`](crate::ServerConfig::validate). Default:
    /// none (`""`).
    pub fn default_knobs(&mut self, query: impl Into<String>) -> &mut Self {
        self.default_knobs = query.into();
        self
    }

    /// The most streams (requests, gRPC calls) one HTTP/2 connection may
    /// have open at once, as its SETTINGS say; at least 1. Default:
    /// [`H2_MAX_STREAMS`], 100.
    pub fn max_streams(&mut self, max: u32) -> &mut Self {
        self.max_streams = max.max(1);
        self
    }

    /// How long a connection may live: past it the server ends it
    /// gracefully (HTTP/2: GOAWAY, HTTP/1.1: `Connection: close` on the
    /// next answer), the requests and calls under way finish, and a
    /// client must connect again, so that a balancer in front spreads
    /// long-lived HTTP/2 and gRPC connections anew (gRPC's
    /// `MaxConnectionAge`); `None` for no limit. Default: `None`.
    pub fn max_age(&mut self, max: Option<Duration>) -> &mut Self {
        self.max_age = max;
        self
    }

    /// The limits a request's knobs are held to.
    pub(crate) fn limits(&self) -> knobs::Limits {
        knobs::Limits {
            max_delay: self.max_delay,
            max_size: self.max_size,
        }
    }

    /// The default knobs, read within the limits; the error says which
    /// knob is wrong and why.
    pub(crate) fn parsed_default_knobs(&self) -> Result<knobs::Knobs, String> {
        knobs::Knobs::parse_defaults(&self.default_knobs, self.limits())
    }
}

/// This machine's host name (`gethostname(2)`), or `localhost` when it
/// has none: the default `--name`.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..len]) {
        Ok(name) if rc == 0 && !name.is_empty() => name.to_string(),
        _ => "localhost".to_string(),
    }
}

/// What every HTTP connection of one server shares: the settings, the
/// counters, the shutdown signal, and hyper's connection builder.
pub struct HttpServer {
    config: HttpConfig,
    /// The config's default knobs, read once.
    default_knobs: knobs::Knobs,
    /// `x-echo-server`: the config's name as a header value, made once
    /// (`None`: the name cannot be one).
    name_header: Option<hyper::header::HeaderValue>,
    metrics: Arc<Metrics>,
    shutdown: ShutdownHandle,
    builder: auto::Builder<TokioExecutor>,
    /// The serving switch.
    serving: Arc<crate::serving::Serving>,
    /// The gRPC services.
    #[cfg(feature = "grpc")]
    grpc: crate::grpc::Grpc,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl HttpServer {
    /// The shared state of a server's HTTP listeners: `metrics` are the
    /// server's counters, and `shutdown` starts each connection's graceful
    /// shutdown (in-flight requests finish; idle keep-alive connections
    /// close; HTTP/2 sends GOAWAY).
    pub fn new(config: HttpConfig, metrics: Arc<Metrics>, shutdown: ShutdownHandle) -> HttpServer {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(config.header_timeout)
            .max_buf_size(config.max_head.max(8 * 1024))
            // A request followed at once by end of stream (`nc -N`,
            // socat) is still answered in full.
            .half_close(true)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .enable_connect_protocol()
            .max_concurrent_streams(config.max_streams)
            .max_send_buf_size(H2_SEND_BUFFER)
            .max_header_list_size(u32::try_from(config.max_head).unwrap_or(u32::MAX));
        // Checked by `ServerConfig::validate`; a configuration that skipped
        // it gets none (each request's own knobs are still checked).
        let default_knobs = config.parsed_default_knobs().unwrap_or_default();
        let serving = Arc::new(crate::serving::Serving::default());
        #[cfg(feature = "grpc")]
        let grpc = crate::grpc::Grpc::new(
            &config.name,
            crate::grpc::Limits {
                max_message: usize::try_from(config.max_body).unwrap_or(usize::MAX),
                max_response: usize::try_from(config.max_size).unwrap_or(usize::MAX),
                max_delay: config.max_delay,
            },
            serving.clone(),
            metrics.clone(),
            shutdown.clone(),
        );
        HttpServer {
            name_header: hyper::header::HeaderValue::from_str(&config.name).ok(),
            config,
            default_knobs,
            metrics,
            shutdown,
            builder,
            serving,
            #[cfg(feature = "grpc")]
            grpc,
        }
    }

    /// The settings.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }
}
