//! `--threads N`: N shards, each with its own socket per address, each
//! connection served by the shard that accepted it; limits global across
//! shards; shutdown that drains every shard. Checked from outside, as a
//! user would: the kernel's socket tables (what `ss -ltn` / `ss -lun`
//! show) and the `shard` field of `--log-format json` lines.

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::support;
use crate::support::*;

/// The shards that logged `message`, as a set.
fn shard_set(server: &ServerProc, message: &str) -> BTreeSet<u64> {
    server.shards_logging(message).into_iter().collect()
}

/// Waits until the server has logged `message` `count` times (the lines
/// may still be in the pipe after the echo).
fn wait_lines(server: &ServerProc, message: &str, count: usize) {
    let logged = || server.shards_logging(message).len();
    assert!(
        wait_until(Duration::from_secs(10), || logged() >= count),
        "{} lines {message:?}, not {count}; log:\n{}",
        logged(),
        server.lines().join("\n")
    );
}

#[test]
fn every_shard_has_its_own_socket_for_every_address() {
    let server = ServerProc::start(&[
        "-l",
        "127.0.0.1:0",
        "-l",
        "udp://127.0.0.1:0",
        "--threads",
        "3",
    ]);
    let udp_line = server.wait_for_line("starting up on udp://", Duration::from_secs(5));
    let udp_port: u16 = udp_line.rsplit("port ").next().unwrap().parse().unwrap();
    assert_eq!(sockets_on_port("tcp", server.port), 3, "TCP listeners");
    assert_eq!(sockets_on_port("udp", udp_port), 3, "UDP sockets");
    // One `starting up` line per address, as with one thread.
    assert_eq!(server.count_lines("starting up"), 2);
}

#[test]
fn a_port_another_server_holds_is_refused_with_shards_too() {
    let first = ServerProc::start(&["-l", "127.0.0.1:0", "--threads", "2"]);
    // Both would set SO_REUSEPORT, and the kernel would let the second
    // join the first's group: the server must notice.
    let out = run(
        &mut server_command(&["-l", &format!("127.0.0.1:{}", first.port), "--threads", "2"]),
        b"",
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("cannot listen on"), "{}", out.stderr);
    assert_eq!(sockets_on_port("tcp", first.port), 2);
}

#[test]
fn connections_spread_over_every_shard() {
    let server = ServerProc::start(&[
        "-l",
        "127.0.0.1:0",
        "-l",
        "udp://127.0.0.1:0",
        "--threads",
        "3",
        "--log-format",
        "json",
    ]);
    // The kernel picks a shard by hashing each connection's addresses and
    // ports: with 48, a shard left out by chance is a 1 in 10^8 event.
    let conns: Vec<TcpStream> = (0..48)
        .map(|i| {
            let mut c = TcpStream::connect(server.addr()).unwrap();
            ping(
                &mut c,
                format!("conn {i}").as_bytes(),
                Duration::from_secs(10),
            )
            .unwrap();
            c
        })
        .collect();
    wait_lines(&server, "connection accepted", 48);
    assert_eq!(
        shard_set(&server, "connection accepted"),
        BTreeSet::from([0, 1, 2]),
        "connections per shard: {:?}",
        server.shards_logging("connection accepted")
    );
    // Each connection is closed on the shard that accepted it.
    drop(conns);
    wait_lines(&server, "closing", 48);
    let mut accepted = server.shards_logging("connection accepted");
    let mut closed = server.shards_logging("closing");
    accepted.sort();
    closed.sort();
    assert_eq!(accepted, closed);
}

