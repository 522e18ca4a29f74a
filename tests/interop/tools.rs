//! `echo-server` against the third-party clients people reach for: socat,
//! ncat, OpenBSD's nc and `openssl s_client` get every byte back over
//! TCP, Unix sockets, UDP and TLS (a certificate made by `openssl req`),
//! and curl scrapes `--metrics`. The tools come from .ci/install; a missing
//! one fails the test, naming its package.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// Fails the test unless `tool` runs: it is in .ci/apt-packages.txt as
/// `package`.
fn need(tool: &str, package: &str) {
    let ran = Command::new(tool)
        .arg(if tool == "openssl" { "version" } else { "-h" })
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        ran.is_ok(),
        "{tool} is not installed: run .ci/install (Debian package {package})"
    );
}

/// A server on TCP, a Unix socket in `dir`, and UDP; its Unix address and
/// UDP port.
fn server_in(dir: &Path) -> (ServerProc, String, u16) {
    let unix = format!("unix:{}", dir.join("echo.sock").display());
    let server = ServerProc::start(&["-l", "127.0.0.1:0", "-l", &unix, "-l", "udp://127.0.0.1:0"]);
    let udp = server.wait_for_line("starting up on udp://", Duration::from_secs(5));
    let udp_port = udp.rsplit(' ').next().unwrap().parse().unwrap();
    server.wait_for_line("starting up on unix:", Duration::from_secs(5));
    (server, unix, udp_port)
}

/// Runs `tool` with `args`, `data` on its standard input, and asserts that
/// it exits 0 having written exactly `data` back.
fn echoes_exactly(tool: &str, args: &[&str], data: &[u8]) {
    let out = run(Command::new(tool).args(args), data, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{tool} {args:?}: {:?}\n{}",
        out.status,
        out.stderr
    );
    assert_eq!(
        out.stdout.len(),
        data.len(),
        "{tool} {args:?}: {} bytes back of {}",
        out.stdout.len(),
        data.len()
    );
    assert!(out.stdout == data, "{tool} {args:?}: the echo differs");
}

#[test]
#[cfg_attr(
    not(has_socat),
    ignore = "needs socat: run .ci/install (Debian package socat)"
)]
fn socat_gets_every_byte_back_over_tcp_unix_and_udp() {
    need("socat", "socat");
    let dir = tempfile::tempdir().unwrap();
    let (server, unix, udp_port) = server_in(dir.path());
    let data = pattern(1, 1 << 20);
    // -t 30: after its input ends, wait up to 30 s for the echo to end.
    let tcp = format!("TCP:127.0.0.1:{}", server.port);
    echoes_exactly("socat", &["-t", "30", "-", &tcp], &data);
    let unix = format!("UNIX-CONNECT:{}", unix.strip_prefix("unix:").unwrap());
    echoes_exactly("socat", &["-t", "30", "-", &unix], &data);
    // One datagram (socat reads up to 8 KiB at a time), its reply, then
    // 2 s of waiting for more before socat gives up.
    let datagram = pattern(2, 1000);
    let udp = format!("UDP:127.0.0.1:{udp_port}");
    echoes_exactly("socat", &["-t", "2", "-", &udp], &datagram);
}

#[test]
#[cfg_attr(
    not(has_ncat),
    ignore = "needs ncat: run .ci/install (Debian package ncat)"
)]
fn ncat_gets_every_byte_back_over_tcp_and_unix() {
    need("ncat", "ncat");
    let dir = tempfile::tempdir().unwrap();
    let (server, unix, _) = server_in(dir.path());
    let data = pattern(3, 1 << 20);
    // At the end of its input ncat half-closes, and reads the rest.
    echoes_exactly("ncat", &["127.0.0.1", &server.port.to_string()], &data);
    let path = unix.strip_prefix("unix:").unwrap();
    echoes_exactly("ncat", &["-U", path], &data);
}

#[test]
#[cfg_attr(
    not(has_nc),
    ignore = "needs OpenBSD's nc: run .ci/install (Debian package netcat-openbsd)"
)]
fn openbsd_nc_gets_every_byte_back_over_tcp_and_unix() {
    need("nc", "netcat-openbsd");
    let dir = tempfile::tempdir().unwrap();
    let (server, unix, _) = server_in(dir.path());
    let data = pattern(4, 1 << 20);
    // -N: half-close at the end of the input (otherwise nc never does).
    echoes_exactly("nc", &["-N", "127.0.0.1", &server.port.to_string()], &data);
    let path = unix.strip_prefix("unix:").unwrap();
    echoes_exactly("nc", &["-N", "-U", path], &data);
}

/// Makes the README's TLS files in `dir` by running its `openssl` block
/// as written (the fenced block that starts `openssl req -x509`), and
/// returns `dir`: `ca.pem`, `server.pem`, `server.key`, `client.pem` and
/// `client.key` are there.
fn readme_certificates(dir: &Path) -> PathBuf {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("```\nopenssl req -x509")
        .expect("README.md's block of openssl commands that make the TLS files");
    let block = &readme[start + 4..];
    let block = &block[..block.find("```").unwrap()];
    let out = run(
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", block])
            .current_dir(dir),
        b"",
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "README's openssl commands: {}",
        out.stderr
    );
    dir.to_path_buf()
}

