//! The HTTP knobs that add to an answer: `header=` response headers
//! (over HTTP/1.1 and h2, and each refusal's 400), the server's
//! `--http-default-knobs` (a request's own knob wins; a bad flag is exit
//! 2), and `sse=` server-sent events (count, order, interval, a client
//! that leaves, graceful shutdown).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::http::*;
use crate::support::*;

fn url(server: &ServerProc, path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", server.port)
}

fn metrics_port(server: &ServerProc) -> u16 {
    let line = server.wait_for_line("serving metrics on", Duration::from_secs(5));
    line.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches("/metrics").parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"))
}

/// Every value of header `name`, in order.
fn values<'a>(a: &'a Answer, name: &str) -> Vec<&'a str> {
    a.headers
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Event `k` of `n` as the server sends it (src/http/sse.rs).
fn event(k: u32, n: u32) -> String {
    echoes::http::sse_event(k, n)
}

#[test]
#[cfg_attr(
    not(has_curl),
    ignore = "needs curl: run .ci/install (Debian package curl)"
)]
fn header_knobs_add_response_headers_over_http1_and_h2() {
    let server = server("http", &[]);
    let target = url(
        &server,
        "/h?header=X-A:1&header=Cache-Control:%20no-store&header=X-A:2&header=Content-Type:text/x-echo",
    );
    for version in ["--http1.1", "--http2-prior-knowledge"] {
        let a = curl(&[version, &target, "-H", "x-echo-header: X-From-Header: yes"]);
        assert_eq!(a.status, 200, "{version}");
        assert_eq!(values(&a, "x-a"), ["1", "2"], "{version}: {:?}", a.headers);
        assert_eq!(a.header("cache-control"), Some("no-store"), "{version}");
        assert_eq!(a.header("x-from-header"), Some("yes"), "{version}");
        // The first of a name replaces the server's own.
        assert_eq!(values(&a, "content-type"), ["text/x-echo"], "{version}");
        assert!(a.header("x-echo-server").is_some(), "{version}");
        // Still the reflection, which shows the knobs as asked.
        assert!(a.text().contains("x-echo-header"), "{version}");
    }
}

#[test]
#[cfg_attr(
    not(has_curl),
    ignore = "needs curl: run .ci/install (Debian package curl)"
)]
fn refused_header_knobs_get_a_400_that_names_the_header_and_why() {
    let server = server("http", &["--metrics", "127.0.0.1:0"]);
    let seventeen: Vec<String> = (0..17).map(|i| format!("header=X-{i}:v")).collect();
    let seventeen = format!("/?{}", seventeen.join("&"));
    let big = format!("/?header=X-Big:{}", "v".repeat(4096));
    let cases: Vec<(&str, &str, &str)> = vec![
        (
            "/?header=Content-Length:5",
            "",
            "Content-Length is a header the server sets itself: it frames the response",
        ),
        (
            "/?header=Transfer-Encoding:chunked",
            "",
            "Transfer-Encoding is a header the server sets itself",
        ),
        (
            "/",
            "x-echo-header: Connection: close",
            "x-echo-header: Connection is a header the server sets itself",
        ),
        (
            "/?header=Upgrade:h2c",
            "",
            "Upgrade is a header the server sets itself",
        ),
        (
            "/?header=Host:x",
            "",
            "Host is a header the server sets itself",
        ),
        (
            "/?header=TE:trailers",
            "",
            "TE is a header the server sets itself",
        ),
        ("/?header=Keep-Alive:5", "", "Keep-Alive is a header"),
        (
            "/?header=Proxy-Connection:x",
            "",
            "Proxy-Connection is a header",
        ),
        ("/?header=Trailer:x", "", "Trailer is a header"),
        ("/?header=:status:200", "", ":status is a pseudo-header"),
        ("/?header=X%20A:1", "", "\"X A\" is not a header name"),
        (
            "/?header=X-A:a%0Ab",
            "",
            "the value of X-A is not a header value",
        ),
        ("/?header=NoColon", "", "a header is Name:Value"),
        (
            &seventeen,
            "",
            "17 headers asked for, and a request may add at most 16",
        ),
        (&big, "", "at most 4KiB in all"),
    ];
    for version in ["--http1.1", "--http2-prior-knowledge"] {
        for (path, header, why) in &cases {
            let target = url(&server, path);
            let mut args = vec![version, target.as_str()];
            if !header.is_empty() {
                args.extend(["-H", header]);
            }
            let a = curl(&args);
            assert_eq!(a.status, 400, "{version} {path} {header}: {}", a.text());
            let text = a.text();
            assert!(text.starts_with("echoes: bad knob: "), "{text}");
            assert!(text.contains(why), "{version} {path}: {text}");
        }
    }
    let page = scrape(metrics_port(&server));
    let refused = sample(
        &page,
        r#"echoes_errors_total{transport="http",kind="bad_knob"}"#,
    );
    assert_eq!(refused, 2 * cases.len() as u64);
}

