//! How the logs name the other end of a connection.

use std::fmt;
use std::net::SocketAddr;

/// Who is at the other end of a connection, as the logs name it.
///
/// It formats as the Python example's logger name, `echo_{host}_{port}` (IPv6 without
/// brackets: `echo_::1_64624`) or `echo_unix_{n}`, on demand: a connection
/// costs no string unless a line is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerName {
    /// A TCP, TLS or UDP peer.
    Inet(SocketAddr),
    /// The n-th peer of a Unix socket server (Unix peers have no useful address).
    Unix(u64),
}

impl fmt::Display for PeerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerName::Inet(addr) => write!(f, "echo_{}_{}", addr.ip().to_canonical(), addr.port()),
            PeerName::Unix(n) => write!(f, "echo_unix_{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PeerName;

    #[test]
    fn peer_names_match_the_seed() {
        let v6 = PeerName::Inet("[::1]:64624".parse().unwrap());
        assert_eq!(v6.to_string(), "echo_::1_64624");
        let v4 = PeerName::Inet("127.0.0.1:5".parse().unwrap());
        assert_eq!(v4.to_string(), "echo_127.0.0.1_5");
        let mapped = PeerName::Inet("[::ffff:127.0.0.1]:5".parse().unwrap());
        assert_eq!(mapped.to_string(), "echo_127.0.0.1_5");
        assert_eq!(PeerName::Unix(3).to_string(), "echo_unix_3");
    }
}
