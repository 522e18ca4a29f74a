//! The server: bind every `--listen` address (or adopt the sockets systemd
//! passed), accept on every shard, serve each connection on the shard that
//! accepted it, answer datagrams, and shut down gracefully.
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
//! **Shards.** With [`ServerConfig::threads`] at 1 (the library's default)
//! everything runs on the runtime that calls [`Server::run`]. With N > 1,
//! `run` starts N threads, each a single-threaded runtime, a shard, with
//! its own listening socket for every TCP, TLS and HTTP address and its own
//! socket for every UDP address, bound to one port with `SO_REUSEPORT`, so
//! the kernel spreads connections and datagrams over them. A connection
//! lives and dies on the shard that accepted it: no work stealing, no
//! socket whose cache lines wander between cores. A Unix socket, or a
//! socket systemd passed once, has one accept loop that hands connections
//! to the shards in turn. [`current_shard`] says which shard a thread is.
//!
//! Each listener is one of four kinds: a stream listener whose accepted
//! sockets the kernel reads and writes (TCP, Unix: the fast echo loop,
//! driven by readiness alone), a TCP listener whose connections first
//! shake hands (TLS: the generic echo loop over any `AsyncRead +
//! AsyncWrite`), one whose connections speak HTTP ([`crate::http`]), or a UDP socket answered in batches
//! ([`udp::serve`](crate::transport::udp::serve)). All shards share the
//! limits (global, not per shard), the registry of open connections
//! and the [`Metrics`], whose counters are kept per thread and summed
//! when read.
//!
//! **One pipeline.** Every stream connection goes listener → admission →
//! handler: `bind` (with `group`, `adopt`, `endpoint`) makes the
//! listening sockets, `deal` and `shard` give them to the shards,
//! `accept` takes connections off them (with its backoff and the
//! `--max-connections` slot) and `route` delivers each to the shard that
//! serves it; `admit` is the one admission of every transport (peer
//! name, per-IP limit, the [`lease`](self) whose release order is a type,
//! the PROXY header of `proxy_step`, the TLS `handshake`, the
//! `connection accepted` line of `lines`); `handlers` holds what each
//! transport then does. UDP has no connection: its handler is the
//! datagram loop, with its guard as admission. The rest: `config` and
//! `error` (what a server is told, and why it may not start),
//! `state` (what the shards share), `limits`, `registry`, `tcp_conn`
//! (the socket under a library's stream), `tls_setup`, `shard_id`.
//! ARCHITECTURE.md says how a new transport plugs in.

mod accept;
mod accepted;
mod admit;
mod adopt;
mod bind;
mod config;
mod deal;
mod endpoint;
mod error;
mod group;
mod handlers;
#[cfg(feature = "tls")]
mod handshake;
mod lease;
mod limits;
mod lines;
mod listen;
mod proxy_step;
pub(crate) mod registry;
mod route;
mod shard;
mod shard_id;
mod state;
#[cfg(feature = "tls")]
mod tcp_conn;
#[cfg(feature = "tls")]
mod tls_setup;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::task::JoinSet;
use tracing::info;

pub use config::{
    DEFAULT_READ_SIZE, DEFAULT_SHUTDOWN_TIMEOUT, MAX_CONNECTION_LIMIT, MAX_READ_SIZE, MAX_THREADS,
    ServerConfig, check_read_size,
};
pub use error::{ServerConfigError, ServerError};
pub use listen::ListenAddr;
pub use registry::ServerStats;
pub use shard_id::current_shard;

use crate::addr::{Addr, Transport};
#[cfg(feature = "http")]
use crate::http::HttpServer;
use crate::metrics::Metrics;
use crate::shutdown::ShutdownHandle;
use endpoint::{BoundAddr, Endpoint};
use state::ServerState;

