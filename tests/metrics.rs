//! `--metrics`: the Prometheus page is served, names every family with
//! HELP and TYPE, and its counters move with traffic on each transport.

mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use common::*;

#[test]
fn counters_move_with_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let sock = format!("unix:{}", dir.path().join("m.sock").display());
    let server = ServerProc::start(&[
        "-l",
        "127.0.0.1:0",
        "-l",
        "udp://127.0.0.1:0",
        "-l",
        &sock,
        "--metrics",
        "127.0.0.1:0",
    ]);
    let line = server.wait_for_line("serving metrics on", Duration::from_secs(5));
    let metrics_port: u16 = line
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.trim_end_matches("/metrics").parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    let udp_line = server.wait_for_line("udp://", Duration::from_secs(1));
    let udp_port: u16 = udp_line.rsplit(' ').next().unwrap().parse().unwrap();

    let before = scrape(metrics_port);
    for family in [
        "echoes_connections_open gauge",
        "echoes_connections_total counter",
        "echoes_bytes_received_total counter",
        "echoes_bytes_sent_total counter",
        "echoes_errors_total counter",
        "echoes_udp_datagrams_total counter",
    ] {
        assert!(
            before.contains(&format!("# TYPE {family}")),
            "{family}\n{before}"
        );
        let name = family.split(' ').next().unwrap();
        assert!(before.contains(&format!("# HELP {name} ")), "{name}");
    }
    assert_eq!(
        sample(&before, r#"echoes_connections_total{transport="tcp"}"#),
        0
    );

    // TCP: one connection, 1000 bytes, and one held open.
    let mut conn = TcpStream::connect(server.addr()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(&[7u8; 1000]).unwrap();
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    let mut echo = Vec::new();
    conn.read_to_end(&mut echo).unwrap();
    assert_eq!(echo.len(), 1000);
    let held = TcpStream::connect(server.addr()).unwrap();
    // Unix: the client's 46 bytes. UDP: two datagrams of 10.
    let out = run(
        Command::new(CLIENT).args(["-c", &sock]),
        b"",
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "{}", out.stderr);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for _ in 0..2 {
        udp.send_to(&[1u8; 10], ("127.0.0.1", udp_port)).unwrap();
        let mut buf = [0u8; 32];
        assert_eq!(udp.recv_from(&mut buf).unwrap().0, 10);
    }

    let mut after = String::new();
    // A shard counts an echo just after sending it, so the client may
    // have its reply a moment before the counters show it.
    wait_for(
        Duration::from_secs(5),
        "the held connection and the datagrams counted",
        || {
            after = scrape(metrics_port);
            sample(&after, r#"echoes_connections_open{transport="tcp"}"#) == 1
                && sample(&after, r#"echoes_bytes_sent_total{transport="udp"}"#) == 20
                && sample(&after, r#"echoes_bytes_sent_total{transport="tcp"}"#) == 1000
                && sample(&after, r#"echoes_bytes_sent_total{transport="unix"}"#) == 46
        },
    );
    let get = |s: &str| sample(&after, s);
    assert_eq!(get(r#"echoes_connections_total{transport="tcp"}"#), 2);
    assert_eq!(get(r#"echoes_bytes_received_total{transport="tcp"}"#), 1000);
    assert_eq!(get(r#"echoes_bytes_sent_total{transport="tcp"}"#), 1000);
    assert_eq!(get(r#"echoes_connections_total{transport="unix"}"#), 1);
    assert_eq!(get(r#"echoes_bytes_sent_total{transport="unix"}"#), 46);
    assert_eq!(get(r#"echoes_bytes_received_total{transport="udp"}"#), 20);
    assert_eq!(get(r#"echoes_bytes_sent_total{transport="udp"}"#), 20);
    assert_eq!(
        get(r#"echoes_udp_datagrams_total{transport="udp",result="answered"}"#),
        2
    );
    assert_eq!(get(r#"echoes_errors_total{transport="tcp",kind="io"}"#), 0);
    drop(held);
    wait_for(Duration::from_secs(5), "the held connection closed", || {
        sample(
            &scrape(metrics_port),
            r#"echoes_connections_open{transport="tcp"}"#,
        ) == 0
    });
}

#[test]
fn other_paths_and_methods_are_refused_politely() {
    let server = ServerProc::start(&["-l", "127.0.0.1:0", "--metrics", "127.0.0.1:0"]);
    let line = server.wait_for_line("serving metrics on", Duration::from_secs(5));
    let addr = line
        .split("http://")
        .nth(1)
        .unwrap()
        .trim_end_matches("/metrics")
        .to_string();
    for (request, status) in [
        ("GET /nope HTTP/1.1\r\n\r\n", "404"),
        ("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "405"),
        ("HEAD /metrics HTTP/1.1\r\n\r\n", "200"),
    ] {
        let mut conn = TcpStream::connect(&addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        conn.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        conn.read_to_string(&mut response).unwrap();
        assert!(
            response.starts_with(&format!("HTTP/1.1 {status}")),
            "{request:?}: {response}"
        );
        if request.starts_with("HEAD") {
            assert!(response.ends_with("\r\n\r\n"), "HEAD has no body");
        }
    }
    let out = run(
        Command::new(SERVER).args(["-l", "127.0.0.1:0", "--metrics", "udp://127.0.0.1:0"]),
        b"",
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("--metrics takes HOST:PORT"),
        "{}",
        out.stderr
    );
}
