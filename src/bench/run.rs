//! One run, from the probe to the report (the bench's documentation says
//! how a run goes): the worker threads, each of which opens its share of
//! the connections, meets the others at the start, and runs their slots,
//! recording into its own [`Recorder`]; their [`Totals`] are merged at
//! the end.

use std::io::IsTerminal;
use std::rc::Rc;
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::thread::ScopedJoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::config::{BenchConfig, BenchConfigError, Mode};
use super::connect::{Connection, Connector};
use super::exchange::ExchangePlan;
use super::http_connect::HttpPlan;
use super::record::{LiveCounters, MeasuredWindow, Recorder, Totals};
use super::report::{Interval, Report};
use super::slot::{self, Worker};
use super::tcp::Tcp;
use super::watch::{rate_limit_note, watch};
use crate::transport::ConnectError;

/// Why a run could not be made (errors during a run are counted in the
/// report instead).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The configuration is not one that can run (a usage error).
    #[error(transparent)]
    Config(#[from] BenchConfigError),
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
        return Err(BenchConfigError::TooFewFiles {
            connections: config.connections,
            limit,
        }
        .into());
    }
    let threads = config.threads.min(config.connections);
    let probe_rt = crate::runtime::current_thread()?;
    let (connector, first) = probe_rt.block_on(Connector::probe(
        &config.addr,
        config.timeout,
        config.tls.as_ref(),
        &config.source,
        config.proxy.as_ref(),
        HttpPlan {
            kind: config.http_request,
            http2: config.speaks_h2(),
            size: config.size,
        },
    ))?;
    drop(probe_rt);
    // Churn opens its own connection for every operation.
    let first = Mutex::new(first.filter(|_| config.mode != Mode::Churn));

    let live = Arc::new(LiveCounters::default());
    let cpu = Mutex::new(None);
    // Workers and this thread meet here once every connection is open, so
    // all of them start the clock together: at once, or, with a start
    // time, a warm-up before it.
    let ready = Barrier::new(threads + 1);
    let start: OnceLock<Instant> = OnceLock::new();
    let at = config.start_at.map(instant_of);
    let planned = at.map(|at| at.checked_sub(config.warmup).unwrap_or(at));
    let mut totals = std::thread::scope(|scope| {
        let handles: Vec<ScopedJoinHandle<'_, Result<Totals, std::io::Error>>> = (0..threads)
            .map(|index| {
                let shared = SharedByWorkers {
                    connector: &connector,
                    first: &first,
                    live: live.clone(),
                    ready: &ready,
                    start: &start,
                    planned,
                };
                scope.spawn(move || worker(config, index, threads, shared))
            })
            .collect();
        ready.wait();
        let t0 = *start.get_or_init(|| begin(planned));
        let show = config.progress && std::io::stderr().is_terminal();
        let used = watch(config, t0, &live, &handles, show);
        *cpu.lock().unwrap_or_else(|e| e.into_inner()) = used;
        join(handles)
    })?;
    let seconds = std::mem::take(&mut totals.seconds);
    let mut report = Report::new(config, totals);
    report.bench_cpu_seconds = cpu
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .map(|d: Duration| (d.as_secs_f64() * 1000.0).round() / 1000.0);
    report.sources = connector.sources();
    if let Some(note) = rate_limit_note(config, &report) {
        report.notes.push(note);
    }
    let (window_start, late) = window_start(config, start.get().copied(), planned);
    report.window_start = window_start;
    report.notes.extend(late);
    if let Some(start) = report.window_start {
        report.intervals = Interval::seconds(seconds, start, config.duration);
    }
    Ok(report)
}

/// How late past its start time a run may begin and still count as on time.
const LATE: Duration = Duration::from_millis(1);

/// When the measured window began by the wall clock, `warmup` after the
/// start `t0`: at the start time asked for, unless the bench was late
/// (then also a note that says how late).
fn window_start(
    config: &BenchConfig,
    t0: Option<Instant>,
    planned: Option<Instant>,
) -> (Option<SystemTime>, Option<String>) {
    let late = t0
        .zip(planned)
        .map(|(t0, planned)| t0.saturating_duration_since(planned))
        .filter(|late| *late > LATE);
    let note = late.map(|late| {
        format!(
            "the bench was ready {:.3} s after its start time less the warm-up: \
             its measured window began that much late",
            late.as_secs_f64()
        )
    });
    let start = match (config.start_at, late) {
        (Some(at), None) => Some(at),
        _ => t0.map(|t0| {
            let ago = Instant::now().saturating_duration_since(t0 + config.warmup);
            SystemTime::now() - ago
        }),
    };
    (start, note)
}

/// The monotonic instant of the wall-clock time `at` (the wall clock's
/// later steps are not followed).
fn instant_of(at: SystemTime) -> Instant {
    let (now, wall) = (Instant::now(), SystemTime::now());
    match at.duration_since(wall) {
        Ok(ahead) => now + ahead,
        Err(ago) => now.checked_sub(ago.duration()).unwrap_or(now),
    }
}

/// The start of the run: now, or the planned start if that is later.
fn begin(planned: Option<Instant>) -> Instant {
    let now = Instant::now();
    planned.map_or(now, |p| p.max(now))
}

/// Waits for every worker and merges their totals; the error of one that
/// failed (or panicked), if any did.
fn join(
    handles: Vec<ScopedJoinHandle<'_, Result<Totals, std::io::Error>>>,
) -> Result<Totals, std::io::Error> {
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
}

