//! The server: bind every `--listen` address (or adopt the sockets systemd
//! passed), accept, spawn one echo task per connection, answer datagrams,
//! and shut down gracefully.
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
//! Each listener is one of three kinds: a stream listener whose accepted
//! sockets the kernel reads and writes (TCP, Unix: the fast
//! [`echo_socket`] loop), a TCP listener whose connections first shake
//! hands (TLS: [`echo_stream`]), or a UDP socket answered datagram by
//! datagram ([`udp::serve`]). Each gets its own task; they share the
//! limits, the connection set and the [`Metrics`].
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
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tokio::net::UdpSocket;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::activation::{InheritedSocket, SocketKind};
use crate::addr::{Addr, Transport};
use crate::connections::{Connections, Entry};
use crate::echo::{EchoOptions, EchoSocket, Ending, echo_socket, echo_stream};
use crate::http::{ConnFacts, HttpConfig, HttpServer, TlsFacts};
use crate::metrics::{ByteCounter, ErrorKind, Metrics};
use crate::proxy::accept::{Gate, Take};
use crate::proxy::{ProxyMode, ProxySettings};
use crate::shutdown::ShutdownHandle;
use crate::transport::tls::{self, CertSource, TlsServerSettings};
use crate::transport::udp_guard::{self, Guard};
use crate::transport::unix::SocketFile;
use crate::transport::{self, PeerName, StreamSocket, tcp, udp, unix};
use crate::units::format_duration;

/// The default largest single read: one 256 KiB buffer per worker thread.
/// Reads are at most 64 KiB (the C epoll peer's) until a connection
/// streams, and then up to this, so big transfers take few system calls
/// (see [`crate::echo`]).
pub const DEFAULT_READ_SIZE: usize = 256 * 1024;

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
    /// Echo bulk transfers with `splice(2)` instead of copying them (see
    /// [`crate::splice`]): less server CPU per megabyte, but over loopback
    /// the client then pays more, so it is off by default.
    pub zero_copy: bool,
    /// How long open connections may finish after shutdown begins.
    pub shutdown_timeout: Duration,
    /// The certificate for `tls://` listeners; required when there is one.
    pub tls: Option<TlsServerSettings>,
    /// How long a TLS peer has to complete its handshake.
    pub tls_handshake_timeout: Duration,
    /// UDP replies per second to one source address; 0 for no limit.
    pub udp_rate: u32,
    /// Where to serve Prometheus metrics (`HOST:PORT`, plain HTTP).
    pub metrics: Option<Addr>,
    /// The settings of `http://` and `https://` listeners.
    pub http: HttpConfig,
    /// Which stream listeners expect a PROXY protocol header, and for how
    /// long they wait for it.
    pub proxy: ProxySettings,
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
            zero_copy: false,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            tls: None,
            tls_handshake_timeout: tls::HANDSHAKE_TIMEOUT,
            udp_rate: udp_guard::DEFAULT_RATE,
            metrics: None,
            http: HttpConfig::default(),
            proxy: ProxySettings::default(),
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
    /// A socket could not be bound (port in use, no permission, no such
    /// address, a live server on a unix socket path).
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        /// The address as the user would write it.
        addr: String,
        /// The system's error.
        error: io::Error,
    },
    /// A configuration value is out of range, or settings do not fit together.
    #[error("{0}")]
    Config(String),
    /// The certificate, key or CA could not be used.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// A bound server, ready to [`run`](Server::run).
pub struct Server {
    listeners: Vec<Listener>,
    metrics_listeners: Vec<(tokio::net::TcpListener, SocketAddr)>,
    shared: Arc<Shared>,
    handle: ShutdownHandle,
}

/// One listening socket, what it serves, and where it is.
struct Listener {
    socket: ListenSocket,
    transport: Transport,
    local: Local,
    /// Whether its connections start with a PROXY header.
    proxy: ProxyMode,
}

enum ListenSocket {
    Tcp(AsyncFd<mio::net::TcpListener>),
    /// The file is `None` for a socket systemd made: it removes its own.
    Unix(AsyncFd<mio::net::UnixListener>, Option<SocketFile>),
    Udp(UdpSocket),
}

/// Where a listener is bound.
#[derive(Debug, Clone)]
enum Local {
    Inet(SocketAddr),
    Unix(PathBuf),
}

impl Listener {
    fn addr(&self) -> Addr {
        match &self.local {
            Local::Inet(a) if self.transport.is_web() => Addr::Web {
                transport: self.transport,
                host: a.ip().to_string(),
                port: a.port(),
                path: String::new(),
            },
            Local::Inet(a) => Addr::Inet {
                transport: self.transport,
                host: a.ip().to_string(),
                port: a.port(),
            },
            Local::Unix(p) => Addr::Unix(p.clone()),
        }
    }
}

