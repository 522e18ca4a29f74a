//! What every shard of one server shares: the echo options, the limits,
//! the registry of open connections, the metrics, and each transport's
//! acceptor.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

#[cfg(feature = "tls")]
use tokio_rustls::TlsAcceptor;

use super::config::ServerConfig;
use super::limits::Limits;
use super::proxy_step::Gate;
use super::registry::Connections;
use crate::echo::EchoOptions;
#[cfg(feature = "http")]
use crate::http::HttpServer;
use crate::metrics::Metrics;

/// State shared by every shard of one server.
pub(super) struct ServerState {
    pub(super) opts: EchoOptions,
    pub(super) shutdown_timeout: Duration,
    /// Every open connection, so shutdown can wait for them or end them.
    pub(super) conns: Arc<Connections>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) limits: Limits,
    #[cfg(feature = "tls")]
    pub(super) tls: Option<TlsAcceptor>,
    /// The same certificate, offering `h2` and `http/1.1` by ALPN.
    #[cfg(feature = "tls")]
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(super) https_tls: Option<TlsAcceptor>,
    /// What `http://` and `https://` connections share.
    #[cfg(feature = "http")]
    pub(super) http: Option<Arc<HttpServer>>,
    #[cfg(feature = "tls")]
    pub(super) tls_handshake_timeout: Duration,
    pub(super) udp_rate: u32,
    /// Numbers Unix peers, which have no address, for `echo_unix_{n}`.
    pub(super) unix_peers: AtomicU64,
    /// The PROXY protocol's header timeout and refusal log.
    pub(super) proxy: Gate,
}

impl ServerState {
    /// The state `config` describes, counting into `metrics`; the TLS
    /// acceptors (`tls://`, then `https://`) made beforehand. HTTP's
    /// state is added by the caller when some listener speaks it.
    pub(super) fn new(
        config: &ServerConfig,
        metrics: Arc<Metrics>,
        #[cfg(feature = "tls")] (tls, https_tls): (Option<TlsAcceptor>, Option<TlsAcceptor>),
    ) -> ServerState {
        ServerState {
            opts: EchoOptions {
                read_size: config.read_size,
                idle_timeout: config.idle_timeout,
                zero_copy: config.zero_copy,
            },
            shutdown_timeout: config.shutdown_timeout,
            conns: Arc::default(),
            metrics,
            limits: Limits::new(config.max_connections, config.max_connections_per_ip),
            #[cfg(feature = "tls")]
            tls,
            #[cfg(feature = "tls")]
            https_tls,
            #[cfg(feature = "http")]
            http: None,
            #[cfg(feature = "tls")]
            tls_handshake_timeout: config.tls_handshake_timeout,
            udp_rate: config.udp_rate,
            unix_peers: AtomicU64::new(0),
            proxy: Gate::new(config.proxy.header_timeout),
        }
    }
}
