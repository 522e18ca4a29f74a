//! `echo-client` over `ws://`, `wss://`, `http://` and `https://`, against
//! a real `echo-server` on port 0 and against WebSocket servers that
//! misbehave on purpose: the seed's transcript, every trust flag, `--stdin`
//! byte for byte, the SPEC's error lines and exit statuses, and an HTTP
//! request whose reflection is printed.

use std::process::Command;
use std::time::Duration;

use crate::support::ws::{BadServer, Misbehave, Pki};
use crate::support::*;

fn client(args: &[&str]) -> Finished {
    client_with_input(args, b"")
}

fn client_with_input(args: &[&str], input: &[u8]) -> Finished {
    run(
        Command::new(CLIENT).args(args),
        input,
        Duration::from_secs(30),
    )
}

/// The lines of standard error, for exact comparison.
fn lines(out: &Finished) -> Vec<&str> {
    out.stderr.lines().collect()
}

fn http_server(extra: &[&str]) -> ServerProc {
    let mut args = vec!["-l", "http://127.0.0.1:0"];
    args.extend_from_slice(extra);
    ServerProc::start(&args)
}

#[test]
fn ws_messages_come_back_with_the_seed_transcript() {
    let server = http_server(&[]);
    let url = format!("ws://127.0.0.1:{}/chat?room=1", server.port);
    let out = client(&["-c", &url, "hello", "wörld", ""]);
    assert!(out.status.success(), "{}", out.stderr);
    let port = server.port;
    assert_eq!(
        lines(&out),
        [
            format!("echo_client: connecting to 127.0.0.1 port {port}").as_str(),
            "echo_client: sending b'hello'",
            "echo_client: sending b'w\\xc3\\xb6rld'",
            "echo_client: sending b''",
            "echo_client: waiting for response",
            "echo_client: received b'hello'",
            "echo_client: received b'w\\xc3\\xb6rld'",
            "echo_client: received b''",
            "echo_client: closing",
        ]
    );
    // The seed's three, when none are given.
    let out = client(&["-c", &url]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("echo_client: received b'This is the message. '"),
        "{}",
        out.stderr
    );
}

#[test]
fn stdin_goes_through_byte_for_byte() {
    let server = http_server(&[]);
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let data = pattern(15, 3 << 20);
    let out = client_with_input(&["-c", &url, "--stdin"], &data);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stdout == data, "the echo differs from the input");
    // Quiet by default: the transcript needs -v.
    assert_eq!(out.stderr, "");
    let out = client_with_input(&["-c", &url, "-"], b"");
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stdout.is_empty());
}

