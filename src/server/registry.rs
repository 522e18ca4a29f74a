//! The open connections of one server, over all its shards: counted,
//! waited for at shutdown, and closable from outside when the shutdown
//! timeout runs out.
//!
//! A connection is registered by the shard that accepts it, at once, so a
//! connection handed to another shard is counted while it travels, and a
//! shutdown never finds the server drained while one is on its way.
//!
//! Each connection registers its socket descriptor here for as long as it
//! is open. Closing them all is `shutdown(2)` on every registered
//! descriptor: each connection's task then sees end of stream (or an
//! error) at its next step, finishes and logs as usual. This costs one
//! slot of four bytes per connection, not a cancellation handle or a
//! join handle per task, so an idle connection stays small.
//!
//! The registry lock orders removal before close: an [`Entry`] is dropped
//! (removed) before its socket is closed, and `close_all` holds the lock,
//! so it never touches a descriptor number that was closed and reused.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use std::time::Duration;

use tokio::sync::Notify;
use tracing::{info, warn};

use crate::metrics::Metrics;
use crate::units::format_duration;

/// The registry. See the module documentation.
#[derive(Debug, Default)]
pub struct Connections {
    slots: Mutex<Slots>,
    /// The number of registered connections, readable without the lock.
    open: AtomicUsize,
    total: AtomicU64,
    all_closed: Notify,
}

#[derive(Debug, Default)]
struct Slots {
    /// Registered descriptors; `-1` marks a free slot.
    fds: Vec<RawFd>,
    free: Vec<usize>,
}

/// One registered connection; dropping it removes the connection.
#[derive(Debug)]
pub struct Entry {
    conns: Arc<Connections>,
    index: usize,
}

impl Connections {
    /// Registers an open connection's socket. Keep the [`Entry`] for as
    /// long as the socket is open, and drop it before closing the socket.
    pub fn register(self: &Arc<Self>, fd: RawFd) -> Entry {
        let mut slots = self.lock();
        let index = match slots.free.pop() {
            Some(i) => {
                slots.fds[i] = fd;
                i
            }
            None => {
                slots.fds.push(fd);
                slots.fds.len() - 1
            }
        };
        self.open.fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
        Entry {
            conns: self.clone(),
            index,
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections registered since the start.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Resolves once no connection is open.
    pub async fn all_closed(&self) {
        loop {
            let notified = self.all_closed.notified();
            tokio::pin!(notified);
            // Registered as a waiter before the check, so a last close
            // between the check and the await still wakes us.
            notified.as_mut().enable();
            if self.open() == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Shuts down every open connection's socket (both directions), so
    /// each connection ends at its next step.
    pub fn close_all(&self) {
        let slots = self.lock();
        for &fd in slots.fds.iter().filter(|&&fd| fd >= 0) {
            // SAFETY: `fd` is registered, so its socket is still open (an
            // entry is removed, under this lock, before its socket closes).
            // shutdown(2) changes no memory; its error (ENOTCONN for a
            // peer already gone) needs no handling.
            unsafe {
                libc::shutdown(fd, libc::SHUT_RDWR);
            }
        }
    }

    /// Shutdown's wait: up to `timeout` (or until `force` resolves) for
    /// every connection to finish, then closes the rest and waits for them.
    pub async fn drain(&self, timeout: Duration, force: impl Future<Output = ()>) {
        let open = self.open();
        if open > 0 {
            info!(
                name = "main",
                "waiting up to {} for {open} open connection(s)",
                format_duration(timeout)
            );
        }
        let drained = tokio::select! {
            () = self.all_closed() => true,
            () = tokio::time::sleep(timeout) => false,
            () = force => false,
        };
        if !drained {
            warn!(
                name = "main",
                "closing {} connection(s) still open",
                self.open()
            );
            self.close_all();
            self.all_closed().await;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let mut slots = self.conns.lock();
        slots.fds[self.index] = -1;
        slots.free.push(self.index);
        drop(slots);
        if self.conns.open.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.conns.all_closed.notify_waiters();
        }
    }
}

/// A view of a running server's counters. Cheap to clone.
#[derive(Clone)]
pub struct ServerStats {
    pub(super) conns: Arc<Connections>,
    pub(super) metrics: Arc<Metrics>,
}

impl ServerStats {
    /// Connections being served now, over every transport and shard.
    pub fn open_connections(&self) -> usize {
        self.conns.open()
    }
    /// Connections accepted since the server started, over every transport
    /// and shard.
    pub fn total_connections(&self) -> u64 {
        self.conns.total()
    }
    /// Every counter, as the metrics page shows them.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[tokio::test]
    async fn counts_and_reuses_slots() {
        let conns = Arc::new(Connections::default());
        let a = conns.register(100);
        let b = conns.register(101);
        assert_eq!((conns.open(), conns.total()), (2, 2));
        drop(a);
        let c = conns.register(102);
        assert_eq!(c.index, 0, "the freed slot is reused");
        drop((b, c));
        assert_eq!((conns.open(), conns.total()), (0, 3));
        conns.all_closed().await;
    }

    #[tokio::test]
    async fn close_all_ends_blocked_readers() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server_side, _) = listener.accept().unwrap();
        let conns = Arc::new(Connections::default());
        let entry = conns.register(std::os::fd::AsRawFd::as_raw_fd(&server_side));
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 1];
            (&server_side).read(&mut buf).ok()
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        conns.close_all();
        // The blocked read returns (end of stream) instead of waiting forever.
        assert_eq!(reader.join().unwrap(), Some(0));
        let waiting = tokio::spawn({
            let conns = conns.clone();
            async move { conns.all_closed().await }
        });
        drop(entry);
        waiting.await.unwrap();
        drop(client);
    }
}
