//! Dealing an endpoint's sockets to the shards, and what each shard does
//! with the ones it is dealt.
//!
//! An endpoint with at least a socket per shard gives each shard its own
//! (socket j to shard j mod N), and its connections stay where they are
//! accepted ([`Route::Here`]). One with fewer sockets than shards (a Unix
//! path, a socket systemd passed once) has one accept loop per socket, on
//! shards 0, 1, …, each handing its connections to every shard in turn
//! through the shards' inboxes ([`Route::Spread`]): no shard wakes for a
//! connection it does not get, which sharing one socket among all the
//! shards' event loops would cost. UDP sockets are served where they are
//! dealt: systemd's single UDP socket by one shard.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::accept::{self, Burst, Listening, StreamListener};
use super::accepted::Accepted;
use super::endpoint::{Endpoint, RawSocket};
use super::error::ServerError;
use super::route::{Route, ShardCtx, Spread};
use crate::addr::Transport;
use crate::proxy::ProxyMode;
use crate::transport::udp_guard::Guard;
use crate::transport::unix::SocketFile;
use crate::transport::{self, udp};

/// One socket dealt to a shard, and what serving it needs.
pub(super) struct Assignment {
    socket: RawSocket,
    transport: Transport,
    proxy: ProxyMode,
    label: Arc<str>,
    route: Route,
    burst: Arc<Burst>,
    /// The server's one UDP guard, for a UDP socket.
    guard: Option<Arc<Guard>>,
    /// A Unix socket file, removed once the socket is closed.
    file: Option<SocketFile>,
}

/// Deals the endpoints' sockets to `n` shards; also returns the shards'
/// inboxes, when some endpoint spreads its connections.
pub(super) fn deal(
    endpoints: Vec<Endpoint>,
    n: usize,
    udp_rate: u32,
) -> (
    Vec<Vec<Assignment>>,
    Vec<Option<mpsc::UnboundedReceiver<Accepted>>>,
) {
    let spreads = endpoints
        .iter()
        .any(|e| e.transport != Transport::Udp && e.sockets.len() < n);
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..n)
        .map(|_| match spreads {
            true => {
                let (tx, rx) = mpsc::unbounded_channel();
                (Some(tx), Some(rx))
            }
            false => (None, None),
        })
        .unzip();
    let inboxes: Arc<[_]> = senders.into_iter().flatten().collect();
    let mut shards: Vec<Vec<Assignment>> = (0..n).map(|_| Vec::new()).collect();
    // One guard for every UDP socket of the server, every shard's: no
    // socket answers another, and a source's rate is one budget.
    let udp = endpoints.iter().any(|e| e.transport == Transport::Udp);
    let guard = udp.then(|| Arc::new(Guard::new(udp_rate)));
    for endpoint in endpoints {
        let label: Arc<str> = endpoint.addr().to_string().into();
        let Endpoint {
            transport,
            sockets,
            mut file,
            proxy,
            ..
        } = endpoint;
        let route = if transport == Transport::Udp || sockets.len() >= n {
            Route::Here
        } else {
            Route::Spread(Arc::new(Spread {
                next: AtomicUsize::new(0),
                inboxes: inboxes.clone(),
            }))
        };
        let burst = Arc::new(Burst::default());
        let guard = guard.clone().filter(|_| transport == Transport::Udp);
        for (j, socket) in sockets.into_iter().enumerate() {
            shards[j % n].push(Assignment {
                socket,
                transport,
                proxy,
                label: label.clone(),
                route: route.clone(),
                burst: burst.clone(),
                guard: guard.clone(),
                file: file.take(),
            });
        }
    }
    (shards, receivers)
}

/// Registers one dealt socket with this shard's runtime and starts serving
/// it in `loops`.
pub(super) fn listen(
    assignment: Assignment,
    ctx: &Arc<ShardCtx>,
    loops: &mut JoinSet<()>,
) -> Result<(), ServerError> {
    let Assignment {
        socket,
        transport,
        proxy,
        label,
        route,
        burst,
        guard,
        file,
    } = assignment;
    let failed = |error| ServerError::Bind {
        addr: label.to_string(),
        error,
    };
    let listening = Listening {
        transport,
        proxy,
        label: label.clone(),
        burst,
    };
    match socket {
        RawSocket::Tcp(l) => {
            let l = StreamListener::Tcp(transport::register(l).map_err(failed)?);
            let go = ctx.clone();
            let ctx = ctx.clone();
            loops.spawn(go.once_all_started(accept::accept_loop(l, listening, route, ctx)));
        }
        RawSocket::Unix(l) => {
            let l = StreamListener::Unix(transport::register(l).map_err(failed)?);
            let go = ctx.clone();
            let ctx = ctx.clone();
            loops.spawn(go.once_all_started(async move {
                accept::accept_loop(l, listening, route, ctx).await;
                // The loop closed the socket; its name goes after it.
                drop(file);
            }));
        }
        RawSocket::Udp(s) => {
            let socket = UdpSocket::from_std(s).map_err(failed)?;
            let state = &ctx.state;
            let guard = guard.unwrap_or_else(|| Arc::new(Guard::new(state.udp_rate)));
            let (metrics, stop) = (state.metrics.clone(), ctx.stop.clone());
            loops.spawn(ctx.clone().once_all_started(async move {
                tokio::select! {
                    () = udp::serve(socket, guard, metrics) => {}
                    () = stop.cancelled() => {}
                }
            }));
        }
    }
    Ok(())
}