/// State shared by the accept loops and connection tasks of one server.
struct Shared {
    opts: EchoOptions,
    shutdown_timeout: Duration,
    /// Every open connection, so shutdown can wait for them or end them.
    conns: Arc<Connections>,
    metrics: Arc<Metrics>,
    permits: Option<Arc<Semaphore>>,
    per_ip: Option<PerIpLimit>,
    tls: Option<TlsAcceptor>,
    /// The same certificate, offering `h2` and `http/1.1` by ALPN.
    https_tls: Option<TlsAcceptor>,
    /// What `http://` and `https://` connections share.
    http: Option<Arc<HttpServer>>,
    tls_handshake_timeout: Duration,
    udp_rate: u32,
    /// Numbers Unix peers, which have no address, for `echo_unix_{n}`.
    unix_peers: AtomicU64,
    /// The PROXY protocol's header timeout and refusal log.
    proxy: Gate,
}

/// A view of a running server's counters. Cheap to clone.
#[derive(Clone)]
pub struct ServerStats {
    conns: Arc<Connections>,
    metrics: Arc<Metrics>,
}

impl ServerStats {
    /// Connections being served now, over every transport.
    pub fn open_connections(&self) -> usize {
        self.conns.open()
    }
    /// Connections accepted since the server started, over every transport.
    pub fn total_connections(&self) -> u64 {
        self.conns.total()
    }
    /// Every counter, as the metrics page shows them.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}

impl Server {
    /// Resolves and binds every address of `config`, logging
    /// `starting up on HOST port PORT` for each (`tls://HOST port PORT`,
    /// `udp://HOST port PORT`, `unix:PATH` for the others). With port 0,
    /// every address a host name resolves to gets the same free port when
    /// it can.
    pub async fn bind(config: ServerConfig) -> Result<Server, ServerError> {
        Server::bind_with_handle(config, ShutdownHandle::new()).await
    }

    /// As [`bind`](Server::bind), stopped by an existing `handle` (one
    /// already wired to signals, say).
    pub async fn bind_with_handle(
        config: ServerConfig,
        handle: ShutdownHandle,
    ) -> Result<Server, ServerError> {
        Server::bind_inherited(config, Vec::new(), handle).await
    }

    /// As [`bind_with_handle`](Server::bind_with_handle), but serving
    /// `inherited` sockets (from [`crate::activation::take`]) instead of
    /// `config.listen` when there are any.
    pub async fn bind_inherited(
        config: ServerConfig,
        inherited: Vec<InheritedSocket>,
        handle: ShutdownHandle,
    ) -> Result<Server, ServerError> {
        if config.read_size == 0 {
            return Err(ServerError::Config(
                "the read size must be at least 1 byte".into(),
            ));
        }
        // Absurd values are refused, not panicked on (a semaphore has at
        // most 2^61 permits) nor allocated per worker.
        if config.read_size > crate::cli::MAX_READ_SIZE {
            return Err(ServerError::Config(format!(
                "the read size must be at most {} bytes",
                crate::cli::MAX_READ_SIZE
            )));
        }
        let limits = [config.max_connections, config.max_connections_per_ip];
        if limits.iter().flatten().any(|&n| n > crate::cli::MAX_LIMIT) {
            return Err(ServerError::Config(format!(
                "a connection limit must be at most {}",
                crate::cli::MAX_LIMIT
            )));
        }
        if config.listen.is_empty() && inherited.is_empty() {
            return Err(ServerError::Config("no address to listen on".into()));
        }
        if let Some(a) = config
            .listen
            .iter()
            .find(|a| a.web_path().is_some_and(|p| p != "/"))
        {
            return Err(ServerError::Config(format!(
                "{a}: a listening address takes no path (the server answers every path)"
            )));
        }
        // The scheme of the first listener that needs a certificate.
        let wants_tls = if inherited.is_empty() {
            config
                .listen
                .iter()
                .map(|a| a.transport().listener())
                .find(|t| matches!(t, Transport::Tls | Transport::Https))
        } else {
            inherited
                .iter()
                .any(InheritedSocket::wants_tls)
                .then_some(Transport::Tls)
        };
        let tls = match (&config.tls, wants_tls) {
            (None, Some(scheme)) => {
                return Err(ServerError::Config(format!(
                    "{scheme}:// needs a certificate: --tls-cert and --tls-key, or --tls-self-signed"
                )));
            }
            (Some(settings), Some(_)) => {
                let names = certificate_names(&config.listen, &inherited);
                let server_tls = tls::server_config(settings, &names)?;
                let how = match settings.cert {
                    CertSource::SelfSigned => " (self-signed)",
                    CertSource::Files { .. } => "",
                };
                info!(
                    name = "main",
                    "TLS certificate{how} SHA-256 fingerprint {}", server_tls.fingerprint
                );
                Some(server_tls.acceptor)
            }
            (_, None) => None,
        };
        let mut listeners = Vec::new();
        if inherited.is_empty() {
            for addr in &config.listen {
                let proxy = config.proxy.mode_for(addr);
                let bound = bind_addr(addr).await?;
                listeners.extend(bound.into_iter().map(|l| Listener { proxy, ..l }));
            }
        } else {
            for socket in inherited {
                let listener = adopt(socket)?;
                let proxy = match listener.transport {
                    Transport::Udp => ProxyMode::Off,
                    _ => config.proxy.mode,
                };
                listeners.push(Listener { proxy, ..listener });
            }
        }
        let mut metrics_listeners = Vec::new();
        if let Some(addr) = &config.metrics {
            metrics_listeners = bind_metrics(addr).await?;
        }
        let metrics = Arc::new(Metrics::new());
        let shared = Arc::new(Shared {
            opts: EchoOptions {
                read_size: config.read_size,
                idle_timeout: config.idle_timeout,
                zero_copy: config.zero_copy,
            },
            shutdown_timeout: config.shutdown_timeout,
            conns: Arc::default(),
            metrics: metrics.clone(),
            permits: config.max_connections.map(|n| Arc::new(Semaphore::new(n))),
            per_ip: config.max_connections_per_ip.map(PerIpLimit::new),
            https_tls: tls
                .as_ref()
                .map(|t| tls::with_alpn(t, &[b"h2", b"http/1.1"])),
            http: listeners
                .iter()
                .any(|l| matches!(l.transport, Transport::Http | Transport::Https))
                .then(|| {
                    Arc::new(HttpServer::new(
                        config.http.clone(),
                        metrics,
                        handle.clone(),
                    ))
                }),
            tls,
            tls_handshake_timeout: config.tls_handshake_timeout,
            udp_rate: config.udp_rate,
            unix_peers: AtomicU64::new(0),
            proxy: Gate::new(config.proxy.header_timeout),
        });
        Ok(Server {
            listeners,
            metrics_listeners,
            shared,
            handle,
        })
    }

