//! Shards: with N > 1 threads, N OS threads named `echo-shard-I`, each a
//! single-threaded tokio runtime with its own sockets; with 1, the same
//! work as one task on the caller's runtime.
//!
//! Endpoint sockets are dealt out in turn: an endpoint with a socket per
//! shard (every TCP, TLS and UDP address the server binds itself) gives
//! each shard its own, and a connection is served by the shard whose
//! socket the kernel chose for it (`SO_REUSEPORT` hashes the addresses
//! and ports of both ends). An endpoint with fewer sockets than shards (a
//! Unix path, a socket systemd passed once) is accepted on by one loop per
//! socket, which hands its connections to every shard in turn, so they
//! spread without all shards waking for each arrival. Either way a
//! connection lives and dies on one shard. UDP sockets are served where
//! they are dealt: systemd's single UDP socket by one shard.
//!
//! What the shards share is the [`Shared`] state (limits, the registry,
//! the metrics) and the stop and done signals; the caller of
//! [`Server::run`](super::Server::run) waits for the connections of every
//! shard before letting the shards end.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::accept::{self, Accepted, Burst, StreamListener};
use super::bind::{Endpoint, RawSocket};
use super::{ServerError, spawn};
use crate::addr::Transport;
use crate::transport::udp_guard::Guard;
use crate::transport::unix::SocketFile;
use crate::transport::{self, udp};

