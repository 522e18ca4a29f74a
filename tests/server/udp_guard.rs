//! The UDP reflection guard under attack, over real sockets on loopback:
//! a flood of forged sources must not lock new clients out, nor let one
//! source past its rate while the table churns; a datagram forged to come
//! from the server's own address must not start a loop; and the rate of a
//! source holds across shards (several `SO_REUSEPORT` sockets, one guard).
//!
//! Forged sources are real: Linux routes all of 127.0.0.0/8 to loopback,
//! so a socket can be bound to any of its 16 million addresses, and
//! `IP_PKTINFO` sets any local source address on a datagram.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;
use echoes::metrics::Metrics;
use echoes::metrics::UdpResult;
use echoes::{Server, ServerConfig, Transport};

/// Datagrams the server has judged so far, whatever became of them.
fn judged(m: &Metrics) -> u64 {
    [
        UdpResult::Answered,
        UdpResult::RefusedPort,
        UdpResult::RefusedBroadcast,
        UdpResult::RefusedRate,
        UdpResult::RefusedSelf,
    ]
    .into_iter()
    .map(|r| m.udp_datagrams(r))
    .sum()
}

async fn start(
    listen: &str,
    rate: u32,
) -> (
    SocketAddr,
    Arc<Metrics>,
    echoes::ShutdownHandle,
    tokio::task::JoinHandle<Result<(), echoes::ServerError>>,
) {
    let mut config = ServerConfig::new(listen.parse().unwrap());
    config.udp_rate(rate);
    let server = Server::bind(config).await.expect("bind");
    let addr = server.socket_addrs(Transport::Udp)[0];
    let metrics = server.stats().metrics().clone();
    let handle = server.shutdown_handle();
    (addr, metrics, handle, tokio::spawn(server.run()))
}

/// The `i`-th forged source address: 127.1.0.0, 127.1.0.1, …
fn forged(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x7f01_0000 + i))
}

