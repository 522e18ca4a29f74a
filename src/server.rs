//! The server: bind every `--listen` address, accept, spawn one echo task
//! per connection, and shut down gracefully.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use echoes::{Server, ServerConfig};
//! let server = Server::bind(ServerConfig::new("127.0.0.1:0".parse()?)).await?;
//! let addr = server.local_addrs()[0].clone();   // the real port
//! let shutdown = server.shutdown_handle();
//! let running = tokio::spawn(server.run());
//! // ... talk to `addr` ...
//! shutdown.shutdown();
//! running.await??;
//! # Ok(()) }
//! ```
//!
//! Limits are plain: `max_connections` is a semaphore taken *before*
//! `accept` (once a connection is waiting, so an idle listener holds no
//! slot), so excess connections wait in the kernel's backlog instead of
//! being accepted and dropped; the per-IP limit can only be checked after
//! `accept`, so a host over it is reset at once, and logged at most once a
//! second. Errors from `accept` (out of descriptors, …) are logged once per
//! burst and retried with exponential backoff, so the server neither exits
//! nor spins on them: the listener stays readable while the backlog is
//! not empty, and only the backoff's sleep stands between two attempts.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::addr::{Addr, Transport};
use crate::echo::{EchoOptions, Ending, echo_socket};
use crate::shutdown::ShutdownHandle;
use crate::tasks::ConnTasks;
use crate::transport::{self, PeerName, tcp};
use crate::units::format_duration;

/// The default largest single read: one 64 KiB buffer per worker thread,
/// as large as the C epoll peer's, so big transfers take few system calls.
pub const DEFAULT_READ_SIZE: usize = 64 * 1024;

/// The default time open connections get to finish after a shutdown request.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything a server needs to know. Build one with [`ServerConfig::new`]
/// and change the fields you care about.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Addresses to listen on; a host name binds every address it resolves to.
    pub listen: Vec<Addr>,
    /// The largest single read, in bytes; at least 1.
    pub read_size: usize,
    /// At most this many connections are served at once; the rest wait.
    pub max_connections: Option<usize>,
    /// At most this many connections from one client IP address.
    pub max_connections_per_ip: Option<usize>,
    /// Close connections with no traffic for this long.
    pub idle_timeout: Option<Duration>,
    /// How long open connections may finish after shutdown begins.
    pub shutdown_timeout: Duration,
}

impl ServerConfig {
    /// A configuration listening on `addr` with every default.
    pub fn new(addr: Addr) -> ServerConfig {
        ServerConfig {
            listen: vec![addr],
            read_size: DEFAULT_READ_SIZE,
            max_connections: None,
            max_connections_per_ip: None,
            idle_timeout: None,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A host name did not resolve.
    #[error("cannot resolve {host}: {error}")]
    Resolve {
        /// The host as given.
        host: String,
        /// The resolver's error.
        error: io::Error,
    },
    /// A socket could not be bound (port in use, no permission, no such address).
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        /// The address as the user would write it.
        addr: String,
        /// The system's error.
        error: io::Error,
    },
    /// A configuration value is out of range.
    #[error("{0}")]
    Config(String),
    /// The transport is not served by this build yet.
    #[error("{0}:// is not supported by this server yet")]
    Unsupported(Transport),
}

/// A bound server, ready to [`run`](Server::run).
pub struct Server {
    listeners: Vec<Listener>,
    shared: Arc<Shared>,
    handle: ShutdownHandle,
}

/// One listening socket and the address it is bound to.
struct Listener {
    socket: AsyncFd<mio::net::TcpListener>,
    local: SocketAddr,
}

/// State shared by the accept loops and connection tasks of one server.
struct Shared {
    opts: EchoOptions,
    shutdown_timeout: Duration,
    /// Every connection task, so shutdown can wait for them or end them.
    conns: ConnTasks,
    stats: Arc<Counters>,
    permits: Option<Arc<Semaphore>>,
    per_ip: Option<PerIpLimit>,
}

/// Live counters of a server, readable while it runs.
#[derive(Debug, Default)]
struct Counters {
    open: AtomicUsize,
    total: AtomicU64,
}

/// A view of a running server's counters. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ServerStats(Arc<Counters>);

impl ServerStats {
    /// Connections being served now.
    pub fn open_connections(&self) -> usize {
        self.0.open.load(Ordering::Relaxed)
    }
    /// Connections accepted since the server started.
    pub fn total_connections(&self) -> u64 {
        self.0.total.load(Ordering::Relaxed)
    }
}

impl Server {
    /// Resolves and binds every address of `config`, logging
    /// `starting up on HOST port PORT` for each. With port 0, every address
    /// a host name resolves to gets the same free port when it can.
    pub async fn bind(config: ServerConfig) -> Result<Server, ServerError> {
        Server::bind_with_handle(config, ShutdownHandle::new()).await
    }

