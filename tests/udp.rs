//! `udp://` over real sockets: every datagram answered with exactly its
//! bytes up to 65,507, the reflection guard (privileged source ports, the
//! rate limit), and the client's one-datagram-per-message conversation,
//! retry and timeout.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use common::*;
use echoes::transport::udp_guard::UdpResult;
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

#[test]
fn client_sends_one_datagram_per_message_and_checks_each() {
    let server = ServerProc::start(&["-l", "udp://127.0.0.1:0", "-v"]);
    assert!(
        server
            .lines()
            .iter()
            .any(|l| l.starts_with("main: starting up on udp://127.0.0.1 port ")),
        "{:?}",
        server.lines()
    );
    let connect = format!("udp://127.0.0.1:{}", server.port);
    let out = run(
        Command::new(CLIENT).args(["-c", &connect, "one", "two", "three"]),
        b"",
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "{}", out.stderr);
    let transcript: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        transcript[1..],
        [
            "echo_client: sending b'one'",
            "echo_client: received b'one'",
            "echo_client: sending b'two'",
            "echo_client: received b'two'",
            "echo_client: sending b'three'",
            "echo_client: received b'three'",
            "echo_client: closing",
        ]
    );
    assert_eq!(
        server.lines_with("sent b'").len(),
        3,
        "{:?}",
        server.lines()
    );

    let data = pattern(9, 300_000);
    let out = run(
        Command::new(CLIENT).args(["-c", &connect, "--stdin"]),
        &data,
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stdout == data, "--stdin over udp is not byte exact");
}

#[test]
fn client_resends_once_then_times_out() {
    // A UDP socket that reads but never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let out = run(
        Command::new(CLIENT).args([
            "-c",
            &format!("udp://127.0.0.1:{port}"),
            "--timeout",
            "200ms",
            "ping",
        ]),
        b"",
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("timed out"), "{}", out.stderr);
    silent.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 8];
    let mut got = 0;
    while silent.recv_from(&mut buf).is_ok() {
        got += 1;
    }
    assert_eq!(got, 2, "the message and one resend");
}

#[test]
fn client_reports_a_wrong_reply_and_a_refused_port() {
    // A server that answers every datagram with its bytes reversed.
    let liar = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = liar.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while let Ok((n, from)) = liar.recv_from(&mut buf) {
            buf[..n].reverse();
            let _ = liar.send_to(&buf[..n], from);
        }
    });
    let out = run(
        Command::new(CLIENT).args(["-c", &format!("udp://127.0.0.1:{port}"), "aba", "xyz"]),
        b"",
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("echo mismatch at byte 3"),
        "{}",
        out.stderr
    );

    // Nobody there: the ICMP port unreachable comes back as refused.
    let out = run(
        Command::new(CLIENT).args([
            "-c",
            &format!("udp://127.0.0.1:{}", free_port()),
            "--timeout",
            "5s",
        ]),
        b"",
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("refused"), "{}", out.stderr);
}
