//! `echo-bench`: a load generator that measures any echo server and checks
//! every byte.
//!
//! ```no_run
//! use echoes::bench::{self, BenchConfig, Mode};
//! use std::time::Duration;
//!
//! let mut config = BenchConfig::new("127.0.0.1:10000".parse()?);
//! config.mode = Mode::Pingpong;
//! config.connections = 50;
//! config.size = 64;
//! config.duration = Duration::from_secs(5);
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
//! closing handshake).
//!
//! Modules: [`pattern`] (the bytes sent and their check), [`report`] (the
//! histogram and the figures, as text and JSON), [`plot`] (the latency
//! distribution as SVG), [`histlog`] (the histogram saved as an
//! HdrHistogram interval log) and [`merge`] (several machines' runs as
//! one report); the connection loop, the UDP loop and the modes are
//! private.

mod conn;
#[cfg(test)]
mod counting;
pub mod histlog;
pub mod merge;
mod modes;
mod pacer;
pub mod pattern;
pub mod plot;
pub mod report;
pub mod source;
mod tcp;
mod udp;
mod watch;
mod ws;

use std::io::IsTerminal;
use std::rc::Rc;
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::thread::ScopedJoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::addr::{Addr, Transport};
use crate::transport::ConnectError;
use conn::{Connector, Link, Spec};
use modes::Worker;
pub use report::{ErrorCounts, ErrorKind, Report, Totals};
use report::{Live, Recorder, Window};
pub use source::Source;
use watch::{rate_limit_note, watch};

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

/// The most messages in flight per connection `--pipeline` accepts: the
/// ring of send times is allocated up front, so it must stay small.
pub const MAX_PIPELINE: usize = 65_536;

/// The most connections (`echo-bench -c`) one bench process opens: each
/// needs a descriptor and its buffers, so more is a typo, not a load.
pub const MAX_CONNECTIONS: usize = 1 << 20;

/// The largest message over `udp://`: one IPv4 datagram's payload.
pub const MAX_UDP_SIZE: usize = udp::MAX_DATAGRAM;

/// The default wait for each reply over `udp://`, after which the datagram
/// counts as lost. Much shorter than the stream default: a lost datagram
/// holds its slot up for this long.
pub const UDP_TIMEOUT: Duration = Duration::from_secs(1);

/// The default wait for a connection, and for an owed echo to move, over
/// stream transports.
pub const STREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything a run needs. [`BenchConfig::new`] gives the defaults of the
/// `echo-bench` command line.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The server.
    pub addr: Addr,
    /// What each connection does.
    pub mode: Mode,
    /// Concurrent connections (churn: concurrent operations).
    pub connections: usize,
    /// Bytes per message (stream: per write).
    pub size: usize,
    /// How long to measure, after the warm-up.
    pub duration: Duration,
    /// How long to run before measuring.
    pub warmup: Duration,
    /// Open loop at this total rate, messages (or operations) per second.
    pub rate: Option<f64>,
    /// Messages in flight per connection (pingpong).
    pub pipeline: usize,
    /// How long to wait for a connection, and for an owed echo to move;
    /// over UDP, for each datagram's reply before it counts as lost.
    pub timeout: Duration,
    /// The TLS client configuration for `tls://` (from
    /// [`tls::client_config`](crate::transport::tls::client_config));
    /// `None` trusts the system's CAs.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Worker threads, each with its own single-threaded runtime.
    pub threads: usize,
    /// The local addresses to connect from (see [`source`]).
    pub source: Source,
    /// Show a progress bar on standard error (only if it is a terminal).
    pub progress: bool,
    /// A PROXY protocol header to send on every connection, before the
    /// data (not over UDP).
    pub proxy: Option<crate::proxy::send::ProxySend>,
}