    /// As [`bind`](Server::bind), stopped by an existing `handle` (one
    /// already wired to signals, say).
    pub async fn bind_with_handle(
        config: ServerConfig,
        handle: ShutdownHandle,
    ) -> Result<Server, ServerError> {
        if config.read_size == 0 {
            return Err(ServerError::Config(
                "the read size must be at least 1 byte".into(),
            ));
        }
        if config.listen.is_empty() {
            return Err(ServerError::Config("no address to listen on".into()));
        }
        let mut listeners = Vec::new();
        for addr in &config.listen {
            listeners.extend(bind_addr(addr).await?);
        }
        let shared = Arc::new(Shared {
            opts: EchoOptions {
                read_size: config.read_size,
                idle_timeout: config.idle_timeout,
            },
            shutdown_timeout: config.shutdown_timeout,
            conns: ConnTasks::default(),
            stats: Arc::default(),
            permits: config.max_connections.map(|n| Arc::new(Semaphore::new(n))),
            per_ip: config.max_connections_per_ip.map(PerIpLimit::new),
        });
        Ok(Server {
            listeners,
            shared,
            handle,
        })
    }

    /// The addresses actually bound, one per socket, with real ports.
    pub fn local_addrs(&self) -> Vec<Addr> {
        self.listeners
            .iter()
            .map(|l| Addr::Inet {
                transport: Transport::Tcp,
                host: l.local.ip().to_string(),
                port: l.local.port(),
            })
            .collect()
    }

    /// The bound socket addresses of the TCP listeners.
    pub fn tcp_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().map(|l| l.local).collect()
    }

    /// A handle that stops this server.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.handle.clone()
    }

    /// Counters of this server, readable while it runs.
    pub fn stats(&self) -> ServerStats {
        ServerStats(self.shared.stats.clone())
    }

    /// Serves until shutdown is asked for on the [`ShutdownHandle`], then
    /// logs `main: closing server`, closes the listeners, and waits up to
    /// the shutdown timeout (or until forced) for open connections to
    /// finish before closing the rest.
    pub async fn run(self) -> Result<(), ServerError> {
        let Server {
            listeners,
            shared,
            handle,
        } = self;
        let mut accepting = JoinSet::new();
        for listener in listeners {
            accepting.spawn(accept_loop(listener, shared.clone(), handle.clone()));
        }
        handle.wait_shutdown().await;
        info!(name = "main", "closing server");
        // Accept loops end at once on shutdown; joining them closes the
        // listening sockets before we wait for the connections.
        while accepting.join_next().await.is_some() {}
        let open = shared.stats.open.load(Ordering::Relaxed);
        if open > 0 {
            info!(
                name = "main",
                "waiting up to {} for {open} open connection(s)",
                format_duration(shared.shutdown_timeout)
            );
        }
        let drained = tokio::select! {
            () = shared.conns.wait() => true,
            () = tokio::time::sleep(shared.shutdown_timeout) => false,
            () = handle.wait_force() => false,
        };
        if !drained {
            warn!(
                name = "main",
                "closing {} connection(s) still open",
                shared.stats.open.load(Ordering::Relaxed)
            );
            shared.conns.abort_all().await;
        }
        Ok(())
    }
}

/// Builds the tokio runtime for `threads` worker threads: a single-threaded
/// runtime for 1 (no work-stealing machinery on the hot path), a
/// multi-threaded one otherwise.
pub fn runtime(threads: usize) -> io::Result<tokio::runtime::Runtime> {
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
}

