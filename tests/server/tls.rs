//! `tls://` over real sockets: certificates from files and self-signed
//! (pinned by the logged fingerprint), half-close, a garbage peer that
//! costs one line, a silent peer that does not block others, mutual TLS
//! accepted and refused, and bad certificates as one clear line.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// A CA, and certificates it signed, written as PEM files.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki { dir };
        let ca = pki.ca("ca");
        let other = pki.ca("other-ca");
        pki.leaf(&ca, "server", &["localhost", "127.0.0.1"]);
        pki.leaf(&ca, "client", &["client.example"]);
        pki.leaf(&other, "stranger", &["stranger.example"]);
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn write(&self, name: &str, cert: &str, key: &KeyPair) {
        std::fs::write(self.path(&format!("{name}.pem")), cert).unwrap();
        std::fs::write(self.path(&format!("{name}.key")), key.serialize_pem()).unwrap();
    }

    fn ca(&self, name: &str) -> Issuer<'static, KeyPair> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        self.write(name, &cert.pem(), &key);
        Issuer::new(params, key)
    }

    fn leaf(&self, issuer: &Issuer<'static, KeyPair>, name: &str, sans: &[&str]) {
        let params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, issuer).unwrap();
        self.write(name, &cert.pem(), &key);
    }
}

fn client(args: &[&str]) -> Finished {
    run(
        Command::new(CLIENT).args(args),
        b"",
        Duration::from_secs(20),
    )
}

fn tls_server(pki: &Pki, extra: &[&str]) -> ServerProc {
    let mut args = vec![
        "-l".to_string(),
        "tls://127.0.0.1:0".to_string(),
        "--tls-cert".to_string(),
        pki.arg("server.pem"),
        "--tls-key".to_string(),
        pki.arg("server.key"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    ServerProc::start_cmd(Command::new(SERVER).args(&args))
}

#[test]
fn certificate_files_trusted_through_the_ca() {
    let pki = Pki::new();
    let server = tls_server(&pki, &[]);
    let line = server.wait_for_line("starting up on", Duration::from_secs(1));
    assert_eq!(
        line,
        format!("main: starting up on tls://127.0.0.1 port {}", server.port)
    );
    let connect = format!("tls://127.0.0.1:{}", server.port);
    let out = client(&["-c", &connect, "--tls-ca", &pki.arg("ca.pem")]);
    assert!(out.status.success(), "{}", out.stderr);
    // The client checks every byte: success means the echo was exact.
    assert!(out.stderr.contains("received b'"), "{}", out.stderr);
    // Not trusted through another CA.
    let out = client(&["-c", &connect, "--tls-ca", &pki.arg("other-ca.pem")]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("TLS handshake with"), "{}", out.stderr);
}

#[test]
fn self_signed_is_pinned_by_the_logged_fingerprint() {
    let server = ServerProc::start(&["-l", "tls://127.0.0.1:0", "--tls-self-signed"]);
    let line = server.wait_for_line("fingerprint", Duration::from_secs(1));
    let fingerprint = line.rsplit(' ').next().unwrap().to_string();
    let connect = format!("tls://127.0.0.1:{}", server.port);
    let data = pattern(3, 1_000_000);
    let out = run(
        Command::new(CLIENT).args(["-c", &connect, "--tls-pin", &fingerprint, "--stdin"]),
        &data,
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stdout == data, "a megabyte over TLS is not byte exact");
    let wrong = "00".repeat(32);
    let out = client(&["-c", &connect, "--tls-pin", &wrong]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("not the pinned"), "{}", out.stderr);
    let out = client(&["-c", &connect, "--insecure", "x"]);
    assert!(out.status.success(), "{}", out.stderr);
}

#[test]
fn garbage_costs_one_line_and_a_silent_peer_blocks_nobody() {
    let pki = Pki::new();
    let server = tls_server(&pki, &[]);
    // A peer that connects and says nothing: its handshake waits in its
    // own task, not in the accept loop.
    let _silent = TcpStream::connect(server.addr()).unwrap();
    let mut plain = TcpStream::connect(server.addr()).unwrap();
    let name = format!("echo_127.0.0.1_{}", plain.local_addr().unwrap().port());
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    plain.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer); // an alert at most, then closed
    assert!(answer.len() < 16, "{answer:?}");
    server.wait_for_line(
        &format!("{name}: TLS handshake failed"),
        Duration::from_secs(5),
    );

    let out = client(&[
        "-c",
        &format!("tls://localhost:{}", server.port),
        "--tls-ca",
        &pki.arg("ca.pem"),
        "still here",
    ]);
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(server.lines_with(&name).len(), 1, "{:?}", server.lines());
}

#[test]
fn mutual_tls_accepts_the_right_client_only() {
    let pki = Pki::new();
    let server = tls_server(&pki, &["--tls-client-ca", &pki.arg("ca.pem")]);
    let connect = format!("tls://127.0.0.1:{}", server.port);
    let ca = pki.arg("ca.pem");
    let out = client(&[
        "-c",
        &connect,
        "--tls-ca",
        &ca,
        "--tls-cert",
        &pki.arg("client.pem"),
        "--tls-key",
        &pki.arg("client.key"),
    ]);
    assert!(out.status.success(), "{}", out.stderr);
    for who in [None, Some("stranger")] {
        let mut args = vec![
            "-c".to_string(),
            connect.clone(),
            "--tls-ca".into(),
            ca.clone(),
        ];
        if let Some(w) = who {
            args.extend([
                "--tls-cert".into(),
                pki.arg(&format!("{w}.pem")),
                "--tls-key".into(),
                pki.arg(&format!("{w}.key")),
            ]);
        }
        let out = run(
            Command::new(CLIENT).args(&args),
            b"",
            Duration::from_secs(20),
        );
        assert_eq!(out.status.code(), Some(1), "{who:?}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"));
        // Without a certificate, the line says what the server wants.
        if who.is_none() {
            assert!(
                out.stderr.contains(
                    "the server requires a client certificate (mutual TLS) and this client \
                     sent none: give one with --tls-cert PEM --tls-key PEM"
                ),
                "{}",
                out.stderr
            );
        }
    }
    wait_for(Duration::from_secs(5), "two refusals logged", || {
        server.lines_with("TLS handshake failed").len() == 2
    });
}