/// A bound server, ready to [`run`](Server::run).
pub struct Server {
    endpoints: Vec<Endpoint>,
    metrics_listeners: Vec<(tokio::net::TcpListener, SocketAddr)>,
    state: Arc<ServerState>,
    handle: ShutdownHandle,
    threads: usize,
}

impl Server {
    /// Checks `config` ([`ServerConfig::validate`]), then resolves and
    /// binds every address it gives (or adopts the sockets systemd passed,
    /// when it has some), logging `starting up on HOST port PORT` for each
    /// (`tls://HOST port PORT`, `udp://HOST port PORT`, `unix:PATH` for the
    /// others). With port 0, every address a host name resolves to gets the
    /// same free port when it can, and every shard's socket of an address
    /// the same port.
    pub async fn bind(mut config: ServerConfig) -> Result<Server, ServerError> {
        config.validate()?;
        #[cfg(feature = "tls")]
        let (tls, https_tls) = tls_setup::tls_acceptors(&config)?.unzip();
        let inherited = std::mem::take(&mut config.inherited);
        let (endpoints, metrics_listeners) = bind::bind_all(&config, inherited).await?;
        let handle = config.shutdown.clone();
        let metrics = Arc::new(Metrics::new());
        #[cfg(feature = "http")]
        let http = endpoints
            .iter()
            .any(|e| e.transport.is_web())
            .then(|| HttpServer::new(config.http.clone(), metrics.clone(), handle.clone()));
        #[cfg(feature = "tls")]
        let state = ServerState::new(&config, metrics, (tls, https_tls));
        #[cfg(not(feature = "tls"))]
        let state = ServerState::new(&config, metrics);
        #[cfg(feature = "http")]
        let state = ServerState {
            http: http.map(Arc::new),
            ..state
        };
        let state = Arc::new(state);
        Ok(Server {
            endpoints,
            metrics_listeners,
            state,
            handle,
            threads: config.threads,
        })
    }

    /// The addresses actually bound, one per address (however many shards
    /// have a socket there), with real ports.
    pub fn local_addrs(&self) -> Vec<Addr> {
        self.endpoints.iter().map(Endpoint::addr).collect()
    }

    /// The bound socket addresses of the plain TCP listeners.
    pub fn tcp_addrs(&self) -> Vec<SocketAddr> {
        self.socket_addrs(Transport::Tcp)
    }

    /// The bound socket addresses of the listeners of `transport` (none
    /// for Unix).
    pub fn socket_addrs(&self, transport: Transport) -> Vec<SocketAddr> {
        self.endpoints
            .iter()
            .filter(|e| e.transport == transport)
            .filter_map(|e| match e.bound {
                BoundAddr::Inet(a) => Some(a),
                BoundAddr::Unix(_) => None,
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
            conns: self.state.conns.clone(),
            metrics: self.state.metrics.clone(),
        }
    }

    /// Serves until shutdown is asked for on the [`ShutdownHandle`], then
    /// logs `main: closing server`, closes the listeners of every shard
    /// (removing the Unix socket files it made), and waits up to the
    /// shutdown timeout (or until forced) for the open connections of
    /// every shard to finish before closing the rest. The metrics page is
    /// served until the end. With several threads, the shards run on
    /// threads of their own, and this future only waits for them, without
    /// blocking the runtime it runs on.
    pub async fn run(self) -> Result<(), ServerError> {
        let Server {
            endpoints,
            metrics_listeners,
            state,
            handle,
            threads,
        } = self;
        let mut scrapes = JoinSet::new();
        for (listener, _) in metrics_listeners {
            scrapes.spawn(crate::metrics::http::serve(listener, state.metrics.clone()));
        }
        let mut shards = shard::start(endpoints, threads, &state).await?;
        handle.wait_shutdown().await;
        info!(name = "main", "closing server");
        shards.close_listeners().await;
        state
            .conns
            .drain(state.shutdown_timeout, handle.wait_force())
            .await;
        shards.finish().await;
        scrapes.shutdown().await;
        Ok(())
    }
}
