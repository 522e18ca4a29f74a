//! Shards: with N > 1 threads, N OS threads named `echo-shard-I`, each a
//! single-threaded tokio runtime with its own sockets; with 1, the same
//! work as one task on the caller's runtime.
//!
//! The endpoints' sockets are dealt to the shards ([`super::deal`]): an
//! endpoint with a socket per shard (every TCP, TLS and UDP address the
//! server binds itself) gives each shard its own, and a connection is
//! served by the shard whose socket the kernel chose for it
//! (`SO_REUSEPORT` hashes the addresses and ports of both ends); one with
//! fewer sockets hands its connections to every shard in turn. Either way
//! a connection lives and dies on one shard.
//!
//! What the shards share is the [`ServerState`] (limits, the registry,
//! the metrics) and the stop and done signals; the caller of
//! [`Server::run`](super::Server::run) waits for the connections of every
//! shard before letting the shards end.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::accepted::Accepted;
use super::admit::admit;
use super::deal::{self, Assignment};
use super::endpoint::Endpoint;
use super::error::ServerError;
use super::route::ShardCtx;
use super::shard_id;
use super::state::ServerState;

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
            if let Err(e) = deal::listen(assignment, &ctx, &mut loops) {
                let _ = started.send(Err(e));
                return;
            }
        }
        if let Some(mut inbox) = inbox {
            let state = ctx.state.clone();
            tokio::spawn(async move {
                while let Some(accepted) = inbox.recv().await {
                    admit(&state, accepted);
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
/// once every shard serves its sockets; none accepts before all have
/// started.
pub(super) async fn start(
    endpoints: Vec<Endpoint>,
    threads: usize,
    state: &Arc<ServerState>,
) -> Result<Running, ServerError> {
    let (plans, inboxes) = deal::deal(endpoints, threads, state.udp_rate);
    let mut running = Running {
        stop: CancellationToken::new(),
        done: CancellationToken::new(),
        closed: Vec::new(),
        exited: Vec::new(),
    };
    let mut started = Vec::new();
    let all_started = CancellationToken::new();
    for (index, (plan, inbox)) in plans.into_iter().zip(inboxes).enumerate() {
        let (started_tx, started_rx) = oneshot::channel();
        let (closed_tx, closed_rx) = oneshot::channel();
        let (exited_tx, exited_rx) = oneshot::channel::<()>();
        let ctx = ShardCtx {
            state: state.clone(),
            stop: running.stop.clone(),
            index,
            all_started: all_started.clone(),
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
    all_started.cancel();
    Ok(running)
}

/// Runs `shard` on a thread of its own, on a runtime of its own.
fn spawn_thread(index: usize, shard: Shard, exited: oneshot::Sender<()>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(format!("echo-shard-{index}"))
        .spawn(move || {
            shard_id::set(index);
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