#[test]
fn half_close_over_tls_gets_everything_then_end_of_stream() {
    let server = ServerProc::start(&["-l", "tls://127.0.0.1:0", "--tls-self-signed"]);
    let out = client(&[
        "-c",
        &format!("tls://127.0.0.1:{}", server.port),
        "-k",
        "part one, ",
        "part two",
    ]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stderr.contains("waiting for response"),
        "{}",
        out.stderr
    );
    server.wait_for_line("closing", Duration::from_secs(5));
}

fn assert_one_line(out: &Finished, code: i32, needle: &str) {
    assert_eq!(out.status.code(), Some(code), "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    let first = out.stderr.lines().next().unwrap_or_default();
    assert!(
        first.contains(needle),
        "expected {needle:?}: {}",
        out.stderr
    );
}

#[test]
fn bad_certificates_and_flags_are_one_clear_line() {
    let pki = Pki::new();
    let missing = pki.path("missing.pem");
    let garbage = pki.path("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nnot base64!\n").unwrap();
    let p = |p: &Path| p.display().to_string();
    let serve = |args: &[String]| {
        let mut all = vec!["-l".to_string(), "tls://127.0.0.1:0".to_string()];
        all.extend_from_slice(args);
        run(
            Command::new(SERVER).args(&all),
            b"",
            Duration::from_secs(20),
        )
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            s(&[
                "--tls-cert",
                &p(&missing),
                "--tls-key",
                &pki.arg("server.key"),
            ]),
            1,
            "cannot read certificate",
        ),
        (
            s(&[
                "--tls-cert",
                &p(&garbage),
                "--tls-key",
                &pki.arg("server.key"),
            ]),
            1,
            "invalid certificate",
        ),
        (
            s(&[
                "--tls-cert",
                &pki.arg("server.pem"),
                "--tls-key",
                &pki.arg("server.pem"),
            ]),
            1,
            "no PEM private key",
        ),
        (
            s(&[
                "--tls-cert",
                &pki.arg("server.pem"),
                "--tls-key",
                &pki.arg("client.key"),
            ]),
            1,
            "do not go together",
        ),
        (
            s(&["--tls-self-signed", "--tls-client-ca", &p(&missing)]),
            1,
            "cannot read CA certificate",
        ),
        (s(&[]), 2, "tls:// needs a certificate"),
        (
            s(&["--tls-cert", &pki.arg("server.pem")]),
            2,
            "required arguments",
        ),
        (
            s(&[
                "--tls-self-signed",
                "--tls-cert",
                &pki.arg("server.pem"),
                "--tls-key",
                &pki.arg("server.key"),
            ]),
            2,
            "cannot be used with",
        ),
    ];
    for (args, code, needle) in cases {
        let out = serve(&args);
        assert_one_line(&out, code, needle);
    }
    let out = run(
        Command::new(SERVER).args(["-l", "127.0.0.1:0", "--tls-self-signed"]),
        b"",
        Duration::from_secs(20),
    );
    assert_one_line(&out, 2, "need a tls:// address");
    let out = client(&["-c", "tls://127.0.0.1:1", "--tls-ca", &p(&missing)]);
    assert_one_line(&out, 1, "cannot read CA certificate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_is_dropped_at_the_handshake_timeout() {
    use echoes::metrics::ErrorKind;
    use echoes::transport::{CertSource, TlsServerSettings};
    use echoes::{Server, ServerConfig, Transport};
    let mut config = ServerConfig::new("tls://127.0.0.1:0".parse().unwrap());
    config
        .tls(TlsServerSettings {
            cert: CertSource::SelfSigned,
            client_ca: None,
        })
        .tls_handshake_timeout(Duration::from_millis(200));
    let server = Server::bind(config).await.expect("bind");
    let addr = server.socket_addrs(Transport::Tls)[0];
    let stats = server.stats();
    let shutdown = server.shutdown_handle();
    let running = tokio::spawn(server.run());
    let closed = tokio::task::spawn_blocking(move || {
        let mut silent = TcpStream::connect(addr).unwrap();
        silent
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 64];
        // Closed by the server (end of stream, or a reset): never a timeout here.
        match silent.read(&mut buf) {
            Ok(n) => n < 64,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    })
    .await
    .unwrap();
    assert!(closed, "the silent peer was not dropped");
    let m = stats.metrics().clone();
    tokio::task::spawn_blocking(move || {
        wait_for(Duration::from_secs(5), "the failure counted", || {
            m.errors(Transport::Tls, ErrorKind::TlsHandshake) == 1
                && m.snapshot(Transport::Tls).open == 0
        })
    })
    .await
    .unwrap();
    shutdown.shutdown();
    running.await.unwrap().unwrap();
}

#[test]
fn the_shutdown_timeout_closes_a_connection_stuck_in_its_handshake() {
    // A peer that connects and never says hello would hold the handshake
    // for its whole timeout (10 s); at the shutdown timeout the server
    // closes it like any other connection, and exits.
    let mut server = ServerProc::start(&[
        "-l",
        "tls://127.0.0.1:0",
        "--tls-self-signed",
        "--shutdown-timeout",
        "300ms",
    ]);
    let mut silent = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let t0 = std::time::Instant::now();
    server.signal(libc::SIGTERM);
    let status = server.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
    let mut buf = [0u8; 16];
    use std::io::Read;
    assert!(
        matches!(silent.read(&mut buf), Ok(0) | Err(_)),
        "still open"
    );
}

/// A client configuration that trusts any certificate (`-k`).
fn insecure() -> std::sync::Arc<rustls::ClientConfig> {
    use echoes::transport::{TlsClientSettings, client_config};
    client_config(&TlsClientSettings {
        insecure: true,
        ..TlsClientSettings::default()
    })
    .unwrap()
}

/// Lowers `pid`'s descriptor limit (as `prlimit --pid` would) so that
/// exactly one descriptor number is left to open.
fn leave_one_descriptor(pid: i32) {
    let open: std::collections::BTreeSet<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let free: Vec<i32> = (0..).filter(|n| !open.contains(n)).take(2).collect();
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: prlimit(2) reads and writes the two structs given, nothing else.
    unsafe {
        assert_eq!(
            libc::prlimit(pid, libc::RLIMIT_NOFILE, std::ptr::null(), &mut old),
            0
        );
        // Descriptors are numbered from the lowest free one, and numbers
        // at or above the limit are refused: only free[0] is left.
        let new = libc::rlimit {
            rlim_cur: free[1] as libc::rlim_t,
            rlim_max: old.rlim_max,
        };
        assert_eq!(
            libc::prlimit(pid, libc::RLIMIT_NOFILE, &new, std::ptr::null_mut()),
            0,
            "prlimit: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Issue 11: with one descriptor left, a TLS connection is served (it
/// needs no second descriptor), and the next one waits in the backlog,
/// logged once, until a descriptor frees up, as for TCP.
#[test]
fn a_tls_peer_is_served_with_one_descriptor_left() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = ServerProc::start(&[
        "-l",
        "tls://127.0.0.1:0",
        "--tls-self-signed",
        "--threads",
        "1",
    ]);
    let addr: echoes::Addr = format!("tls://127.0.0.1:{}", server.port).parse().unwrap();
    let config = insecure();
    let echo = |addr: echoes::Addr, config, msg: &'static [u8], timeout| async move {
        let mut conn = echoes::transport::connect_with(&addr, timeout, Some(&config), None).await?;
        conn.write_all(msg).await?;
        let mut got = vec![0u8; msg.len()];
        conn.read_exact(&mut got).await?;
        assert_eq!(got, msg);
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(conn)
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let t = Duration::from_secs(10);
        // Whatever the server opens for a connection, it has opened once
        // (and the warm-up's own descriptor is closed again).
        let before = server.fd_count();
        drop(
            echo(addr.clone(), config.clone(), b"warm", t)
                .await
                .unwrap(),
        );
        wait_for(t, "the warm-up's descriptor closed", || {
            server.fd_count() == before
        });
        leave_one_descriptor(server.pid());
        let first = echo(addr.clone(), config.clone(), b"first", t)
            .await
            .expect("the connection that takes the last descriptor is served");
        let second = tokio::spawn(echo(addr, config, b"second", Duration::from_secs(30)));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        if second.is_finished() {
            let result = second.await.unwrap().map(drop);
            panic!("the second connection did not wait: {result:?}");
        }
        let accept_failed = server.count_lines("accept on");
        assert_eq!(
            accept_failed,
            1,
            "one line per burst:\n{}",
            server.lines().join("\n")
        );
        assert_eq!(
            server.count_lines("cannot"),
            0,
            "{}",
            server.lines().join("\n")
        );
        // A descriptor frees up: the waiting connection is served.
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(20), second).await;
        second
            .expect("served once a descriptor was free")
            .unwrap()
            .expect("served, not dropped");
    });
    wait_for(Duration::from_secs(5), "the end of the burst", || {
        server.count_lines("again after") == 1
    });
}

