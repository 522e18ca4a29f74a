//! What a run is asked to do: the [`BenchConfig`], its [`Mode`], and
//! the [`BenchConfigError`] that says which value, or which combination,
//! cannot run.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::clock::{StartAtError, check_start_at};
use super::source::Source;
use crate::addr::{Addr, Transport};
use crate::proxy::send::ProxySend;

/// What each connection does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Send a message, wait for all of it to come back, check it, repeat.
    #[default]
    Pingpong,
    /// Write and read at once, as fast as the server goes; no latency.
    Stream,
    /// Each operation connects, sends one message, reads it back, closes.
    Churn,
}

impl Mode {
    /// `pingpong`, `stream` or `churn`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Pingpong => "pingpong",
            Mode::Stream => "stream",
            Mode::Churn => "churn",
        }
    }
}

/// What each message is over `http://` and `https://`: one request, and
/// the check its response must pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum HttpRequestKind {
    /// `POST PATH?echo_body` with a body of `size` bytes of the bench's
    /// pattern: the response body must be the same bytes.
    #[default]
    Echo,
    /// `GET PATH?size=N` (N: `size`): the response body must be the
    /// server's `size=` pattern, exactly N bytes.
    Size,
    /// `GET PATH`: the response must be JSON (the server's reflection of
    /// the request); its bytes are counted as they come.
    Reflect,
    /// A gRPC call (`echo-bench --grpc`, always over HTTP/2): unary
    /// `grpc.testing.TestService/UnaryCall` with `size` bytes of the
    /// pattern, asking for `size` bytes of payload; the answer must be
    /// `size` zeros and `grpc-status: 0`.
    #[cfg_attr(feature = "cli", value(skip))]
    Grpc,
    /// gRPC ping-pong on one call (`echo-bench --grpc duplex`, HTTP/2):
    /// each connection opens `grpc.testing.TestService/FullDuplexCall`,
    /// and each message is one `StreamingOutputCallRequest` with `size`
    /// bytes of the pattern, asking for one answer of `size` bytes, which
    /// must be `size` zeros; `pipeline` messages in flight on the call.
    #[cfg_attr(feature = "cli", value(skip))]
    #[serde(rename = "grpc_duplex")]
    GrpcDuplex,
}

impl HttpRequestKind {
    /// `echo`, `size` or `reflect`.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpRequestKind::Echo => "echo",
            HttpRequestKind::Size => "size",
            HttpRequestKind::Reflect => "reflect",
            HttpRequestKind::Grpc => "grpc",
            HttpRequestKind::GrpcDuplex => "grpc_duplex",
        }
    }
}

/// The method each gRPC message calls ([`HttpRequestKind::Grpc`]).
pub(crate) const GRPC_UNARY_CALL: &str = "/grpc.testing.TestService/UnaryCall";

/// The method a gRPC duplex run calls ([`HttpRequestKind::GrpcDuplex`]).
pub(crate) const GRPC_DUPLEX_CALL: &str = "/grpc.testing.TestService/FullDuplexCall";

/// The most messages in flight per connection `--pipeline` accepts: the
/// ring of send times is allocated up front, so it must stay small.
pub const MAX_PIPELINE: usize = 65_536;

/// The most connections (`echo-bench -c`) one bench process opens: each
/// needs a descriptor and its buffers, so more is a typo, not a load.
pub const MAX_CONNECTIONS: usize = 1 << 20;

/// The largest message over `udp://`: one IPv4 datagram's payload.
pub const MAX_UDP_SIZE: usize = crate::transport::udp::MAX_DATAGRAM;

/// The default wait for each reply over `udp://`, after which the datagram
/// counts as lost. Much shorter than the stream default: a lost datagram
/// holds its slot up for this long.
pub const UDP_TIMEOUT: Duration = Duration::from_secs(1);

/// The default wait for a connection, and for an owed echo to move, over
/// stream transports.
pub const STREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything a run needs: build one with [`BenchConfig::new`] (the
/// defaults of the `echo-bench` command line), change what you care about
/// with its setters (each says its default), and give it to
/// [`run`](super::run()), which checks it first
/// ([`BenchConfig::validate`]).
///
/// ```
/// use std::time::Duration;
/// use echoes::bench::{BenchConfig, Mode};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut config = BenchConfig::new("127.0.0.1:7".parse()?);
/// config
///     .mode(Mode::Stream)
///     .connections(8)
///     .duration(Duration::from_secs(5));
/// config.validate()?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BenchConfig {
    pub(crate) addr: Addr,
    pub(crate) mode: Mode,
    pub(crate) connections: usize,
    pub(crate) size: usize,
    pub(crate) duration: Duration,
    pub(crate) warmup: Duration,
    pub(crate) rate: Option<f64>,
    pub(crate) pipeline: usize,
    pub(crate) timeout: Duration,
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    pub(crate) threads: usize,
    pub(crate) source: Source,
    pub(crate) progress: bool,
    pub(crate) proxy: Option<ProxySend>,
    pub(crate) http_request: HttpRequestKind,
    pub(crate) http2: bool,
    pub(crate) start_at: Option<SystemTime>,
}