    /// The addresses actually bound, one per socket, with real ports.
    pub fn local_addrs(&self) -> Vec<Addr> {
        self.listeners.iter().map(Listener::addr).collect()
    }

    /// The bound socket addresses of the plain TCP listeners.
    pub fn tcp_addrs(&self) -> Vec<SocketAddr> {
        self.socket_addrs(Transport::Tcp)
    }

    /// The bound socket addresses of the listeners of `transport` (none
    /// for Unix).
    pub fn socket_addrs(&self, transport: Transport) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter(|l| l.transport == transport)
            .filter_map(|l| match l.local {
                Local::Inet(a) => Some(a),
                Local::Unix(_) => None,
            })
            .collect()
    }

    /// Where the metrics page is served, if it is.
    pub fn metrics_addrs(&self) -> Vec<SocketAddr> {
        self.metrics_listeners.iter().map(|(_, a)| *a).collect()
    }

    /// A handle that stops this server.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.handle.clone()
    }

    /// Counters of this server, readable while it runs.
    pub fn stats(&self) -> ServerStats {
        ServerStats {
            conns: self.shared.conns.clone(),
            metrics: self.shared.metrics.clone(),
        }
    }

    /// Serves until shutdown is asked for on the [`ShutdownHandle`], then
    /// logs `main: closing server`, closes the listeners (removing the
    /// Unix socket files it made), and waits up to the shutdown timeout
    /// (or until forced) for open connections to finish before closing
    /// the rest. The metrics page is served until the end.
    pub async fn run(self) -> Result<(), ServerError> {
        let Server {
            listeners,
            metrics_listeners,
            shared,
            handle,
        } = self;
        let mut scrapes = JoinSet::new();
        for (listener, _) in metrics_listeners {
            scrapes.spawn(crate::metrics::http::serve(
                listener,
                shared.metrics.clone(),
            ));
        }
        let mut accepting = JoinSet::new();
        for listener in listeners {
            accepting.spawn(serve_listener(listener, shared.clone(), handle.clone()));
        }
        handle.wait_shutdown().await;
        info!(name = "main", "closing server");
        // Accept loops end at once on shutdown; joining them closes the
        // listening sockets before we wait for the connections.
        while accepting.join_next().await.is_some() {}
        let open = shared.conns.open();
        if open > 0 {
            info!(
                name = "main",
                "waiting up to {} for {open} open connection(s)",
                format_duration(shared.shutdown_timeout)
            );
        }
        let drained = tokio::select! {
            () = shared.conns.all_closed() => true,
            () = tokio::time::sleep(shared.shutdown_timeout) => false,
            () = handle.wait_force() => false,
        };
        if !drained {
            warn!(
                name = "main",
                "closing {} connection(s) still open",
                shared.conns.open()
            );
            shared.conns.close_all();
            shared.conns.all_closed().await;
        }
        scrapes.shutdown().await;
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

/// The names a self-signed certificate is made for: every `tls://` host
/// that is not a wildcard, and the loopback names, so a local client can
/// check it whichever it connects to.
fn certificate_names(listen: &[Addr], inherited: &[InheritedSocket]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut add = |n: String| {
        if !names.contains(&n) {
            names.push(n);
        }
    };
    for addr in listen {
        if let Some((host, _)) = addr.host_port()
            && matches!(
                addr.transport().listener(),
                Transport::Tls | Transport::Https
            )
            && !host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified())
        {
            add(host.to_string());
        }
    }
    for s in inherited.iter().filter(|s| s.wants_tls()) {
        if let SocketKind::Tcp(a) = s.kind
            && !a.ip().is_unspecified()
        {
            add(a.ip().to_string());
        }
    }
    for n in ["localhost", "127.0.0.1", "::1"] {
        add(n.to_string());
    }
    names
}

