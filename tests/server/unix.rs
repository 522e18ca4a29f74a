//! `unix:PATH` over real sockets: exact echo and half-close on the fast
//! path, the logger names, a stale socket file replaced, a live one
//! refused, and the file removed on shutdown.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Duration;

use crate::support::*;
use echoes::{Addr, Server, ServerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_is_exact_and_half_close_gets_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("echo.sock");
    let mut config = ServerConfig::new(Addr::Unix(path.clone()));
    config.read_size(1000); // many chunks per transfer
    let server = Server::bind(config).await.expect("bind");
    assert_eq!(server.local_addrs(), vec![Addr::Unix(path.clone())]);
    let stats = server.stats();
    let shutdown = server.shutdown_handle();
    let running = tokio::spawn(server.run());

    let got = tokio::task::spawn_blocking(move || {
        let threads: Vec<_> = (0..8u64)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let data = pattern(i, [0, 1, 999, 1000, 1001, 200_000, 65536, 3][i as usize]);
                    let mut conn = UnixStream::connect(&path).expect("connect");
                    conn.set_read_timeout(Some(Duration::from_secs(20)))
                        .unwrap();
                    let mut reader = conn.try_clone().unwrap();
                    let reading = std::thread::spawn(move || {
                        let mut echo = Vec::new();
                        reader.read_to_end(&mut echo).expect("read echo");
                        echo
                    });
                    conn.write_all(&data).unwrap();
                    conn.shutdown(Shutdown::Write).unwrap();
                    (data, reading.join().unwrap())
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for (sent, echo) in got {
        assert!(sent == echo, "echo of {} bytes differs", sent.len());
    }
    assert_eq!(stats.total_connections(), 8);
    shutdown.shutdown();
    running.await.unwrap().unwrap();
}

#[test]
fn logs_echo_unix_n_and_removes_the_file_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.sock");
    let listen = format!("unix:{}", path.display());
    let mut server = ServerProc::start_until(
        Command::new(SERVER).args(["-l", &listen, "-v"]),
        "starting up on",
    );
    assert!(
        server
            .lines()
            .contains(&format!("main: starting up on {listen}")),
        "{:?}",
        server.lines()
    );
    for n in 1..=2 {
        let out = run(
            Command::new(CLIENT).args(["-c", &listen, "hi"]),
            b"",
            Duration::from_secs(20),
        );
        assert!(out.status.success(), "{}", out.stderr);
        server.wait_for_line(&format!("echo_unix_{n}: closing"), Duration::from_secs(5));
    }
    server.wait_for_line("echo_unix_1: received b'hi'", Duration::from_secs(1));
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(10)).success());
    assert!(!path.exists(), "socket file left behind");
}

#[test]
fn a_stale_file_is_replaced_and_a_live_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.sock");
    let listen = format!("unix:{}", path.display());
    // What a crashed run leaves: the file, and nobody listening.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let _server =
        ServerProc::start_until(Command::new(SERVER).args(["-l", &listen]), "starting up on");
    let out = run(
        Command::new(CLIENT).args(["-c", &listen, "x"]),
        b"",
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "{}", out.stderr);

    let second = run(
        Command::new(SERVER).args(["-l", &listen]),
        b"",
        Duration::from_secs(20),
    );
    assert_eq!(second.status.code(), Some(1), "{}", second.stderr);
    let first = second.stderr.lines().next().unwrap_or_default();
    assert!(
        first.contains("cannot listen on unix:") && first.contains("another server"),
        "{}",
        second.stderr
    );
    assert!(!second.stderr.contains("panicked"));
    assert!(path.exists(), "the live server's file was kept");
}

#[test]
fn a_file_that_is_not_a_socket_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, b"keep me").unwrap();
    let out = run(
        Command::new(SERVER).args(["-l", &format!("unix:{}", path.display())]),
        b"",
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("not a socket"), "{}", out.stderr);
    assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
}

#[test]
fn connecting_to_nothing_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        Command::new(CLIENT).args(["-c", &format!("unix:{}/none.sock", dir.path().display())]),
        b"",
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(1));
    let last = out.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("cannot connect to") && last.contains("none.sock"),
        "{}",
        out.stderr
    );
}
