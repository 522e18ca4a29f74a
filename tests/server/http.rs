//! `http://` and `https://` listeners, checked with curl (HTTP/1.1, h2c
//! with prior knowledge, HTTP/2 over TLS with ALPN, mutual TLS) and with
//! hostile input over raw sockets: the reflection, the knobs and their
//! limits, 400/431/413/408 and their counts, the test page, and graceful
//! shutdown of a request in flight.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::http::*;
use crate::support::*;
use sha2::{Digest, Sha256};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn url(server: &ServerProc, scheme: &str, path: &str) -> String {
    let host = if scheme == "https" {
        "localhost"
    } else {
        "127.0.0.1"
    };
    format!("{scheme}://{host}:{}{path}", server.port)
}

#[test]
#[cfg_attr(
    not(has_curl),
    ignore = "needs curl: run .ci/install (Debian package curl)"
)]
fn http1_reflects_the_request_as_json() {
    let server = server("http", &["--name", "backend-7"]);
    let a = curl(&[
        &url(&server, "http", "/some/path?x=1&y=two"),
        "-H",
        "X-Trace: a",
        "-H",
        "X-Trace: b",
        "--data-binary",
        "hello, reflection",
    ]);
    assert_eq!(a.status, 200);
    assert_eq!(a.header("x-echo-server"), Some("backend-7"));
    // The shard that served it: one of the server's (one per core here).
    let shard: u64 = a.header("x-echo-shard").unwrap().parse().unwrap();
    assert!(shard < 1024, "{shard}");
    assert_eq!(a.header("content-type"), Some("application/json"));
    let v = a.json();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/some/path");
    assert_eq!(v["query"], "x=1&y=two");
    assert_eq!(v["version"], "HTTP/1.1");
    let headers: Vec<(String, String)> = v["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h[0].as_str().unwrap().into(), h[1].as_str().unwrap().into()))
        .collect();
    let traces: Vec<&str> = headers
        .iter()
        .filter(|(k, _)| k == "x-trace")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(traces, ["a", "b"], "repeats kept, in order: {headers:?}");
    assert_eq!(headers[0].0, "host", "in the order sent: {headers:?}");
    assert_eq!(v["body"]["data"], "hello, reflection");
    assert_eq!(v["body"]["encoding"], "utf-8");
    assert_eq!(v["body"]["length"], 17);
    assert_eq!(
        v["body"]["sha256"],
        hex(&Sha256::digest(b"hello, reflection"))
    );
    assert_eq!(v["client"]["address"], "127.0.0.1");
    assert!(v["client"]["port"].as_u64().unwrap() > 0);
    assert_eq!(v["server"]["name"], "backend-7");
    assert_eq!(v["server"]["shard"], shard);
    assert_eq!(v["server"]["port"], server.port);
    assert!(v["tls"].is_null());
    // The seed's lines, per connection.
    server.wait_for_line("connection accepted", Duration::from_secs(5));
    server.wait_for_line(": closing", Duration::from_secs(5));
}

#[test]
#[cfg_attr(
    not(has_curl),
    ignore = "needs curl: run .ci/install (Debian package curl)"
)]
fn binary_bodies_are_base64_and_text_is_asked_for_with_accept() {
    let server = server("http", &[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body.bin");
    let body: Vec<u8> = (0..=255u8).collect();
    std::fs::write(&file, &body).unwrap();
    let a = curl(&[
        &url(&server, "http", "/bin"),
        "--data-binary",
        &format!("@{}", file.display()),
    ]);
    let v = a.json();
    assert_eq!(v["body"]["encoding"], "base64");
    assert_eq!(v["body"]["length"], 256);
    assert_eq!(v["body"]["sha256"], hex(&Sha256::digest(&body)));
    let a = curl(&[&url(&server, "http", "/t?q"), "-H", "Accept: text/plain"]);
    assert_eq!(a.header("content-type"), Some("text/plain; charset=utf-8"));
    let text = a.text();
    assert!(
        text.starts_with("GET /t?q HTTP/1.1\nhost: 127.0.0.1:"),
        "{text}"
    );
    assert!(text.contains("\nclient: 127.0.0.1 port "), "{text}");
    assert!(text.contains("body: 0 bytes"), "{text}");
}

#[test]
#[cfg_attr(
    not(has_curl),
    ignore = "needs curl: run .ci/install (Debian package curl)"
)]
fn h2c_with_prior_knowledge() {
    let server = server("http", &[]);
    let a = curl(&["--http2-prior-knowledge", &url(&server, "http", "/h2?a=b")]);
    assert_eq!(a.status, 200);
    let v = a.json();
    assert_eq!(v["version"], "HTTP/2.0");
    assert_eq!(v["path"], "/h2");
    assert_eq!(v["query"], "a=b");
}