impl BenchConfig {
    /// A configuration for `addr` with the command line's defaults:
    /// pingpong, 1 connection of 64-byte messages, 1 s warm-up, 10 s; a
    /// timeout of [`STREAM_TIMEOUT`], or [`UDP_TIMEOUT`] over UDP.
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
        }
    }

    /// Checks the values and their combinations; the message says what to
    /// change.
    pub fn validate(&self) -> Result<(), BenchError> {
        let bad = |s: &str| Err(BenchError::Config(s.to_string()));
        if self.connections == 0 {
            return bad("the number of connections must be at least 1");
        }
        if self.size == 0 {
            return bad("the message size must be at least 1 byte");
        }
        if self.threads == 0 {
            return bad("the number of threads must be at least 1");
        }
        if self.threads > crate::runtime::MAX_THREADS {
            return Err(BenchError::Config(format!(
                "--threads must be at most {}",
                crate::runtime::MAX_THREADS
            )));
        }
        if self.connections > MAX_CONNECTIONS {
            return Err(BenchError::Config(format!(
                "-c must be at most {}",
                MAX_CONNECTIONS
            )));
        }
        if self.pipeline == 0 || self.pipeline > MAX_PIPELINE {
            return Err(BenchError::Config(format!(
                "--pipeline must be between 1 and {MAX_PIPELINE}"
            )));
        }
        if self.duration.is_zero() {
            return bad("the duration must be more than 0");
        }
        if self.timeout.is_zero() {
            return bad("the timeout must be more than 0");
        }
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return bad("the rate must be a positive number of messages per second");
        }
        if self.mode == Mode::Stream && self.rate.is_some() {
            return bad("--rate does not apply to stream mode, which sends as fast as it can");
        }
        if self.mode != Mode::Pingpong && self.pipeline > 1 {
            return bad("--pipeline applies to pingpong mode only");
        }
        if let web @ (Transport::Http | Transport::Https) = self.addr.transport() {
            return Err(BenchError::Config(format!(
                "echo-bench measures echo, and {web}:// answers requests: use ws:// or wss:// \
                 for a WebSocket echo, and an HTTP load tool (wrk, oha) for {web}://"
            )));
        }
        if self.addr.transport() == Transport::Udp {
            if self.proxy.is_some() {
                return bad(
                    "--proxy-protocol needs a stream: the PROXY protocol is not used over udp://",
                );
            }
            if self.mode != Mode::Pingpong {
                return Err(BenchError::Config(format!(
                    "--mode {} needs a connection; udp:// has none: use --mode pingpong \
                     (each message one datagram) or a stream transport",
                    self.mode.as_str()
                )));
            }
            if self.pipeline > 1 {
                return bad(
                    "--pipeline does not apply to udp://: each datagram's reply is awaited \
                     before the next is sent (use more connections, -c)",
                );
            }
            if self.size > MAX_UDP_SIZE {
                return Err(BenchError::Config(format!(
                    "--size {} does not fit in one UDP datagram: at most {MAX_UDP_SIZE} bytes \
                     over udp://",
                    self.size
                )));
            }
        }
        Ok(())
    }

    fn spec(&self, end: Instant) -> Spec {
        Spec {
            size: self.size,
            depth: match self.mode {
                Mode::Pingpong => self.pipeline,
                Mode::Stream => usize::MAX,
                Mode::Churn => 1,
            },
            record_messages: self.mode == Mode::Pingpong,
            limit: (self.mode == Mode::Churn).then_some(1),
            timeout: self.timeout,
            end,
        }
    }
}

/// Why a run could not be made (errors during a run are counted in the
/// report instead).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The configuration is not one that can run (a usage error).
    #[error("{0}")]
    Config(String),
    /// The server could not be reached at all.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// A runtime or thread could not be started.
    #[error("cannot start the bench: {0}")]
    Start(#[from] std::io::Error),
    /// An output file could not be written where it was asked for.
    #[error("{0}")]
    Output(String),
}

