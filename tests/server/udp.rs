//! `udp://` over real sockets: every datagram answered with exactly its
//! bytes up to 65,507, and the reflection guard (privileged source ports,
//! the rate limit). The client's side of `udp://` is in
//! tests/client/udp.rs.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use crate::support::*;
use echoes::metrics::UdpResult;
use echoes::{Server, ServerConfig, ServerStats, Transport};

async fn start(
    rate: u32,
) -> (
    SocketAddr,
    ServerStats,
    echoes::ShutdownHandle,
    tokio::task::JoinHandle<Result<(), echoes::ServerError>>,
) {
    let mut config = ServerConfig::new("udp://127.0.0.1:0".parse().unwrap());
    config.udp_rate(rate);
    let server = Server::bind(config).await.expect("bind");
    let addr = server.socket_addrs(Transport::Udp)[0];
    let stats = server.stats();
    let handle = server.shutdown_handle();
    (addr, stats, handle, tokio::spawn(server.run()))
}

fn client_socket(port: u16) -> std::io::Result<UdpSocket> {
    let s = UdpSocket::bind(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    Ok(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_size_up_to_the_largest_datagram_comes_back_exactly() {
    let (addr, stats, shutdown, running) = start(0).await;
    tokio::task::spawn_blocking(move || {
        let s = client_socket(0).unwrap();
        s.connect(addr).unwrap();
        let mut buf = vec![0u8; 70_000];
        for (i, len) in [0usize, 1, 2, 512, 1472, 1473, 9000, 65_000, 65_507]
            .into_iter()
            .enumerate()
        {
            let data = pattern(i as u64, len);
            s.send(&data).unwrap();
            let n = s.recv(&mut buf).expect("a reply");
            assert!(buf[..n] == data[..], "reply to {len} bytes differs");
        }
    })
    .await
    .unwrap();
    let m = stats.metrics();
    assert_eq!(m.udp_datagrams(UdpResult::Answered), 9);
    let snap = m.snapshot(Transport::Udp);
    assert_eq!(snap.received, snap.sent);
    shutdown.shutdown();
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root, to send from ports 7 and 19; .ci/run runs it as root"]
async fn privileged_source_ports_get_no_reply() {
    // SAFETY: geteuid has no side effects.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "binding ports 7 and 19 needs root"
    );
    let (addr, stats, shutdown, running) = start(0).await;
    for (sent, port) in [7u16, 19].into_iter().enumerate() {
        // The port may be held a moment by this test from another checkout.
        let mut bound = client_socket(port);
        for _ in 0..100 {
            if bound.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            bound = client_socket(port);
        }
        let s = bound.unwrap_or_else(|e| panic!("cannot bind port {port}: {e}"));
        s.send_to(b"ping", addr).unwrap();
        let refused = sent as u64 + 1;
        let m = stats.metrics().clone();
        tokio::task::spawn_blocking(move || {
            wait_for(Duration::from_secs(5), "the refusal", || {
                m.udp_datagrams(UdpResult::RefusedPort) == refused
            });
        })
        .await
        .unwrap();
        s.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 16];
        assert!(s.recv_from(&mut buf).is_err(), "port {port} got a reply");
    }
    // The same bytes from an unprivileged port are answered.
    let s = client_socket(0).unwrap();
    s.send_to(b"ping", addr).unwrap();
    let mut buf = [0u8; 16];
    let (n, _) = s.recv_from(&mut buf).expect("a reply");
    assert_eq!(&buf[..n], b"ping");
    shutdown.shutdown();
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_is_rate_limited_others_are_not() {
    let (addr, stats, shutdown, running) = start(5).await;
    let m = stats.metrics().clone();
    tokio::task::spawn_blocking(move || {
        let flood = client_socket(0).unwrap();
        for _ in 0..20 {
            flood.send_to(b"x", addr).unwrap();
        }
        wait_for(Duration::from_secs(5), "all 20 datagrams", || {
            m.udp_datagrams(UdpResult::Answered) + m.udp_datagrams(UdpResult::RefusedRate) == 20
        });
        let answered = m.udp_datagrams(UdpResult::Answered);
        // A burst of one second's worth; a slow machine may refill one more.
        assert!((5..=6).contains(&answered), "{answered} answered");
        // Rate limits are per source: a second source is answered at once.
        let other: SocketAddr = "127.0.0.2:0".parse().unwrap();
        let s = UdpSocket::bind(other).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.send_to(b"y", addr).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(s.recv_from(&mut buf).expect("a reply").0, 1);
    })
    .await
    .unwrap();
    shutdown.shutdown();
    running.await.unwrap().unwrap();
}