impl BenchConfig {
    /// A configuration for the server at `addr`, every other setting at
    /// its default (those of the `echo-bench` command line).
    pub fn new(addr: Addr) -> BenchConfig {
        let timeout = match addr.transport() {
            Transport::Udp => UDP_TIMEOUT,
            _ => STREAM_TIMEOUT,
        };
        BenchConfig {
            addr,
            mode: Mode::Pingpong,
            connections: 1,
            size: 64,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(1),
            rate: None,
            pipeline: 1,
            timeout,
            tls: None,
            threads: 1,
            source: Source::Auto,
            progress: false,
            proxy: None,
            http_request: HttpRequestKind::Echo,
            http2: false,
            start_at: None,
        }
    }

    /// What each connection does.
    ///
    /// Default: [`Mode::Pingpong`].
    pub fn mode(&mut self, mode: Mode) -> &mut Self {
        self.mode = mode;
        self
    }

    /// Concurrent connections (churn: concurrent operations), 1 to
    /// [`MAX_CONNECTIONS`].
    ///
    /// Default: 1.
    pub fn connections(&mut self, connections: usize) -> &mut Self {
        self.connections = connections;
        self
    }

    /// Bytes per message (stream: per write), at least 1; over `udp://`
    /// at most [`MAX_UDP_SIZE`].
    ///
    /// Default: 64.
    pub fn size(&mut self, bytes: usize) -> &mut Self {
        self.size = bytes;
        self
    }

    /// How long to measure, after the warm-up; more than 0.
    ///
    /// Default: 10 s.
    pub fn duration(&mut self, duration: Duration) -> &mut Self {
        self.duration = duration;
        self
    }

    /// How long to run before measuring.
    ///
    /// Default: 1 s.
    pub fn warmup(&mut self, warmup: Duration) -> &mut Self {
        self.warmup = warmup;
        self
    }

    /// Open loop at this total rate, messages (or operations) per second:
    /// a positive number, not in stream mode; `None` for closed loop.
    ///
    /// Default: `None`.
    pub fn rate(&mut self, per_second: impl Into<Option<f64>>) -> &mut Self {
        self.rate = per_second.into();
        self
    }

    /// Messages in flight per connection, 1 to [`MAX_PIPELINE`]; more than
    /// 1 in pingpong mode only, and not over `udp://`.
    ///
    /// Default: 1.
    pub fn pipeline(&mut self, messages: usize) -> &mut Self {
        self.pipeline = messages;
        self
    }

    /// How long to wait for a connection, and for an owed echo to move;
    /// over UDP, for each datagram's reply before it counts as lost. More
    /// than 0.
    ///
    /// Default: [`STREAM_TIMEOUT`] (10 s), or [`UDP_TIMEOUT`] (1 s) over
    /// `udp://`.
    pub fn timeout(&mut self, timeout: Duration) -> &mut Self {
        self.timeout = timeout;
        self
    }

    /// The TLS client configuration for `tls://` and `wss://` (from
    /// [`tls::client_config`](crate::transport::tls::client_config)).
    ///
    /// Default: `None`, which trusts the system's CAs.
    pub fn tls(&mut self, tls: impl Into<Option<Arc<rustls::ClientConfig>>>) -> &mut Self {
        self.tls = tls.into();
        self
    }

    /// Worker threads, each with its own single-threaded runtime: 1 to
    /// [`MAX_THREADS`](crate::runtime::MAX_THREADS).
    ///
    /// Default: 1.
    pub fn threads(&mut self, threads: usize) -> &mut Self {
        self.threads = threads;
        self
    }

    /// The local addresses to connect from (see [`Source`](super::Source)).
    ///
    /// Default: [`Source::Auto`].
    pub fn source(&mut self, source: Source) -> &mut Self {
        self.source = source;
        self
    }

    /// Show a progress bar on standard error (only if it is a terminal).
    ///
    /// Default: `false`.
    pub fn progress(&mut self, on: bool) -> &mut Self {
        self.progress = on;
        self
    }

