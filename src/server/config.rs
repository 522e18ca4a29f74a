//! What a server is told ([`ServerConfig`]), why it may not start
//! ([`ServerError`]), and the checks and TLS set-up done before binding.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use tokio_rustls::TlsAcceptor;
use tracing::info;

use crate::activation::{InheritedSocket, SocketKind};
use crate::addr::{Addr, Transport};
use crate::http::HttpConfig;
use crate::proxy::ProxySettings;
use crate::transport::tls::{self, CertSource, TlsServerSettings};
use crate::transport::udp_guard;

/// The default largest single read: one 64 KiB buffer per shard thread,
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
    /// Shards: with 1 (the default) everything runs on the runtime that
    /// calls [`Server::run`](super::Server::run); with N > 1, N threads,
    /// each a single-threaded runtime with its own socket per address (see
    /// [`crate::server`]). `echo-server` asks for one per core.
    pub threads: usize,
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
            threads: 1,
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
    /// A shard's thread or runtime could not be started.
    #[error("cannot start shard {shard}: {error}")]
    Shard {
        /// Which shard, from 0.
        shard: usize,
        /// The system's error.
        error: io::Error,
    },
}

/// The number of shards to use by default: one per core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The checks that need no socket: each failure a [`ServerError::Config`].
pub(super) fn check(
    config: &ServerConfig,
    inherited: &[InheritedSocket],
) -> Result<(), ServerError> {
    if config.read_size == 0 {
        return Err(ServerError::Config(
            "the read size must be at least 1 byte".into(),
        ));
    }
    // Absurd values are refused, not panicked on (a semaphore has at
    // most 2^61 permits) nor allocated per shard.
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
    if !(1..=crate::cli::MAX_THREADS).contains(&config.threads) {
        return Err(ServerError::Config(format!(
            "the server needs 1 to {} threads",
            crate::cli::MAX_THREADS
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
    Ok(())
}

/// The TLS acceptors, when some listener needs one: the plain one, and
/// the same certificate offering `h2` and `http/1.1` by ALPN for
/// `https://`. Logs the certificate's fingerprint.
pub(super) fn tls_acceptors(
    config: &ServerConfig,
    inherited: &[InheritedSocket],
) -> Result<Option<(TlsAcceptor, TlsAcceptor)>, ServerError> {
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
    match (&config.tls, wants_tls) {
        (None, Some(scheme)) => Err(ServerError::Config(format!(
            "{scheme}:// needs a certificate: --tls-cert and --tls-key, or --tls-self-signed"
        ))),
        (Some(settings), Some(_)) => {
            let names = certificate_names(&config.listen, inherited);
            let server_tls = tls::server_config(settings, &names)?;
            let how = match settings.cert {
                CertSource::SelfSigned => " (self-signed)",
                CertSource::Files { .. } => "",
            };
            info!(
                name = "main",
                "TLS certificate{how} SHA-256 fingerprint {}", server_tls.fingerprint
            );
            let https = tls::with_alpn(&server_tls.acceptor, &[b"h2", b"http/1.1"]);
            Ok(Some((server_tls.acceptor, https)))
        }
        (_, None) => Ok(None),
    }
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
