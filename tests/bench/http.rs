//! `echo-bench --connect http://…|https://…` against a real `echo-server`
//! on port 0: every request kind (echo, size, reflect) over HTTP/1.1
//! keep-alive and HTTP/2 with every response checked, churn, open loop,
//! the plot and the saved histogram, a 503 counted as a `status` error,
//! TLS with a self-signed certificate, and fake servers that send a
//! wrong body or one without end (a mismatch, and bounded memory), a
//! chunked body after a 100 Continue, `Connection: close` after every
//! response, or a head too large.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use crate::support::ServerProc;
use crate::support::bench::{REPORT_KEYS, bench, json, short_run, short_run_ok, stderr};
use crate::support::http::server;

fn url(server: &ServerProc, scheme: &str, path: &str) -> String {
    format!("{scheme}://127.0.0.1:{}{path}", server.port)
}

#[test]
fn every_request_kind_over_keep_alive_and_h2() {
    let srv = server("http", &[]);
    let url = url(&srv, "http", "/bench");
    for kind in ["echo", "size", "reflect"] {
        for version in [&["-c", "2"][..], &["--http2", "--pipeline", "4"][..]] {
            let mut extra = vec!["--http-request", kind, "-s", "1000"];
            extra.extend_from_slice(version);
            let report = short_run_ok(&url, &extra);
            for key in REPORT_KEYS {
                assert!(report.get(key).is_some(), "no {key} in {report}");
            }
            assert_eq!(report["error_kinds"]["status"], 0, "{report}");
            let messages = report["messages"].as_u64().unwrap();
            assert_eq!(report["samples"].as_u64(), Some(messages), "{report}");
            let bytes = report["bytes"].as_u64().unwrap();
            match kind {
                "reflect" => assert!(bytes > messages * 50, "{extra:?}: {report}"),
                _ => assert_eq!(bytes, messages * 1000, "{extra:?}: {report}"),
            }
        }
    }
}

#[test]
fn churn_and_open_loop() {
    let srv = server("http", &[]);
    let url = url(&srv, "http", "/");
    for extra in [
        &["-m", "churn", "-c", "2"][..],
        &["-m", "churn", "--http2"][..],
    ] {
        let report = short_run_ok(&url, extra);
        assert_eq!(report["mode"], "churn");
    }
    let report = short_run_ok(&url, &["--rate", "200", "-c", "2"]);
    assert_eq!(report["latency_from"], "due");
    let messages = report["messages"].as_u64().unwrap();
    assert!((30..=90).contains(&messages), "{report}");
}

#[test]
fn plot_and_save_hist_work_over_http() {
    let srv = server("http", &[]);
    let url = url(&srv, "http", "/");
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("http.svg");
    let hlog = dir.path().join("http.hlog");
    let extra = [
        "--plot",
        svg.to_str().unwrap(),
        "--save-hist",
        hlog.to_str().unwrap(),
    ];
    short_run_ok(&url, &extra);
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
    let merged = bench(&["merge", "--json", hlog.to_str().unwrap()]);
    assert!(merged.status.success(), "{}", stderr(&merged));
    assert_eq!(json(&merged)["addr"], url.as_str());
}

