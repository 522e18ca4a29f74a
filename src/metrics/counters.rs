//! The counters themselves, sharded per thread, and their rendering as
//! Prometheus text.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use super::dropped::Dropped;
use super::process;
use super::udp_result::UdpResult;
use crate::addr::Transport;

/// What the `transport` label of a series says: a transport of
/// [`crate::addr`], or `grpc`, which has no scheme of its own (gRPC is
/// served on `http://` and `https://` listeners) and counts calls, not
/// connections. `https://` counts as `http` and `wss://` as `ws`: TLS is a
/// detail of the listener, as its `tls_handshake` errors show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// `tcp`.
    Tcp,
    /// `tls`.
    Tls,
    /// `udp`.
    Udp,
    /// `unix`.
    Unix,
    /// `http` (and `https`): connections and their bytes on the wire.
    Http,
    /// `ws` (and `wss`): WebSocket sessions and their message bytes.
    Ws,
    /// `grpc`: gRPC calls (on `http` connections) and their message bytes.
    Grpc,
}

impl Label {
    /// Every label, in the order the exposition lists them.
    const ALL: [Label; 7] = [
        Label::Tcp,
        Label::Tls,
        Label::Udp,
        Label::Unix,
        Label::Http,
        Label::Ws,
        Label::Grpc,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        ["tcp", "tls", "udp", "unix", "http", "ws", "grpc"][self as usize]
    }
}

impl From<Transport> for Label {
    fn from(t: Transport) -> Label {
        match t {
            Transport::Tcp => Label::Tcp,
            Transport::Tls => Label::Tls,
            Transport::Udp => Label::Udp,
            Transport::Unix => Label::Unix,
            Transport::Http | Transport::Https => Label::Http,
            Transport::Ws | Transport::Wss => Label::Ws,
        }
    }
}

/// How many label values there are.
const N: usize = Label::ALL.len();

/// The label slot of a transport or label.
fn index(t: impl Into<Label>) -> usize {
    t.into() as usize
}

/// Whether the bytes of a slot are echoed as they come (sent is received
/// less what is still owed) or counted each way on their own (HTTP, whose
/// answers are not its requests, and WebSocket and gRPC, counted by
/// message).
fn counted_each_way(i: usize) -> bool {
    i >= Label::Http as usize
}

/// What went wrong, as the `kind` label of `echoes_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `accept` failed with something other than a vanished peer.
    Accept,
    /// A TLS handshake failed or timed out.
    TlsHandshake,
    /// Reading or writing a connection or datagram failed.
    Io,
    /// A connection was refused by `--max-connections-per-ip`.
    Limit,
    /// HTTP: a malformed request (answered 400).
    BadRequest,
    /// HTTP: a request head over the size limit (answered 431).
    HeadersTooLarge,
    /// HTTP: a request body over `--http-max-body` (answered 413).
    BodyTooLarge,
    /// HTTP: a request head that did not arrive in time (answered 408).
    RequestTimeout,
    /// HTTP: a knob out of range or malformed (answered 400).
    BadKnob,
    /// WebSocket: the peer broke the protocol (closed with 1002 or 1007).
    Protocol,
    /// WebSocket: a message or frame over the size limits (closed with 1009).
    MessageTooLarge,
    /// A connection without a valid PROXY protocol header where one is
    /// required (or with a malformed one).
    Proxy,
}

impl ErrorKind {
    const ALL: [ErrorKind; 12] = [
        ErrorKind::Accept,
        ErrorKind::TlsHandshake,
        ErrorKind::Io,
        ErrorKind::Limit,
        ErrorKind::BadRequest,
        ErrorKind::HeadersTooLarge,
        ErrorKind::BodyTooLarge,
        ErrorKind::RequestTimeout,
        ErrorKind::BadKnob,
        ErrorKind::Protocol,
        ErrorKind::MessageTooLarge,
        ErrorKind::Proxy,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Accept => "accept",
            ErrorKind::TlsHandshake => "tls_handshake",
            ErrorKind::Io => "io",
            ErrorKind::Limit => "limit",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::HeadersTooLarge => "headers_too_large",
            ErrorKind::BodyTooLarge => "body_too_large",
            ErrorKind::RequestTimeout => "request_timeout",
            ErrorKind::BadKnob => "bad_knob",
            ErrorKind::Protocol => "protocol",
            ErrorKind::MessageTooLarge => "message_too_large",
            ErrorKind::Proxy => "proxy",
        }
    }

    /// Whether this kind can happen on `t`; the others are not exposed,
    /// so the page has no series that can only ever be zero.
    fn applies_to(self, t: Label) -> bool {
        use Label::*;
        let http = t == Http;
        let ws = t == Ws;
        let grpc = t == Grpc;
        match self {
            ErrorKind::Accept | ErrorKind::Proxy => !matches!(t, Udp | Ws | Grpc),
            ErrorKind::TlsHandshake => t == Tls || http,
            ErrorKind::Io => !grpc,
            ErrorKind::Limit => matches!(t, Tcp | Tls) || http,
            ErrorKind::BadRequest => http,
            ErrorKind::HeadersTooLarge
            | ErrorKind::BodyTooLarge
            | ErrorKind::RequestTimeout
            | ErrorKind::BadKnob => http,
            ErrorKind::Protocol | ErrorKind::MessageTooLarge => ws || grpc,
        }
    }
}