/// Sends one datagram from each of `sources` forged addresses, as fast as
/// the server judges them (at most 64 waiting, so none is dropped by a
/// full receive buffer), calling `between(elapsed)` after every 64: it
/// returns how many datagrams of its own it sent to the server meanwhile.
fn flood(server: SocketAddr, m: &Metrics, sources: u32, mut between: impl FnMut(Duration) -> u64) {
    let start = Instant::now();
    let base = judged(m);
    let mut sent = 0u64;
    for i in 0..sources {
        let s = UdpSocket::bind((forged(i), 0)).expect("bind a forged source");
        s.send_to(b"forged", server).expect("send");
        sent += 1;
        if i % 64 == 63 {
            sent += between(start.elapsed());
            wait_for(
                Duration::from_secs(10),
                "the server to judge the flood",
                || judged(m) + 64 >= base + sent,
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_sources_do_not_lock_new_clients_out() {
    // The default rate; 40,000 forged sources, more than any table of the
    // old design (16,384) held, each sending once, as a few MB/s would.
    let (addr, m, shutdown, running) = start("udp://127.0.0.1:0", 1000).await;
    let newcomers = tokio::task::spawn_blocking(move || {
        let mut newcomers = Vec::new();
        let mut next = Duration::ZERO;
        flood(addr, &m, 40_000, |elapsed| {
            // A new legitimate client every 50 ms of the flood.
            if elapsed >= next {
                next = elapsed + Duration::from_millis(50);
                let ip = Ipv4Addr::new(127, 2, 0, newcomers.len() as u8 + 1);
                let s = UdpSocket::bind((ip, 0)).expect("bind a newcomer");
                s.send_to(b"hello", addr).expect("send");
                newcomers.push(s);
                return 1;
            }
            0
        });
        let mut answered = vec![false; newcomers.len()];
        wait_until(Duration::from_secs(5), || {
            for (s, done) in newcomers.iter().zip(&mut answered) {
                s.set_nonblocking(true).unwrap();
                let mut buf = [0u8; 8];
                if let Ok((n, from)) = s.recv_from(&mut buf) {
                    assert_eq!((&buf[..n], from), (&b"hello"[..], addr));
                    *done = true;
                }
            }
            answered.iter().all(|&a| a)
        });
        answered
    })
    .await
    .unwrap();
    assert!(newcomers.len() >= 2, "the flood was too short to test");
    let refused = newcomers.iter().filter(|&&a| !a).count();
    assert_eq!(
        refused,
        0,
        "{refused} of {} new clients were not answered during the flood",
        newcomers.len()
    );
    shutdown.shutdown();
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_stays_within_its_rate_while_the_table_churns() {
    const RATE: u32 = 5;
    let (addr, m, shutdown, running) = start("udp://127.0.0.1:0", RATE).await;
    let (answered, span) = tokio::task::spawn_blocking(move || {
        let base = judged(&m);
        let heavy = UdpSocket::bind("127.3.0.1:0").unwrap();
        let mut first = None;
        let mut sent = 0u64;
        // The heavy source sends up to 100 a second, 20 times its rate,
        // while 40,000 forged sources churn the table around it.
        let mut next = Duration::ZERO;
        flood(addr, &m, 40_000, |elapsed| {
            // One at a time: a burst to catch up could overflow the
            // server's receive buffer.
            if elapsed >= next {
                next = elapsed + Duration::from_millis(10);
                heavy.send_to(b"heavy", addr).unwrap();
                first.get_or_insert_with(Instant::now);
                sent += 1;
                return 1;
            }
            0
        });
        // Every datagram the server judged, it judged between the heavy
        // source's first and now.
        let all = wait_until(Duration::from_secs(10), || {
            judged(&m) == base + 40_000 + sent
        });
        assert!(all, "judged {} of {}", judged(&m) - base, 40_000 + sent);
        let span = first.expect("the heavy source sent").elapsed();
        heavy.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 8];
        let mut answered = 0u32;
        wait_until(Duration::from_millis(300), || {
            while heavy.recv_from(&mut buf).is_ok() {
                answered += 1;
            }
            false
        });
        (answered, span)
    })
    .await
    .unwrap();
    // A burst of one second's worth, then RATE a second.
    let allowed = f64::from(RATE) * (1.0 + span.as_secs_f64());
    assert!(answered >= 1, "the heavy source was never answered");
    assert!(
        f64::from(answered) <= allowed,
        "{answered} answered over {span:?}: more than {allowed}"
    );
    shutdown.shutdown();
    running.await.unwrap().unwrap();
}

/// Sends `data` to `to` from `socket`'s port but with source address
/// `from`, which must be a local address (`IP_PKTINFO`'s `ipi_spec_dst`).
fn send_with_source(socket: &UdpSocket, from: Ipv4Addr, to: SocketAddr, data: &[u8]) {
    let SocketAddr::V4(to) = to else {
        panic!("IPv4 only")
    };
    let dest = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: to.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*to.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    let info = libc::in_pktinfo {
        ipi_ifindex: 0,
        ipi_spec_dst: libc::in_addr {
            s_addr: u32::from(from).to_be(),
        },
        ipi_addr: libc::in_addr { s_addr: 0 },
    };
    // Room for one cmsg holding an in_pktinfo, aligned for cmsghdr.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = &dest as *const libc::sockaddr_in as *mut libc::c_void;
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE only computes a size.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of_val(&info) as u32) } as usize;
    assert!(msg.msg_controllen <= std::mem::size_of_val(&control));
    // SAFETY: msg_control points to `control`, which is large enough for
    // one cmsg of this size (checked above) and aligned for cmsghdr; the
    // first header and its data lie inside it.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::IPPROTO_IP;
        (*cmsg).cmsg_type = libc::IP_PKTINFO;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(&info) as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast(), info);
    }
    // SAFETY: every pointer in `msg` points to a live local above, with the
    // lengths given.
    let n = unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, 0) };
    assert_eq!(
        n,
        data.len() as isize,
        "sendmsg: {}",
        std::io::Error::last_os_error()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_datagram_from_the_servers_own_address_does_not_loop() {
    // No rate limit: nothing else would stop a loop.
    let (addr, m, shutdown, running) = start("udp://127.0.0.1:0", 0).await;
    // A socket with the server's port on another loopback address, sending
    // as if from the server's own address and port.
    let forger = UdpSocket::bind(("127.0.0.2", addr.port())).unwrap();
    send_with_source(&forger, Ipv4Addr::LOCALHOST, addr, b"loop");
    let m2 = m.clone();
    tokio::task::spawn_blocking(move || {
        wait_for(Duration::from_secs(5), "the forged datagram", || {
            judged(&m2) >= 1
        });
        // A loop answers itself some 100,000 times a second.
        std::thread::sleep(Duration::from_millis(300));
    })
    .await
    .unwrap();
    assert_eq!(judged(&m), 1, "the server answered itself");
    assert_eq!(m.udp_datagrams(UdpResult::RefusedSelf), 1);
    assert_eq!(m.udp_datagrams(UdpResult::Answered), 0);
    // The same datagram from the forger's own address is an ordinary one.
    forger.send_to(b"fine", addr).unwrap();
    forger
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 8];
    let (n, from) = forger.recv_from(&mut buf).expect("a reply");
    assert_eq!((&buf[..n], from), (&b"fine"[..], addr));
    shutdown.shutdown();
    running.await.unwrap().unwrap();
}