/// Binds one `--listen` address: every address a host resolves to, or a
/// Unix socket path.
async fn bind_addr(addr: &Addr) -> Result<Vec<Listener>, ServerError> {
    let (transport, host) = match addr {
        Addr::Unix(path) => return Ok(vec![bind_unix(addr, path)?]),
        Addr::Inet {
            transport, host, ..
        }
        | Addr::Web {
            transport, host, ..
        } => (transport, host),
    };
    // `ws://` is served by an `http://` listener, `wss://` by `https://`.
    let transport = transport.listener();
    let bound = bind_inet(addr, |target| match transport {
        Transport::Udp => {
            let socket = udp::bind(target)?;
            let local = socket.local_addr()?;
            Ok((ListenSocket::Udp(UdpSocket::from_std(socket)?), local))
        }
        _ => {
            let socket = tcp::bind(target)?;
            let local = socket.local_addr()?;
            Ok((ListenSocket::Tcp(transport::register(socket)?), local))
        }
    })
    .await?;
    let prefix = scheme_prefix(transport);
    let first_port = bound.first().map(|(_, l)| l.port());
    if bound.iter().all(|(_, l)| Some(l.port()) == first_port) {
        if let Some(p) = first_port {
            info!(name = "main", "starting up on {prefix}{host} port {p}");
        }
    } else {
        for (_, l) in &bound {
            info!(
                name = "main",
                "starting up on {prefix}{} port {}",
                l.ip(),
                l.port()
            );
        }
    }
    Ok(bound
        .into_iter()
        .map(|(socket, local)| Listener {
            socket,
            transport,
            local: Local::Inet(local),
            proxy: ProxyMode::Off,
        })
        .collect())
}

/// Binds a Unix socket path, replacing a crashed run's file.
fn bind_unix(addr: &Addr, path: &std::path::Path) -> Result<Listener, ServerError> {
    let bind_err = |error| ServerError::Bind {
        addr: addr.to_string(),
        error,
    };
    let (socket, file) = unix::bind(path).map_err(bind_err)?;
    let socket = transport::register(socket).map_err(bind_err)?;
    info!(name = "main", "starting up on {addr}");
    Ok(Listener {
        socket: ListenSocket::Unix(socket, Some(file)),
        transport: Transport::Unix,
        local: Local::Unix(path.to_path_buf()),
        proxy: ProxyMode::Off,
    })
}

/// How the `starting up` line names a transport: plain TCP keeps the
/// seed's bare `HOST port PORT`.
fn scheme_prefix(transport: Transport) -> &'static str {
    match transport {
        Transport::Tcp => "",
        Transport::Tls => "tls://",
        Transport::Udp => "udp://",
        Transport::Unix => "unix:",
        Transport::Http | Transport::Ws => "http://",
        Transport::Https | Transport::Wss => "https://",
    }
}

/// Resolves `addr` and binds each address with `bind`. With port 0, the
/// first socket picks the port and the others try to share it, so
/// `localhost:0` is one port on ::1 and 127.0.0.1.
async fn bind_inet<T>(
    addr: &Addr,
    bind: impl Fn(SocketAddr) -> io::Result<(T, SocketAddr)>,
) -> Result<Vec<(T, SocketAddr)>, ServerError> {
    let Some((host, port)) = addr.host_port() else {
        return Err(ServerError::Config(format!(
            "{addr} is not a host and port"
        )));
    };
    let port = &port;
    let ips = addr.resolve().await.map_err(|error| ServerError::Resolve {
        host: host.to_string(),
        error,
    })?;
    let mut bound: Vec<(T, SocketAddr)> = Vec::new();
    for target in ips {
        let shared_port = bound.first().map_or(*port, |(_, l)| l.port());
        let socket = match bind(SocketAddr::new(target.ip(), shared_port)) {
            Err(e) if *port == 0 && e.kind() == io::ErrorKind::AddrInUse => bind(target),
            other => other,
        }
        .map_err(|error| ServerError::Bind {
            addr: fmt_host_port(&target.ip().to_string(), target.port()),
            error,
        })?;
        bound.push(socket);
    }
    Ok(bound)
}