/// Issue 11: a byte sent as urgent data (`MSG_OOB`) stays in the TLS
/// stream, so the record it ends is whole and the echo exact, and the
/// server does not sit on it (a read stops just before the urgent byte).
#[test]
fn urgent_data_in_a_tls_stream_stays_in_line() {
    use std::os::fd::AsRawFd;
    let server = ServerProc::start(&["-l", "tls://127.0.0.1:0", "--tls-self-signed"]);
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = rustls::ClientConnection::new(insecure(), name).unwrap();
    let mut tcp = TcpStream::connect(server.addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.set_nodelay(true).unwrap();
    while tls.is_handshaking() {
        tls.complete_io(&mut tcp).unwrap();
    }
    for msg in [&b"first record"[..], b"second", b"!"] {
        tls.writer().write_all(msg).unwrap();
        let mut wire = Vec::new();
        while tls.wants_write() {
            tls.write_tls(&mut wire).unwrap();
        }
        // The record's tail in one send, whose last byte is urgent: a
        // read of that segment stops just before it.
        let (head, tail) = wire.split_at(wire.len() - 5);
        tcp.write_all(head).unwrap();
        // SAFETY: send(2) reads `tail.len()` bytes from a live slice.
        let sent = unsafe {
            libc::send(
                tcp.as_raw_fd(),
                tail.as_ptr().cast(),
                tail.len(),
                libc::MSG_OOB,
            )
        };
        assert_eq!(sent, 5);
        let mut got = vec![0u8; msg.len()];
        rustls::Stream::new(&mut tls, &mut tcp)
            .read_exact(&mut got)
            .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(msg)));
        assert_eq!(got, msg);
    }
}