    /// A PROXY protocol header to send on every connection, before the
    /// data; streams only, not `udp://`.
    ///
    /// Default: `None`, no header.
    pub fn proxy(&mut self, proxy: impl Into<Option<ProxySend>>) -> &mut Self {
        self.proxy = proxy.into();
        self
    }

    /// What each message is over `http://` and `https://` (ignored over
    /// the other transports).
    ///
    /// Default: [`HttpRequestKind::Echo`].
    pub fn http_request(&mut self, kind: HttpRequestKind) -> &mut Self {
        self.http_request = kind;
        self
    }

    /// Speak HTTP/2 over `http://` (prior knowledge) and `https://` (ALPN
    /// `h2`) instead of HTTP/1.1; a pipeline of N is then N concurrent
    /// streams on each connection. Ignored over the other transports;
    /// gRPC ([`HttpRequestKind::Grpc`]) speaks HTTP/2 whatever this says.
    ///
    /// Default: `false` (HTTP/1.1 with keep-alive).
    pub fn http2(&mut self, on: bool) -> &mut Self {
        self.http2 = on;
        self
    }

    /// Whether HTTP requests go over HTTP/2: `--http2`, or gRPC.
    pub(crate) fn speaks_h2(&self) -> bool {
        self.http2
            || matches!(
                self.http_request,
                HttpRequestKind::Grpc | HttpRequestKind::GrpcDuplex
            )
    }

    /// When to begin measuring, by the wall clock: the connections are
    /// opened first, the warm-up runs just before it, and the measured
    /// window begins at that instant (later, with a note in the report,
    /// if the bench was not ready in time), so that several load
    /// machines measure the same window. At most a second in the past
    /// and a day ahead ([`check_start_at`](super::check_start_at)).
    ///
    /// Default: `None`, measure once the warm-up is over.
    pub fn start_at(&mut self, at: impl Into<Option<SystemTime>>) -> &mut Self {
        self.start_at = at.into();
        self
    }

    /// The server.
    pub fn addr(&self) -> &Addr {
        &self.addr
    }

