//! `echo-bench` over every transport of SPEC.md's addresses: TLS, Unix
//! sockets and UDP, against the real `echoes::Server` in this process,
//! and UDP against a fake server that loses datagrams. Every run lasts
//! about a second.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use crate::support::bench::{RealServer, bench, json, stderr};
use echoes::transport::{CertSource, TlsServerSettings};
use echoes::{Addr, ServerConfig, Transport};

/// A server on TLS (self-signed), a Unix socket and UDP (no rate limit:
/// the bench's sockets all come from 127.0.0.1, one source to the guard).
fn server(dir: &std::path::Path) -> RealServer {
    let mut config = ServerConfig::default();
    config
        .listen([
            "tls://127.0.0.1:0".parse().unwrap(),
            Addr::Unix(dir.join("echo.sock")),
            "udp://127.0.0.1:0".parse().unwrap(),
        ])
        .tls(TlsServerSettings {
            cert: CertSource::SelfSigned,
            client_ca: None,
        })
        .udp_rate(0);
    RealServer::with(config)
}

fn addr_of(server: &RealServer, transport: Transport) -> String {
    server
        .addrs
        .iter()
        .find(|a| a.transport() == transport)
        .expect("a listener of that transport")
        .to_string()
}

#[test]
fn tls_unix_and_udp_run_clean_against_the_real_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let tls = addr_of(&server, Transport::Tls);
    let unix = addr_of(&server, Transport::Unix);
    let udp = addr_of(&server, Transport::Udp);
    let runs: [&[&str]; 5] = [
        &["--connect", &tls, "--insecure", "-c", "2", "-s", "1KiB"],
        &["--connect", &tls, "-k", "-m", "churn", "-c", "2"],
        &[
            "--connect",
            &unix,
            "-c",
            "2",
            "-s",
            "100",
            "--pipeline",
            "4",
        ],
        &["--connect", &unix, "-m", "stream", "-s", "64KiB"],
        &["--connect", &udp, "-c", "2", "-s", "512"],
    ];
    for args in runs {
        let mut args = args.to_vec();
        args.extend(["-d", "700ms", "--warmup", "100ms", "--json"]);
        let out = bench(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        let v = json(&out);
        assert_eq!(v["errors"], 0, "{args:?}: {v}");
        assert!(v["messages"].as_u64().unwrap() > 0, "{args:?}: {v}");
        assert!(v["bytes"].as_u64().unwrap() > 0, "{args:?}: {v}");
        assert_eq!(v["addr"], args[1], "{v}");
    }
}

#[test]
fn udp_over_a_lossy_server_counts_loss_and_exits_1() {
    // Drops every 10th datagram, answers the rest.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let addr = format!("udp://{}", socket.local_addr().unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let dropped = Arc::new(AtomicU64::new(0));
    let dropping = dropped.clone();
    let fake = thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        let mut n = 0u64;
        while !stopping.load(Ordering::Relaxed) {
            let Ok((len, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            n += 1;
            if n.is_multiple_of(10) {
                dropping.fetch_add(1, Ordering::Relaxed);
            } else {
                let _ = socket.send_to(&buf[..len], from);
            }
        }
    });
    let out = bench(&[
        "--connect",
        &addr,
        "-s",
        "100",
        "-d",
        "800ms",
        "--warmup",
        "0",
        "--timeout",
        "50ms",
        "--json",
    ]);
    stop.store(true, Ordering::Relaxed);
    fake.join().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = json(&out);
    let loss = v["error_kinds"]["loss"].as_u64().unwrap();
    assert!(loss >= 2, "{v}");
    assert_eq!(v["errors"].as_u64().unwrap(), loss, "only losses: {v}");
    assert!(v["messages"].as_u64().unwrap() > 0, "{v}");
    // Every datagram dropped is a loss, but for one still awaited when the
    // run ended. (A machine so busy that a reply takes longer than the
    // timeout makes more: those are late, and counted as lost too.)
    let dropped = dropped.load(Ordering::Relaxed);
    assert!(loss + 1 >= dropped, "{dropped} dropped, {loss} lost: {v}");
    let err = stderr(&out);
    assert!(err.contains("loss"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

#[test]
fn tls_with_the_wrong_ca_is_one_clear_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let tls = addr_of(&server, Transport::Tls);
    // A CA that did not sign the server's certificate.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let ca = dir.path().join("other-ca.pem");
    std::fs::write(&ca, other.cert.pem()).unwrap();
    let missing = dir.path().join("missing.pem");
    let cases: [(&[&str], &str); 2] = [
        (&["--tls-ca", ca.to_str().unwrap()], "TLS handshake"),
        (&["--tls-ca", missing.to_str().unwrap()], "cannot read"),
    ];
    for (extra, word) in cases {
        let mut args = vec!["--connect", &tls, "-d", "1s"];
        args.extend_from_slice(extra);
        let out = bench(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.starts_with("echo-bench: error:"), "{err}");
        assert!(err.contains(word), "{err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn what_makes_no_sense_over_udp_is_a_usage_error() {
    let table: [(&[&str], &str); 4] = [
        (&["-m", "stream"], "udp://"),
        (&["-m", "churn"], "udp://"),
        (&["--pipeline", "2"], "udp://"),
        (&["-s", "65508"], "65507"),
    ];
    for (extra, word) in table {
        let mut args = vec!["--connect", "udp://127.0.0.1:9"];
        args.extend_from_slice(extra);
        let out = bench(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        let first = err.lines().next().unwrap_or_default();
        assert!(first.starts_with("echo-bench: error:"), "{args:?}: {err}");
        assert!(first.contains(word), "{args:?}: {first}");
    }
}

/// Plain TCP, and TCP under `ws://` and `http://`, send the PROXY header
/// before anything else on every connection the bench opens (the probe's,
/// the other slots', and each churn operation's); a server that requires
/// one refuses a bench that sends none.
#[test]
fn proxy_headers_go_first_on_every_tcp_connection() {
    use crate::support::ServerProc;
    let tcp = ServerProc::start(&["-l", "127.0.0.1:0", "--proxy-protocol"]);
    let web = ServerProc::start(&["-l", "http://127.0.0.1:0", "--proxy-protocol"]);
    let targets = [
        format!("127.0.0.1:{}", tcp.port),
        format!("ws://127.0.0.1:{}/", web.port),
        format!("http://127.0.0.1:{}/", web.port),
    ];
    for target in &targets {
        for (version, mode) in [("v1", "pingpong"), ("v2", "churn")] {
            let args = [
                "--connect",
                target,
                "--proxy-protocol",
                version,
                "-m",
                mode,
                "-c",
                "3",
                "-d",
                "400ms",
                "--warmup",
                "0s",
                "--json",
            ];
            let out = bench(&args);
            assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
            let v = json(&out);
            assert_eq!(v["errors"], 0, "{args:?}: {v}");
            assert!(v["messages"].as_u64().unwrap() > 3, "{args:?}: {v}");
        }
        let out = bench(&["--connect", target, "-d", "200ms", "--warmup", "0s"]);
        assert_eq!(out.status.code(), Some(1), "{target}: {}", stderr(&out));
    }
}