/// The hot counters one thread writes. Aligned to two cache lines so that
/// neighbouring shards never share one (adjacent-line prefetch included).
#[derive(Default)]
#[repr(align(128))]
struct Shard {
    received: [AtomicU64; N],
    /// Wraps below zero when a chunk queued on one thread is finished on
    /// another; only the sum over shards means anything.
    unsent: [AtomicU64; N],
    /// Bytes sent, for the slots counted each way ([`counted_each_way`]).
    sent: [AtomicU64; N],
    udp: [AtomicU64; UdpResult::ALL.len()],
}

/// Per-transport connection counters: one event per connection, not hot.
#[derive(Default)]
struct Conns {
    open: AtomicU64,
    total: AtomicU64,
    errors: [AtomicU64; ErrorKind::ALL.len()],
    /// Connections that carried a PROXY header, by version (v1, v2).
    proxy_headers: [AtomicU64; 2],
}

/// Gives each thread its shard number, round robin as threads first count.
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SHARD: usize = NEXT_SHARD.fetch_add(1, Relaxed);
}

/// The counters of one server. Share it in an `Arc`.
pub struct Metrics {
    shards: Box<[Shard]>,
    mask: usize,
    conns: [Conns; N],
    /// The highest `sent` total reported per transport, so that a scrape
    /// racing a chunk that crosses threads never shows a counter going back.
    sent_reported: Mutex<[u64; N]>,
    /// Connections to the metrics endpoint closed unanswered, by reason.
    metrics_dropped: [AtomicU64; Dropped::ALL.len()],
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

/// A consistent-enough reading of one transport's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportSnapshot {
    /// Connections open now.
    pub open: u64,
    /// Connections accepted since start.
    pub total: u64,
    /// Bytes received from peers.
    pub received: u64,
    /// Bytes written back to peers.
    pub sent: u64,
}

impl Metrics {
    /// Counters at zero, with four shards per available core, 16 to 64:
    /// threads are numbered as they first count, and blocking-pool or
    /// embedding threads count too, so spare shards keep workers apart.
    pub fn new() -> Metrics {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let n = (cores * 4).next_power_of_two().clamp(16, 64);
        Metrics {
            shards: (0..n).map(|_| Shard::default()).collect(),
            mask: n - 1,
            conns: Default::default(),
            sent_reported: Mutex::new([0; N]),
            metrics_dropped: Default::default(),
        }
    }

    fn shard(&self) -> &Shard {
        // `try_with` only fails while the thread is being torn down.
        let i = SHARD.try_with(|s| *s).unwrap_or(0);
        &self.shards[i & self.mask]
    }

    /// The byte counter the echo loops of `transport` write to.
    pub fn bytes(self: &Arc<Self>, transport: impl Into<Label>) -> ByteCounter {
        ByteCounter {
            metrics: self.clone(),
            t: index(transport),
        }
    }

    /// `n` bytes were received on a connection of `transport` whose bytes
    /// are counted each way (HTTP, WebSocket).
    pub fn received(&self, transport: impl Into<Label>, n: usize) {
        self.shard().received[index(transport)].fetch_add(n as u64, Relaxed);
    }

    /// `n` bytes were sent on a connection of `transport` whose bytes are
    /// counted each way (HTTP, WebSocket).
    pub fn sent(&self, transport: impl Into<Label>, n: usize) {
        self.shard().sent[index(transport)].fetch_add(n as u64, Relaxed);
    }

    /// A connection was accepted.
    pub fn opened(&self, transport: impl Into<Label>) {
        let c = &self.conns[index(transport)];
        c.open.fetch_add(1, Relaxed);
        c.total.fetch_add(1, Relaxed);
    }