/// What the worker threads of one run share.
struct SharedByWorkers<'a> {
    connector: &'a Connector,
    /// The probe's connection, for whichever slot takes it first.
    first: &'a Mutex<Option<std::net::TcpStream>>,
    live: Arc<LiveCounters>,
    /// Where the workers and the main thread meet before the start.
    ready: &'a Barrier,
    /// The start of the run (the warm-up's), set by whoever is first.
    start: &'a OnceLock<Instant>,
    /// When the run is to start (`--start-at` less the warm-up), if asked.
    planned: Option<Instant>,
}

/// One worker thread: open its connections, wait for the others, run.
fn worker(
    config: &BenchConfig,
    index: usize,
    threads: usize,
    shared: SharedByWorkers<'_>,
) -> Result<Totals, std::io::Error> {
    let rt = match crate::runtime::current_thread() {
        Ok(rt) => rt,
        Err(e) => {
            // Still meet the others, or they would wait for ever.
            shared.ready.wait();
            return Err(e);
        }
    };
    let slots: Vec<usize> = (index..config.connections).step_by(threads).collect();
    let rec = Recorder::new(shared.live.clone());
    let connections = open_connections(&rt, config, &slots, &shared, &rec);
    shared.ready.wait();
    let t0 = *shared.start.get_or_init(|| begin(shared.planned));
    let from = t0 + config.warmup;
    let end = from + config.duration;
    rec.set_window(MeasuredWindow { from, to: end });
    let worker = Rc::new(Worker {
        rec,
        connector: shared.connector.clone(),
        mode: config.mode,
        plan: ExchangePlan::for_run(config, end),
        interval: config
            .rate
            .map(|rate| Duration::from_secs_f64(config.connections as f64 / rate)),
        slots: config.connections,
        connect_timeout: config.timeout,
        next_id: std::cell::Cell::new(index as u64),
        id_step: threads as u64,
    });
    run_slots(&rt, &worker, &slots, connections, t0);
    if config.mode == Mode::Stream {
        worker
            .rec
            .set_messages(worker.rec.bytes() / config.size as u64);
    }
    Ok(worker.rec.totals())
}

/// Opens the connection of each of `slots` (the probe's first, if it is
/// still there); a failure is counted in `rec` and leaves its slot to
/// connect once the run starts. Connections of long-lived modes are opened
/// before the clock starts, so that setting up thousands of them is not
/// part of the warm-up; churn opens none here.
fn open_connections(
    rt: &tokio::runtime::Runtime,
    config: &BenchConfig,
    slots: &[usize],
    shared: &SharedByWorkers<'_>,
    rec: &Recorder,
) -> Vec<Option<Connection>> {
    if config.mode == Mode::Churn {
        return slots.iter().map(|_| None).collect();
    }
    let local = tokio::task::LocalSet::new();
    let opened = local.block_on(rt, async {
        let pending: Vec<_> = slots
            .iter()
            .map(|&slot| {
                let connector = shared.connector.clone();
                let timeout = config.timeout;
                let probed = shared.first.lock().ok().and_then(|mut f| f.take());
                let seq = slot as u64;
                tokio::task::spawn_local(async move {
                    match probed.map(Tcp::from_std) {
                        Some(Ok(s)) => Ok(Connection::Stream(Box::new(s))),
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
    opened
        .into_iter()
        .map(|result| match result {
            Ok(Ok(connection)) => Some(connection),
            Ok(Err(e)) => {
                rec.error(e.kind, || e.detail);
                None
            }
            Err(_) => None,
        })
        .collect()
}

/// Runs every one of `slots` until the end of the run, each with its
/// connection opened before the start (if that worked), from `t0` (until
/// then, the runtime runs only what the open connections need).
fn run_slots(
    rt: &tokio::runtime::Runtime,
    worker: &Rc<Worker>,
    slots: &[usize],
    connections: Vec<Option<Connection>>,
    t0: Instant,
) {
    let local = tokio::task::LocalSet::new();
    local.block_on(rt, async {
        tokio::time::sleep_until(t0.into()).await;
        let tasks: Vec<_> = slots
            .iter()
            .zip(connections)
            .map(|(&slot, connection)| {
                tokio::task::spawn_local(slot::run(worker.clone(), slot, connection, t0))
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    });
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
    fn the_window_begins_at_the_start_time_unless_the_bench_was_late() {
        let at = SystemTime::now() - Duration::from_secs(2);
        let mut config = BenchConfig::new("127.0.0.1:7".parse().unwrap());
        config.start_at(at).warmup(Duration::from_secs(1));
        let planned = instant_of(at) - Duration::from_secs(1);
        assert_eq!(
            window_start(&config, Some(planned), Some(planned)),
            (Some(at), None)
        );
        let late = planned + Duration::from_millis(250);
        let (start, note) = window_start(&config, Some(late), Some(planned));
        let start = start.unwrap().duration_since(at).unwrap();
        assert!(start.abs_diff(Duration::from_millis(250)) < Duration::from_millis(20));
        assert!(note.unwrap().contains("ready 0.250 s after its start time"));
        // An embedder's time long past is refused as the command line's is.
        config.start_at(SystemTime::now() - Duration::from_secs(5));
        assert!(matches!(
            config.validate(),
            Err(BenchConfigError::StartAt(
                super::super::StartAtError::Past { .. }
            ))
        ));
    }

    #[test]
    fn a_bad_configuration_does_not_run() {
        let config = BenchConfig::new("udp://127.0.0.1:1".parse().unwrap())
            .mode(Mode::Stream)
            .clone();
        assert!(matches!(
            run(&config),
            Err(BenchError::Config(BenchConfigError::UdpNeedsPingpong {
                mode: Mode::Stream
            }))
        ));
    }
}
