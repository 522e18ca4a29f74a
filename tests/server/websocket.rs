//! WebSocket on `http://` and `https://` listeners, against clients and a
//! proxy that others wrote: Python's `websockets`, hyper's HTTP/2 client
//! (RFC 8441, extended CONNECT), nginx as a reverse proxy; and by hand
//! over raw sockets: backpressure from a client that does not read,
//! protocol errors and oversized messages, closed and counted.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support;
use crate::support::http::*;
use crate::support::*;

/// A Python `websockets` client: text, binary, a 1 MiB message, a ping and
/// a clean close, each echo checked; prints `ok` when all went well.
///
/// It is the asyncio client, not the threaded one: over TLS the threaded
/// client (websockets 13) sets its socket's timeout from one thread while
/// another is blocked in a TLS read, and CPython's `ssl` then reports a
/// timeout at once if that read needs more bytes ("The read operation
/// timed out", after 0.7 s): the client drops the connection and reports
/// 1006, about one run in 35, whatever the server does.
const PY_CLIENT: &str = r#"
import asyncio, ssl, sys
from websockets.asyncio.client import connect
async def main(url):
    ctx = None
    if url.startswith("wss:"):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    async with connect(url, ssl=ctx, max_size=None, open_timeout=10, close_timeout=10) as ws:
        for msg in ["hello", "héllo wörld", b"\x00\x01\xfe\xff", bytes(range(256)) * 4096]:
            await ws.send(msg)
            got = await asyncio.wait_for(ws.recv(), 10)
            assert got == msg and type(got) == type(msg), (len(got), type(got))
        await asyncio.wait_for(await ws.ping(b"are you there"), 10)
        await ws.close(1000, "done")
        assert ws.protocol.close_code == 1000, ws.protocol.close_code
    print("ok")
asyncio.run(main(sys.argv[1]))
"#;

fn python_client(url: &str) {
    let out = run(
        python3().args(["-c", PY_CLIENT, url]),
        b"",
        Duration::from_secs(60),
    );
    assert!(
        out.status.success() && out.stdout == b"ok\n",
        "python websockets client on {url}: {:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        out.stderr
    );
}

fn metrics_port(server: &ServerProc) -> u16 {
    let line = server.wait_for_line("serving metrics on", Duration::from_secs(5));
    line.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches("/metrics").parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"))
}