/// `openssl s_client`, verifying the server's certificate (made by the
/// README's `openssl` commands, loaded by `--tls-cert`) and its name, and
/// showing the README's client certificate to a server that asks for one
/// (as `echo-client` does too), gets every byte
/// back. s_client does not half-close at the end of its input (`-quiet`
/// implies `-ign_eof`), so the test reads until every byte is back, then
/// ends it.
#[test]
#[cfg_attr(
    not(has_openssl),
    ignore = "needs openssl: run .ci/install (Debian package openssl)"
)]
fn openssl_s_client_gets_every_byte_back_over_tls() {
    need("openssl", "openssl");
    let dir = tempfile::tempdir().unwrap();
    let files = readme_certificates(dir.path());
    let file = |name: &str| files.join(name).to_str().unwrap().to_string();
    let server = ServerProc::start(&[
        "-l",
        "tls://127.0.0.1:0",
        "--tls-cert",
        &file("server.pem"),
        "--tls-key",
        &file("server.key"),
        "--tls-client-ca",
        &file("ca.pem"),
    ]);
    // The README's client, with the README's client certificate.
    let connect = format!("tls://localhost:{}", server.port);
    let mutual = run(
        Command::new(CLIENT)
            .args(["-c", &connect, "--tls-ca", &file("ca.pem")])
            .args([
                "--tls-cert",
                &file("client.pem"),
                "--tls-key",
                &file("client.key"),
                "hello",
            ]),
        b"",
        Duration::from_secs(20),
    );
    assert!(mutual.status.success(), "{}", mutual.stderr);
    let data = pattern(5, 256 * 1024);
    let mut client = Command::new("openssl")
        .args(["s_client", "-quiet", "-verify_return_error"])
        .args(["-connect", &format!("127.0.0.1:{}", server.port)])
        .args(["-servername", "localhost", "-verify_hostname", "localhost"])
        .args(["-CAfile", &file("ca.pem")])
        .args(["-cert", &file("client.pem"), "-key", &file("client.key")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = client.stdin.take().unwrap();
    let sent = data.clone();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = input.write_all(&sent);
    });
    let mut output = client.stdout.take().unwrap();
    let want = data.len();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::with_capacity(want);
        let mut buf = [0u8; 16 * 1024];
        while got.len() < want {
            match output.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        got
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reader.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Ends s_client, which would wait for more: its output pipe closes,
    // so the reader ends too.
    let _ = client.kill();
    let _ = client.wait();
    let got = reader.join().unwrap();
    let _ = writer.join();
    let mut stderr = String::new();
    let _ = client.stderr.take().unwrap().read_to_string(&mut stderr);
    assert_eq!(
        got.len(),
        want,
        "{} bytes back of {want}\n{stderr}",
        got.len()
    );
    assert!(got == data, "the echo through s_client differs");
    assert!(stderr.contains("verify return:1"), "{stderr}");
    server.wait_for_line("connection accepted", Duration::from_secs(5));
}

/// curl scrapes `--metrics`: a 200 in Prometheus's text format whose every
/// line is a comment or a sample, a 404 elsewhere, and a HEAD with no body.
#[test]
#[cfg_attr(
    not(has_curl),
    ignore = "needs curl: run .ci/install (Debian package curl)"
)]
fn curl_scrapes_the_metrics_page() {
    need("curl", "curl");
    let server = ServerProc::start(&["-l", "127.0.0.1:0", "--metrics", "127.0.0.1:0"]);
    let line = server.wait_for_line("serving metrics on", Duration::from_secs(5));
    let url = line.split_once("on ").unwrap().1.to_string();
    let curl = |args: &[&str]| {
        let out = run(
            Command::new("curl").args(["-sS"]).args(args),
            b"",
            Duration::from_secs(20),
        );
        assert!(out.status.success(), "curl {args:?}: {}", out.stderr);
        String::from_utf8(out.stdout).unwrap()
    };
    let response = curl(&["-i", &url]);
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(length, body.len());
    assert!(body.ends_with('\n'));
    for line in body.lines() {
        let sample = line
            .rsplit_once(' ')
            .is_some_and(|(series, value)| !series.is_empty() && value.parse::<f64>().is_ok());
        assert!(
            line.starts_with("# HELP ") || line.starts_with("# TYPE ") || sample,
            "not Prometheus text: {line:?}"
        );
    }
    for family in [
        "echoes_connections_open",
        "process_cpu_seconds_total",
        "echoes_build_info",
    ] {
        assert!(body.contains(&format!("# TYPE {family} ")), "{family}");
    }
    let nope = url.replace("/metrics", "/nope");
    assert_eq!(
        curl(&["-o", "/dev/null", "-w", "%{http_code}", &nope]),
        "404"
    );
    let head = curl(&["-I", &url]);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "HEAD has no body: {head:?}");
}