/// A UDP socket bound to `addr` with `SO_REUSEADDR` or `SO_REUSEPORT`.
fn shared_socket(addr: SocketAddr, reuse_port: bool) -> std::net::UdpSocket {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, None).unwrap();
    if reuse_port {
        s.set_reuse_port(true).unwrap();
    } else {
        s.set_reuse_address(true).unwrap();
    }
    s.set_nonblocking(true).unwrap();
    s.bind(&addr.into()).unwrap();
    s.into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wildcard_socket_does_not_answer_any_local_address_with_its_port() {
    use echoes::fuzzing::{UdpGuard as Guard, serve_udp};
    // A wildcard socket served directly, bound with SO_REUSEADDR so that a
    // forger can take its port on one loopback address.
    let server = shared_socket("0.0.0.0:0".parse().unwrap(), false);
    let port = server.local_addr().unwrap().port();
    let metrics = Arc::new(Metrics::new());
    let serving = tokio::spawn(serve_udp(
        tokio::net::UdpSocket::from_std(server).unwrap(),
        Arc::new(Guard::new(0)),
        metrics.clone(),
    ));
    let forger = shared_socket(SocketAddr::from(([127, 0, 0, 2], port)), false);
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    // From 127.0.0.3, where nobody else has the port: the answer would go
    // to the wildcard socket itself, and loop.
    send_with_source(&forger, Ipv4Addr::new(127, 0, 0, 3), to, b"loop");
    // From the forger's own address, which also holds the port.
    forger.send_to(b"also mine", to).unwrap();
    let m = metrics.clone();
    tokio::task::spawn_blocking(move || {
        wait_for(Duration::from_secs(5), "both datagrams", || judged(&m) >= 2);
        std::thread::sleep(Duration::from_millis(300));
    })
    .await
    .unwrap();
    assert_eq!(judged(&metrics), 2, "the server answered itself");
    assert_eq!(metrics.udp_datagrams(UdpResult::RefusedSelf), 2);
    // Any other port is a peer like any other.
    let peer = UdpSocket::bind("127.0.0.2:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    peer.send_to(b"peer", to).unwrap();
    let mut buf = [0u8; 8];
    let (n, _) = peer.recv_from(&mut buf).expect("a reply");
    assert_eq!(&buf[..n], b"peer");
    serving.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sources_rate_is_one_budget_across_shards() {
    use echoes::fuzzing::{UdpGuard as Guard, serve_udp};
    const RATE: u32 = 5;
    // Two shards: two SO_REUSEPORT sockets on one address, one guard, each
    // with its own counters so that both can be seen to get datagrams.
    let first = shared_socket("127.0.0.1:0".parse().unwrap(), true);
    let addr = first.local_addr().unwrap();
    let second = shared_socket(addr, true);
    let guard = Arc::new(Guard::new(RATE));
    let shards: Vec<Arc<Metrics>> = (0..2).map(|_| Arc::new(Metrics::new())).collect();
    let tasks: Vec<_> = [first, second]
        .into_iter()
        .zip(&shards)
        .map(|(s, m)| {
            let s = tokio::net::UdpSocket::from_std(s).unwrap();
            tokio::spawn(serve_udp(s, guard.clone(), m.clone()))
        })
        .collect();
    let m = shards.clone();
    let (answered, span) = tokio::task::spawn_blocking(move || {
        // One source address, 40 source ports: the kernel spreads them
        // over the two sockets by their hash.
        let start = Instant::now();
        let peers: Vec<UdpSocket> = (0..40)
            .map(|_| {
                let p = UdpSocket::bind("127.0.0.9:0").unwrap();
                p.send_to(b"x", addr).unwrap();
                p
            })
            .collect();
        wait_for(Duration::from_secs(5), "all 40 datagrams", || {
            m.iter().map(|m| judged(m)).sum::<u64>() == 40
        });
        let span = start.elapsed();
        for (k, shard) in m.iter().enumerate() {
            assert!(
                judged(shard) > 0,
                "shard {k} got nothing: no test of sharing"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
        let mut buf = [0u8; 4];
        let answered = peers
            .iter()
            .filter(|p| {
                p.set_nonblocking(true).unwrap();
                p.recv_from(&mut buf).is_ok()
            })
            .count();
        (answered as u32, span)
    })
    .await
    .unwrap();
    let answered_by_shards: u64 = shards
        .iter()
        .map(|m| m.udp_datagrams(UdpResult::Answered))
        .sum();
    assert_eq!(u64::from(answered), answered_by_shards);
    // One burst for the address, not one per shard: all 40 were judged
    // within `span`.
    let allowed = f64::from(RATE) * (1.0 + span.as_secs_f64());
    assert!(
        answered >= RATE && f64::from(answered) <= allowed,
        "{answered} answered in {span:?}"
    );
    for t in tasks {
        t.abort();
    }
}
