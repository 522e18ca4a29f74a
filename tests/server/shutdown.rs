//! SIGINT and SIGTERM: `main: closing server`, no new connections, open
//! ones finish (nothing they sent is lost) within the shutdown timeout,
//! exit 0; a second signal ends it at once.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::*;

/// SIGTERM with 50 transfers in flight: every byte each peer sent, before
/// the signal and after, comes back; then the server exits 0, well within
/// the shutdown timeout.
#[test]
fn transfers_in_flight_finish_after_sigterm() {
    const CLIENTS: u64 = 50;
    let mut server = ServerProc::start(&["-l", "127.0.0.1:0", "--shutdown-timeout", "30s"]);
    let addr = server.addr();
    // Each client sends 1 MiB in pieces, paced so the signal lands mid-transfer.
    let clients = paced_transfers(addr, CLIENTS, 1 << 20, 3);
    server.signal(libc::SIGTERM);
    let signalled = Instant::now();
    server.wait_for_line("main: closing server", Duration::from_secs(5));
    // The listener is closed at once: new connections are refused.
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(addr).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    for (i, c) in clients.into_iter().enumerate() {
        assert!(c.join().unwrap(), "client {i}: echo incomplete or changed");
    }
    let status = server.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));
    let took = signalled.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "exit {took:?} after SIGTERM"
    );
}

/// A second signal while transfers are still running ends the server at
/// once, whatever the shutdown timeout, and the peers see their
/// connections closed rather than hanging.
#[test]
fn a_second_signal_under_load_ends_it_at_once() {
    let mut server = ServerProc::start(&["-l", "127.0.0.1:0", "--shutdown-timeout", "60s"]);
    let addr = server.addr();
    // Ten peers that never finish: they echo a piece every 20 ms until cut
    // off (the server's exit closes every socket, so they all end).
    let peers: Vec<_> = (0..10u64)
        .map(|i| {
            std::thread::spawn(move || {
                let piece = pattern(i, 1000);
                let mut conn = TcpStream::connect(addr).unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let mut back = vec![0u8; piece.len()];
                loop {
                    let echoed = conn
                        .write_all(&piece)
                        .and_then(|()| conn.read_exact(&mut back));
                    match echoed {
                        Ok(()) => assert_eq!(back, piece),
                        // Cut off by the forced shutdown: closed, not hung.
                        Err(e) => return e.kind() != std::io::ErrorKind::WouldBlock,
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        })
        .collect();
    assert!(wait_until(Duration::from_secs(10), || server
        .count_lines("connection accepted")
        == 10));
    server.signal(libc::SIGTERM);
    server.wait_for_line("main: closing server", Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    server.signal(libc::SIGINT);
    let status = server.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    assert!(t0.elapsed() < Duration::from_secs(5));
    let cut_off = peers
        .into_iter()
        .map(|p| p.join().expect("peer"))
        .filter(|&cut| cut)
        .count();
    assert_eq!(cut_off, 10, "every peer sees its connection closed");
}

#[test]
fn open_connections_are_closed_after_the_shutdown_timeout() {
    let mut server = ServerProc::start(&["-l", "127.0.0.1:0", "--shutdown-timeout", "500ms"]);
    let mut idle = TcpStream::connect(server.addr()).unwrap();
    server.wait_for_line("connection accepted", Duration::from_secs(5));
    let t0 = Instant::now();
    server.signal(libc::SIGINT);
    let status = server.wait_exit(Duration::from_secs(10));
    let took = t0.elapsed();
    assert_eq!(status.code(), Some(0));
    assert!(
        took >= Duration::from_millis(450),
        "exited after {took:?}, before the timeout"
    );
    // The idle connection was closed by the server.
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 1];
    assert!(matches!(idle.read(&mut buf), Ok(0) | Err(_)));
}

#[test]
fn a_second_signal_ends_it_at_once() {
    let mut server = ServerProc::start(&["-l", "127.0.0.1:0", "--shutdown-timeout", "60s"]);
    let _idle = TcpStream::connect(server.addr()).unwrap();
    server.wait_for_line("connection accepted", Duration::from_secs(5));
    server.signal(libc::SIGTERM);
    server.wait_for_line("main: closing server", Duration::from_secs(5));
    let t0 = Instant::now();
    server.signal(libc::SIGTERM);
    let status = server.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
fn idle_server_exits_at_once_on_sigint() {
    let mut server = ServerProc::start(&["-l", "127.0.0.1:0"]);
    let t0 = Instant::now();
    server.signal(libc::SIGINT);
    let status = server.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    assert!(t0.elapsed() < Duration::from_secs(3));
    // The line may still be in the pipe to the reader thread.
    server.wait_for_line("main: closing server", Duration::from_secs(5));
}