#[test]
fn a_status_other_than_2xx_is_an_error_of_kind_status() {
    let srv = server("http", &[]);
    for kind in ["echo", "size", "reflect"] {
        let url = url(&srv, "http", "/?status=503");
        let (report, out) = short_run(&url, &["--http-request", kind]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let status = report["error_kinds"]["status"].as_u64().unwrap();
        // Counted per response, the connection kept: no reconnect pauses.
        assert!(status > 20, "{report}");
        assert_eq!(report["errors"].as_u64(), Some(status), "{report}");
        assert_eq!(report["messages"], 0, "{report}");
        let first = report["first_error"].as_str().unwrap();
        assert!(first.starts_with("HTTP status 503"), "{first}");
        assert!(
            stderr(&out).contains(&format!(
                "error(s) (status {status}); first: HTTP status 503"
            )),
            "{}",
            stderr(&out)
        );
    }
    let url = url(&srv, "http", "/?status=500");
    let (report, out) = short_run(&url, &["-m", "churn", "--http2"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        report["error_kinds"]["status"].as_u64().unwrap() > 0,
        "{report}"
    );
}

#[test]
fn https_with_a_self_signed_certificate_and_insecure() {
    let srv = server("https", &["--tls-self-signed"]);
    let url = url(&srv, "https", "/");
    short_run_ok(&url, &["--insecure"]);
    short_run_ok(&url, &["--insecure", "--http2", "--pipeline", "2"]);
    short_run_ok(&url, &["--insecure", "-m", "churn"]);
    // Without --insecure the certificate is not trusted: nothing runs.
    let out = bench(&["--connect", &url, "-d", "300ms"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

/// How a fake HTTP/1.1 server answers each request.
#[derive(Clone, Copy)]
enum Fake {
    /// The request body, with one byte flipped.
    Flipped,
    /// A chunked body that never ends: right at first (the request's
    /// body, or the `size=` pattern), then more.
    Endless,
    /// The request body, in chunks of 3 bytes, each with an extension,
    /// then a trailer; after a `100 Continue`.
    Chunked,
    /// The request body, then `Connection: close`, and the connection
    /// closes: as nginx does after `keepalive_requests`.
    CloseEach,
    /// A head of 90 KB of headers (to a request with a body: the
    /// probe's `GET` gets a plain answer).
    HugeHead,
}

/// A fake HTTP/1.1 server on loopback (a thread per connection, keep-alive);
/// its port. Its threads end with the test process.
fn fake_server(how: Fake) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            std::thread::spawn(move || {
                let _ = serve(conn, how);
            });
        }
    });
    port
}

fn serve(conn: TcpStream, how: Fake) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut out = conn.try_clone()?;
    let mut reader = BufReader::new(conn);
    loop {
        let mut length = 0usize;
        let mut sized = false;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let lower = line.to_ascii_lowercase();
            sized |= lower.contains("size=") && lower.ends_with("http/1.1\r\n");
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
        match how {
            Fake::Flipped => {
                if let Some(b) = body.get_mut(length / 2) {
                    *b ^= 1;
                }
                write!(out, "HTTP/1.1 200 OK\r\ncontent-length: {length}\r\n\r\n")?;
                out.write_all(&body)?;
            }
            Fake::Chunked => {
                out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
                out.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")?;
                for piece in body.chunks(3) {
                    write!(out, "{:x};piece\r\n", piece.len())?;
                    out.write_all(piece)?;
                    out.write_all(b"\r\n")?;
                }
                out.write_all(b"0\r\nx-sum: none\r\n\r\n")?;
            }
            Fake::CloseEach => {
                write!(
                    out,
                    "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: {length}\r\n\r\n"
                )?;
                out.write_all(&body)?;
                return Ok(());
            }
            Fake::HugeHead => {
                out.write_all(b"HTTP/1.1 200 OK\r\n")?;
                for i in 0..if length > 0 { 30 } else { 0 } {
                    write!(out, "x-{i:04}: {}\r\n", "v".repeat(3000))?;
                }
                write!(out, "content-length: {length}\r\n\r\n")?;
                out.write_all(&body)?;
            }
            Fake::Endless => {
                out.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")?;
                let mut chunk: Vec<u8> = if sized {
                    (0..16 * 1024).map(echoes::http::byte_at).collect()
                } else {
                    body.clone()
                };
                if chunk.is_empty() {
                    chunk = vec![b'x'; 16 * 1024];
                }
                // Bounded: the bench must give up long before this ends.
                for _ in 0..4096 {
                    write!(out, "{:x}\r\n", chunk.len())?;
                    out.write_all(&chunk)?;
                    out.write_all(b"\r\n")?;
                }
                return Ok(());
            }
        }
    }
}

#[test]
fn a_wrong_body_is_a_mismatch_at_its_byte() {
    let port = fake_server(Fake::Flipped);
    let url = format!("http://127.0.0.1:{port}/");
    let (report, out) = short_run(&url, &["-s", "100"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        report["error_kinds"]["mismatch"].as_u64().unwrap() > 0,
        "{report}"
    );
    let first = report["first_error"].as_str().unwrap();
    assert!(first.starts_with("echo mismatch at byte 50 "), "{first}");
}

#[test]
fn chunked_bodies_and_servers_that_close_after_each_response_are_served() {
    for how in [Fake::Chunked, Fake::CloseEach] {
        let port = fake_server(how);
        let url = format!("http://127.0.0.1:{port}/");
        let report = short_run_ok(&url, &["-s", "100", "-c", "2"]);
        assert_eq!(report["errors"], 0, "{report}");
        assert!(report["messages"].as_u64().unwrap() > 2, "{report}");
    }
}

#[test]
fn a_head_too_large_is_one_error_line() {
    let port = fake_server(Fake::HugeHead);
    let url = format!("http://127.0.0.1:{port}/");
    let (report, out) = short_run(&url, &["-s", "10"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let first = report["first_error"].as_str().unwrap();
    assert_eq!(
        first,
        "response mismatch: not an HTTP/1.1 response (its head is longer than 65536 bytes)"
    );
}

#[test]
fn an_endless_body_is_an_error_not_memory() {
    let port = fake_server(Fake::Endless);
    let url = format!("http://127.0.0.1:{port}/");
    for kind in ["echo", "size", "reflect"] {
        let (report, out) = short_run(&url, &["--http-request", kind, "-s", "1000"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            report["error_kinds"]["mismatch"].as_u64().unwrap() > 0,
            "{report}"
        );
        let first = report["first_error"].as_str().unwrap();
        assert!(first.contains("longer than"), "{kind}: {first}");
    }
}

#[test]
fn what_http_cannot_do_is_a_usage_error() {
    let srv = server("http", &[]);
    let url = url(&srv, "http", "/");
    let cases: [(&[&str], &str); 4] = [
        (
            &["--connect", &url, "-m", "stream"],
            "--mode stream does not apply to http://",
        ),
        (&["--connect", &url, "--pipeline", "2"], "add --http2"),
        (
            &["--connect", "127.0.0.1:1", "--http2"],
            "--http2 applies to http:// and https:// only",
        ),
        (
            &["--connect", "ws://127.0.0.1:1/", "--http-request", "size"],
            "--http-request applies to http:// and https:// only",
        ),
    ];
    for (args, want) in cases {
        let out = bench(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
    let help = bench(&["--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--http-request <KIND>") && help.contains("--http2"),
        "{help}"
    );
}