#[test]
fn the_connection_limit_holds_across_shards() {
    let server = ServerProc::start(&[
        "-l",
        "127.0.0.1:0",
        "--threads",
        "3",
        "--max-connections",
        "4",
    ]);
    let addr = server.addr();
    // 15 peers at once, so the shards race for the 4 slots.
    let start = Arc::new(Barrier::new(15));
    let peers: Vec<TcpStream> = (0..15)
        .map(|i| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let mut c = TcpStream::connect(addr).unwrap();
                c.write_all(&[i as u8]).unwrap();
                c.set_nonblocking(true).unwrap();
                c
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let mut peers: Vec<(TcpStream, bool)> = peers.into_iter().map(|c| (c, false)).collect();
    // Which peers got their byte back; a dropped peer fails the test.
    let poll = |peers: &mut Vec<(TcpStream, bool)>| {
        for (c, echoed) in peers.iter_mut().filter(|(_, e)| !*e) {
            let mut b = [0u8; 1];
            match c.read(&mut b) {
                Ok(1) => *echoed = true,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                other => panic!("a peer over the limit was dropped: {other:?}"),
            }
        }
        peers.iter().filter(|(_, e)| *e).count()
    };
    assert!(wait_until(Duration::from_secs(10), || poll(&mut peers) >= 4));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(poll(&mut peers), 4, "served at once under a limit of 4");
    assert_eq!(server.count_lines("connection accepted"), 4);
    // As the served close, the waiting are served, never more than 4.
    peers.retain(|(_, echoed)| !echoed);
    assert!(wait_until(Duration::from_secs(10), || poll(&mut peers) >= 4));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(poll(&mut peers), 4, "served after the first 4 closed");
    peers.retain(|(_, echoed)| !echoed);
    while !peers.is_empty() {
        assert!(wait_until(Duration::from_secs(10), || poll(&mut peers) > 0));
        peers.retain(|(_, echoed)| !echoed);
    }
}

#[test]
fn the_per_ip_limit_holds_across_shards() {
    let server = ServerProc::start(&[
        "-l",
        "127.0.0.1:0",
        "--threads",
        "3",
        "--max-connections-per-ip",
        "2",
    ]);
    let addr = server.addr();
    let start = Arc::new(Barrier::new(12));
    // Each peer's connection if it was served; held open until counted.
    let outcomes: Vec<Option<TcpStream>> = (0..12)
        .map(|_| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                // A refusal may reset it before connect returns.
                let mut c = connect_from([127, 0, 0, 2], addr).ok()?;
                ping(&mut c, b"flood", Duration::from_secs(10))
                    .ok()
                    .map(|()| c)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let served = outcomes.iter().filter(|c| c.is_some()).count();
    assert_eq!(served, 2, "one host's connections served over 3 shards");
    let mut other = connect_from([127, 0, 0, 3], addr).expect("connect");
    ping(&mut other, b"another host", Duration::from_secs(10)).unwrap();
}

/// SIGTERM with transfers in flight on every shard: every byte comes back,
/// then the server exits 0.
#[test]
fn shutdown_drains_every_shard() {
    const CLIENTS: u64 = 36;
    let mut server = ServerProc::start(&[
        "-l",
        "127.0.0.1:0",
        "--threads",
        "3",
        "--shutdown-timeout",
        "30s",
        "--log-format",
        "json",
    ]);
    let addr = server.addr();
    // 512 KiB each, the signal after two pieces.
    let clients = paced_transfers(addr, CLIENTS, 512 * 1024, 2);
    wait_lines(&server, "connection accepted", CLIENTS as usize);
    // Every shard has transfers in flight (36 over 3: all on one or two
    // shards is a 1 in 10^6 event).
    assert_eq!(
        shard_set(&server, "connection accepted"),
        BTreeSet::from([0, 1, 2])
    );
    let signalled = Instant::now();
    server.signal(libc::SIGTERM);
    server.wait_for_line("closing server", Duration::from_secs(5));
    for (i, c) in clients.into_iter().enumerate() {
        assert!(c.join().unwrap(), "client {i}: echo incomplete or changed");
    }
    assert_eq!(server.wait_exit(Duration::from_secs(30)).code(), Some(0));
    assert!(signalled.elapsed() < Duration::from_secs(30));
    assert_eq!(shard_set(&server, "closing"), BTreeSet::from([0, 1, 2]));
}

#[test]
fn a_unix_socket_hands_its_connections_to_every_shard() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shards.sock");
    let arg = format!("unix:{}", path.display());
    let server = ServerProc::start_until(
        &mut server_command(&["-l", &arg, "--threads", "3", "--log-format", "json"]),
        "starting up",
    );
    for i in 0..6 {
        let mut c = std::os::unix::net::UnixStream::connect(&path).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let msg = format!("unix {i}");
        c.write_all(msg.as_bytes()).unwrap();
        let mut got = vec![0u8; msg.len()];
        c.read_exact(&mut got).unwrap();
        assert_eq!(got, msg.as_bytes());
    }
    wait_lines(&server, "connection accepted", 6);
    // One accept loop, handing connections out in turn.
    assert_eq!(
        shard_set(&server, "connection accepted"),
        BTreeSet::from([0, 1, 2])
    );
}

/// Over `http://`, every answer names the shard that served it (the
/// `x-echo-shard` header and the reflection's `server.shard`), and new
/// connections reach every shard.
#[test]
fn http_answers_name_the_shard_that_served_them() {
    let server = ServerProc::start(&["-l", "http://127.0.0.1:0", "--threads", "3"]);
    let request = b"GET /where HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let mut seen = BTreeSet::new();
    for _ in 0..48 {
        let raw = support::http::raw_exchange(server.port, request, Duration::from_secs(10));
        let answer = support::http::parse_response(&raw);
        assert_eq!(answer.status, 200);
        let shard: u64 = answer.header("x-echo-shard").unwrap().parse().unwrap();
        assert_eq!(answer.json()["server"]["shard"], shard);
        seen.insert(shard);
    }
    assert_eq!(seen, BTreeSet::from([0, 1, 2]));
}

#[test]
fn threads_flag_sets_the_shard_count() {
    for n in [1usize, 3] {
        let server = ServerProc::start(&["-l", "127.0.0.1:0", "--threads", &n.to_string()]);
        let names = || -> Vec<String> {
            std::fs::read_dir(format!("/proc/{}/task", server.pid()))
                .unwrap()
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .map(|c| c.trim().to_string())
                .collect()
        };
        let shards = || {
            names()
                .iter()
                .filter(|c| c.starts_with("echo-shard-"))
                .count()
        };
        // With one thread the main thread serves; no work-stealing workers ever.
        let want = if n == 1 { 0 } else { n };
        // The shards start once every socket is bound, after `starting up`.
        wait_until(Duration::from_secs(5), || shards() == want);
        let names = names();
        assert_eq!(shards(), want, "--threads {n}: {names:?}");
        assert!(!names.iter().any(|c| c == "tokio-rt-worker"), "{names:?}");
    }
}
