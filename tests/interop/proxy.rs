//! The PROXY protocol against what others wrote, over loopback: HAProxy
//! (`send-proxy`, `send-proxy-v2` with a CRC32c, `send-proxy-v2-ssl-cn`
//! behind a TLS frontend) and nginx's stream module (`proxy_protocol on`)
//! in front of `echo-server --proxy-protocol`; and the other way round,
//! `echo-client` and `echo-bench` sending headers through HAProxy's
//! `accept-proxy`, which passes on what it understood. Each test starts
//! its proxy on free ports with a config in a temporary directory and
//! stops it by PID. A missing haproxy or nginx fails the test: both are in
//! `.ci/apt-packages.txt`.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support;
use crate::support::proxies::{haproxy, nginx};
use crate::support::{CLIENT, ServerProc, free_port};

const BENCH: &str = env!("CARGO_BIN_EXE_echo-bench");

const HAPROXY_DEFAULTS: &str = "\
global
  log stderr local0 err
defaults
  mode tcp
  timeout connect 5s
  timeout client 20s
  timeout server 20s
";

/// Sends `msg` through the proxy at `port`, half-closes, and returns the
/// echo and this end's port (the real client the server should name).
fn through(port: u16, msg: &[u8]) -> (Vec<u8>, u16) {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let source = conn.local_addr().unwrap().port();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(msg).unwrap();
    conn.shutdown(Shutdown::Write).unwrap();
    let mut echo = Vec::new();
    conn.read_to_end(&mut echo).unwrap();
    (echo, source)
}

#[test]
#[cfg_attr(
    not(has_haproxy),
    ignore = "needs HAProxy: run .ci/install (Debian package haproxy)"
)]
fn haproxy_send_proxy_v1_and_v2_name_the_real_client() {
    let server = ServerProc::start(&["-l", "127.0.0.1:0", "--proxy-protocol"]);
    let (v1, v2) = (free_port(), free_port());
    let config = format!(
        "{HAPROXY_DEFAULTS}
frontend v1
  bind 127.0.0.1:{v1}
  default_backend v1
backend v1
  server echo 127.0.0.1:{echo} send-proxy
frontend v2
  bind 127.0.0.1:{v2}
  default_backend v2
backend v2
  server echo 127.0.0.1:{echo} send-proxy-v2 proxy-v2-options crc32c,unique-id
",
        echo = server.port
    );
    let _haproxy = haproxy(&config, &[v1, v2]);
    for (port, kind) in [(v1, "(PROXY v1)"), (v2, "(PROXY v2)")] {
        let msg = support::pattern(u64::from(port), 100_000);
        let (echo, source) = through(port, &msg);
        assert!(
            echo == msg,
            "{kind}: {} bytes back of {}",
            echo.len(),
            msg.len()
        );
        let line = server.wait_for_line(
            &format!("echo_127.0.0.1_{source}: connection accepted via proxy 127.0.0.1 port "),
            Duration::from_secs(5),
        );
        assert!(line.ends_with(kind), "{line}");
    }
}

#[test]
#[cfg_attr(
    not(has_haproxy),
    ignore = "needs HAProxy: run .ci/install (Debian package haproxy)"
)]
fn haproxy_send_proxy_v2_ssl_passes_its_tlvs() {
    let dir = tempfile::tempdir().unwrap();
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let pem = dir.path().join("both.pem");
    std::fs::write(
        &pem,
        format!("{}{}", cert.pem(), signing_key.serialize_pem()),
    )
    .unwrap();
    let server = ServerProc::start(&["-l", "127.0.0.1:0", "--proxy-protocol", "-v"]);
    let tls = free_port();
    let config = format!(
        "{HAPROXY_DEFAULTS}
frontend tls
  bind 127.0.0.1:{tls} ssl crt {pem}
  default_backend echo
backend echo
  server echo 127.0.0.1:{echo} send-proxy-v2-ssl-cn proxy-v2-options authority,crc32c
",
        pem = pem.display(),
        echo = server.port
    );
    let _haproxy = haproxy(&config, &[tls]);
    let out = support::run(
        Command::new(CLIENT).args(["-c", &format!("tls://localhost:{tls}"), "-k", "over", "TLS"]),
        b"",
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stderr.contains("received b'overTLS'") || out.stderr.contains("received b'over"),
        "{}",
        out.stderr
    );
    let line = server.wait_for_line("PROXY v2 TLVs: ", Duration::from_secs(5));
    assert!(line.contains("authority localhost"), "{line}");
    assert!(line.contains("SSL TLSv1.3"), "{line}");
    assert!(
        line.contains("CRC32c 0x") && line.contains("checked"),
        "{line}"
    );
    server.wait_for_line(
        "connection accepted via proxy 127.0.0.1 port ",
        Duration::from_secs(5),
    );
}

