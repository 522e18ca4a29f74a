//! Limits and timeouts, attacked over real sockets against the real binary:
//! `--max-connections` (the rest wait in the backlog, served as others
//! close), `--max-connections-per-ip` (one flooding host is refused, with
//! rate-limited logs, and the others are served) and `--idle-timeout`
//! (silent peers are closed and logged, slow but live ones are not).

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use crate::support::*;

/// Whether the server has not answered `conn` for `wait`: the read times
/// out, rather than giving data, end of stream or a reset.
fn is_waiting(conn: &mut TcpStream, wait: Duration) -> bool {
    conn.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 64];
    matches!(conn.read(&mut buf), Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut))
}

/// Whether the server closed `conn` (end of stream or reset) within `timeout`.
fn is_closed(conn: &mut TcpStream, timeout: Duration) -> bool {
    conn.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = [0u8; 64];
    match conn.read(&mut buf) {
        Ok(0) => true,
        Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        Ok(_) => false,
    }
}

/// One socket's backlog, oldest first: with several shards, each shard's
/// socket is served oldest first, and the shards in the order they found
/// a connection waiting (tests/server/shards.rs holds the limit across shards).
#[test]
fn max_connections_wait_in_backlog() {
    let server = ServerProc::start(&[
        "-l",
        "127.0.0.1:0",
        "--max-connections",
        "3",
        "--threads",
        "1",
    ]);
    let mut served: Vec<TcpStream> = (0..3)
        .map(|i| {
            let mut c = TcpStream::connect(server.addr()).unwrap();
            ping(
                &mut c,
                format!("served {i}").as_bytes(),
                Duration::from_secs(10),
            )
            .unwrap();
            c
        })
        .collect();
    // Three more connect (the kernel completes the handshake) and send, but
    // the server neither serves nor drops them: they wait in the backlog.
    let mut waiting: Vec<TcpStream> = (0..3)
        .map(|i| {
            let mut c = TcpStream::connect(server.addr()).unwrap();
            c.write_all(format!("waiting {i}").as_bytes()).unwrap();
            c
        })
        .collect();
    for (i, c) in waiting.iter_mut().enumerate() {
        assert!(
            is_waiting(c, Duration::from_millis(300)),
            "connection {i} over the limit was served or dropped"
        );
    }
    assert_eq!(server.count_lines("connection accepted"), 3);
    // As one closes, the oldest waiting one is served, with what it sent.
    drop(served.remove(0));
    let mut got = [0u8; 9];
    waiting[0]
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    waiting[0].read_exact(&mut got).unwrap();
    assert_eq!(&got, b"waiting 0");
    assert!(is_waiting(&mut waiting[1], Duration::from_millis(200)));
    // And the rest once the others close.
    served.clear();
    for (i, c) in waiting.iter_mut().enumerate().skip(1) {
        let want = format!("waiting {i}");
        let mut got = vec![0u8; want.len()];
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.read_exact(&mut got).unwrap();
        assert_eq!(got, want.as_bytes());
    }
    // The echoes are in; the log lines may still be on their way through
    // the pipe to this test's reader thread.
    let accepted = || server.count_lines("connection accepted");
    assert!(
        wait_until(Duration::from_secs(5), || accepted() == 6),
        "{} connections accepted, not 6",
        accepted()
    );
    assert_eq!(server.count_lines("refused"), 0);
}

/// The limit counts connections, not accept loops: with two listening
/// sockets, neither may hold a slot while it waits for a connection, or
/// one socket's peers get fewer slots than the limit.
#[test]
fn max_connections_counts_connections_across_listeners() {
    let server = ServerProc::start(&[
        "-l",
        "127.0.0.1:0",
        "-l",
        "127.0.0.2:0",
        "--max-connections",
        "2",
    ]);
    let mut conns: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(server.addr()).unwrap())
        .collect();
    for (i, c) in conns.iter_mut().enumerate() {
        ping(c, b"both served", Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connection {i} of 2 not served: {e}"));
    }
}

/// Whether a connection was refused: closed at once, or reset before
/// `connect` returned (see [`connect_from`]).
fn refused(conn: std::io::Result<TcpStream>) -> bool {
    match conn {
        Ok(mut c) => is_closed(&mut c, Duration::from_secs(5)),
        Err(e) => e.kind() == ErrorKind::ConnectionReset,
    }
}

