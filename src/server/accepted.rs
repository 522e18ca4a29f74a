//! A connection as its accept loop hands it on: registered (so shutdown
//! waits for it), holding its `--max-connections` slot, not yet
//! registered with any runtime, so it may still move to another shard.

use std::net::SocketAddr;

use tokio::sync::OwnedSemaphorePermit;

use super::registry::Entry;
use crate::addr::Transport;
use crate::proxy::ProxyMode;

/// See the module documentation. Admission ([`super::admit`]) turns it
/// into a leased socket, or refuses it by dropping it whole.
pub(super) struct Accepted {
    // Fields drop in order: the registry entry goes before the socket
    // closes, whatever becomes of the connection.
    pub(super) entry: Entry,
    pub(super) permit: Option<OwnedSemaphorePermit>,
    pub(super) socket: AcceptedSocket,
    pub(super) transport: Transport,
    /// Whether its listener wants a PROXY header first.
    pub(super) proxy: ProxyMode,
}

/// The socket of an accepted connection.
pub(super) enum AcceptedSocket {
    Tcp(mio::net::TcpStream, SocketAddr),
    Unix(mio::net::UnixStream),
}