#[test]
#[cfg_attr(
    not(has_nginx),
    ignore = "needs nginx: run .ci/install (Debian packages nginx, libnginx-mod-stream)"
)]
fn nginx_stream_proxy_protocol_on() {
    let server = ServerProc::start(&["-l", "127.0.0.1:0", "--proxy-protocol"]);
    let port = free_port();
    let module = Path::new("/usr/lib/nginx/modules/ngx_stream_module.so");
    assert!(
        module.exists(),
        "libnginx-mod-stream is not installed (.ci/apt-packages.txt)"
    );
    let _nginx = nginx(
        &format!(
            "load_module {module};
stream {{
  server {{
    listen 127.0.0.1:{port};
    proxy_pass 127.0.0.1:{echo};
    proxy_protocol on;
    # Pass the client's half-close on, so that the echo can finish.
    proxy_half_close on;
  }}
}}
",
            module = module.display(),
            echo = server.port
        ),
        &[port],
    );
    let msg = support::pattern(5, 50_000);
    let (echo, source) = through(port, &msg);
    assert!(echo == msg, "{} bytes back of {}", echo.len(), msg.len());
    let line = server.wait_for_line(
        &format!("echo_127.0.0.1_{source}: connection accepted via proxy"),
        Duration::from_secs(5),
    );
    assert!(line.ends_with("(PROXY v1)"), "{line}");
}

/// echo-client and echo-bench send headers to HAProxy's `accept-proxy`,
/// which relays what it parsed, as v2, to `echo-server`: the client the
/// server names is the one echo-client claimed.
#[test]
#[cfg_attr(
    not(has_haproxy),
    ignore = "needs HAProxy: run .ci/install (Debian package haproxy)"
)]
fn haproxy_accept_proxy_understands_what_echoes_sends() {
    let server = ServerProc::start(&["-l", "127.0.0.1:0", "--proxy-protocol"]);
    let port = free_port();
    let config = format!(
        "{HAPROXY_DEFAULTS}
frontend accepting
  bind 127.0.0.1:{port} accept-proxy
  default_backend echo
backend echo
  server echo 127.0.0.1:{echo} send-proxy-v2
",
        echo = server.port
    );
    let _haproxy = haproxy(&config, &[port]);
    let addr = format!("127.0.0.1:{port}");
    for (version, source, name) in [
        ("v2", "203.0.113.9:999", "echo_203.0.113.9_999"),
        ("v1", "198.51.100.20:1234", "echo_198.51.100.20_1234"),
        ("v2", "[2001:db8::9]:443", "echo_2001:db8::9_443"),
    ] {
        let out = support::run(
            Command::new(CLIENT)
                .args(["-c", &addr, "--proxy-protocol", version])
                .args(["--proxy-source", source, "through", "HAProxy"]),
            b"",
            Duration::from_secs(20),
        );
        assert!(out.status.success(), "{version} {source}: {}", out.stderr);
        server.wait_for_line(
            &format!("{name}: connection accepted via proxy"),
            Duration::from_secs(5),
        );
    }
    let out = support::run(
        Command::new(BENCH)
            .args(["--connect", &addr, "-m", "churn", "-c", "2", "-d", "1s"])
            .args(["--warmup", "0s", "--json", "--proxy-protocol", "v2"])
            .args(["--proxy-source", "192.0.2.10", "--proxy-vary-source"]),
        b"",
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", out.stderr);
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(json.contains("\"errors\":0"), "{json}");
    // Each connection claimed its own client, and HAProxy passed it on.
    server.wait_for_line("echo_192.0.2.10_", Duration::from_secs(5));
    server.wait_for_line("echo_192.0.2.12_", Duration::from_secs(5));
}