/// Takes over a socket the service manager passed.
fn adopt(socket: InheritedSocket) -> Result<Listener, ServerError> {
    let wants_tls = socket.wants_tls();
    let InheritedSocket { fd, kind, .. } = socket;
    let err = |what: String| move |error| ServerError::Bind { addr: what, error };
    let listener = match kind {
        SocketKind::Tcp(local) => {
            let transport = if wants_tls {
                Transport::Tls
            } else {
                Transport::Tcp
            };
            let label = fmt_host_port(&local.ip().to_string(), local.port());
            let std = std::net::TcpListener::from(fd);
            // Accepted sockets inherit it, as from the listeners we bind.
            socket2::SockRef::from(&std)
                .set_tcp_nodelay(true)
                .map_err(err(label.clone()))?;
            let socket = transport::register(mio::net::TcpListener::from_std(std))
                .map_err(err(label.clone()))?;
            info!(
                name = "main",
                "starting up on {}{label} (from systemd)",
                scheme_prefix(transport)
            );
            Listener {
                socket: ListenSocket::Tcp(socket),
                transport,
                local: Local::Inet(local),
                proxy: ProxyMode::Off,
            }
        }
        SocketKind::Udp(local) => {
            let label = fmt_host_port(&local.ip().to_string(), local.port());
            let socket =
                UdpSocket::from_std(std::net::UdpSocket::from(fd)).map_err(err(label.clone()))?;
            info!(name = "main", "starting up on udp://{label} (from systemd)");
            Listener {
                socket: ListenSocket::Udp(socket),
                transport: Transport::Udp,
                local: Local::Inet(local),
                proxy: ProxyMode::Off,
            }
        }
        SocketKind::Unix(path) => {
            let path = path.unwrap_or_else(|| PathBuf::from("(unnamed)"));
            let label = format!("unix:{}", path.display());
            let std = std::os::unix::net::UnixListener::from(fd);
            let socket = transport::register(mio::net::UnixListener::from_std(std))
                .map_err(err(label.clone()))?;
            info!(name = "main", "starting up on {label} (from systemd)");
            Listener {
                socket: ListenSocket::Unix(socket, None),
                transport: Transport::Unix,
                local: Local::Unix(path),
                proxy: ProxyMode::Off,
            }
        }
    };
    Ok(listener)
}

/// Binds the metrics page's listeners and logs where it is.
async fn bind_metrics(
    addr: &Addr,
) -> Result<Vec<(tokio::net::TcpListener, SocketAddr)>, ServerError> {
    if addr.transport() != Transport::Tcp {
        return Err(ServerError::Config(format!(
            "--metrics takes HOST:PORT (plain HTTP), not {addr}"
        )));
    }
    let bound = bind_inet(addr, |target| {
        let std: std::net::TcpListener = mio_into_std(tcp::bind(target)?);
        let local = std.local_addr()?;
        Ok((tokio::net::TcpListener::from_std(std)?, local))
    })
    .await?;
    for (_, local) in &bound {
        info!(name = "main", "serving metrics on http://{local}/metrics");
    }
    Ok(bound)
}

fn mio_into_std(l: mio::net::TcpListener) -> std::net::TcpListener {
    std::net::TcpListener::from(std::os::fd::OwnedFd::from(l))
}

fn fmt_host_port(host: &str, port: u16) -> String {
    format!("{host} port {port}")
}

/// Runs one listener until shutdown: the accept loop of a stream listener,
/// or the answer loop of a UDP socket.
async fn serve_listener(listener: Listener, shared: Arc<Shared>, handle: ShutdownHandle) {
    let label = listener.addr().to_string();
    match listener.socket {
        ListenSocket::Udp(socket) => {
            let guard = Arc::new(Guard::new(shared.udp_rate));
            tokio::select! {
                () = udp::serve(socket, guard, shared.metrics.clone()) => {}
                () = handle.wait_shutdown() => {}
            }
        }
        ListenSocket::Tcp(socket) => {
            let socket = StreamListener::Tcp(socket);
            let kind = (listener.transport, listener.proxy);
            accept_loop(&socket, kind, &label, shared, handle).await;
        }
        ListenSocket::Unix(socket, file) => {
            let socket = StreamListener::Unix(socket);
            let kind = (listener.transport, listener.proxy);
            accept_loop(&socket, kind, &label, shared, handle).await;
            // Close the socket before removing its name.
            drop(socket);
            drop(file);
        }
    }
}

enum StreamListener {
    Tcp(AsyncFd<mio::net::TcpListener>),
    Unix(AsyncFd<mio::net::UnixListener>),
}

/// An accepted connection, before it is served.
enum Conn {
    Tcp(mio::net::TcpStream, SocketAddr),
    Unix(mio::net::UnixStream),
    /// A TCP connection on a `tls://` listener, before its handshake.
    /// A TLS stream closes its socket wherever it ends (inside a failed
    /// handshake, say), so the connection registry gets `keep`, a
    /// duplicate descriptor of the socket, which the task holds until
    /// after its entry is gone: the registry never holds a descriptor
    /// number that was closed and could be reused.
    Tls {
        stream: std::net::TcpStream,
        keep: std::net::TcpStream,
        addr: SocketAddr,
    },
}

