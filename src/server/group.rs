//! A group of sockets on one address and port, one per shard, sharing it
//! with `SO_REUSEPORT`: the kernel spreads connections (and datagrams)
//! over the group by hashing the addresses and ports of both ends.
//!
//! `SO_REUSEPORT` also lets any other group of the same user join in, so
//! a second server on a taken port would share it silently instead of
//! failing: a probe socket that shares nothing asks first.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

use super::endpoint::RawSocket;
use crate::addr::Transport;
use crate::transport::{tcp, udp};

/// Binds `n` sockets of `transport` at `target`: one plain socket, or a
/// group sharing one port with `SO_REUSEPORT`. Port 0: the first socket
/// picks the port, its siblings join it.
pub(super) fn bind_group(
    transport: Transport,
    target: SocketAddr,
    n: usize,
) -> io::Result<(Vec<RawSocket>, SocketAddr)> {
    let one = |at: SocketAddr, reuse_port: bool| -> io::Result<(RawSocket, SocketAddr)> {
        if transport == Transport::Udp {
            let socket = if reuse_port {
                udp_reuse_port(at)?
            } else {
                udp::bind(at)?
            };
            let local = socket.local_addr()?;
            Ok((RawSocket::Udp(socket), local))
        } else {
            let socket = if reuse_port {
                tcp::bind_reuse_port(at)?
            } else {
                tcp::bind(at)?
            };
            let local = socket.local_addr()?;
            Ok((RawSocket::Tcp(socket), local))
        }
    };
    if n <= 1 {
        let (socket, local) = one(target, false)?;
        return Ok((vec![socket], local));
    }
    if target.port() != 0 {
        // A group would join another server's group on this port (any
        // run by the same user with SO_REUSEPORT) instead of failing:
        // ask first with a socket that shares nothing.
        probe(transport, target)?;
    }
    let (first, local) = one(target, true)?;
    let mut sockets = Vec::with_capacity(n);
    sockets.push(first);
    for _ in 1..n {
        sockets.push(one(local, true)?.0);
    }
    Ok((sockets, local))
}

/// Fails with `AddrInUse` when anything is bound at `target`: a socket
/// without `SO_REUSEPORT` binds (and is then dropped, never listening)
/// only where nobody is.
fn probe(transport: Transport, target: SocketAddr) -> io::Result<()> {
    let (ty, proto) = match transport {
        Transport::Udp => (Type::DGRAM, Protocol::UDP),
        _ => (Type::STREAM, Protocol::TCP),
    };
    let socket = Socket::new(Domain::for_address(target), ty, Some(proto))?;
    if target.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // As the real listener does: TIME_WAIT leftovers do not count.
    socket.set_reuse_address(ty == Type::STREAM)?;
    socket.bind(&target.into())
}

/// As [`udp::bind`], one of a group sharing the port (`SO_REUSEPORT`): the
/// kernel spreads datagrams over the group by source address and port.
fn udp_reuse_port(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ss -ltn` would show it: one listening socket per shard, on one port.
    #[test]
    fn a_group_shares_one_port_and_refuses_a_taken_one() {
        let (sockets, local) = bind_group(Transport::Tcp, "127.0.0.1:0".parse().unwrap(), 3)
            .expect("a group on a free port");
        assert_eq!(sockets.len(), 3);
        for s in &sockets {
            let RawSocket::Tcp(l) = s else {
                panic!("not TCP")
            };
            assert_eq!(l.local_addr().unwrap(), local);
        }
        // Another group on the same port is refused, as one socket would be.
        let e = bind_group(Transport::Tcp, local, 2)
            .err()
            .expect("port in use");
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        let (udp, at) = bind_group(Transport::Udp, "127.0.0.1:0".parse().unwrap(), 2).unwrap();
        assert_eq!(udp.len(), 2);
        let e = bind_group(Transport::Udp, at, 2)
            .err()
            .expect("port in use");
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
    }
}