thread_local! {
    static CURRENT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The shard this thread is, from 0: `None` outside a shard thread (and
/// when a server runs with one thread, on its caller's runtime). With
/// `--log-format json`, each line logged by a shard carries it as `shard`.
pub fn current_shard() -> Option<usize> {
    CURRENT.try_with(Cell::get).ok().flatten()
}

/// What a shard's accept loops share.
pub(super) struct ShardCtx {
    pub(super) shared: Arc<Shared>,
    /// Cancelled when the server stops accepting.
    pub(super) stop: CancellationToken,
    /// This shard's number.
    index: usize,
}

/// Where an accept loop sends its connections.
#[derive(Clone)]
pub(super) enum Route {
    /// Served by the shard that accepted them.
    Here,
    /// Handed to every shard in turn.
    Spread(Arc<Spread>),
}

/// The shards' inboxes, and whose turn it is.
pub(super) struct Spread {
    next: AtomicUsize,
    inboxes: Arc<[mpsc::UnboundedSender<Accepted>]>,
}

impl Route {
    /// Serves `accepted` here, or sends it to the shard whose turn it is.
    pub(super) fn deliver(&self, accepted: Accepted, ctx: &ShardCtx) {
        let Route::Spread(spread) = self else {
            return spawn::serve(&ctx.shared, accepted);
        };
        let to = spread.next.fetch_add(1, Ordering::Relaxed) % spread.inboxes.len();
        if to == ctx.index {
            return spawn::serve(&ctx.shared, accepted);
        }
        // A shard's inbox outlives every accept loop; if it is gone
        // anyway, serving here loses nothing.
        if let Err(mpsc::error::SendError(accepted)) = spread.inboxes[to].send(accepted) {
            spawn::serve(&ctx.shared, accepted);
        }
    }
}

/// One socket dealt to a shard, and what serving it needs.
struct Assignment {
    socket: RawSocket,
    transport: Transport,
    label: Arc<str>,
    route: Route,
    burst: Arc<Burst>,
    guard: Option<Arc<Guard>>,
    /// A Unix socket file, removed once the socket is closed.
    file: Option<SocketFile>,
}

/// Deals the endpoints' sockets to `n` shards; also returns the shards'
/// inboxes, when some endpoint spreads its connections.
fn deal(
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
    for endpoint in endpoints {
        let label: Arc<str> = endpoint.addr().to_string().into();
        let Endpoint {
            transport,
            sockets,
            mut file,
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
        let guard = (transport == Transport::Udp).then(|| Arc::new(Guard::new(udp_rate)));
        for (j, socket) in sockets.into_iter().enumerate() {
            shards[j % n].push(Assignment {
                socket,
                transport,
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

/// One shard, before it runs.
struct Shard {
    ctx: Arc<ShardCtx>,
    plan: Vec<Assignment>,
    inbox: Option<mpsc::UnboundedReceiver<Accepted>>,
    done: CancellationToken,
    started: oneshot::Sender<Result<(), ServerError>>,
    /// Dropped once the shard's listening sockets are closed.
    closed: oneshot::Sender<()>,
}

impl Shard {
    /// Registers the shard's sockets and serves them until `stop`, then
    /// closes them, and keeps its connections served until `done`.
    async fn run(self) {
        let Shard {
            ctx,
            plan,
            inbox,
            done,
            started,
            closed,
        } = self;
        let mut loops = JoinSet::new();
        for assignment in plan {
            if let Err(e) = listen(assignment, &ctx, &mut loops) {
                let _ = started.send(Err(e));
                return;
            }
        }
        if let Some(mut inbox) = inbox {
            let shared = ctx.shared.clone();
            tokio::spawn(async move {
                while let Some(accepted) = inbox.recv().await {
                    spawn::serve(&shared, accepted);
                }
            });
        }
        let _ = started.send(Ok(()));
        ctx.stop.cancelled().await;
        // Accept loops end at once; joining them closes the sockets.
        while loops.join_next().await.is_some() {}
        drop(closed);
        done.cancelled().await;
    }
}

/// Registers one dealt socket with this shard's runtime and starts serving
/// it in `loops`.
fn listen(
    assignment: Assignment,
    ctx: &Arc<ShardCtx>,
    loops: &mut JoinSet<()>,
) -> Result<(), ServerError> {
    let Assignment {
        socket,
        transport,
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
    match socket {
        RawSocket::Tcp(l) => {
            let l = StreamListener::Tcp(transport::register(l).map_err(failed)?);
            let ctx = ctx.clone();
            loops.spawn(accept::accept_loop(l, transport, label, burst, route, ctx));
        }
        RawSocket::Unix(l) => {
            let l = StreamListener::Unix(transport::register(l).map_err(failed)?);
            let ctx = ctx.clone();
            loops.spawn(async move {
                accept::accept_loop(l, transport, label, burst, route, ctx).await;
                // The loop closed the socket; its name goes after it.
                drop(file);
            });
        }
        RawSocket::Udp(s) => {
            let socket = UdpSocket::from_std(s).map_err(failed)?;
            let shared = &ctx.shared;
            let guard = guard.unwrap_or_else(|| Arc::new(Guard::new(shared.udp_rate)));
            let (metrics, stop) = (shared.metrics.clone(), ctx.stop.clone());
            loops.spawn(async move {
                tokio::select! {
                    () = udp::serve(socket, guard, metrics) => {}
                    () = stop.cancelled() => {}
                }
            });
        }
    }
    Ok(())
}

/// The running shards, as [`Server::run`](super::Server::run) controls
/// them. Dropped early (the `run` future dropped), it stops them.
pub(super) struct Running {
    stop: CancellationToken,
    done: CancellationToken,
    closed: Vec<oneshot::Receiver<()>>,
    exited: Vec<oneshot::Receiver<()>>,
}

/// Deals the endpoints to `threads` shards and starts them: on the
/// caller's runtime for 1, on threads of their own otherwise. Resolves
/// once every shard serves its sockets.
pub(super) async fn start(
    endpoints: Vec<Endpoint>,
    threads: usize,
    shared: &Arc<Shared>,
) -> Result<Running, ServerError> {
    let (plans, inboxes) = deal(endpoints, threads, shared.udp_rate);
    let mut running = Running {
        stop: CancellationToken::new(),
        done: CancellationToken::new(),
        closed: Vec::new(),
        exited: Vec::new(),
    };
    let mut started = Vec::new();
    for (index, (plan, inbox)) in plans.into_iter().zip(inboxes).enumerate() {
        let (started_tx, started_rx) = oneshot::channel();
        let (closed_tx, closed_rx) = oneshot::channel();
        let (exited_tx, exited_rx) = oneshot::channel::<()>();
        let ctx = ShardCtx {
            shared: shared.clone(),
            stop: running.stop.clone(),
            index,
        };
        let shard = Shard {
            ctx: Arc::new(ctx),
            plan,
            inbox,
            done: running.done.clone(),
            started: started_tx,
            closed: closed_tx,
        };
        if threads == 1 {
            tokio::spawn(async move {
                shard.run().await;
                drop(exited_tx);
            });
        } else if let Err(error) = spawn_thread(index, shard, exited_tx) {
            running.finish().await;
            return Err(ServerError::Shard {
                shard: index,
                error,
            });
        }
        started.push(started_rx);
        running.closed.push(closed_rx);
        running.exited.push(exited_rx);
    }
    for (shard, rx) in started.into_iter().enumerate() {
        let failed = match rx.await {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(_) => ServerError::Shard {
                shard,
                error: std::io::Error::other("it ended while starting"),
            },
        };
        running.finish().await;
        return Err(failed);
    }
    Ok(running)
}

/// Runs `shard` on a thread of its own, on a runtime of its own.
fn spawn_thread(index: usize, shard: Shard, exited: oneshot::Sender<()>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(format!("echo-shard-{index}"))
        .spawn(move || {
            CURRENT.set(Some(index));
            match crate::runtime::current_thread() {
                Ok(rt) => {
                    rt.block_on(shard.run());
                    // Whatever is left (the inbox) goes before `exited` says so.
                    drop(rt);
                }
                Err(error) => {
                    let error = ServerError::Shard {
                        shard: index,
                        error,
                    };
                    let _ = shard.started.send(Err(error));
                }
            }
            drop(exited);
        })?;
    Ok(())
}

impl Running {
    /// Stops accepting on every shard; resolves once every listening
    /// socket is closed.
    pub(super) async fn close_listeners(&mut self) {
        self.stop.cancel();
        for rx in std::mem::take(&mut self.closed) {
            let _ = rx.await;
        }
    }

    /// Lets the shards end, and waits until they have: call it once no
    /// connection is open, since a shard drops what it still serves.
    pub(super) async fn finish(&mut self) {
        self.stop.cancel();
        self.done.cancel();
        for rx in std::mem::take(&mut self.exited) {
            let _ = rx.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
        self.done.cancel();
    }
}