async fn accept_loop(
    listener: &StreamListener,
    (transport, proxy): (Transport, ProxyMode),
    label: &str,
    shared: Arc<Shared>,
    handle: ShutdownHandle,
) {
    let mut backoff = Backoff::default();
    loop {
        let accepted = tokio::select! {
            r = accept(listener, shared.permits.as_ref()) => r,
            () = handle.wait_shutdown() => return,
        };
        match accepted {
            Ok((conn, permit)) => {
                backoff.succeeded(label);
                spawn_connection(&shared, conn, (transport, proxy), permit);
            }
            Err(e) if is_transient(&e) => debug!(name = "main", "accept: {e}"),
            Err(e) => {
                shared.metrics.error(transport, ErrorKind::Accept);
                backoff.failed(label, &e, &handle).await;
            }
        }
    }
}

/// Waits for a connection in the backlog, then for a connection slot,
/// then accepts it. Connections over the limit wait in the kernel's backlog
/// rather than being accepted and dropped; and a slot is taken only once a
/// connection is there, so a listener with none holds no slot that another
/// listener's peers could use.
async fn accept(
    listener: &StreamListener,
    permits: Option<&Arc<Semaphore>>,
) -> io::Result<(Conn, Option<OwnedSemaphorePermit>)> {
    match listener {
        StreamListener::Tcp(fd) => {
            let ((s, a), permit) = accept_on(fd, permits, |l| l.accept()).await?;
            Ok((Conn::Tcp(s, a), permit))
        }
        StreamListener::Unix(fd) => {
            let ((s, _), permit) = accept_on(fd, permits, |l| l.accept()).await?;
            Ok((Conn::Unix(s), permit))
        }
    }
}