    /// A connection ended.
    pub fn closed(&self, transport: impl Into<Label>) {
        self.conns[index(transport)].open.fetch_sub(1, Relaxed);
    }

    /// Counts one error.
    pub fn error(&self, transport: impl Into<Label>, kind: ErrorKind) {
        self.conns[index(transport)].errors[kind as usize].fetch_add(1, Relaxed);
    }

    /// Counts a connection that carried a PROXY protocol header.
    pub fn proxy_header(&self, transport: impl Into<Label>, version: crate::proxy::Version) {
        self.conns[index(transport)].proxy_headers[version as usize].fetch_add(1, Relaxed);
    }

    /// Connections of `transport` that carried a PROXY header of `version`.
    pub fn proxy_headers(
        &self,
        transport: impl Into<Label>,
        version: crate::proxy::Version,
    ) -> u64 {
        self.conns[index(transport)].proxy_headers[version as usize].load(Relaxed)
    }

    /// Counts one UDP datagram's fate.
    pub fn udp(&self, result: UdpResult) {
        self.udp_add(result, 1);
    }

    /// Counts `n` UDP datagrams with the same fate (a batch's).
    pub fn udp_add(&self, result: UdpResult, n: u64) {
        self.shard().udp[result.index()].fetch_add(n, Relaxed);
    }

    /// Counts one connection to the metrics endpoint closed unanswered.
    pub fn metrics_dropped(&self, why: Dropped) {
        self.metrics_dropped[why as usize].fetch_add(1, Relaxed);
    }

    /// Connections to the metrics endpoint closed unanswered for `why`.
    pub fn metrics_dropped_total(&self, why: Dropped) -> u64 {
        self.metrics_dropped[why as usize].load(Relaxed)
    }

    /// Connections of `transport` open now.
    pub fn open(&self, transport: impl Into<Label>) -> u64 {
        self.conns[index(transport)].open.load(Relaxed)
    }

    /// Connections of `transport` accepted so far.
    pub fn total(&self, transport: impl Into<Label>) -> u64 {
        self.conns[index(transport)].total.load(Relaxed)
    }

    /// Errors of `kind` on `transport` so far.
    pub fn errors(&self, transport: impl Into<Label>, kind: ErrorKind) -> u64 {
        self.conns[index(transport)].errors[kind as usize].load(Relaxed)
    }

    /// UDP datagrams with `result` so far.
    pub fn udp_datagrams(&self, result: UdpResult) -> u64 {
        self.shards
            .iter()
            .map(|s| s.udp[result.index()].load(Relaxed))
            .sum()
    }

    /// The counters of `transport` now.
    pub fn snapshot(&self, transport: impl Into<Label>) -> TransportSnapshot {
        self.snapshot_at(index(transport))
    }

    fn snapshot_at(&self, t: usize) -> TransportSnapshot {
        let (mut received, mut unsent, mut sent) = (0u64, 0u64, 0u64);
        for s in &*self.shards {
            received = received.wrapping_add(s.received[t].load(Relaxed));
            unsent = unsent.wrapping_add(s.unsent[t].load(Relaxed));
            sent = sent.wrapping_add(s.sent[t].load(Relaxed));
        }
        let c = &self.conns[t];
        if counted_each_way(t) {
            return TransportSnapshot {
                open: c.open.load(Relaxed),
                total: c.total.load(Relaxed),
                received,
                sent,
            };
        }
        // Read shard by shard, the sum of `unsent` can be caught below zero
        // (a decrement seen, its increment not); clamp to what is possible.
        let unsent = i64::try_from(unsent).unwrap_or(0).max(0) as u64;
        let computed = received.saturating_sub(unsent);
        let sent = {
            let mut reported = self
                .sent_reported
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            reported[t] = reported[t].max(computed).min(received);
            reported[t]
        };
        TransportSnapshot {
            open: c.open.load(Relaxed),
            total: c.total.load(Relaxed),
            received,
            sent,
        }
    }

