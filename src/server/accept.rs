//! The accept loop of one listening socket on its shard, with backoff.
//!
//! A connection slot (`--max-connections`) is taken *before* `accept`,
//! once a connection is waiting, so excess connections wait in the
//! kernel's backlog instead of being accepted and dropped, and a listener
//! with nobody waiting holds no slot. Each accepted connection is
//! registered at once (see [`super::registry`]) and delivered: served on
//! this shard, or handed to another ([`super::shard`]).
//!
//! Errors from `accept` (out of descriptors, …) are retried with
//! exponential backoff, so the server neither exits nor spins: the
//! listener stays readable while the backlog is not empty, and only the
//! backoff's sleep stands between two attempts. They are logged once per
//! burst per address, however many shards share the address.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::accepted::{Accepted, AcceptedSocket};
use super::route::{Route, ShardCtx};
use crate::addr::Transport;
use crate::metrics::ErrorKind;
use crate::proxy::ProxyMode;

/// A listening stream socket, registered with its shard's runtime.
pub(super) enum StreamListener {
    Tcp(AsyncFd<mio::net::TcpListener>),
    Unix(AsyncFd<mio::net::UnixListener>),
}

/// What an accept loop knows of its listening socket.
pub(super) struct Listening {
    pub(super) transport: Transport,
    /// Whether its connections start with a PROXY header.
    pub(super) proxy: ProxyMode,
    /// The address, as the logs name it.
    pub(super) label: Arc<str>,
    /// Accept errors on this address, over all its shards.
    pub(super) burst: Arc<Burst>,
}

/// Accepts on `listener` until `ctx.stop`, delivering each connection
/// along `route`.
pub(super) async fn accept_loop(
    listener: StreamListener,
    listening: Listening,
    route: Route,
    ctx: Arc<ShardCtx>,
) {
    let state = &ctx.state;
    let Listening {
        transport,
        proxy,
        label,
        burst,
    } = listening;
    let mut backoff = AcceptBackoff::new(burst);
    loop {
        let accepted = tokio::select! {
            r = accept(&listener, state.limits.permits.as_ref()) => r,
            () = ctx.stop.cancelled() => return,
        };
        match accepted {
            Ok((socket, permit)) => {
                backoff.succeeded(&label);
                let fd = match &socket {
                    AcceptedSocket::Tcp(s, _) => s.as_raw_fd(),
                    AcceptedSocket::Unix(s) => s.as_raw_fd(),
                };
                // Registered now, not when its task first runs, so a
                // shutdown that starts in between still waits for it.
                let entry = state.conns.register(fd);
                let accepted = Accepted {
                    entry,
                    permit,
                    socket,
                    transport,
                    proxy,
                };
                route.deliver(accepted, &ctx);
            }
            Err(e) if is_transient(&e) => debug!(name = "main", "accept: {e}"),
            Err(e) => {
                state.metrics.error(transport, ErrorKind::Accept);
                backoff.failed(&label, &e, &ctx.stop).await;
            }
        }
    }
}

/// Waits for a connection in the backlog, then for a connection slot,
/// then accepts it.
async fn accept(
    listener: &StreamListener,
    permits: Option<&Arc<Semaphore>>,
) -> io::Result<(AcceptedSocket, Option<OwnedSemaphorePermit>)> {
    match listener {
        StreamListener::Tcp(fd) => {
            let ((s, a), permit) = accept_on(fd, permits, |l| l.accept()).await?;
            Ok((AcceptedSocket::Tcp(s, a), permit))
        }
        StreamListener::Unix(fd) => {
            let ((s, _), permit) = accept_on(fd, permits, |l| l.accept()).await?;
            Ok((AcceptedSocket::Unix(s), permit))
        }
    }
}

async fn accept_on<L: AsRawFd, R>(
    listener: &AsyncFd<L>,
    permits: Option<&Arc<Semaphore>>,
    f: impl Fn(&L) -> io::Result<R>,
) -> io::Result<(R, Option<OwnedSemaphorePermit>)> {
    loop {
        let mut guard = listener.readable().await?;
        let permit = match permits {
            None => None,
            // Readiness stays set after an accept until one fails, so it
            // may be stale: a loop that queued for a slot on it would hold
            // a place in the queue ahead of the shards that have a
            // connection waiting. The slots go to the shards in the order
            // their connections arrived only if each asks the kernel first.
            Some(_) if !waiting(listener.as_raw_fd()) => {
                guard.clear_ready();
                continue;
            }
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

/// Whether a connection waits in the backlog of the listening socket
/// `fd`: one `poll(2)` that does not block.
fn waiting(fd: std::os::fd::RawFd) -> bool {
    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll(2) reads and writes the one pollfd given, and returns
    // at once (timeout 0); a closed `fd` shows as POLLNVAL, not waiting.
    let ready = unsafe { libc::poll(&mut pollfd, 1, 0) };
    ready > 0 && pollfd.revents & libc::POLLIN != 0
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

/// The accept errors of one address, over all the shards that accept on
/// it: a burst is logged when its first shard starts failing and ends when
/// the last one accepts again.
#[derive(Debug, Default)]
pub(super) struct Burst {
    /// Accept loops failing now.
    failing: AtomicUsize,
    /// Failed attempts in this burst, over all of them.
    attempts: AtomicU64,
}

/// Exponential backoff for one accept loop's errors.
struct AcceptBackoff {
    failures: u32,
    burst: Arc<Burst>,
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(5);
    const MAX: Duration = Duration::from_secs(1);

    fn new(burst: Arc<Burst>) -> AcceptBackoff {
        AcceptBackoff { failures: 0, burst }
    }

    async fn failed(&mut self, local: &str, e: &io::Error, stop: &CancellationToken) {
        if self.failures == 0 && self.burst.failing.fetch_add(1, Ordering::Relaxed) == 0 {
            warn!(
                name = "main",
                "accept on {local} failed: {e}; retrying with backoff"
            );
        }
        self.burst.attempts.fetch_add(1, Ordering::Relaxed);
        let delay = Self::FIRST
            .saturating_mul(1 << self.failures.min(10))
            .min(Self::MAX);
        self.failures = self.failures.saturating_add(1);
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stop.cancelled() => {}
        }
    }

    fn succeeded(&mut self, local: &str) {
        if self.failures == 0 {
            return;
        }
        self.failures = 0;
        if self.burst.failing.fetch_sub(1, Ordering::Relaxed) == 1 {
            let attempts = self.burst.attempts.swap(0, Ordering::Relaxed);
            info!(
                name = "main",
                "accepting on {local} again after {attempts} failed attempt(s)"
            );
        }
    }
}