async fn accept_on<L, R>(
    listener: &AsyncFd<L>,
    permits: Option<&Arc<Semaphore>>,
    f: impl Fn(&L) -> io::Result<R>,
) -> io::Result<(R, Option<OwnedSemaphorePermit>)>
where
    L: std::os::fd::AsRawFd,
{
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
        if let Ok(result) = guard.try_io(|l| f(l.get_ref())) {
            return result.map(|r| (r, permit));
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

    async fn failed(&mut self, local: &str, e: &io::Error, handle: &ShutdownHandle) {
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

    fn succeeded(&mut self, local: &str) {
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
    conn: Conn,
    (transport, proxy): (Transport, ProxyMode),
    permit: Option<OwnedSemaphorePermit>,
) {
    let (peer, ip) = match &conn {
        Conn::Tcp(_, addr) | Conn::Tls { addr, .. } => (PeerName::Inet(*addr), Some(addr.ip())),
        Conn::Unix(_) => (
            PeerName::Unix(shared.unix_peers.fetch_add(1, Ordering::Relaxed) + 1),
            None,
        ),
    };
    let ip_slot = match (&shared.per_ip, ip) {
        (Some(limit), Some(ip)) => match limit.take(ip) {
            Some(slot) => Some(slot),
            None => {
                shared.metrics.error(transport, ErrorKind::Limit);
                limit.log_refusal(peer);
                // Reset rather than close: a flood of refusals must not
                // leave the server a TIME_WAIT socket for each.
                if let Conn::Tcp(stream, _) = &conn {
                    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
                }
                return;
            }
        },
        _ => None,
    };
    let slots = (permit.is_some() || ip_slot.is_some()).then(|| Box::new((permit, ip_slot)));
    let conn = match conn {
        // TLS and HTTP streams are owned by rustls and hyper, which close
        // them wherever they end: the registry gets a duplicate.
        Conn::Tcp(stream, addr)
            if matches!(
                transport,
                Transport::Tls | Transport::Http | Transport::Https
            ) =>
        {
            let stream = std::net::TcpStream::from(stream);
            match stream.try_clone() {
                Ok(keep) => Conn::Tls { stream, keep, addr },
                Err(e) => {
                    warn!(name = %peer, "cannot take the connection: {e}");
                    return;
                }
            }
        }
        other => other,
    };
    // Registered now, not when the task first runs, so a shutdown that
    // starts in between still waits for this connection.
    let fd = match &conn {
        Conn::Tcp(s, _) => s.as_raw_fd(),
        Conn::Unix(s) => s.as_raw_fd(),
        Conn::Tls { keep, .. } => keep.as_raw_fd(),
    };
    let open = Open {
        _entry: shared.conns.register(fd),
        metrics: shared.metrics.clone(),
        transport,
        _slots: slots,
    };
    shared.metrics.opened(transport);
    let opts = shared.opts;
    let bytes = shared.metrics.bytes(transport);
    // TODO(merge): http:// and https:// listeners take the header too, in
    // the port to shards.
    if proxy != ProxyMode::Off && !transport.is_web() {
        return spawn_proxied(shared, conn, peer, proxy, open, bytes);
    }
    match conn {
        Conn::Tls { stream, keep, addr } if transport.is_web() => {
            spawn_http(shared, stream, keep, addr, peer, transport, open);
        }
        Conn::Tls { stream, keep, .. } => {
            let Some(acceptor) = shared.tls.clone() else {
                return;
            };
            let handshake_timeout = shared.tls_handshake_timeout;
            tokio::spawn(async move {
                // Locals drop in reverse order, however the task ends: the
                // entry (in `open`) before the registered duplicate.
                let keep = keep;
                let open = open;
                let Some(mut tls) = handshake(
                    stream,
                    acceptor,
                    handshake_timeout,
                    peer,
                    &open.metrics,
                    Transport::Tls,
                )
                .await
                else {
                    return;
                };
                info!(name = %peer, "connection accepted");
                // The TCP socket under the TLS stream, for the idle timer.
                let queues = || transport::socket_queues(keep.as_raw_fd());
                let result = echo_stream(&mut tls, peer, opts, bytes, queues).await;
                open.ended(peer, result, opts.idle_timeout);
            });
        }
        Conn::Tcp(stream, _) => spawn_echo(stream, peer, opts, bytes, open),
        Conn::Unix(stream) => spawn_echo(stream, peer, opts, bytes, open),
    }
}

/// The hook where an accepted stream on an `http://` or `https://`
/// listener becomes an HTTP connection: its own task shakes hands for
/// TLS (with ALPN), gathers the connection's facts, and hands it to
/// [`HttpServer::serve_connection`] (shard 0 until there are shards),
/// holding `keep` and `open` until it ends.
fn spawn_http(
    shared: &Arc<Shared>,
    stream: std::net::TcpStream,
    keep: std::net::TcpStream,
    addr: SocketAddr,
    peer: PeerName,
    transport: Transport,
    open: Open,
) {
    let Some(http) = shared.http.clone() else {
        return;
    };
    let acceptor = match transport {
        Transport::Https => match shared.https_tls.clone() {
            Some(a) => Some(a),
            None => return,
        },
        _ => None,
    };
    let handshake_timeout = shared.tls_handshake_timeout;
    let idle = shared.opts.idle_timeout;
    tokio::spawn(async move {
        // Dropped in reverse order: the entry (in `open`) before `keep`.
        let keep = keep;
        let open = open;
        let local = keep.local_addr().unwrap_or(addr);
        let mut facts = ConnFacts {
            peer: addr,
            local,
            tls: None,
        };
        let shard = 0;
        let result = match acceptor {
            Some(acceptor) => {
                let Some(tls) = handshake(
                    stream,
                    acceptor,
                    handshake_timeout,
                    peer,
                    &open.metrics,
                    transport,
                )
                .await
                else {
                    return;
                };
                facts.tls = Some(TlsFacts::of(tls.get_ref().1));
                info!(name = %peer, "connection accepted");
                http.serve_connection(tls, facts, peer, shard, idle).await
            }
            None => match tokio::net::TcpStream::from_std(stream) {
                Ok(tcp) => {
                    info!(name = %peer, "connection accepted");
                    http.serve_connection(tcp, facts, peer, shard, idle).await
                }
                Err(e) => Err(e),
            },
        };
        open.ended(peer, result, idle);
    });
}

/// Serves a connection on a listener that speaks the PROXY protocol: in
/// its own task, the header first ([`Gate::admit`]), which names the peer
/// for the log, then the echo as on any other listener. On TCP and Unix
/// the header is read, and what came with it is echoed first; on TLS it
/// is peeked, so that the handshake after it finds the rest in the kernel.
fn spawn_proxied(
    shared: &Arc<Shared>,
    conn: Conn,
    peer: PeerName,
    mode: ProxyMode,
    open: Open,
    bytes: ByteCounter,
) {
    let shared = shared.clone();
    let opts = shared.opts;
    let transport = open.transport;
    macro_rules! proxied_echo {
        ($stream:expr) => {{
            let io = match transport::register($stream) {
                Ok(io) => io,
                Err(e) => {
                    warn!(name = %peer, "cannot register the connection: {e}");
                    return;
                }
            };
            tokio::spawn(async move {
                // Locals drop in reverse order: the registry entry before the socket.
                let io = io;
                let open = open;
                let Some(accepted) = shared
                    .proxy
                    .admit(&io, peer, mode, Take::Read, opts.idle_timeout, transport, &shared.metrics)
                    .await
                else {
                    return;
                };
                info!(name = %accepted.peer, "connection accepted{}", accepted.via());
                let echo = echo_socket(io, accepted.peer, opts, bytes).owing(accepted.first);
                Connection { open, echo }.await;
            });
        }};
    }
    match conn {
        Conn::Tcp(stream, _) => proxied_echo!(stream),
        Conn::Unix(stream) => proxied_echo!(stream),
        Conn::Tls { stream, keep, .. } => {
            let Some(acceptor) = shared.tls.clone() else {
                return;
            };
            tokio::spawn(async move {
                let keep = keep;
                let open = open;
                let io = match transport::register(mio::net::TcpStream::from_std(stream)) {
                    Ok(io) => io,
                    Err(e) => {
                        warn!(name = %peer, "cannot register the connection: {e}");
                        return;
                    }
                };
                let idle = opts.idle_timeout;
                let metrics = &shared.metrics;
                let Some(accepted) = shared
                    .proxy
                    .admit(&io, peer, mode, Take::Peek, idle, transport, metrics)
                    .await
                else {
                    return;
                };
                let stream = std::net::TcpStream::from(std::os::fd::OwnedFd::from(io.into_inner()));
                let timeout = shared.tls_handshake_timeout;
                let Some(mut tls) =
                    handshake(stream, acceptor, timeout, accepted.peer, metrics, transport).await
                else {
                    return;
                };
                info!(name = %accepted.peer, "connection accepted{}", accepted.via());
                let queues = || transport::socket_queues(keep.as_raw_fd());
                let result = echo_stream(&mut tls, accepted.peer, opts, bytes, queues).await;
                open.ended(accepted.peer, result, idle);
            });
        }
    }
}

/// Spawns the fast echo loop for a kernel-driven socket.
fn spawn_echo<S>(stream: S, peer: PeerName, opts: EchoOptions, bytes: ByteCounter, open: Open)
where
    S: StreamSocket + transport::OwnedSocket,
{
    let io = match transport::register(stream) {
        Ok(io) => io,
        Err(e) => {
            warn!(name = %peer, "cannot register the connection: {e}");
            return;
        }
    };
    info!(name = %peer, "connection accepted");
    tokio::spawn(Connection {
        open,
        echo: echo_socket(io, peer, opts, bytes),
    });
}

/// What an open connection holds besides its socket: its place in the
/// registry, its limit slots, and its count in the metrics gauge, all
/// given back when it is dropped.
struct Open {
    _entry: Entry,
    metrics: Arc<Metrics>,
    transport: Transport,
    /// Limit slots; boxed, so that without limits they cost an idle
    /// connection one null pointer.
    _slots: Option<Box<(Option<OwnedSemaphorePermit>, Option<IpSlot>)>>,
}

impl Open {
    /// Logs how a connection ended, and counts an error.
    fn ended(&self, peer: PeerName, result: io::Result<Ending>, idle: Option<Duration>) {
        match result {
            Ok(Ending::Eof) => {}
            Ok(Ending::Idle) => info!(
                name = %peer,
                "idle for {}",
                idle.map(format_duration).unwrap_or_default()
            ),
            Err(e) => {
                self.metrics.error(self.transport, ErrorKind::Io);
                debug!(name = %peer, "connection error: {e}");
            }
        }
        info!(name = %peer, "closing");
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.metrics.closed(self.transport);
    }
}

/// One connection's task on the fast path: its echo loop and what it holds
/// while open.
///
/// A plain struct rather than an `async` block, so that an idle
/// connection's task holds these fields and nothing else.
struct Connection<S: StreamSocket> {
    // Fields drop in order: the registry entry goes before the socket
    // (inside `echo`) closes, however the task ends.
    open: Open,
    echo: EchoSocket<S>,
}

impl<S: StreamSocket> Future for Connection<S> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let result = ready!(Pin::new(&mut self.echo).poll(cx));
        self.open
            .ended(self.echo.peer(), result, self.echo.idle_timeout());
        Poll::Ready(())
    }
}

/// Shakes hands as a TLS server, in the connection's own task and within
/// `timeout`. A peer that fails (plain text, garbage, an untrusted client
/// certificate, silence) costs one log line and a count.
async fn handshake(
    stream: std::net::TcpStream,
    acceptor: TlsAcceptor,
    timeout: Duration,
    peer: PeerName,
    metrics: &Metrics,
    transport: Transport,
) -> Option<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
    let failed = |why: String| {
        metrics.error(transport, ErrorKind::TlsHandshake);
        info!(name = %peer, "TLS handshake failed: {why}");
    };
    let tcp = match tokio::net::TcpStream::from_std(stream) {
        Ok(tcp) => tcp,
        Err(e) => {
            failed(e.to_string());
            return None;
        }
    };
    match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            failed(e.to_string());
            None
        }
        Err(_) => {
            failed(format!("no handshake within {}", format_duration(timeout)));
            None
        }
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

#[cfg(test)]
mod tests {
    /// An idle connection's memory is mostly its task, which tokio rounds
    /// up to 128-byte lines with its header: a field added here costs
    /// every idle connection, so growing past this needs a reason.
    #[test]
    fn an_idle_connection_task_stays_small() {
        let size = std::mem::size_of::<super::Connection<mio::net::TcpStream>>();
        assert!(size <= 192, "the connection task grew to {size} bytes");
    }
}