#[test]
#[cfg_attr(
    not(has_curl),
    ignore = "needs curl: run .ci/install (Debian package curl)"
)]
fn default_knobs_apply_unless_the_request_turns_its_own() {
    let server = server(
        "http",
        &[
            "--http-default-knobs",
            "status=503&delay=300ms&header=X-Default:1&header=Cache-Control:no-store",
        ],
    );
    let started = Instant::now();
    let a = curl(&[&url(&server, "/plain")]);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(a.status, 503);
    assert_eq!(a.header("x-default"), Some("1"));
    assert_eq!(a.header("cache-control"), Some("no-store"));
    assert_eq!(a.json()["path"], "/plain", "still the reflection");

    // The request's own status, delay and headers win; an empty header=
    // drops the defaults'.
    let started = Instant::now();
    let a = curl(&[&url(&server, "/own?status=201&delay=0&header=")]);
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "own delay=0"
    );
    assert_eq!(a.status, 201);
    assert_eq!(a.header("x-default"), None);
    let a = curl(&[
        "--http2-prior-knowledge",
        &url(&server, "/?size=32&delay=0"),
        "-H",
        "x-echo-header: X-Own: 2",
    ]);
    assert_eq!(a.status, 503, "the default status, as not turned");
    assert_eq!(a.header("x-own"), Some("2"));
    assert_eq!(a.header("x-default"), None, "header counts as one knob");
    assert_eq!(a.body, echoes_pattern(32));
}

/// The first `len` bytes of the `size=` pattern.
fn echoes_pattern(len: u64) -> Vec<u8> {
    (0..len).map(echoes::http::byte_at).collect()
}