#[test]
fn wss_trusts_the_ca_the_pin_or_k_and_nothing_else() {
    let pki = Pki::new();
    let server = ServerProc::start(&[
        "-l",
        "https://127.0.0.1:0",
        "--tls-cert",
        &pki.arg("server.pem"),
        "--tls-key",
        &pki.arg("server.key"),
    ]);
    let url = format!("wss://localhost:{}/secure", server.port);
    let out = client(&["-c", &url, "--tls-ca", &pki.arg("ca.pem"), "over", "tls"]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stderr.contains("received b'tls'"), "{}", out.stderr);
    let out = client(&["-c", &url, "-k", "hi"]);
    assert!(out.status.success(), "{}", out.stderr);
    let data = pattern(3, 200_000);
    let out = client_with_input(&["-c", &url, "-k", "--stdin"], &data);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stdout == data, "the echo differs from the input");
    // Trusted by nothing given: one line, exit 1.
    let out = client(&["-c", &url, "--tls-ca", &pki.arg("server.pem"), "hi"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let error: Vec<&str> = lines(&out)
        .into_iter()
        .filter(|l| l.starts_with("echo-client: "))
        .collect();
    assert_eq!(error.len(), 1, "{}", out.stderr);
    assert!(
        error[0].starts_with(&format!(
            "echo-client: error: TLS handshake with localhost port {} failed",
            server.port
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn wss_to_a_self_signed_server_with_k_or_its_pin() {
    let server = ServerProc::start(&["-l", "https://127.0.0.1:0", "--tls-self-signed"]);
    let line = server.wait_for_line("fingerprint", Duration::from_secs(5));
    let pin = line.rsplit(' ').next().unwrap().to_string();
    let url = format!("wss://127.0.0.1:{}/", server.port);
    for trust in [["-k", ""], ["--tls-pin", pin.as_str()]] {
        let mut args = vec!["-c", url.as_str()];
        args.extend(trust.iter().filter(|a| !a.is_empty()));
        args.push("pinned");
        let out = client(&args);
        assert!(out.status.success(), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("received b'pinned'"), "{}", out.stderr);
    }
}

#[test]
fn a_wrong_byte_is_a_mismatch_at_its_offset() {
    // The second message comes back with its fourth byte changed: byte
    // 5 + 3 of the conversation.
    let bad = BadServer::start(Misbehave::Flip { every: 2, at: 3 });
    let out = client(&["-c", &bad.url(), "hello", "world"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert_eq!(
        lines(&out).last().copied(),
        Some(
            "echo-client: error: echo mismatch at byte 8: sent b'l', received b'L' (10 bytes received)"
        )
    );
    // The same over --stdin: one binary message, its fourth byte wrong.
    let bad = BadServer::start(Misbehave::Flip { every: 1, at: 3 });
    let out = client_with_input(&["-c", &bad.url(), "--stdin"], b"abcdefgh");
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .ends_with("echo-client: error: echo mismatch at byte 3: sent b'd', received b'D' (8 bytes received)\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_text_echo_of_binary_is_a_mismatch_and_a_longer_message_extra() {
    let bad = BadServer::start(Misbehave::Text);
    let out = client_with_input(&["-c", &bad.url(), "--stdin"], b"binary");
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .ends_with("echo-client: error: echo mismatch at byte 0: sent a binary message, received a text one\n"),
        "{}",
        out.stderr
    );
    // 8 MiB back for 5 bytes: refused by its header, before it is read.
    let bad = BadServer::start(Misbehave::Huge(8 << 20));
    let out = client(&["-c", &bad.url(), "hello"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .ends_with("echo-client: error: echo mismatch at byte 5: an extra byte past the 5 sent (received 8388608)\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_server_that_closes_early_is_a_short_echo() {
    let bad = BadServer::start(Misbehave::CloseAfter(1));
    let out = client(&["-c", &bad.url(), "hello", "world"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert_eq!(
        lines(&out).last().copied(),
        Some("echo-client: error: short echo: sent 10 bytes, received 5")
    );
}

#[test]
fn a_silent_server_times_out() {
    let bad = BadServer::start(Misbehave::Silent);
    let out = client(&["-c", &bad.url(), "--timeout", "300ms", "hello"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.ends_with(
            "echo-client: error: timed out after 300ms waiting for the echo (sent 5 bytes, received 0)\n"
        ),
        "{}",
        out.stderr
    );
}

/// Runs the client with `args`, `input` on its standard input, until it
/// exits (killed past 30 s): its exit code, standard error, the most
/// memory it held (KiB, with the shell that feeds it), and how long it ran.
fn client_peak(args: &[&str], input: &str) -> (Option<i32>, String, u64, Duration) {
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "printf %s \"$1\" | { shift; exec \"$0\" \"$@\"; }",
        CLIENT,
        input,
    ])
    .args(args);
    run_measured(&mut cmd, Duration::from_secs(30))
}

/// A server that floods pings and never reads: the client's answers to
/// them cannot pile up (its memory stays bounded), and it ends at its
/// timeout with one clear line, as the messages and as `--stdin`.
#[test]
fn a_ping_flood_that_never_reads_costs_bounded_memory() {
    let bad = BadServer::start(Misbehave::PingFloodDeaf);
    for (args, input) in [
        (
            vec!["-c", bad.url().as_str(), "--timeout", "3s", "hello"],
            "",
        ),
        (
            vec!["-c", bad.url().as_str(), "--timeout", "3s", "--stdin"],
            "hello",
        ),
    ] {
        let (code, stderr, peak_kib, took) = client_peak(&args, input);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("echo-client: error: "),
            "{args:?}: {stderr}"
        );
        assert!(took < Duration::from_secs(10), "{args:?}: took {took:?}");
        assert!(
            peak_kib < 64 * 1024,
            "{args:?}: the client held {peak_kib} KiB"
        );
    }
}

/// A server that floods pings, reads, and echoes nothing: `--timeout` is
/// time without progress on the echo, which a ping is not.
#[test]
fn pings_do_not_hold_off_the_timeout() {
    let bad = BadServer::start(Misbehave::PingFlood);
    let (code, stderr, _, took) =
        client_peak(&["-c", &bad.url(), "--timeout", "1s", "--stdin"], "hello");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.ends_with(
            "echo-client: error: timed out after 1s waiting for the echo (sent 5 bytes, received 0)\n"
        ),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(4), "took {took:?}");
}

/// A server that echoes, answers the Close, and keeps TCP open: its Close
/// is the end of the conversation, and the client exits 0.
#[test]
fn the_servers_close_ends_the_conversation_even_if_tcp_stays_open() {
    let bad = BadServer::start(Misbehave::CloseKeepOpen);
    for (args, input) in [
        (
            vec![
                "-c",
                bad.url().as_str(),
                "--timeout",
                "3s",
                "hello",
                "world",
            ],
            "",
        ),
        (
            vec!["-c", bad.url().as_str(), "--timeout", "3s", "--stdin"],
            "hello world",
        ),
    ] {
        let (code, stderr, _, took) = client_peak(&args, input);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert!(took < Duration::from_secs(3), "{args:?}: took {took:?}");
    }
}

#[test]
fn ws_to_a_plain_echo_server_is_one_clear_line() {
    // A TCP echo server sends the handshake request back, which is not an
    // HTTP response.
    let server = ServerProc::start(&["-l", "127.0.0.1:0"]);
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let out = client(&["-c", &url, "--timeout", "2s", "hi"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let last = lines(&out).last().copied().unwrap_or_default();
    assert!(
        last.starts_with(&format!(
            "echo-client: error: WebSocket handshake with {url} failed: "
        )),
        "{}",
        out.stderr
    );
    // An HTTP server that answers 404 to the upgrade (the metrics page).
    let server = ServerProc::start(&["-l", "127.0.0.1:0", "--metrics", "127.0.0.1:0"]);
    let line = server.wait_for_line("serving metrics on", Duration::from_secs(5));
    let port = line
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.trim_end_matches("/metrics").parse::<u16>().ok())
        .unwrap();
    let url = format!("ws://127.0.0.1:{port}/nothing");
    let out = client(&["-c", &url, "hi"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("the server answered 404 Not Found"),
        "{}",
        out.stderr
    );
}

#[test]
fn http_requests_print_the_reflection() {
    let server = http_server(&[]);
    let url = format!("http://127.0.0.1:{}/api/v1?x=1", server.port);
    let out = client(&[
        "-c",
        &url,
        "-X",
        "PUT",
        "-H",
        "X-Trace: abc 1",
        "-H",
        "Accept: application/json",
        "--data",
        "hello body",
    ]);
    assert!(out.status.success(), "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stdout));
    });
    assert_eq!(json["method"], "PUT");
    assert_eq!(json["path"], "/api/v1");
    assert_eq!(json["query"], "x=1");
    assert_eq!(json["version"], "HTTP/1.1");
    assert_eq!(json["body"]["data"], "hello body");
    let headers = json["headers"].as_array().unwrap();
    assert!(
        headers.contains(&serde_json::json!(["x-trace", "abc 1"])),
        "{headers:?}"
    );
    let port = server.port;
    assert_eq!(
        lines(&out),
        [
            format!("echo_client: connecting to 127.0.0.1 port {port}").as_str(),
            "echo_client: sending PUT /api/v1?x=1 HTTP/1.1",
            "echo_client: received 200 OK",
            "echo_client: closing",
        ]
    );
    // --data alone is a POST; text on request.
    let out = client(&["-c", &url, "--data", "x", "-H", "Accept: text/plain"]);
    assert!(out.status.success(), "{}", out.stderr);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("POST"), "{text}");
}

#[test]
fn a_status_other_than_2xx_is_exit_1_after_the_body() {
    let server = http_server(&[]);
    let url = format!("http://127.0.0.1:{}/down?status=503", server.port);
    let out = client(&["-c", &url]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert_eq!(
        lines(&out).last().copied(),
        Some("echo-client: error: the server answered 503 Service Unavailable")
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["path"], "/down");
    // Nobody there: one line, exit 1.
    let out = client(&["-c", "http://127.0.0.1:1/"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("echo-client: error: cannot connect to 127.0.0.1 port 1"),
        "{}",
        out.stderr
    );
}

#[test]
fn https_and_http2_with_the_trust_flags() {
    let server = ServerProc::start(&["-l", "https://127.0.0.1:0", "--tls-self-signed"]);
    let url = format!("https://127.0.0.1:{}/h2", server.port);
    let out = client(&["-c", &url, "-k", "--http2"]);
    assert!(out.status.success(), "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["version"], "HTTP/2.0");
    assert_eq!(json["tls"]["alpn"], "h2");
    let out = client(&["-c", &url, "-k"]);
    assert!(out.status.success(), "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["version"], "HTTP/1.1");
    assert_eq!(json["tls"]["alpn"], "http/1.1");
    // h2c with prior knowledge over http://.
    let plain = http_server(&[]);
    let url = format!("http://127.0.0.1:{}/", plain.port);
    let out = client(&["-c", &url, "--http2"]);
    assert!(out.status.success(), "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["version"], "HTTP/2.0");
}

#[test]
fn web_flags_in_the_wrong_place_are_usage_errors() {
    for (args, needle) in [
        (&["-c", "http://127.0.0.1:1/", "hello"][..], "--data"),
        (&["-c", "http://127.0.0.1:1/", "--stdin"][..], "--data"),
        (&["-c", "ws://127.0.0.1:1/", "-X", "POST"][..], "http://"),
        (&["-c", "127.0.0.1:1", "--data", "x"][..], "http://"),
        (
            &["-c", "http://127.0.0.1:1/", "-H", "no colon"][..],
            "Name: value",
        ),
        (&["-c", "ws://127.0.0.1:1/a b"][..], "%-encoding"),
    ] {
        let out = client(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
    }
}

/// The server ends a clean WebSocket session over TLS with close_notify:
/// a strict client (rustls) reads the end as an end, not a truncation.
#[tokio::test]
async fn wss_sessions_end_with_close_notify() {
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::AsyncReadExt;
    use tokio_tungstenite::tungstenite::Message;

    let server = ServerProc::start(&["-l", "https://127.0.0.1:0", "--tls-self-signed"]);
    let addr: echoes::Addr = format!("tls://127.0.0.1:{}", server.port).parse().unwrap();
    let tls = echoes::transport::client_config(&echoes::transport::TlsClientSettings {
        insecure: true,
        ..Default::default()
    })
    .unwrap();
    let stream = echoes::transport::connect_with(&addr, Duration::from_secs(5), Some(&tls), None)
        .await
        .unwrap();
    let url = format!("wss://127.0.0.1:{}/", server.port);
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    ws.send(Message::text("bye")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("bye"));
    ws.close(None).await.unwrap();
    while let Some(msg) = ws.next().await {
        assert!(msg.unwrap().is_close());
    }
    let mut tls = ws.into_inner();
    let mut rest = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut rest))
        .await
        .expect("the server closes");
    assert!(end.is_ok(), "{end:?}");
}

/// A WebSocket echo server behind a PROXY v1 header: it reads the
/// header line, keeps it, then echoes as a WebSocket server.
fn proxied_ws_server() -> (u16, std::sync::mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                use std::io::Read;
                let mut header = Vec::new();
                let mut byte = [0u8; 1];
                while !header.ends_with(b"\r\n") && header.len() < 108 {
                    if stream.read_exact(&mut byte).is_err() {
                        return;
                    }
                    header.push(byte[0]);
                }
                let _ = tx.send(String::from_utf8_lossy(&header).into_owned());
                let Ok(mut ws) = tokio_tungstenite::tungstenite::accept(stream) else {
                    return;
                };
                while let Ok(msg) = ws.read() {
                    if (msg.is_text() || msg.is_binary()) && ws.send(msg).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, rx)
}

#[test]
fn a_proxy_header_goes_before_the_websocket() {
    let (port, headers) = proxied_ws_server();
    let url = format!("ws://127.0.0.1:{port}/");
    let out = client(&[
        "-c",
        &url,
        "--proxy-protocol",
        "v1",
        "--proxy-source",
        "192.0.2.7:4242",
        "hi",
    ]);
    assert!(out.status.success(), "{}", out.stderr);
    let header = headers.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(
        header,
        format!("PROXY TCP4 192.0.2.7 127.0.0.1 4242 {port}\r\n")
    );
    // The bench sends one before every connection, churn included.
    let bench = Command::new(env!("CARGO_BIN_EXE_echo-bench"))
        .args(["--connect", &url, "--proxy-protocol", "v1", "-m", "churn"])
        .args(["-d", "300ms", "--warmup", "50ms", "--source", "none"])
        .output()
        .unwrap();
    assert!(
        bench.status.success(),
        "{}",
        String::from_utf8_lossy(&bench.stderr)
    );
    let more: Vec<String> = headers.try_iter().collect();
    assert!(more.len() > 2, "{more:?}");
    assert!(
        more.iter().all(|h| h.starts_with("PROXY TCP4 ")),
        "{more:?}"
    );
}

/// A server that closes while a large `--stdin` is still going out: the
/// client must not wait forever for room to send (the window of
/// messages owed their echo is full and nobody reads it any more); it
/// ends at once, a short echo.
#[test]
fn a_close_while_the_window_is_full_ends_the_pipe() {
    // The Close once the 64 chunks the window holds have been read: the
    // client is waiting for room to send the 65th.
    let bad = BadServer::start(Misbehave::SilentThenClose(64));
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "head -c 33554432 /dev/zero | exec \"$0\" \"$@\"",
        CLIENT,
        "-c",
        bad.url().as_str(),
        "--timeout",
        "3s",
        "--stdin",
    ]);
    let (code, stderr, _, took) = run_measured(&mut cmd, Duration::from_secs(30));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr
            .lines()
            .last()
            .unwrap_or_default()
            .contains("short echo"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
}