#[test]
#[cfg_attr(
    not(has_curl),
    ignore = "needs curl: run .ci/install (Debian package curl)"
)]
fn https_speaks_http2_and_http1_by_alpn() {
    let server = server("https", &["--tls-self-signed"]);
    let a = curl(&["-k", "--http2", &url(&server, "https", "/secure")]);
    let v = a.json();
    assert_eq!(v["version"], "HTTP/2.0");
    assert_eq!(v["tls"]["alpn"], "h2");
    assert_eq!(v["tls"]["sni"], "localhost");
    assert_eq!(v["tls"]["version"], "TLSv1.3");
    assert!(
        v["tls"]["cipher"].as_str().unwrap().starts_with("TLS13_"),
        "{v}"
    );
    assert!(v["tls"]["client_certificate"].is_null());
    let a = curl(&["-k", "--http1.1", &url(&server, "https", "/")]);
    let v = a.json();
    assert_eq!(v["version"], "HTTP/1.1");
    assert_eq!(v["tls"]["alpn"], "http/1.1");
    // A TLS failure is counted under http.
    let out = run(
        Command::new("curl").args(["-sS", &url(&server, "https", "/")]),
        b"",
        Duration::from_secs(20),
    );
    assert!(
        !out.status.success(),
        "curl trusted a self-signed certificate"
    );
}

#[test]
#[cfg_attr(
    not(has_curl),
    ignore = "needs curl: run .ci/install (Debian package curl)"
)]
fn mutual_tls_shows_the_client_certificate() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n).display().to_string();
    let write = |name: &str, pem: String, key: &KeyPair| {
        std::fs::write(path(&format!("{name}.pem")), pem).unwrap();
        std::fs::write(path(&format!("{name}.key")), key.serialize_pem()).unwrap();
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Names of their own: OpenSSL takes a certificate whose issuer is its
    // subject for self-signed.
    ca.distinguished_name
        .push(DnType::CommonName, "echoes test CA");
    let ca_key = KeyPair::generate().unwrap();
    write("ca", ca.self_signed(&ca_key).unwrap().pem(), &ca_key);
    let issuer = Issuer::new(ca, ca_key);
    let mut server_params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    server_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let key = KeyPair::generate().unwrap();
    write(
        "server",
        server_params.signed_by(&key, &issuer).unwrap().pem(),
        &key,
    );
    let mut client_params = CertificateParams::new(vec!["client.example".to_string()]).unwrap();
    client_params
        .distinguished_name
        .push(DnType::CommonName, "load-balancer-3");
    let key = KeyPair::generate().unwrap();
    let client_cert = client_params.signed_by(&key, &issuer).unwrap();
    let client_der = client_cert.der().to_vec();
    write("client", client_cert.pem(), &key);

    let server = server(
        "https",
        &[
            "--tls-cert",
            &path("server.pem"),
            "--tls-key",
            &path("server.key"),
            "--tls-client-ca",
            &path("ca.pem"),
        ],
    );
    let a = curl(&[
        "--cacert",
        &path("ca.pem"),
        "--cert",
        &path("client.pem"),
        "--key",
        &path("client.key"),
        &url(&server, "https", "/who"),
    ]);
    let v = a.json();
    let cert = &v["tls"]["client_certificate"];
    assert_eq!(cert["subject"], "CN=load-balancer-3", "{v}");
    let fingerprint: Vec<String> = Sha256::digest(&client_der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    assert_eq!(cert["sha256"], fingerprint.join(":"));
}

#[test]
#[cfg_attr(
    not(has_curl),
    ignore = "needs curl: run .ci/install (Debian package curl)"
)]
fn knobs_set_status_delay_size_close_and_echo_the_body() {
    let server = server("http", &[]);
    let a = curl(&[&url(&server, "http", "/?status=503")]);
    assert_eq!(a.status, 503);
    assert_eq!(a.json()["query"], "status=503", "a reflection still");
    let a = curl(&[&url(&server, "http", "/"), "-H", "x-echo-status: 418"]);
    assert_eq!(a.status, 418);

    let started = Instant::now();
    let a = curl(&[&url(&server, "http", "/?delay=400ms")]);
    assert_eq!(a.status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );

    let a = curl(&[&url(&server, "http", "/?size=100000")]);
    assert_eq!(a.body.len(), 100_000);
    assert_eq!(a.header("content-length"), Some("100000"));
    assert_eq!(echoes::http::first_mismatch(0, &a.body), None);
    assert!(a.body.starts_with(b"000000000000000\n000000000000016\n"));
    let a = curl(&[
        "--http2-prior-knowledge",
        &url(&server, "http", "/"),
        "-H",
        "x-echo-size: 64KiB",
    ]);
    assert_eq!(a.body.len(), 65536);
    assert_eq!(echoes::http::first_mismatch(0, &a.body), None);

    let a = curl(&[&url(&server, "http", "/?close")]);
    assert_eq!(a.header("connection"), Some("close"));

    let body = pattern(7, 300_000);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b");
    std::fs::write(&file, &body).unwrap();
    for version in ["--http1.1", "--http2-prior-knowledge"] {
        let a = curl(&[
            version,
            &url(&server, "http", "/up?echo_body&status=201"),
            "-H",
            "content-type: application/x-test",
            "--data-binary",
            &format!("@{}", file.display()),
        ]);
        assert_eq!(a.status, 201);
        assert_eq!(a.header("content-type"), Some("application/x-test"));
        assert!(a.body == body, "{version}: the body came back changed");
    }
}