#[test]
fn a_bad_default_knobs_flag_is_exit_2_with_a_line_that_names_it() {
    for (extra, said) in [
        (
            &["--http-default-knobs", "status=42"][..],
            "--http-default-knobs: status=42: a status is a number from 200 to 599",
        ),
        (
            &["--http-default-knobs", "delay=2s", "--http-max-delay", "1s"],
            "--http-default-knobs: delay=2s is over this server's --http-max-delay of 1s",
        ),
        (
            &["--http-default-knobs", "header=Connection:close"],
            "--http-default-knobs: header: Connection is a header the server sets itself",
        ),
        (
            &["--http-default-knobs", "size=1&echo_body"],
            "--http-default-knobs: size and echo_body cannot go together",
        ),
    ] {
        let mut args = vec!["-l", "http://127.0.0.1:0"];
        args.extend_from_slice(extra);
        let out = run(&mut server_command(&args), b"", Duration::from_secs(10));
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", out.stderr);
        let first = out.stderr.lines().next().unwrap_or_default();
        assert!(first.contains(said), "{extra:?}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
}

/// Sends a GET for `path` on a new connection (HTTP/1.1, kept open).
fn get(port: u16, path: &str) -> TcpStream {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(conn, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    conn
}

/// Reads from `conn` until `count` events of `of` have come (or the
/// server closes), returning what came and when each event was first seen.
fn read_events(conn: &mut TcpStream, count: u32, of: u32) -> (Vec<u8>, Vec<Instant>) {
    let mut raw = Vec::new();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while (seen.len() as u32) < count {
        let n = conn.read(&mut buf).expect("reading events");
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw);
        while (seen.len() as u32) < count && text.contains(&event(seen.len() as u32 + 1, of)) {
            seen.push(Instant::now());
        }
    }
    (raw, seen)
}

#[test]
fn sse_streams_n_events_in_order_an_interval_apart() {
    let server = server("http", &[]);
    let mut conn = get(server.port, "/?sse=5&interval=100ms");
    let started = Instant::now();
    let (raw, seen) = read_events(&mut conn, 5, 5);
    assert_eq!(seen.len(), 5, "{}", String::from_utf8_lossy(&raw));
    let text = String::from_utf8_lossy(&raw).into_owned();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    let lower = text.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: text/event-stream\r\n"),
        "{text}"
    );
    assert!(lower.contains("cache-control: no-cache\r\n"), "{text}");
    // In order, each once.
    let at: Vec<usize> = (1..=5).map(|k| text.find(&event(k, 5)).unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert_eq!(text.matches("id: ").count(), 5, "{text}");
    // The first at once, then about 100 ms apart (slack for slow CI).
    assert!(seen[0] - started < Duration::from_secs(2));
    let span = seen[4] - seen[0];
    assert!(
        span >= Duration::from_millis(380) && span < Duration::from_secs(4),
        "{span:?}"
    );
    // Then the chunked body ends, and the connection stays usable.
    let mut rest = raw;
    while !rest.ends_with(b"0\r\n\r\n") {
        let mut buf = [0u8; 1024];
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the body's end");
        rest.extend_from_slice(&buf[..n]);
    }
    write!(
        conn,
        "GET /?status=204 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut next = Vec::new();
    conn.read_to_end(&mut next).unwrap();
    assert_eq!(status_of(&next), 204);
}

#[test]
#[cfg_attr(
    not(has_curl),
    ignore = "needs curl: run .ci/install (Debian package curl)"
)]
fn sse_over_h2_is_the_same_events() {
    let server = server("http", &[]);
    let a = curl(&[
        "--http2-prior-knowledge",
        &url(&server, "/?sse=3&interval=20ms&header=X-Accel-Buffering:no"),
    ]);
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("text/event-stream"));
    assert_eq!(a.header("x-accel-buffering"), Some("no"));
    let want: String = (1..=3).map(|k| event(k, 3)).collect();
    assert_eq!(a.text(), want);
}

#[test]
fn an_sse_client_that_leaves_leaves_nothing_behind() {
    let server = server("http", &["--metrics", "127.0.0.1:0"]);
    let metrics = metrics_port(&server);
    let mut conn = get(server.port, "/?sse=10000&interval=50ms");
    let (_, seen) = read_events(&mut conn, 2, 10_000);
    assert_eq!(seen.len(), 2);
    let open = r#"echoes_connections_open{transport="http"}"#;
    assert_eq!(sample(&scrape(metrics), open), 1);
    drop(conn);
    // The next event's write fails, and the connection (its stream with
    // it) is gone.
    wait_for(Duration::from_secs(10), "the SSE connection closed", || {
        sample(&scrape(metrics), open) == 0
    });
    server.wait_for_line(": closing", Duration::from_secs(5));
}

#[test]
fn sse_streams_end_soon_on_graceful_shutdown() {
    let mut server = server("http", &["--shutdown-timeout", "20s"]);
    let mut conn = get(server.port, "/?sse=10000&interval=100ms");
    let (_, seen) = read_events(&mut conn, 1, 10_000);
    assert_eq!(seen.len(), 1);
    let asked = Instant::now();
    server.signal(libc::SIGTERM);
    // The stream ends (the chunked body's last chunk), then the connection.
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).expect("reading to the end");
    assert!(
        rest.ends_with(b"0\r\n\r\n"),
        "{}",
        String::from_utf8_lossy(&rest)
    );
    let status = server.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "{status:?}");
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
}
