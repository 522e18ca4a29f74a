//! What an HTTP/2 peer can make an `http://` listener hold, and for how
//! long: answers queued for a peer that never reads (bounded per stream
//! and per connection), connections that never finish a request (closed
//! at the header timeout), WebSockets over one connection (RFC 8441,
//! capped), and a request over the body limit (its stream ends, not the
//! connection). Driven by hyper's HTTP/2 client and raw frames.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body_util::{Empty, Full};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::support::http::server;
use crate::support::*;

/// A stream whose reading stops for good once `frozen` is set: the peer
/// that asked for answers and never reads them.
struct Freezable {
    inner: tokio::net::TcpStream,
    frozen: Arc<AtomicBool>,
}

impl AsyncRead for Freezable {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.frozen.load(Ordering::Relaxed) {
            return Poll::Pending; // never woken: never read again
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Freezable {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Six h2c connections, each granting the largest window HTTP/2 allows
/// and asking 200 streams for 64 MiB each, then never reading: the
/// server queues a bounded amount per stream and per connection (6.25 MiB:
/// README, "HTTP/2"), not what the windows would let it (hyper's default
/// came to 84 MiB a connection), and still serves a fresh client.
#[tokio::test(flavor = "current_thread")]
async fn a_peer_that_never_reads_costs_bounded_memory() {
    let server = server("http", &[]);
    let before = server.rss_kib();
    let frozen = Arc::new(AtomicBool::new(false));
    let mut keep = Vec::new();
    for _ in 0..6 {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
            .await
            .unwrap();
        let io = Freezable {
            inner: tcp,
            frozen: frozen.clone(),
        };
        let (mut send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .initial_stream_window_size(u32::MAX >> 1)
            .initial_connection_window_size(u32::MAX >> 1)
            .handshake(TokioIo::new(io))
            .await
            .unwrap();
        keep.push(tokio::spawn(async move {
            let _ = conn.await;
        }));
        for _ in 0..200 {
            // The server allows 100 streams at once: the rest wait.
            let ready = tokio::time::timeout(Duration::from_millis(200), send.ready()).await;
            if !matches!(ready, Ok(Ok(()))) {
                break;
            }
            let req = hyper::Request::get(format!("http://127.0.0.1:{}/?size=64MiB", server.port))
                .body(Empty::<Bytes>::new())
                .unwrap();
            let answer = send.send_request(req);
            keep.push(tokio::spawn(async move {
                let _ = answer.await;
            }));
        }
        keep.push(tokio::spawn(async move {
            let _send = send;
            std::future::pending::<()>().await
        }));
    }
    // Let the requests out and the answers flow until both sides' socket
    // buffers are full, then stop reading.
    tokio::time::sleep(Duration::from_millis(500)).await;
    frozen.store(true, Ordering::Relaxed);
    let mut peak = 0;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        peak = peak.max(server.rss_kib());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let grew = peak.saturating_sub(before);
    assert!(
        grew < 64 * 1024,
        "6 connections that never read grew the server by {grew} KiB"
    );
    // A fresh client is still answered.
    let fresh = tokio::task::spawn_blocking(move || {
        let port = server.port;
        let answer = crate::support::http::raw_exchange(
            port,
            b"GET /?size=10 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            Duration::from_secs(10),
        );
        drop(server);
        answer
    })
    .await
    .unwrap();
    assert!(
        fresh.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&fresh)
    );
    for task in keep {
        task.abort();
    }
}

/// An HTTP/2 frame header: `len`, `kind`, `flags`, stream 1 (0 for
/// SETTINGS).
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = len.to_be_bytes()[1..].to_vec();
    f.extend([kind, flags]);
    f.extend(stream.to_be_bytes());
    f.extend(payload);
    f
}

/// Sends `bytes` and waits for the server to close the connection;
/// returns how long that took.
fn closed_after(port: u16, bytes: &[u8]) -> Duration {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.write_all(bytes).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let started = Instant::now();
    let mut sink = [0u8; 4096];
    loop {
        match conn.read(&mut sink) {
            Ok(0) => return started.elapsed(),
            Ok(_) => {} // SETTINGS, their ACK, a GOAWAY
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return started.elapsed();
            }
            Err(e) => panic!("still open after {:?}: {e}", started.elapsed()),
        }
    }
}

/// A connection that sends only the preface and SETTINGS, or a HEADERS
/// frame it never finishes, is closed at `--http-header-timeout` (within
/// two of them), as HTTP/1.1's slow request heads are: eight of them
/// under `--max-connections 8` do not lock a new client out for long.
#[test]
fn stalled_h2_connections_are_closed_at_the_header_timeout() {
    let server = server(
        "http",
        &["--http-header-timeout", "1s", "--max-connections", "8"],
    );
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    let settings = frame(4, 0, 0, b"");
    let only_settings = [preface.clone(), settings.clone()].concat();
    // HEADERS without END_HEADERS, and no CONTINUATION ever.
    let cut_headers = [preface, settings, frame(1, 0x1, 1, b"\x82\x86")].concat();
    for (what, bytes) in [
        ("preface and SETTINGS", &only_settings),
        ("a cut HEADERS", &cut_headers),
    ] {
        let took = closed_after(server.port, bytes);
        assert!(
            (Duration::from_millis(900)..Duration::from_secs(5)).contains(&took),
            "{what}: closed after {took:?}"
        );
    }
    // Eight at once fill --max-connections; each goes at the timeout, and
    // a client after them is served.
    let stalls: Vec<_> = (0..8)
        .map(|_| {
            let bytes = only_settings.clone();
            let port = server.port;
            std::thread::spawn(move || closed_after(port, &bytes))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let answer = crate::support::http::raw_exchange(
        server.port,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    );
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    for s in stalls {
        s.join().unwrap();
    }
}

/// A request over `--http-max-body` gets its 413 and ends its own stream:
/// the connection's other requests go on.
#[tokio::test(flavor = "current_thread")]
async fn an_h2_request_over_the_body_limit_ends_only_its_stream() {
    let server = server("http", &["--http-max-body", "64KiB"]);
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    let (mut send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let url = format!("http://127.0.0.1:{}/", server.port);
    for (i, size) in [(0, 1 << 20), (1, 100), (2, 1 << 20), (3, 100)] {
        let post = hyper::Request::post(format!("{url}?echo_body&i={i}"))
            .body(Full::new(Bytes::from(vec![b'x'; size])))
            .unwrap();
        let answer = send.send_request(post).await.unwrap();
        let expect = if size > 64 << 10 { 413 } else { 200 };
        assert_eq!(answer.status(), expect, "request {i} of {size} bytes");
        send.ready().await.expect("the connection goes on");
    }
    let get = hyper::Request::get(&url)
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(send.send_request(get).await.unwrap().status(), 200);
}

/// One HTTP/2 connection carries at most four WebSockets (RFC 8441): the
/// fifth is refused with 429, and counted; one closed makes room again.
#[tokio::test(flavor = "current_thread")]
async fn one_h2_connection_carries_at_most_four_websockets() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::Role;

    let server = server("http", &["--metrics", "127.0.0.1:0"]);
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    let (mut send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let url = format!("http://127.0.0.1:{}/", server.port);
    let plain = hyper::Request::get(&url)
        .body(Empty::<Bytes>::new())
        .unwrap();
    assert_eq!(send.send_request(plain).await.unwrap().status(), 200);
    let connect = || {
        let mut req = hyper::Request::builder()
            .method(hyper::Method::CONNECT)
            .uri(format!("{url}ws"))
            .header("sec-websocket-version", "13")
            .body(Empty::<Bytes>::new())
            .unwrap();
        req.extensions_mut()
            .insert(hyper::ext::Protocol::from_static("websocket"));
        req
    };
    let mut open = Vec::new();
    for _ in 0..4 {
        let response = send.send_request(connect()).await.unwrap();
        assert_eq!(response.status(), 200);
        let upgraded = hyper::upgrade::on(response).await.unwrap();
        let mut ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await;
        ws.send(Message::text("hi")).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("hi"));
        open.push(ws);
    }
    let refused = send.send_request(connect()).await.unwrap();
    assert_eq!(refused.status(), 429);
    let mut last = open.pop().unwrap();
    last.close(None).await.unwrap();
    while last.next().await.is_some() {}
    let port = server.port;
    let metrics = tokio::task::spawn_blocking(move || {
        let line = server.wait_for_line("serving metrics on", Duration::from_secs(5));
        let metrics_port: u16 = line
            .rsplit_once(':')
            .and_then(|(_, rest)| rest.trim_end_matches("/metrics").parse().ok())
            .unwrap();
        (scrape(metrics_port), server)
    })
    .await
    .unwrap();
    assert!(
        sample(
            &metrics.0,
            r#"echoes_errors_total{transport="http",kind="limit"}"#
        ) >= 1,
        "{}",
        metrics.0
    );
    // Room again, once the server has seen the close.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let response = send.send_request(connect()).await.unwrap();
        if response.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no room after a close: {}",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = port;
    drop(metrics);
}

/// The server's first SETTINGS frame, read from a raw h2c connection:
/// `(identifier, value)` pairs.
fn server_settings(port: u16) -> Vec<(u16, u32)> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(
        &[
            &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..],
            &frame(4, 0, 0, b""),
        ]
        .concat(),
    )
    .unwrap();
    let mut head = [0u8; 9];
    conn.read_exact(&mut head).unwrap();
    assert_eq!(
        head[3], 4,
        "the server's first frame is not SETTINGS: {head:?}"
    );
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0u8; len];
    conn.read_exact(&mut payload).unwrap();
    payload
        .chunks_exact(6)
        .map(|c| {
            (
                u16::from_be_bytes([c[0], c[1]]),
                u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
            )
        })
        .collect()
}