#[test]
#[cfg_attr(
    not(has_curl),
    ignore = "needs curl: run .ci/install (Debian package curl)"
)]
fn knobs_past_the_limits_are_a_clear_400_and_counted() {
    let server = server(
        "http",
        &[
            "--http-max-delay",
            "1s",
            "--http-max-size",
            "1KiB",
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    for (path, header, why) in [
        ("/?delay=2s", "", "--http-max-delay of 1s"),
        ("/?size=2KiB", "", "--http-max-size of 1KiB"),
        ("/?status=42", "", "200 to 599"),
        (
            "/",
            "x-echo-stauts: 500",
            "unknown knob header x-echo-stauts",
        ),
    ] {
        let mut args = vec![url(&server, "http", path)];
        if !header.is_empty() {
            args.extend(["-H".to_string(), header.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let a = curl(&args);
        assert_eq!(a.status, 400, "{path} {header}");
        assert!(a.text().contains(why), "{path}: {}", a.text());
    }
    let metrics = metrics_port(&server);
    let page = scrape(metrics);
    assert_eq!(
        sample(
            &page,
            r#"echoes_errors_total{transport="http",kind="bad_knob"}"#
        ),
        4
    );
}

/// The port of the server's `--metrics` listener, from its log.
fn metrics_port(server: &ServerProc) -> u16 {
    let line = server.wait_for_line("serving metrics on", Duration::from_secs(5));
    line.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches("/metrics").parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"))
}

#[test]
fn hostile_requests_get_400_431_413_408_and_are_counted() {
    let server = server(
        "http",
        &[
            "--http-header-timeout",
            "1s",
            "--http-max-body",
            "64KiB",
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    let port = server.port;
    let wait = Duration::from_secs(10);
    assert_eq!(
        status_of(&raw_exchange(port, b"NOT HTTP AT ALL\r\n\r\n", wait)),
        400
    );
    let mut huge = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 200_000));
    huge.extend(b"\r\n\r\n");
    assert_eq!(status_of(&raw_exchange(port, &huge, wait)), 431);
    let declared = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n";
    assert_eq!(status_of(&raw_exchange(port, declared, wait)), 413);
    let mut chunked = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..40 {
        chunked.extend(b"1000\r\n");
        chunked.extend(std::iter::repeat_n(b'x', 4096));
        chunked.extend(b"\r\n");
    }
    assert_eq!(status_of(&raw_exchange(port, &chunked, wait)), 413);
    // Slowloris: a head that never ends gets 408 at the header timeout.
    let started = Instant::now();
    let answer = raw_exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: a", wait);
    assert_eq!(status_of(&answer), 408);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // A keep-alive connection idle between requests just closes, silently.
    let answer = raw_exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", wait);
    assert_eq!(status_of(&answer), 200);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        !answer.contains("408"),
        "an idle keep-alive connection got {answer}"
    );

    let page = scrape(metrics_port(&server));
    for (kind, n) in [
        ("bad_request", 1),
        ("headers_too_large", 1),
        ("body_too_large", 2),
        ("request_timeout", 1),
    ] {
        let series = format!(r#"echoes_errors_total{{transport="http",kind="{kind}"}}"#);
        assert_eq!(sample(&page, &series), n, "{kind}");
    }
    // Bytes are counted as read, and what was refused was not all read.
    let received = sample(&page, r#"echoes_bytes_received_total{transport="http"}"#);
    assert!((64 * 1024..300_000).contains(&received), "{received}");
    wait_for(Duration::from_secs(5), "every connection closed", || {
        sample(
            &scrape(metrics_port(&server)),
            r#"echoes_connections_open{transport="http"}"#,
        ) == 0
    });
}

#[test]
#[cfg_attr(
    not(has_curl),
    ignore = "needs curl: run .ci/install (Debian package curl)"
)]
fn the_test_page_is_one_self_contained_file() {
    let server = server("http", &[]);
    let a = curl(&[&url(&server, "http", "/.well-known/echoes")]);
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = a.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let html = a.text();
    assert!(html.contains("new WebSocket("), "{html}");
    assert!(
        !html.contains("src=\"http") && !html.contains("<link"),
        "external assets"
    );
    // Any other method there is a reflection.
    let a = curl(&[&url(&server, "http", "/.well-known/echoes"), "-d", "x"]);
    assert_eq!(a.json()["path"], "/.well-known/echoes");
}

#[test]
#[cfg_attr(
    not(has_curl),
    ignore = "needs curl: run .ci/install (Debian package curl)"
)]
fn shutdown_lets_a_request_in_flight_finish() {
    let mut server = server("http", &[]);
    let target = url(&server, "http", "/?delay=1500ms");
    let request = std::thread::spawn(move || curl(&[&target]));
    // The request is in, waiting on its delay.
    server.wait_for_line("connection accepted", Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300));
    server.signal(libc::SIGTERM);
    let a = request.join().unwrap();
    assert_eq!(a.status, 200, "{}", a.text());
    assert!(server.wait_exit(Duration::from_secs(10)).success());
}

#[test]
#[cfg_attr(
    not(has_curl),
    ignore = "needs curl: run .ci/install (Debian package curl)"
)]
fn limits_and_listener_addresses_apply_to_http() {
    // A ws:// listener is the http:// one.
    let server = server("ws", &["--max-connections-per-ip", "1"]);
    server.wait_for_line(
        "starting up on http://127.0.0.1 port",
        Duration::from_secs(5),
    );
    let held = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    server.wait_for_line("connection accepted", Duration::from_secs(5));
    let refused = run(
        Command::new("curl").args(["-sS", &url(&server, "http", "/")]),
        b"",
        Duration::from_secs(20),
    );
    assert!(
        !refused.status.success(),
        "a second connection from one IP was served"
    );
    drop(held);
    wait_for(
        Duration::from_secs(5),
        "the held connection to close",
        || server.count_lines(": closing") >= 1,
    );
    assert_eq!(curl(&[&url(&server, "http", "/")]).status, 200);

    for (args, needle) in [
        (&["-l", "http://127.0.0.1:0/path"][..], "takes no path"),
        (
            &["-l", "https://127.0.0.1:0"],
            "https:// needs a certificate",
        ),
        (
            &["-l", "http://127.0.0.1:0", "--http-max-body", "2GiB"],
            "over 1GiB",
        ),
        (
            &["-l", "http://127.0.0.1:0", "--name", "bad\tname"],
            "printable ASCII",
        ),
        (
            &[
                "-l",
                "http://127.0.0.1:0",
                "--ws-max-frame",
                "2MiB",
                "--ws-max-message",
                "1MiB",
            ],
            "--ws-max-frame",
        ),
    ] {
        let out = run(&mut server_command(args), b"", Duration::from_secs(10));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn silent_and_idle_connections_are_closed() {
    let server = server(
        "http",
        &["--http-header-timeout", "1s", "--idle-timeout", "2s"],
    );
    // Nothing at all: closed at the header timeout, without a word.
    let started = Instant::now();
    let answer = raw_exchange(server.port, b"", Duration::from_secs(10));
    assert!(answer.is_empty(), "{:?}", String::from_utf8_lossy(&answer));
    let waited = started.elapsed();
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(5)).contains(&waited),
        "{waited:?}"
    );
    // A request whose body stalls: closed at the idle timeout, and logged.
    let started = Instant::now();
    let answer = raw_exchange(
        server.port,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
        Duration::from_secs(10),
    );
    assert!(answer.is_empty(), "{:?}", String::from_utf8_lossy(&answer));
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    server.wait_for_line("idle for 2s", Duration::from_secs(5));
}

