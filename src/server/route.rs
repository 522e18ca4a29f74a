//! Where an accept loop sends its connections: admitted on the shard that
//! accepted them, or handed to every shard in turn (see [`super::deal`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::accepted::Accepted;
use super::admit::admit;
use super::state::ServerState;

/// What a shard's accept loops share.
pub(super) struct ShardCtx {
    pub(super) state: Arc<ServerState>,
    /// Cancelled when the server stops accepting.
    pub(super) stop: CancellationToken,
    /// This shard's number.
    pub(super) index: usize,
    /// Cancelled once every shard has started: no shard takes a
    /// connection or a datagram before, so that a flood on the first
    /// cannot use up the descriptors a later one needs for its runtime
    /// (seen in CI: "cannot start shard 1: Too many open files").
    pub(super) all_started: CancellationToken,
}

impl ShardCtx {
    /// `serve`, once every shard has started; nothing if the server
    /// stops first.
    pub(super) async fn once_all_started(self: Arc<Self>, serve: impl Future<Output = ()>) {
        tokio::select! {
            () = self.all_started.cancelled() => serve.await,
            () = self.stop.cancelled() => {}
        }
    }
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
    pub(super) next: AtomicUsize,
    pub(super) inboxes: Arc<[mpsc::UnboundedSender<Accepted>]>,
}

impl Route {
    /// Admits `accepted` here, or sends it to the shard whose turn it is.
    pub(super) fn deliver(&self, accepted: Accepted, ctx: &ShardCtx) {
        let Route::Spread(spread) = self else {
            return admit(&ctx.state, accepted);
        };
        let to = spread.next.fetch_add(1, Ordering::Relaxed) % spread.inboxes.len();
        if to == ctx.index {
            return admit(&ctx.state, accepted);
        }
        // A shard's inbox outlives every accept loop; if it is gone
        // anyway, serving here loses nothing.
        if let Err(mpsc::error::SendError(accepted)) = spread.inboxes[to].send(accepted) {
            admit(&ctx.state, accepted);
        }
    }
}
