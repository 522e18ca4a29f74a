//! `echo-bench`: a load generator that measures any echo server and checks
//! every byte.
//!
//! ```no_run
//! use echoes::bench::{self, BenchConfig, Mode};
//! use std::time::Duration;
//!
//! let mut config = BenchConfig::new("127.0.0.1:10000".parse()?);
//! config
//!     .mode(Mode::Pingpong)
//!     .connections(50)
//!     .size(64)
//!     .duration(Duration::from_secs(5));
//! let report = bench::run(&config)?;
//! println!("{}", report.to_text());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! How a run goes: one probe connection proves the server is there (and
//! fixes the address, so churn does not resolve the name per operation);
//! each worker thread (one by default, so the bench itself stays on one
//! core) opens its share of the connections; then every worker starts at
//! once, warms up, and measures for the duration. Each worker runs its
//! connections on a current-thread runtime and records into its own
//! histogram; the workers' figures are merged at the end.
//!
//! Open loop (`rate`): every connection has a fixed schedule, and a
//! message's latency counts from when it was *due*, not from when the
//! bench got round to sending it. A server that stalls for 200 ms delays
//! every message due in those 200 ms, and all of them show it, which is
//! what its users would see (no coordinated omission). Sends are timed by
//! tokio's timer, which has millisecond granularity: a message may go out
//! up to about a millisecond after it was due, and that delay is counted
//! too (it errs on the side of a worse latency, never a better one).
//!
//! Every transport of the addresses works: TCP through the bench's own
//! stream (one system call fewer per message than tokio's), TLS and Unix
//! sockets through [`transport::connect_with`](crate::transport::connect_with),
//! and UDP as ping-pong, one datagram per message, where a reply that does
//! not come within the timeout is counted as a `loss`. Over `ws://` and
//! `wss://`, each message is one binary WebSocket message, echoed as one
//! (churn: a connection and an opening handshake per operation, and the
//! closing handshake). Over `http://` and `https://`, each message is one
//! HTTP request (HTTP/1.1 with keep-alive, or HTTP/2 with `http2`, a
//! pipeline then being concurrent streams), its response checked: a
//! body echoed, the server's `size=` pattern, or a JSON reflection
//! ([`HttpRequestKind`]); a status other than 2xx is a `status` error.
//!
//! # Modules, and which uses which
//!
//! Each module uses only those listed before it, never one after it, so
//! the bench has no cycle. This file only declares the modules and
//! re-exports the public items: no module uses it. The uses are those
//! outside a module's unit tests; a test keeps this table true.
//!
//! | module | what it holds | uses |
//! |---|---|---|
//! | `pattern` | the bytes sent, and the check of what comes back | — |
//! | `pacer` | a timerfd that wakes a connection to the microsecond | — |
//! | `source` | the local addresses to connect from (`--source`) | — |
//! | `clock` | wall-clock instants: `--start-at` read from RFC 3339 or `@` Unix seconds, [`StartAtError`]; RFC 3339 written | — |
//! | `config` | [`BenchConfig`], [`Mode`], [`BenchConfigError`] | clock, source |
//! | `record` | recording: `Recorder` (a histogram per second of the window), `LiveCounters`, `MeasuredWindow`, [`Totals`], [`FailureKind`] | — |
//! | `schedule` | open loop: when each message is due | pacer |
//! | `exchange` | the exchange types: `ExchangePlan`, `SlotBuffers`, `ExchangeEnd`, `Failure`, `ExchangeTimer` | config, record, schedule |
//! | `tcp` | the bench's own TCP stream, the probe's connection, and a slot's (`connect_slot`: connect, then the PROXY header) | exchange, record |
//! | `stream` | the exchange loop over a byte stream (TCP, TLS, Unix) | exchange, pattern, record, schedule |
//! | `udp` | the UDP socket, its probe, and its exchange loop | exchange, pattern, record, schedule |
//! | `ws_connect` | reaching a WebSocket server: probe, `WsConnector`, `WsConnection`, closing | exchange, record, source, tcp |
//! | `ws` | the exchange loop over a WebSocket | exchange, pattern, record, schedule, ws_connect |
//! | `grpc` | a gRPC unary call as an HTTP/2 request: its framing, and the checks of its answer | config, exchange, record |
//! | `h1_response` | an HTTP/1.1 response read as it arrives: its head (httparse), its body's framing, chunked | exchange, record |
//! | `http_connect` | reaching an HTTP server: probe, `HttpConnector`, `HttpConnection` (hyper), `OwnH1`, the request body | config, exchange, grpc, pattern, record, source, tcp |
//! | `http_check` | what a response's body must be, checked piece by piece | config, exchange, http_connect, pattern, record |
//! | `h1` | the bench's own HTTP/1.1 client: its exchange loop, no allocation per request | config, exchange, h1_response, http_check, http_connect, pattern, record, schedule |
//! | `grpc_duplex` | the exchange loop of gRPC ping-pong on one FullDuplexCall | config, exchange, grpc, http_connect, pattern, record, schedule |
//! | `http` | the exchange loop over HTTP/2 (hyper): one request per message, its response checked | config, exchange, grpc, grpc_duplex, http_check, http_connect, pattern, record, schedule |
//! | `connect` | connecting: `Connector`, `Connection` and `Connection::drive` | exchange, h1, http, http_connect, pattern, record, schedule, source, tcp, stream, udp, ws, ws_connect |
//! | `slot` | one slot's loop in each mode, and reconnecting | config, connect, exchange, pattern, record, schedule |
//! | `report` | reporting: the serde [`Report`], its [`Interval`]s, as text and JSON | config, record |
//! | `plot` | the latency distribution as SVG | report |
//! | `histlog` | the histogram saved as an HdrHistogram interval log, an interval per second | record, report |
//! | `merge` | several machines' runs as one report, their intervals added by wall-clock second | histlog, record, report |
//! | `over_time` | `merge --over-time`: the intervals as rows of text or JSON | clock, report |
//! | `watch` | the progress bar, the bench's CPU time, the notes | config, record, report |
//! | `run` | [`run()`]: the probe, the workers, their connections and slots | config, connect, exchange, http_connect, record, report, slot, tcp, watch |

#[cfg(test)]
mod module_map;

pub(crate) mod clock;
mod config;
mod connect;
mod exchange;
mod grpc;
mod grpc_duplex;
mod h1;
mod h1_response;
pub(crate) mod histlog;
mod http;
mod http_check;
mod http_connect;
pub(crate) mod merge;
pub(crate) mod over_time;
mod pacer;
pub(crate) mod pattern;
pub(crate) mod plot;
pub(crate) mod record;
pub(crate) mod report;
mod run;
mod schedule;
mod slot;
pub(crate) mod source;
mod stream;
mod tcp;
mod udp;
mod watch;
mod ws;
mod ws_connect;

pub use clock::{START_AT_FUTURE, START_AT_PAST, StartAtError, check_start_at, parse_start_at};
pub use config::{
    BenchConfig, BenchConfigError, HttpRequestKind, MAX_CONNECTIONS, MAX_PIPELINE, MAX_UDP_SIZE,
    Mode, STREAM_TIMEOUT, UDP_TIMEOUT,
};
pub use histlog::{HistLogError, Saved, read as read_histogram, write as write_histogram};
pub use merge::{MergeError, Merged, merge};
pub use over_time::{
    OverTimeRow, rows as over_time_rows, to_json as over_time_json, to_text as over_time_text,
};
pub use plot::write as write_plot;
pub use record::{ErrorCounts, FailureKind, Totals};
pub use report::{Interval, Report};
pub use run::{BenchError, check_output_path, run};
pub use source::Source;