/// Sends `request` on a new connection, then half-closes it at once (what
/// `nc -N` and socat do at the end of their input), and reads the answer.
fn half_closed_exchange(port: u16, request: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(request).unwrap();
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    answer
}

/// A request followed at once by end of stream gets its whole answer:
/// keep-alive GETs, delays and POST reflections, five times each.
#[test]
fn a_request_then_a_half_close_is_answered_in_full() {
    let server = server("http", &[]);
    let requests: [&[u8]; 3] = [
        b"GET /?size=1000 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /?delay=100ms HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    ];
    for request in requests {
        for round in 0..5 {
            let answer = half_closed_exchange(server.port, request);
            let text = String::from_utf8_lossy(&answer);
            assert!(
                text.starts_with("HTTP/1.1 200"),
                "round {round} of {:?}: {text:?}",
                String::from_utf8_lossy(request)
            );
            let (_, body) = text.split_once("\r\n\r\n").unwrap();
            if request.starts_with(b"GET /?size") {
                assert_eq!(body.len(), 1000, "{text:?}");
            } else if request.starts_with(b"POST") {
                let v: serde_json::Value = serde_json::from_str(body).unwrap();
                assert_eq!(v["body"]["data"], "hello", "{v}");
            }
        }
    }
}

/// `CONNECT host:port` is not answered 2xx: that would tell the client its
/// tunnel is up, and nothing is connected (RFC 9110 §9.3.6).
#[test]
fn connect_is_refused_not_answered_as_a_tunnel() {
    let server = server("http", &[]);
    let answer = raw_exchange(
        server.port,
        b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
        Duration::from_secs(10),
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 405"), "{text:?}");
    assert!(text.contains("connects to nothing"), "{text:?}");
}

/// RFC 9112 §3.2: HTTP/1.1 without Host, with two, or with a Host that is
/// not `host[:port]` gets 400; HTTP/1.0 without Host and an absolute-form
/// target are fine.
#[test]
fn requests_break_the_host_rules_get_400() {
    let server = server("http", &[]);
    let status = |request: &[u8]| {
        let answer = raw_exchange(server.port, request, Duration::from_secs(10));
        (
            status_of(&answer),
            String::from_utf8_lossy(&answer).into_owned(),
        )
    };
    for (what, request) in [
        ("no Host", &b"GET / HTTP/1.1\r\n\r\n"[..]),
        (
            "two Host lines",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        ),
        ("a space", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n"),
        (
            "user info",
            b"GET / HTTP/1.1\r\nHost: user@evil.example\r\n\r\n",
        ),
        ("a path", b"GET / HTTP/1.1\r\nHost: a.example/x\r\n\r\n"),
        (
            "a bad port",
            b"GET / HTTP/1.1\r\nHost: a.example:99999x\r\n\r\n",
        ),
    ] {
        let (code, text) = status(request);
        assert_eq!(code, 400, "{what}: {text:?}");
        assert!(text.contains("RFC 9112"), "{what}: {text:?}");
    }
    for (what, request) in [
        ("HTTP/1.0 without Host", &b"GET / HTTP/1.0\r\n\r\n"[..]),
        (
            "absolute-form",
            b"GET http://a.example/x HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n",
        ),
        (
            "a port",
            b"GET / HTTP/1.1\r\nHost: a.example:8080\r\nConnection: close\r\n\r\n",
        ),
    ] {
        let (code, text) = status(request);
        assert_eq!(code, 200, "{what}: {text:?}");
    }
}

/// A header value that is not UTF-8 comes back reversibly: U+FFFD for what
/// is not text, then its bytes in base64 as a third element; a value that
/// really holds U+FFFD stays a pair. Each pair takes one line of the JSON.
/// A `#fragment` (never sent by a browser) is not part of the target.
#[test]
fn header_values_that_are_not_utf8_come_back_reversibly() {
    use base64::Engine as _;
    let server = server("http", &[]);
    let request = b"GET /a#frag HTTP/1.1\r\nHost: h\r\nX-High: \x80\xfe\xff\r\nX-Cafe: caf\xe9\r\n\
                    X-Real: caf\xef\xbf\xbd\r\nConnection: close\r\n\r\n";
    let answer = raw_exchange(server.port, request, Duration::from_secs(10));
    let text = String::from_utf8_lossy(&answer);
    let body = &text[text.find("\r\n\r\n").expect("a response") + 4..];
    let v: serde_json::Value = serde_json::from_str(body).expect(body);
    let header = |name: &str| {
        v["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h[0] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {body}"))
    };
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    assert_eq!(
        header("x-high"),
        serde_json::json!(["x-high", "\u{fffd}\u{fffd}\u{fffd}", b64(b"\x80\xfe\xff")])
    );
    assert_eq!(
        header("x-cafe"),
        serde_json::json!(["x-cafe", "caf\u{fffd}", b64(b"caf\xe9")])
    );
    assert_eq!(
        header("x-real"),
        serde_json::json!(["x-real", "caf\u{fffd}"])
    );
    assert!(body.contains("\n    [\"host\", \"h\"],\n"), "{body}");
    assert_eq!(v["uri"], "/a");
}