    /// The Prometheus text exposition (format 0.0.4) of every counter.
    ///
    /// Over 80 lines because it is the page itself, family after family
    /// in the order a reader meets them; each family is a few flat lines.
    pub fn render(&self) -> String {
        let snaps: Vec<(&str, TransportSnapshot)> = Label::ALL
            .iter()
            .map(|l| (l.as_str(), self.snapshot_at(*l as usize)))
            .collect();
        let mut out = String::with_capacity(4096);
        let mut family =
            |name: &str, kind: &str, help: &str, value: &dyn Fn(&TransportSnapshot) -> u64| {
                let _ = writeln!(out, "# HELP {name} {help}");
                let _ = writeln!(out, "# TYPE {name} {kind}");
                for (t, s) in &snaps {
                    let _ = writeln!(out, "{name}{{transport=\"{t}\"}} {}", value(s));
                }
            };
        family(
            "echoes_connections_open",
            "gauge",
            "Connections being served now.",
            &|s| s.open,
        );
        family(
            "echoes_connections_total",
            "counter",
            "Connections accepted since the server started.",
            &|s| s.total,
        );
        family(
            "echoes_bytes_received_total",
            "counter",
            "Bytes received from peers.",
            &|s| s.received,
        );
        family(
            "echoes_bytes_sent_total",
            "counter",
            "Bytes echoed back to peers.",
            &|s| s.sent,
        );
        let _ = writeln!(
            out,
            "# HELP echoes_errors_total Errors by kind: accept, tls_handshake, io, limit (refused by --max-connections-per-ip); over HTTP bad_request, headers_too_large, body_too_large, request_timeout, bad_knob; over WebSocket protocol, message_too_large; over gRPC protocol (malformed framing), message_too_large; proxy (no valid PROXY protocol header)."
        );
        let _ = writeln!(out, "# TYPE echoes_errors_total counter");
        for t in Label::ALL {
            let label = t.as_str();
            for kind in ErrorKind::ALL.into_iter().filter(|k| k.applies_to(t)) {
                let _ = writeln!(
                    out,
                    "echoes_errors_total{{transport=\"{label}\",kind=\"{}\"}} {}",
                    kind.as_str(),
                    self.errors(t, kind)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP echoes_proxy_headers_total Connections that carried a PROXY protocol header, by version."
        );
        let _ = writeln!(out, "# TYPE echoes_proxy_headers_total counter");
        for t in Label::ALL {
            let label = t.as_str();
            if !ErrorKind::Proxy.applies_to(t) {
                continue;
            }
            for v in [crate::proxy::Version::V1, crate::proxy::Version::V2] {
                let _ = writeln!(
                    out,
                    "echoes_proxy_headers_total{{transport=\"{label}\",version=\"{v}\"}} {}",
                    self.proxy_headers(t, v)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP echoes_udp_datagrams_total UDP datagrams received, by what became of them."
        );
        let _ = writeln!(out, "# TYPE echoes_udp_datagrams_total counter");
        for result in UdpResult::ALL {
            let _ = writeln!(
                out,
                "echoes_udp_datagrams_total{{transport=\"udp\",result=\"{}\"}} {}",
                result.as_str(),
                self.udp_datagrams(result)
            );
        }
        self.render_own(&mut out);
        process::render(&mut out);
        out
    }

    /// The endpoint's own counters, and the build.
    fn render_own(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP echoes_metrics_connections_dropped_total Connections to this endpoint closed unanswered: evicted (idle while others waited), timeout (no request in time)."
        );
        let _ = writeln!(
            out,
            "# TYPE echoes_metrics_connections_dropped_total counter"
        );
        for why in Dropped::ALL {
            let _ = writeln!(
                out,
                "echoes_metrics_connections_dropped_total{{reason=\"{}\"}} {}",
                why.as_str(),
                self.metrics_dropped_total(why)
            );
        }
        let _ = writeln!(
            out,
            "# HELP echoes_build_info The version of echoes that serves this page; always 1."
        );
        let _ = writeln!(out, "# TYPE echoes_build_info gauge");
        let _ = writeln!(
            out,
            "echoes_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
    }
}

/// Where an echo loop counts its bytes: a shard of one transport's
/// counters. Each connection holds one (two words); counting takes no lock.
pub struct ByteCounter {
    metrics: Arc<Metrics>,
    t: usize,
}

impl ByteCounter {
    /// `n` bytes were received and all written straight back: the common
    /// case, one atomic add.
    #[inline]
    pub fn echoed(&self, n: usize) {
        self.metrics.shard().received[self.t].fetch_add(n as u64, Relaxed);
    }

    /// `n` bytes were received, of which `unsent` are not written (yet).
    pub fn received_unsent(&self, n: usize, unsent: usize) {
        let shard = self.metrics.shard();
        shard.received[self.t].fetch_add(n as u64, Relaxed);
        if unsent > 0 {
            shard.unsent[self.t].fetch_add(unsent as u64, Relaxed);
        }
    }

    /// `n` bytes counted as unsent have now been written.
    pub fn sent_later(&self, n: usize) {
        self.metrics.shard().unsent[self.t].fetch_sub(n as u64, Relaxed);
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