#[test]
#[cfg_attr(
    not(has_py_websockets),
    ignore = "needs Python's websockets: run .ci/install (pip install -r .ci/requirements.txt)"
)]
fn python_websockets_client_over_ws_and_wss() {
    let server = server("http", &["--metrics", "127.0.0.1:0"]);
    python_client(&format!("ws://127.0.0.1:{}/any/path?x=1", server.port));
    let tls = support::http::server("https", &["--tls-self-signed"]);
    python_client(&format!("wss://localhost:{}/", tls.port));
    let page = scrape(metrics_port(&server));
    assert_eq!(
        sample(&page, r#"echoes_connections_total{transport="ws"}"#),
        1
    );
    let echoed = 5 + "héllo wörld".len() as u64 + 4 + 256 * 4096;
    assert_eq!(
        sample(&page, r#"echoes_bytes_received_total{transport="ws"}"#),
        echoed
    );
    wait_for(Duration::from_secs(5), "the ws gauge back to 0", || {
        let page = scrape(metrics_port(&server));
        sample(&page, r#"echoes_connections_open{transport="ws"}"#) == 0
            && sample(&page, r#"echoes_bytes_sent_total{transport="ws"}"#) == echoed
    });
}

#[tokio::test]
async fn websocket_over_http2_with_extended_connect() {
    use futures_util::{SinkExt, StreamExt};
    use http_body_util::Empty;
    use hyper::body::Bytes;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::Role;

    let server = server("http", &[]);
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    let (mut send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    // One plain request first: by its answer the server's SETTINGS
    // (with SETTINGS_ENABLE_CONNECT_PROTOCOL) are in.
    let plain = hyper::Request::get(format!("http://127.0.0.1:{}/", server.port))
        .body(Empty::<Bytes>::new())
        .unwrap();
    assert_eq!(send.send_request(plain).await.unwrap().status(), 200);
    let mut req = hyper::Request::builder()
        .method(hyper::Method::CONNECT)
        .uri(format!("http://127.0.0.1:{}/over-h2", server.port))
        .header("sec-websocket-version", "13")
        .body(Empty::<Bytes>::new())
        .unwrap();
    req.extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    let response = send.send_request(req).await.unwrap();
    assert_eq!(response.status(), 200);
    let upgraded = hyper::upgrade::on(response).await.unwrap();
    let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await;
    for i in 0..20 {
        let msg = Message::text(format!("message {i} over one HTTP/2 stream"));
        ws.send(msg.clone()).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("an echo in time")
            .expect("the stream is open")
            .unwrap();
        assert_eq!(got, msg);
    }
    let big = Message::binary(pattern(3, 200_000));
    ws.send(big.clone()).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), big);
    ws.close(None).await.unwrap();
}

/// A client's frame: FIN, `opcode`, masked (unless `masked` is false).
fn frame(opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => f.push(mask_bit | n as u8),
        n if n < 65536 => {
            f.push(mask_bit | 126);
            f.extend((n as u16).to_be_bytes());
        }
        n => {
            f.push(mask_bit | 127);
            f.extend((n as u64).to_be_bytes());
        }
    }
    if masked {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        f.extend(key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        f.extend(payload);
    }
    f
}

/// Opens a WebSocket by hand; returns the stream, past the 101.
fn handshake(port: u16) -> TcpStream {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(
        b"GET /raw HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        conn.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // RFC 6455's own example key and answer.
    assert!(
        head.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "{head}"
    );
    conn
}

/// Reads one server frame: (opcode, payload).
fn read_frame(conn: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    conn.read_exact(&mut h).unwrap();
    assert_eq!(h[1] & 0x80, 0, "a server frame is not masked");
    let len = match h[1] & 0x7f {
        126 => {
            let mut l = [0u8; 2];
            conn.read_exact(&mut l).unwrap();
            u16::from_be_bytes(l) as usize
        }
        127 => {
            let mut l = [0u8; 8];
            conn.read_exact(&mut l).unwrap();
            u64::from_be_bytes(l) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    conn.read_exact(&mut payload).unwrap();
    (h[0] & 0x0f, payload)
}

#[test]
fn a_client_that_does_not_read_stops_being_read_and_loses_nothing() {
    let server = server("http", &[]);
    let mut conn = handshake(server.port);
    let rss_before = server.rss_kib();
    // Write 64 KiB messages without reading, until the server stops
    // taking them for a second (it stopped reading), or 512 MiB.
    conn.set_nonblocking(true).unwrap();
    let message = |i: usize| pattern(i as u64, 64 * 1024);
    let (mut sent_messages, mut pending, mut last_progress) = (0usize, Vec::new(), Instant::now());
    while last_progress.elapsed() < Duration::from_secs(1) && sent_messages < 8192 {
        if pending.is_empty() {
            pending = frame(0x2, &message(sent_messages), true);
            sent_messages += 1;
        }
        match conn.write(&pending) {
            Ok(n) => {
                pending.drain(..n);
                last_progress = Instant::now();
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("write: {e}"),
        }
    }
    assert!(
        sent_messages < 1024,
        "the server took {sent_messages} × 64 KiB without being read"
    );
    let grown = server.rss_kib().saturating_sub(rss_before);
    assert!(grown < 64 * 1024, "the server grew by {grown} KiB");
    // Now read: every message comes back, in order, and the rest goes in.
    conn.set_nonblocking(false).unwrap();
    let mut writer = conn.try_clone().unwrap();
    let finish = std::thread::spawn(move || writer.write_all(&pending));
    for i in 0..sent_messages {
        let (opcode, payload) = read_frame(&mut conn);
        assert_eq!(opcode, 0x2);
        assert!(payload == message(i), "echo {i} differs");
    }
    finish.join().unwrap().unwrap();
}

#[test]
fn protocol_errors_and_oversized_messages_are_closed_and_counted() {
    let server = server(
        "http",
        &[
            "--ws-max-message",
            "4KiB",
            "--ws-max-frame",
            "4KiB",
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    // An unmasked frame from a client: 1002.
    let mut conn = handshake(server.port);
    conn.write_all(&frame(0x1, b"not masked", false)).unwrap();
    let (opcode, payload) = read_frame(&mut conn);
    assert_eq!(opcode, 0x8, "a close frame");
    assert_eq!(&payload[..2], &1002u16.to_be_bytes());
    // A message over --ws-max-message: 1009.
    let mut conn = handshake(server.port);
    conn.write_all(&frame(0x2, &[7u8; 100], true)).unwrap();
    assert_eq!(read_frame(&mut conn), (0x2, vec![7u8; 100]));
    conn.write_all(&frame(0x2, &[7u8; 5000], true)).unwrap();
    let (opcode, payload) = read_frame(&mut conn);
    assert_eq!(opcode, 0x8);
    assert_eq!(&payload[..2], &1009u16.to_be_bytes());
    // Text that is not UTF-8: 1007.
    let mut conn = handshake(server.port);
    conn.write_all(&frame(0x1, &[0xff, 0xfe], true)).unwrap();
    let (opcode, payload) = read_frame(&mut conn);
    assert_eq!(opcode, 0x8);
    assert_eq!(&payload[..2], &1007u16.to_be_bytes());
    let page = scrape(metrics_port(&server));
    assert_eq!(
        sample(
            &page,
            r#"echoes_errors_total{transport="ws",kind="protocol"}"#
        ),
        2
    );
    assert_eq!(
        sample(
            &page,
            r#"echoes_errors_total{transport="ws",kind="message_too_large"}"#
        ),
        1
    );
    // A bad handshake is a 400 (426 for another version), counted under http.
    let bad = raw_exchange(
        server.port,
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    );
    assert_eq!(status_of(&bad), 426);
    assert!(String::from_utf8_lossy(&bad).contains("sec-websocket-version: 13"));
}

/// nginx, started from a config of its own in a temporary prefix, in the
/// foreground; stopped by its PID when dropped.
struct Nginx {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn proxy_to(upstream: u16) -> Nginx {
        let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("nginx is not installed: run .ci/install (Debian package nginx)");
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().display().to_string();
        let port = free_port();
        let conf = format!(
            r#"daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"#
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let child = Command::new(nginx)
            .args([
                "-p",
                &prefix,
                "-c",
                &format!("{prefix}/nginx.conf"),
                "-e",
                "stderr",
            ])
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("start nginx");
        drop(connect_retry(
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(10),
        ));
        Nginx {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[cfg_attr(
    not(all(has_nginx, has_curl, has_py_websockets)),
    ignore = "needs nginx and curl and Python's websockets: run .ci/install"
)]
fn through_nginx_the_reflection_shows_x_forwarded_for_and_websocket_passes() {
    let server = server("http", &["--name", "behind-nginx"]);
    let nginx = Nginx::proxy_to(server.port);
    let a = curl(&[&format!("http://127.0.0.1:{}/via/proxy?q=1", nginx.port)]);
    assert_eq!(a.status, 200);
    assert_eq!(a.header("x-echo-server"), Some("behind-nginx"));
    let v = a.json();
    let forwarded: Vec<&str> = v["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h[0] == "x-forwarded-for")
        .map(|h| h[1].as_str().unwrap())
        .collect();
    assert_eq!(forwarded, ["127.0.0.1"], "{v}");
    assert_eq!(v["path"], "/via/proxy");
    assert_eq!(v["client"]["address"], "127.0.0.1");
    assert_ne!(v["client"]["port"], 0);
    python_client(&format!("ws://127.0.0.1:{}/ws/through/nginx", nginx.port));
}