/// The number of worker threads to use by default: one per core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

async fn bind_addr(addr: &Addr) -> Result<Vec<Listener>, ServerError> {
    let Addr::Inet {
        transport: Transport::Tcp,
        host,
        port,
    } = addr
    else {
        return Err(ServerError::Unsupported(addr.transport()));
    };
    let ips = addr.resolve().await.map_err(|error| ServerError::Resolve {
        host: host.clone(),
        error,
    })?;
    let mut listeners: Vec<Listener> = Vec::new();
    for target in ips {
        // With port 0, the first socket picks the port and the others try
        // to share it, so `localhost:0` is one port on ::1 and 127.0.0.1.
        let shared_port = listeners.first().map_or(*port, |l| l.local.port());
        let socket = match tcp::bind(SocketAddr::new(target.ip(), shared_port)) {
            Err(e) if *port == 0 && e.kind() == io::ErrorKind::AddrInUse => tcp::bind(target),
            other => other,
        }
        .map_err(|error| ServerError::Bind {
            addr: fmt_host_port(&target.ip().to_string(), target.port()),
            error,
        })?;
        let bind_err = |error| ServerError::Bind {
            addr: fmt_host_port(&target.ip().to_string(), target.port()),
            error,
        };
        let local = socket.local_addr().map_err(bind_err)?;
        let socket = transport::register(socket).map_err(bind_err)?;
        listeners.push(Listener { socket, local });
    }
    let first_port = listeners.first().map(|l| l.local.port());
    if listeners.iter().all(|l| Some(l.local.port()) == first_port) {
        if let Some(p) = first_port {
            info!(name = "main", "starting up on {host} port {p}");
        }
    } else {
        for l in &listeners {
            info!(
                name = "main",
                "starting up on {} port {}",
                l.local.ip(),
                l.local.port()
            );
        }
    }
    Ok(listeners)
}

fn fmt_host_port(host: &str, port: u16) -> String {
    format!("{host} port {port}")
}

async fn accept_loop(listener: Listener, shared: Arc<Shared>, handle: ShutdownHandle) {
    let mut backoff = Backoff::default();
    loop {
        let accepted = tokio::select! {
            r = accept(&listener.socket, shared.permits.as_ref()) => r,
            () = handle.wait_shutdown() => return,
        };
        match accepted {
            Ok((stream, peer, permit)) => {
                backoff.succeeded(listener.local);
                spawn_connection(&shared, stream, peer, permit);
            }
            Err(e) if is_transient(&e) => debug!(name = "main", "accept: {e}"),
            Err(e) => backoff.failed(listener.local, &e, &handle).await,
        }
    }
}

/// Waits for a connection in the backlog, then for a connection slot,
/// then accepts it. Connections over the limit wait in the kernel's backlog
/// rather than being accepted and dropped; and a slot is taken only once a
/// connection is there, so a listener with none holds no slot that another
/// listener's peers could use.
async fn accept(
    listener: &AsyncFd<mio::net::TcpListener>,
    permits: Option<&Arc<Semaphore>>,
) -> io::Result<(
    mio::net::TcpStream,
    SocketAddr,
    Option<OwnedSemaphorePermit>,
)> {
    loop {
        let mut guard = listener.readable().await?;
        let permit = match permits {
            None => None,
            Some(permits) => Some(
                permits
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(io::Error::other)?,
            ),
        };
        if let Ok(result) = guard.try_io(|l| l.get_ref().accept()) {
            return result.map(|(stream, peer)| (stream, peer, permit));
        }
    }
}

/// Errors that concern one connection that went away before `accept`
/// returned it; the next `accept` is unaffected.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || e.raw_os_error() == Some(libc::EPROTO)
}