/// `--http-max-streams` is what the server's SETTINGS announce
/// (SETTINGS_MAX_CONCURRENT_STREAMS), 100 unless set.
#[test]
fn http_max_streams_is_announced_in_settings() {
    const MAX_CONCURRENT_STREAMS: u16 = 3;
    let default = server("http", &[]);
    assert!(
        server_settings(default.port).contains(&(MAX_CONCURRENT_STREAMS, 100)),
        "{:?}",
        server_settings(default.port)
    );
    let set = server("http", &["--http-max-streams", "7"]);
    let settings = server_settings(set.port);
    assert!(
        settings.contains(&(MAX_CONCURRENT_STREAMS, 7)),
        "{settings:?}"
    );
}

/// `--http-max-age`: a busy HTTP/2 connection gets a GOAWAY once it is
/// that old, its request under way still answered, and the client must
/// connect again (how a balancer test shows that an L4 balancer pins
/// long h2 connections); a connection without the flag lives on.
#[tokio::test(flavor = "current_thread")]
async fn http_max_age_ends_a_connection_gracefully_with_goaway() {
    async fn connection_life(port: u16, within: Duration) -> (Option<Duration>, usize) {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let (mut send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        let started = Instant::now();
        let ended = tokio::spawn(async move {
            let _ = conn.await;
            started.elapsed()
        });
        let url = format!("http://127.0.0.1:{port}/?delay=300ms");
        let mut answered = 0;
        while started.elapsed() < within && send.ready().await.is_ok() {
            let get = hyper::Request::get(&url)
                .body(Empty::<Bytes>::new())
                .unwrap();
            match send.send_request(get).await {
                Ok(r) if r.status() == 200 => answered += 1,
                _ => break,
            }
        }
        let life = tokio::time::timeout(Duration::from_secs(3), ended)
            .await
            .ok()
            .map(|r| r.unwrap());
        (life, answered)
    }
    let aged = server("http", &["--http-max-age", "1s"]);
    let (life, answered) = connection_life(aged.port, Duration::from_secs(5)).await;
    let life = life.expect("the connection outlived --http-max-age by seconds");
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(3)).contains(&life),
        "closed after {life:?}"
    );
    // Every request sent before the GOAWAY was answered: about 1s / 300ms.
    assert!((3..=5).contains(&answered), "{answered} answered");
    let ageless = server("http", &[]);
    let (life, answered) = connection_life(ageless.port, Duration::from_secs(2)).await;
    assert!(answered >= 6, "{answered} answered without --http-max-age");
    // Without the flag, the connection is still up when the client stops
    // (it ends only when the client drops it, after the 3 s wait).
    assert!(
        life.is_none() || life > Some(Duration::from_secs(2)),
        "{life:?}"
    );
}
