//! `echo-client` over `udp://`: one datagram per message, each reply
//! checked; one resend, then a timeout, against a server that never
//! answers; a wrong reply and a refused port as one clear line. (The
//! server's side of `udp://` is in tests/server/udp.rs.)

use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use crate::support::*;

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