/// Exponential backoff for `accept` errors, logging once per burst.
#[derive(Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(5);
    const MAX: Duration = Duration::from_secs(1);

    async fn failed(&mut self, local: SocketAddr, e: &io::Error, handle: &ShutdownHandle) {
        if self.failures == 0 {
            warn!(
                name = "main",
                "accept on {local} failed: {e}; retrying with backoff"
            );
        }
        let delay = Self::FIRST
            .saturating_mul(1 << self.failures.min(10))
            .min(Self::MAX);
        self.failures = self.failures.saturating_add(1);
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = handle.wait_shutdown() => {}
        }
    }

    fn succeeded(&mut self, local: SocketAddr) {
        if self.failures > 0 {
            info!(
                name = "main",
                "accepting on {local} again after {} failed attempt(s)", self.failures
            );
            self.failures = 0;
        }
    }
}

fn spawn_connection(
    shared: &Arc<Shared>,
    stream: mio::net::TcpStream,
    peer_addr: SocketAddr,
    permit: Option<OwnedSemaphorePermit>,
) {
    let peer = PeerName::Inet(peer_addr);
    let ip_slot = match &shared.per_ip {
        None => None,
        Some(limit) => match limit.take(peer_addr.ip()) {
            Some(slot) => Some(slot),
            None => {
                limit.log_refusal(peer);
                // Reset rather than close: a flood of refusals must not
                // leave the server a TIME_WAIT socket for each.
                let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                return;
            }
        },
    };
    let stats = shared.stats.clone();
    stats.open.fetch_add(1, Ordering::Relaxed);
    stats.total.fetch_add(1, Ordering::Relaxed);
    let opts = shared.opts;
    let task = async move {
        let _open = OpenGuard(stats);
        let _slots = (permit, ip_slot);
        info!(name = %peer, "connection accepted");
        // Echo replies are latency-bound: never hold them back for Nagle.
        let _ = stream.set_nodelay(true);
        let result = match transport::register(stream) {
            Ok(io) => echo_socket(&io, peer, opts).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(Ending::Eof) => {}
            Ok(Ending::Idle) => info!(
                name = %peer,
                "idle for {}",
                opts.idle_timeout.map(format_duration).unwrap_or_default()
            ),
            Err(e) => debug!(name = %peer, "connection error: {e}"),
        }
        info!(name = %peer, "closing");
    };
    shared.conns.spawn(task);
}

/// Decrements the open-connections count when a connection task ends,
/// however it ends (including being aborted at shutdown).
struct OpenGuard(Arc<Counters>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The `--max-connections-per-ip` bookkeeping.
struct PerIpLimit {
    max: usize,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    /// When the next refusal may be logged, and how many were not since
    /// the last line: a flooding host must not flood the log too.
    refusals: Mutex<(Instant, u64)>,
}

impl PerIpLimit {
    /// At most one refusal line per this long.
    const LOG_EVERY: Duration = Duration::from_secs(1);

    fn new(max: usize) -> PerIpLimit {
        PerIpLimit {
            max,
            counts: Arc::default(),
            refusals: Mutex::new((Instant::now(), 0)),
        }
    }

    /// Logs a refusal of `peer`, or counts it when one was logged less
    /// than [`LOG_EVERY`](Self::LOG_EVERY) ago.
    fn log_refusal(&self, peer: PeerName) {
        let now = Instant::now();
        let unlogged = {
            let mut refusals = lock(&self.refusals);
            let (next, unlogged) = &mut *refusals;
            if now < *next {
                *unlogged += 1;
                debug!(name = %peer, "refused: over the per-address limit");
                return;
            }
            *next = now + Self::LOG_EVERY;
            std::mem::take(unlogged)
        };
        if unlogged == 0 {
            info!(
                name = %peer,
                "refused: {} connections from this address already", self.max
            );
        } else {
            info!(
                name = %peer,
                "refused: {} connections from this address already \
                 ({unlogged} more refusals since the last line)",
                self.max
            );
        }
    }

    /// A slot for one more connection from `ip`, or `None` at the limit.
    fn take(&self, ip: IpAddr) -> Option<IpSlot> {
        let ip = ip.to_canonical();
        let mut counts = lock(&self.counts);
        let count = counts.entry(ip).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            ip,
            counts: self.counts.clone(),
        })
    }
}

/// One connection's place in the per-IP count; given back on drop.
struct IpSlot {
    ip: IpAddr,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Locks a mutex, carrying on if a panicking thread poisoned it: every
/// structure guarded here stays consistent between statements.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