/// Runs the benchmark `config` describes and returns what it measured.
///
/// Fails only when the run cannot start: a bad configuration, or a server
/// that does not accept the first connection. Errors during the run are in
/// the report's `errors`.
pub fn run(config: &BenchConfig) -> Result<Report, BenchError> {
    config.validate()?;
    let files = raise_fd_limit();
    // Each connection (churn: each operation in flight, UDP: each socket)
    // holds a descriptor; a few more are the process's own.
    if let Some(limit) = files
        && config.connections as u64 + 64 > limit
    {
        return Err(BenchError::Config(format!(
            "-c {} needs as many open files, and this process may open {limit} \
             (ulimit -n): raise the limit or use fewer connections",
            config.connections
        )));
    }
    let threads = config.threads.min(config.connections);
    let probe_rt = crate::runtime::current_thread()?;
    let (connector, first) = probe_rt.block_on(Connector::probe(
        &config.addr,
        config.timeout,
        config.tls.as_ref(),
        &config.source,
        config.proxy.as_ref(),
    ))?;
    drop(probe_rt);
    // Churn opens its own connection for every operation.
    let first = Mutex::new(first.filter(|_| config.mode != Mode::Churn));

    let live = Arc::new(Live::default());
    let cpu = Mutex::new(None);
    // Workers and this thread meet here once every connection is open, so
    // all of them start the clock together.
    let ready = Barrier::new(threads + 1);
    let start: OnceLock<Instant> = OnceLock::new();
    let totals = std::thread::scope(|scope| {
        let handles: Vec<ScopedJoinHandle<'_, Result<Totals, std::io::Error>>> = (0..threads)
            .map(|index| {
                let shared = Shared {
                    connector: &connector,
                    first: &first,
                    live: live.clone(),
                    ready: &ready,
                    start: &start,
                };
                scope.spawn(move || worker(config, index, threads, shared))
            })
            .collect();
        ready.wait();
        let t0 = *start.get_or_init(Instant::now);
        let show = config.progress && std::io::stderr().is_terminal();
        let used = watch(config, t0, &live, &handles, show);
        *cpu.lock().unwrap_or_else(|e| e.into_inner()) = used;
        let mut totals = Totals::default();
        let mut failure = None;
        for handle in handles {
            match handle.join() {
                Ok(Ok(t)) => totals.merge(t),
                Ok(Err(e)) => failure = Some(e),
                Err(_) => {
                    failure = Some(std::io::Error::other("a worker thread panicked"));
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(totals),
        }
    })?;
    let mut report = Report::new(config, totals);
    report.bench_cpu_seconds = cpu
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .map(|d: Duration| (d.as_secs_f64() * 1000.0).round() / 1000.0);
    report.sources = connector.sources();
    if let Some(note) = rate_limit_note(config, &report) {
        report.notes.push(note);
    }
    // The measured window began `warmup` after the start, by the wall clock.
    report.window_start = start.get().map(|&t0| {
        let ago = Instant::now().saturating_duration_since(t0 + config.warmup);
        std::time::SystemTime::now() - ago
    });
    Ok(report)
}

/// What the workers of one run share.
struct Shared<'a> {
    connector: &'a Connector,
    /// The probe's connection, for whichever slot takes it first.
    first: &'a Mutex<Option<std::net::TcpStream>>,
    live: Arc<Live>,
    ready: &'a Barrier,
    start: &'a OnceLock<Instant>,
}

/// One worker thread: open its connections, wait for the others, run.
fn worker(
    config: &BenchConfig,
    index: usize,
    threads: usize,
    shared: Shared<'_>,
) -> Result<Totals, std::io::Error> {
    let Shared {
        connector,
        first,
        live,
        ready,
        start,
    } = shared;
    let rt = match crate::runtime::current_thread() {
        Ok(rt) => rt,
        Err(e) => {
            // Still meet the others, or they would wait for ever.
            ready.wait();
            return Err(e);
        }
    };
    let slots: Vec<usize> = (index..config.connections).step_by(threads).collect();
    let rec = Recorder::new(live);

    // Connections of long-lived modes are opened before the clock starts,
    // so that setting up thousands of them is not part of the warm-up.
    let mut streams: Vec<Option<Link>> = Vec::with_capacity(slots.len());
    if config.mode != Mode::Churn {
        let local = tokio::task::LocalSet::new();
        let opened = local.block_on(&rt, async {
            let pending: Vec<_> = slots
                .iter()
                .map(|&slot| {
                    let connector = connector.clone();
                    let timeout = config.timeout;
                    let probed = first.lock().ok().and_then(|mut f| f.take());
                    let seq = slot as u64;
                    tokio::task::spawn_local(async move {
                        match probed.map(tcp::Tcp::from_std) {
                            Some(Ok(s)) => Ok(Link::Stream(Box::new(s))),
                            _ => connector.connect(timeout, seq).await,
                        }
                    })
                })
                .collect();
            let mut opened = Vec::with_capacity(pending.len());
            for p in pending {
                opened.push(p.await);
            }
            opened
        });
        for result in opened {
            match result {
                Ok(Ok(s)) => streams.push(Some(s)),
                Ok(Err(e)) => {
                    rec.error(e.kind, || e.detail);
                    streams.push(None);
                }
                Err(_) => streams.push(None),
            }
        }
    } else {
        streams.resize_with(slots.len(), || None);
    }

    ready.wait();
    let t0 = *start.get_or_init(Instant::now);
    let from = t0 + config.warmup;
    let end = from + config.duration;
    rec.set_window(Window { from, to: end });
    let shared = Rc::new(Worker {
        rec,
        connector: connector.clone(),
        mode: config.mode,
        spec: config.spec(end),
        interval: config
            .rate
            .map(|rate| Duration::from_secs_f64(config.connections as f64 / rate)),
        slots: config.connections,
        connect_timeout: config.timeout,
        next_id: std::cell::Cell::new(index as u64),
        id_step: threads as u64,
    });
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let tasks: Vec<_> = slots
            .iter()
            .zip(streams)
            .map(|(&slot, stream)| {
                tokio::task::spawn_local(modes::run_slot(shared.clone(), slot, stream, t0))
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    });
    if config.mode == Mode::Stream {
        shared
            .rec
            .set_messages(shared.rec.bytes() / config.size as u64);
    }
    Ok(shared.rec.totals())
}

/// Checks, before a run, that an output file (`--plot`, `--save-hist`)
/// can be written at `path`: its folder exists, and it is not a folder
/// itself.
pub fn check_output_path(path: &std::path::Path) -> Result<(), BenchError> {
    let bad = |why: &str| {
        Err(BenchError::Output(format!(
            "cannot write {}: {why}",
            path.display()
        )))
    };
    if path.is_dir() {
        return bad("it is a folder");
    }
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    match std::fs::metadata(folder) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => bad(&format!("{} is not a folder", folder.display())),
        Err(e) => bad(&format!("{}: {e}", folder.display())),
    }
}

