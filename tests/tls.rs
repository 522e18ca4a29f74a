//! `tls://` over real sockets: certificates from files and self-signed
//! (pinned by the logged fingerprint), half-close, a garbage peer that
//! costs one line, a silent peer that does not block others, mutual TLS
//! accepted and refused, and bad certificates as one clear line.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
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
    use echoes::transport::tls::{CertSource, TlsServerSettings};
    use echoes::{Server, ServerConfig, Transport};
    let mut config = ServerConfig::new("tls://127.0.0.1:0".parse().unwrap());
    config.tls = Some(TlsServerSettings {
        cert: CertSource::SelfSigned,
        client_ca: None,
    });
    config.tls_handshake_timeout = Duration::from_millis(200);
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