    /// Checks the values and their combinations: the error says what to
    /// change. [`run`](super::run()) calls it first; a program calls it
    /// itself to report a bad setting before it starts anything.
    pub fn validate(&self) -> Result<(), BenchConfigError> {
        use BenchConfigError as E;
        let transport = self.addr.transport();
        let udp = transport == Transport::Udp;
        let web = matches!(transport, Transport::Http | Transport::Https);
        let checks = [
            (self.connections == 0, E::NoConnections),
            (self.size == 0, E::EmptyMessage),
            (self.threads == 0, E::NoThreads),
            (
                self.threads > crate::runtime::MAX_THREADS,
                E::TooManyThreads {
                    max: crate::runtime::MAX_THREADS,
                },
            ),
            (
                self.connections > MAX_CONNECTIONS,
                E::TooManyConnections {
                    max: MAX_CONNECTIONS,
                },
            ),
            (
                self.pipeline == 0 || self.pipeline > MAX_PIPELINE,
                E::PipelineOutOfRange { max: MAX_PIPELINE },
            ),
            (self.duration.is_zero(), E::ZeroDuration),
            (self.timeout.is_zero(), E::ZeroTimeout),
            (
                self.rate
                    .is_some_and(|rate| !(rate.is_finite() && rate > 0.0)),
                E::RateNotPositive,
            ),
            (
                self.mode == Mode::Stream && self.rate.is_some(),
                E::RateInStreamMode,
            ),
            (
                self.mode != Mode::Pingpong && self.pipeline > 1,
                E::PipelineNeedsPingpong { mode: self.mode },
            ),
            (
                web && self.mode == Mode::Stream,
                E::HttpStreamMode { transport },
            ),
            (
                web && !self.speaks_h2() && self.pipeline > 1,
                E::HttpPipelineNeedsH2 { transport },
            ),
        ];
        if let Some((_, e)) = checks.into_iter().find(|(bad, _)| *bad) {
            return Err(e);
        }
        if let Some(at) = self.start_at {
            check_start_at(at, SystemTime::now()).map_err(E::StartAt)?;
        }
        let udp_checks = [
            (self.proxy.is_some(), E::ProxyOverUdp),
            (
                self.mode != Mode::Pingpong,
                E::UdpNeedsPingpong { mode: self.mode },
            ),
            (self.pipeline > 1, E::PipelineOverUdp),
            (
                self.size > MAX_UDP_SIZE,
                E::UdpSizeTooLarge {
                    size: self.size,
                    max: MAX_UDP_SIZE,
                },
            ),
        ];
        match udp_checks.into_iter().find(|(bad, _)| udp && *bad) {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }
}

/// Why a configuration cannot run: one variant per cause. The messages
/// speak of the values, not of any command line's flags: `echo-bench`
/// maps each variant to its own flags.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
// Not `#[non_exhaustive]`: a program that says each variant in its own
// words (the binaries) matches them all, and a new cause should make it
// say that one too.
pub enum BenchConfigError {
    /// No connections ([`BenchConfig::connections`] is 0).
    #[error("the number of connections must be at least 1 and at most {MAX_CONNECTIONS}")]
    NoConnections,
    /// Empty messages ([`BenchConfig::size`] is 0).
    #[error("the message size must be at least 1 byte")]
    EmptyMessage,
    /// No worker threads.
    #[error(
        "the number of threads must be at least 1 and at most {}",
        crate::runtime::MAX_THREADS
    )]
    NoThreads,
    /// More worker threads than can help.
    #[error("the number of threads must be at least 1 and at most {max}")]
    TooManyThreads {
        /// The most threads a run may have.
        max: usize,
    },
    /// More connections than any system can hold open.
    #[error("the number of connections must be at least 1 and at most {max}")]
    TooManyConnections {
        /// The most connections a run may have.
        max: usize,
    },
    /// More connections than this process may open files.
    #[error(
        "{connections} connections need as many open files, and this process may open \
         {limit} (ulimit -n): raise the limit or use fewer connections"
    )]
    TooFewFiles {
        /// The connections asked for.
        connections: usize,
        /// The process's limit on open files.
        limit: u64,
    },
    /// A pipeline of 0, or beyond [`MAX_PIPELINE`].
    #[error("the pipeline must be between 1 and {max} messages in flight")]
    PipelineOutOfRange {
        /// [`MAX_PIPELINE`].
        max: usize,
    },
    /// A zero duration.
    #[error("the duration must be more than 0")]
    ZeroDuration,
    /// A zero timeout.
    #[error("the timeout must be more than 0")]
    ZeroTimeout,
    /// A rate that is not a positive number.
    #[error("the rate must be a positive number of messages per second")]
    RateNotPositive,
    /// A rate in stream mode, which has no messages to pace.
    #[error("a rate does not apply to stream mode, which sends as fast as it can")]
    RateInStreamMode,
    /// A pipeline in a mode other than pingpong.
    #[error("a pipeline applies to pingpong mode only, not {}", mode.as_str())]
    PipelineNeedsPingpong {
        /// The mode asked for.
        mode: Mode,
    },
    /// Stream mode over an HTTP address, which answers requests, one
    /// response each: there is no byte stream to echo.
    #[error(
        "{transport}:// answers requests, one response each: stream mode has no byte \
         stream to echo there; use pingpong or churn mode (each message one request)"
    )]
    HttpStreamMode {
        /// `http` or `https`.
        transport: Transport,
    },
    /// More than one request in flight on an HTTP/1.1 connection.
    #[error(
        "{transport}:// carries one request at a time per HTTP/1.1 connection: more than \
         one in flight needs HTTP/2 (or more connections)"
    )]
    HttpPipelineNeedsH2 {
        /// `http` or `https`.
        transport: Transport,
    },
    /// A PROXY protocol header over UDP.
    #[error("the PROXY protocol needs a stream: it is not used over udp://")]
    ProxyOverUdp,
    /// Stream or churn mode over UDP, which has no connection.
    #[error(
        "{} mode needs a connection; udp:// has none: use pingpong mode \
         (each message one datagram) or a stream transport", mode.as_str()
    )]
    UdpNeedsPingpong {
        /// The mode asked for.
        mode: Mode,
    },
    /// A pipeline over UDP, where each reply is awaited before the next
    /// datagram.
    #[error(
        "a pipeline does not apply to udp://: each datagram's reply is awaited before the \
         next is sent (use more connections)"
    )]
    PipelineOverUdp,
    /// A start time long past or too far ahead.
    #[error(transparent)]
    StartAt(StartAtError),
    /// A message larger than one UDP datagram.
    #[error(
        "a message of {size} bytes does not fit in one UDP datagram: at most {max} bytes \
         over udp://"
    )]
    UdpSizeTooLarge {
        /// The message size asked for.
        size: usize,
        /// [`MAX_UDP_SIZE`].
        max: usize,
    },
}

#[cfg(test)]
mod tests;
