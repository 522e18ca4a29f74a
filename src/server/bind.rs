//! Binding: every `--listen` address becomes an [`Endpoint`], with one
//! socket per shard (`SO_REUSEPORT`) for TCP, TLS and UDP, and one for a
//! Unix path; sockets passed by systemd are adopted in [`super::adopt`].
//! Nothing is registered with a runtime here: each shard registers the
//! sockets it is given on its own.

use std::io;
use std::net::SocketAddr;
use std::path::Path;

use tracing::{debug, info};

use super::config::ServerConfig;
use super::endpoint::{BoundAddr, Endpoint, RawSocket, fmt_host_port, scheme_prefix};
use super::error::ServerError;
use super::{adopt, group};
use crate::activation::InheritedSocket;
use crate::addr::{Addr, Transport};
use crate::proxy::ProxyMode;
use crate::transport::{tcp, unix};

/// Every endpoint of `config` (or the sockets systemd passed, when there
/// are any), and the metrics page's listeners.
pub(super) async fn bind_all(
    config: &ServerConfig,
    inherited: Vec<InheritedSocket>,
) -> Result<(Vec<Endpoint>, MetricsListeners), ServerError> {
    let endpoints = if inherited.is_empty() {
        let mut endpoints = Vec::new();
        for listen in &config.listen {
            let proxy = listen.proxy_mode(config.proxy.mode);
            let bound = bind_addr(&listen.addr, config.threads).await?;
            endpoints.extend(bound.into_iter().map(|e| Endpoint { proxy, ..e }));
        }
        endpoints
    } else {
        adopt::adopt_all(inherited, config.threads, config.proxy.mode)?
    };
    let metrics = match &config.metrics {
        Some(addr) => bind_metrics(addr).await?,
        None => Vec::new(),
    };
    Ok((endpoints, metrics))
}

/// The metrics page's listeners, and where each is.
pub(super) type MetricsListeners = Vec<(tokio::net::TcpListener, SocketAddr)>;

/// Binds one `--listen` address for `shards` shards: every address a
/// host resolves to, or a Unix socket path.
async fn bind_addr(addr: &Addr, shards: usize) -> Result<Vec<Endpoint>, ServerError> {
    let (transport, host) = match addr {
        Addr::Unix(path) => return Ok(vec![bind_unix(addr, path)?]),
        Addr::Inet {
            transport, host, ..
        }
        | Addr::Web {
            transport, host, ..
        } => (transport.listener(), host),
    };
    let bound = bind_inet(addr, |target| group::bind_group(transport, target, shards)).await?;
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
    for (sockets, l) in bound.iter().filter(|(s, _)| s.len() > 1) {
        debug!(
            name = "main",
            "{prefix}{} port {}: a socket for each of {} shards",
            l.ip(),
            l.port(),
            sockets.len()
        );
    }
    Ok(bound
        .into_iter()
        .map(|(sockets, local)| Endpoint {
            transport,
            bound: BoundAddr::Inet(local),
            sockets,
            file: None,
            proxy: ProxyMode::Off,
        })
        .collect())
}

/// Binds a Unix socket path, replacing a crashed run's file. One socket,
/// whatever the shards: Unix sockets have no `SO_REUSEPORT`.
fn bind_unix(addr: &Addr, path: &Path) -> Result<Endpoint, ServerError> {
    let (socket, file) = unix::bind(path).map_err(|error| ServerError::Bind {
        addr: addr.to_string(),
        error,
    })?;
    info!(name = "main", "starting up on {addr}");
    Ok(Endpoint {
        transport: Transport::Unix,
        bound: BoundAddr::Unix(path.to_path_buf()),
        sockets: vec![RawSocket::Unix(socket)],
        file: Some(file),
        proxy: ProxyMode::Off,
    })
}

/// Resolves `addr` and binds each address with `bind`. With port 0, the
/// first address picks the port and the others try to share it, so
/// `localhost:0` is one port on ::1 and 127.0.0.1.
async fn bind_inet<T>(
    addr: &Addr,
    bind: impl Fn(SocketAddr) -> io::Result<(T, SocketAddr)>,
) -> Result<Vec<(T, SocketAddr)>, ServerError> {
    let ips = addr.resolve().await?;
    let port = addr.host_port().map_or(0, |(_, port)| port);
    let mut bound: Vec<(T, SocketAddr)> = Vec::new();
    for target in ips {
        let shared_port = bound.first().map_or(port, |(_, l)| l.port());
        let socket = match bind(SocketAddr::new(target.ip(), shared_port)) {
            Err(e) if port == 0 && e.kind() == io::ErrorKind::AddrInUse => bind(target),
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

/// Binds the metrics page's listeners (`addr` is a plain `HOST:PORT`:
/// [`ServerConfig::validate`] saw to it) and logs where it is.
async fn bind_metrics(addr: &Addr) -> Result<MetricsListeners, ServerError> {
    let bound = bind_inet(addr, |target| {
        let std = std::net::TcpListener::from(std::os::fd::OwnedFd::from(tcp::bind(target)?));
        let local = std.local_addr()?;
        Ok((tokio::net::TcpListener::from_std(std)?, local))
    })
    .await?;
    for (_, local) in &bound {
        info!(name = "main", "serving metrics on http://{local}/metrics");
    }
    Ok(bound)
}