#[test]
fn max_connections_per_ip_refuses_only_the_flooding_host() {
    let server = ServerProc::start(&["-l", "127.0.0.1:0", "--max-connections-per-ip", "2"]);
    let addr = server.addr();
    let mut mine: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut c = connect_from([127, 0, 0, 1], addr).expect("connect");
            ping(&mut c, b"mine", Duration::from_secs(10)).unwrap();
            c
        })
        .collect();
    // The third from the same host is closed at once, not left hanging.
    let t0 = Instant::now();
    assert!(refused(connect_from([127, 0, 0, 1], addr)));
    // A flood from that host: all refused, and the log does not flood.
    for _ in 0..200 {
        assert!(refused(connect_from([127, 0, 0, 1], addr)));
    }
    // At most one line a second, the first at once.
    let secs = t0.elapsed().as_secs_f64().ceil() as usize;
    // Another host is served all along.
    let mut other = connect_from([127, 0, 0, 2], addr).expect("connect");
    ping(&mut other, b"other host", Duration::from_secs(10)).unwrap();
    let refusals = server.count_lines("refused");
    assert!(
        (1..=secs + 1).contains(&refusals),
        "{refusals} refusal lines for 201 refusals in {secs}s: not rate limited"
    );
    // And the flooding host is served again once below its limit.
    drop(mine.pop());
    let served_again = wait_until(Duration::from_secs(10), || {
        connect_from([127, 0, 0, 1], addr)
            .is_ok_and(|mut c| ping(&mut c, b"again", Duration::from_secs(2)).is_ok())
    });
    assert!(
        served_again,
        "host not served after one of its connections closed"
    );
}

#[test]
fn idle_timeout_closes_silent_peers_and_logs_it() {
    let server = ServerProc::start(&["-l", "127.0.0.1:0", "--idle-timeout", "300ms"]);
    // One talks, then falls silent; one never says anything.
    let mut talked = TcpStream::connect(server.addr()).unwrap();
    ping(&mut talked, b"hello", Duration::from_secs(10)).unwrap();
    let quiet_since = Instant::now();
    let mut silent = TcpStream::connect(server.addr()).unwrap();
    // One sends without reading until the server stops reading it: the
    // echo is stuck, nothing moves either way, so it is idle too.
    let mut stuck = TcpStream::connect(server.addr()).unwrap();
    stuck
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let chunk = vec![7u8; 64 * 1024];
    while stuck.write(&chunk).is_ok() {}
    assert!(is_closed(&mut talked, Duration::from_secs(10)));
    let took = quiet_since.elapsed();
    assert!(
        took >= Duration::from_millis(250),
        "closed after {took:?} of silence"
    );
    assert!(is_closed(&mut silent, Duration::from_secs(10)));
    assert!(
        wait_until(Duration::from_secs(10), || server
            .count_lines("idle for 300ms")
            == 3),
        "expected 3 idle lines; log:\n{}",
        server.lines().join("\n")
    );
}

#[test]
fn idle_timeout_spares_slow_but_live_peers() {
    let server = ServerProc::start(&["-l", "127.0.0.1:0", "--idle-timeout", "300ms"]);
    let addr = server.addr();
    // A slow writer: one byte every 100 ms for 1.5 s, each echoed.
    let writer = std::thread::spawn(move || {
        let mut c = TcpStream::connect(addr).unwrap();
        for i in 0..15u8 {
            ping(&mut c, &[b'a' + i], Duration::from_secs(10)).expect("slow writer cut off");
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    // A slow reader: sends 6 MiB at once, then reads it back in 64 KiB
    // sips every 20 ms (at most 3 MB/s). The server waits on a full send
    // buffer of megabytes, which turns writable again only after the peer
    // has drained a third of it, longer than the timeout: the peer is live
    // all the same, and the kernel's queues show it.
    let reader = std::thread::spawn(move || {
        let data = pattern(5, 6 << 20);
        let mut c = TcpStream::connect(addr).unwrap();
        let mut w = c.try_clone().unwrap();
        let sent = data.clone();
        let writing = std::thread::spawn(move || {
            w.write_all(&sent)
                .and_then(|()| w.shutdown(Shutdown::Write))
        });
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = Vec::new();
        let mut sip = vec![0u8; 64 * 1024];
        loop {
            match c.read(&mut sip) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&sip[..n]),
                Err(e) => panic!("slow reader cut off after {} bytes: {e}", got.len()),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        writing.join().unwrap().expect("slow reader's writes");
        assert_eq!(got.len(), data.len(), "slow reader: short echo");
        assert!(got == data, "slow reader: echo differs");
    });
    writer.join().expect("slow writer");
    reader.join().expect("slow reader");
    assert_eq!(
        server.count_lines("idle for"),
        0,
        "{}",
        server.lines().join("\n")
    );
}