/// Raises the soft limit on open files to the hard limit: thousands of
/// connections need thousands of descriptors. Best effort; returns the
/// limit in force, `None` when unknown or unlimited.
fn raise_fd_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    (lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_configurations_say_what_is_wrong() {
        let base = BenchConfig::new("127.0.0.1:1".parse().unwrap());
        type Change = fn(&mut BenchConfig);
        let cases: [(&str, Change); 10] = [
            ("connections", |c| c.connections = 0),
            ("size", |c| c.size = 0),
            ("pipeline", |c| c.pipeline = 0),
            ("rate", |c| c.rate = Some(0.0)),
            ("rate", |c| c.rate = Some(f64::NAN)),
            ("stream", |c| {
                c.mode = Mode::Stream;
                c.rate = Some(10.0)
            }),
            ("pingpong", |c| {
                c.mode = Mode::Churn;
                c.pipeline = 2
            }),
            ("udp://", |c| {
                c.addr = "udp://127.0.0.1:1".parse().unwrap();
                c.mode = Mode::Churn
            }),
            ("-c", |c| {
                c.addr = "udp://127.0.0.1:1".parse().unwrap();
                c.pipeline = 2
            }),
            ("65507", |c| {
                c.addr = "udp://127.0.0.1:1".parse().unwrap();
                c.size = 65_508
            }),
        ];
        for (word, change) in cases {
            let mut c = base.clone();
            change(&mut c);
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(word), "{e:?} should mention {word}");
            assert!(matches!(run(&c), Err(BenchError::Config(_))));
        }
        assert!(base.validate().is_ok());
        let mut udp = BenchConfig::new("udp://127.0.0.1:1".parse().unwrap());
        assert_eq!(udp.timeout, UDP_TIMEOUT);
        udp.size = MAX_UDP_SIZE;
        assert!(udp.validate().is_ok());
    }
}
