//! A connection's lease on the server, and the one order of its release.
//!
//! A [`Lease`] is what a connection holds besides its socket: its entry
//! in the registry, its limit slots, its count in the metrics gauge. A
//! [`Leased`] value is the lease and the socket (or whatever owns the
//! socket: a TLS stream, an echo loop) as one value, and the only way
//! this server holds an admitted connection. Its fields drop in order, so
//! the registry entry is released before the socket closes however the
//! connection ends (a refused handshake, a panic, an error, shutdown):
//! the registry never holds a descriptor number the kernel could already
//! have given to a new connection. The order is this type's, not a habit
//! of each caller's, and a unit test below pins it.

use std::io;
use std::sync::Arc;

use tokio::io::unix::AsyncFd;

use super::accepted::{Accepted, AcceptedSocket};
use super::limits::{IpSlot, Slots};
use crate::addr::Transport;
use crate::metrics::Metrics;
use crate::transport::{self, OwnedSocket};

/// See the module documentation.
pub(super) struct Lease {
    _entry: super::registry::Entry,
    metrics: Arc<Metrics>,
    transport: Transport,
    _slots: Slots,
}

impl Lease {
    /// The transport the connection is counted under.
    pub(super) fn transport(&self) -> Transport {
        self.transport
    }

    /// The server's counters.
    pub(super) fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.metrics.closed(self.transport);
    }
}

/// A lease and what it is for: see the module documentation.
pub(super) struct Leased<T> {
    // Fields drop in order: the lease (and its registry entry) before the
    // socket closes.
    lease: Lease,
    inner: T,
}

impl<T> Leased<T> {
    /// The lease.
    pub(super) fn lease(&self) -> &Lease {
        &self.lease
    }

    /// The socket, or what owns it.
    pub(super) fn inner(&self) -> &T {
        &self.inner
    }

    /// The same, mutably.
    pub(super) fn inner_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// The same lease over what `f` makes of the socket (an echo loop
    /// that owns it, say).
    pub(super) fn map<U>(self, f: impl FnOnce(T) -> U) -> Leased<U> {
        let Leased { lease, inner } = self;
        Leased {
            lease,
            inner: f(inner),
        }
    }
}

/// An accepted connection, leased and registered with this shard's
/// runtime; a TCP one with its peer's address (which only the HTTP
/// reflection reads, and only behind a PROXY header that names no one).
#[cfg_attr(not(feature = "tls"), allow(dead_code))]
pub(super) enum Registered {
    Tcp(Leased<AsyncFd<mio::net::TcpStream>>, std::net::SocketAddr),
    Unix(Leased<AsyncFd<mio::net::UnixStream>>),
}

impl Accepted {
    /// Counts the connection open and leases it, with its per-IP slot:
    /// from here it is one value until it closes.
    pub(super) fn lease(
        self,
        metrics: &Arc<Metrics>,
        ip: Option<IpSlot>,
    ) -> Leased<AcceptedSocket> {
        let Accepted {
            entry,
            permit,
            socket,
            transport,
            proxy: _,
        } = self;
        let slots = (permit.is_some() || ip.is_some()).then(|| Box::new((permit, ip)));
        metrics.opened(transport);
        let lease = Lease {
            _entry: entry,
            metrics: metrics.clone(),
            transport,
            _slots: slots,
        };
        Leased {
            lease,
            inner: socket,
        }
    }
}

impl Leased<AcceptedSocket> {
    /// Registers the socket with this shard's runtime; on failure the
    /// connection closes (its lease first), and the error says why.
    pub(super) fn register(self) -> io::Result<Registered> {
        let Leased { lease, inner } = self;
        Ok(match inner {
            AcceptedSocket::Tcp(stream, addr) => Registered::Tcp(register(lease, stream)?, addr),
            AcceptedSocket::Unix(stream) => Registered::Unix(register(lease, stream)?),
        })
    }
}

fn register<S: OwnedSocket>(lease: Lease, stream: S) -> io::Result<Leased<AsyncFd<S>>> {
    match transport::register_stream(stream) {
        Ok(io) => Ok(Leased { lease, inner: io }),
        Err((stream, e)) => {
            // The same order as a `Leased` drops in.
            drop(lease);
            drop(stream);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::server::registry::Connections;

    /// Drops after the registry entry iff the entry is gone when it drops.
    struct Socket(Arc<Connections>, Arc<AtomicU64>);

    impl Drop for Socket {
        fn drop(&mut self) {
            self.1.store(self.0.open() as u64, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_registry_entry_is_released_before_the_socket_closes() {
        let conns = Arc::new(Connections::default());
        let open_at_close = Arc::new(AtomicU64::new(u64::MAX));
        let lease = Lease {
            _entry: conns.register(-1),
            metrics: Arc::new(Metrics::new()),
            transport: Transport::Tcp,
            _slots: None,
        };
        assert_eq!(conns.open(), 1);
        let leased = Leased {
            lease,
            inner: Socket(conns.clone(), open_at_close.clone()),
        }
        .map(|s| (s, 1u8));
        drop(leased);
        assert_eq!(
            open_at_close.load(Ordering::SeqCst),
            0,
            "the entry outlived the socket"
        );
    }
}
