//! `--proxy-protocol` and `?proxy=`, over real sockets: the real client in
//! the log, every byte after the header echoed (the same segment
//! included), refusals counted and logged at most once a second, and
//! hostile headers closing their own connection alone. HAProxy and nginx
//! in front of the server are in `tests/interop/proxy.rs`.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support;
use crate::support::{CLIENT, ServerProc, sample, scrape};

const V2_SIG: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

/// Sends `bytes` in one write, half-closes, and reads until the server
/// closes (or 10 s pass).
fn talk(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.write_all(bytes).unwrap();
    conn.shutdown(Shutdown::Write).unwrap();
    read_all(&mut conn)
}

fn read_all(conn: &mut TcpStream) -> Vec<u8> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut out = Vec::new();
    let _ = conn.read_to_end(&mut out);
    out
}

/// A v2 PROXY header for TCP over IPv4 from `src` to 10.0.0.1:7.
fn v2_header(src: [u8; 4], port: u16) -> Vec<u8> {
    let mut h = V2_SIG.to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0, 12]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&[10, 0, 0, 1]);
    h.extend_from_slice(&port.to_be_bytes());
    h.extend_from_slice(&7u16.to_be_bytes());
    h
}

fn metrics_port(server: &ServerProc) -> u16 {
    let line = server.wait_for_line("serving metrics on", Duration::from_secs(5));
    line.rsplit_once(':')
        .and_then(|(_, rest)| rest.trim_end_matches("/metrics").parse().ok())
        .expect("metrics port")
}

#[test]
fn the_real_client_is_logged_and_data_in_the_headers_segment_echoed() {
    let server = ServerProc::start(&[
        "-l",
        "127.0.0.1:0",
        "--proxy-protocol",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let mport = metrics_port(&server);
    let addr = server.addr();
    // v1 and its data in one write.
    let echo = talk(addr, b"PROXY TCP4 192.0.2.7 10.0.0.1 4242 7\r\nhello, v1");
    assert_eq!(echo, b"hello, v1");
    let line = server.wait_for_line(
        "echo_192.0.2.7_4242: connection accepted",
        Duration::from_secs(5),
    );
    assert!(line.contains("via proxy 127.0.0.1 port "), "{line}");
    assert!(line.ends_with("(PROXY v1)"), "{line}");
    // v2, and a megabyte after it, all in flight at once.
    let data = support::pattern(7, 1 << 20);
    let mut conn = TcpStream::connect(addr).unwrap();
    let mut all = v2_header([198, 51, 100, 9], 5555);
    all.extend_from_slice(&data);
    let writer = {
        let mut conn = conn.try_clone().unwrap();
        std::thread::spawn(move || {
            conn.write_all(&all).unwrap();
            conn.shutdown(Shutdown::Write).unwrap();
        })
    };
    let echo = read_all(&mut conn);
    writer.join().unwrap();
    assert!(echo == data, "{} bytes back of {}", echo.len(), data.len());
    server.wait_for_line(
        "echo_198.51.100.9_5555: connection accepted via proxy",
        Duration::from_secs(5),
    );
    server.wait_for_line("echo_198.51.100.9_5555: closing", Duration::from_secs(5));
    let page = scrape(mport);
    assert_eq!(
        sample(
            &page,
            "echoes_proxy_headers_total{transport=\"tcp\",version=\"v1\"}"
        ),
        1
    );
    assert_eq!(
        sample(
            &page,
            "echoes_proxy_headers_total{transport=\"tcp\",version=\"v2\"}"
        ),
        1
    );
    assert_eq!(
        sample(
            &page,
            "echoes_errors_total{transport=\"tcp\",kind=\"proxy\"}"
        ),
        0
    );
    // The header is not data: exactly what came after it was counted.
    let bytes = (b"hello, v1".len() + data.len()) as u64;
    assert_eq!(
        sample(&page, "echoes_bytes_received_total{transport=\"tcp\"}"),
        bytes
    );
}

#[test]
fn unknown_and_local_headers_keep_the_sockets_peer() {
    let server = ServerProc::start(&["-l", "127.0.0.1:0", "--proxy-protocol"]);
    let mut conn = TcpStream::connect(server.addr()).unwrap();
    let port = conn.local_addr().unwrap().port();
    conn.write_all(b"PROXY UNKNOWN\r\nunknown").unwrap();
    conn.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_all(&mut conn), b"unknown");
    let line = server.wait_for_line(
        &format!("echo_127.0.0.1_{port}: connection accepted"),
        Duration::from_secs(5),
    );
    assert!(
        line.contains("(PROXY v1 UNKNOWN: no client address)"),
        "{line}"
    );
    let mut conn = TcpStream::connect(server.addr()).unwrap();
    let port = conn.local_addr().unwrap().port();
    conn.write_all(&[V2_SIG, b"\x20\x00\x00\x00local"].concat())
        .unwrap();
    conn.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_all(&mut conn), b"local");
    let line = server.wait_for_line(
        &format!("echo_127.0.0.1_{port}: connection accepted"),
        Duration::from_secs(5),
    );
    assert!(line.contains("PROXY v2 LOCAL"), "{line}");
}

#[test]
fn connections_without_a_header_are_refused_counted_and_logged_once_a_second() {
    let server = ServerProc::start(&[
        "-l",
        "127.0.0.1:0",
        "--proxy-protocol",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let mport = metrics_port(&server);
    let started = Instant::now();
    for _ in 0..30 {
        let echo = talk(server.addr(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(echo.is_empty(), "echoed without a header: {echo:?}");
    }
    let elapsed = started.elapsed();
    support::wait_for(Duration::from_secs(5), "30 proxy errors", || {
        sample(
            &scrape(mport),
            "echoes_errors_total{transport=\"tcp\",kind=\"proxy\"}",
        ) == 30
    });
    let refusals =
        server.lines_with("refused: no PROXY header: the connection starts with b'GET / HTTP/1.1");
    let most = elapsed.as_secs() as usize + 2;
    assert!(
        !refusals.is_empty() && refusals.len() <= most,
        "{} lines in {elapsed:?}",
        refusals.len()
    );
    // A flood does not stop the next proxied client.
    assert_eq!(
        talk(server.addr(), b"PROXY TCP4 192.0.2.1 10.0.0.1 1 7\r\nok"),
        b"ok"
    );
}

/// Each hostile opening closes its own connection, within the header
/// timeout at most, while a proxied client beside them is served.
#[test]
fn hostile_headers_close_their_connection_alone() {
    let server = ServerProc::start(&[
        "-l",
        "127.0.0.1:0",
        "--proxy-protocol",
        "--proxy-header-timeout",
        "1s",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let mport = metrics_port(&server);
    let addr = server.addr();
    let f = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let oversized = format!("PROXY UNKNOWN {f} {f} 65535 655350\r\n");
    let mut past_the_buffer = V2_SIG.to_vec();
    past_the_buffer.extend_from_slice(&[0x21, 0x11, 0xff, 0xff, 1, 2, 3]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated v1", b"PROXY TCP4 192.0.2.1 10.0".to_vec()),
        ("truncated v2", v2_header([192, 0, 2, 1], 1)[..20].to_vec()),
        ("oversized v1", oversized.into_bytes()),
        ("garbage", support::pattern(3, 200)),
        ("bare LF", b"PROXY TCP4 192.0.2.1 10.0.0.1 1 2\nhi".to_vec()),
        ("wrong v2 version", [V2_SIG, b"\x31\x11\x00\x0c"].concat()),
        ("wrong v2 family", [V2_SIG, b"\x21\x41\x00\x0c"].concat()),
        ("bad CRC32c", {
            let mut h = v2_header([192, 0, 2, 1], 1);
            h[15] = 12 + 7;
            h.extend_from_slice(b"\x03\x00\x04\x12\x34\x56\x78");
            h
        }),
    ];
    let mut refused = 0;
    for (what, bytes) in &cases {
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.write_all(bytes).unwrap();
        let started = Instant::now();
        // Closed by the server, without half-closing our side first: a
        // truncated header is refused by its timeout.
        let echo = read_all(&mut conn);
        assert!(echo.is_empty(), "{what}: echoed {echo:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{what}: open for {:?}",
            started.elapsed()
        );
        refused += 1;
    }
    // A v2 length past what came, and a v1 line trickling in a byte a
    // second: both closed at the 1 s timeout, while another client is served.
    let mut past = TcpStream::connect(addr).unwrap();
    past.write_all(&past_the_buffer).unwrap();
    let mut trickle = TcpStream::connect(addr).unwrap();
    let started = Instant::now();
    let mut beside = TcpStream::connect(addr).unwrap();
    beside
        .write_all(b"PROXY TCP4 192.0.2.99 10.0.0.1 9 7\r\n")
        .unwrap();
    support::ping(&mut beside, b"still served", Duration::from_secs(5)).unwrap();
    trickle
        .set_read_timeout(Some(Duration::from_millis(900)))
        .unwrap();
    let mut closed = false;
    for b in b"PROXY TCP4 192.0.2.2 10.0.0.1 1 2\r\n" {
        if trickle.write_all(&[*b]).is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 16];
        match trickle.read(&mut buf) {
            Ok(0) | Err(_) if started.elapsed() > Duration::from_millis(950) => {
                closed = true;
                break;
            }
            Ok(n) if n > 0 => panic!("trickle: echoed {:?}", &buf[..n]),
            _ => {}
        }
    }
    assert!(closed, "a header trickling in was not closed");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "trickle open for {:?}",
        started.elapsed()
    );
    assert!(read_all(&mut past).is_empty());
    refused += 2;
    support::ping(&mut beside, b"and still", Duration::from_secs(5)).unwrap();
    support::wait_for(Duration::from_secs(5), "every refusal counted", || {
        sample(
            &scrape(mport),
            "echoes_errors_total{transport=\"tcp\",kind=\"proxy\"}",
        ) == refused
    });
    let timeouts = server.count_lines("no complete PROXY header within 1s")
        + server.count_lines("refusals since the last line");
    assert!(timeouts >= 1, "{:?}", server.lines());
}

#[test]
fn optional_listeners_use_a_header_when_there_is_one() {
    let server = ServerProc::start(&["-l", "tcp://127.0.0.1:0?proxy=optional"]);
    let addr = server.addr();
    assert_eq!(talk(addr, b"plain data"), b"plain data");
    assert_eq!(
        talk(addr, b"PROXY TCP4 192.0.2.3 10.0.0.1 33 7\r\nproxied"),
        b"proxied"
    );
    server.wait_for_line(
        "echo_192.0.2.3_33: connection accepted via proxy",
        Duration::from_secs(5),
    );
    // A header in two writes.
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.write_all(b"PROXY TCP4 192.0.2.4 10.0").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    conn.write_all(b".0.1 44 7\r\nsplit").unwrap();
    conn.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_all(&mut conn), b"split");
    server.wait_for_line(
        "echo_192.0.2.4_44: connection accepted",
        Duration::from_secs(5),
    );
    // A client whose first bytes look like a signature, and that waits
    // for its echo without sending more, gets it after a short wait.
    for start in [&b"P"[..], b"PROX", b"\r\n", b"\r\n\r\n\0\r\nQUI"] {
        let mut conn = TcpStream::connect(addr).unwrap();
        let sent = Instant::now();
        support::ping(&mut conn, start, Duration::from_secs(3)).unwrap();
        assert!(
            sent.elapsed() < Duration::from_secs(2),
            "{start:?}: {:?}",
            sent.elapsed()
        );
        support::ping(&mut conn, b" and more", Duration::from_secs(3)).unwrap();
    }
}

#[test]
fn tls_and_unix_listeners_take_the_header_first() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("p.sock");
    let unix = format!("unix:{}?proxy=required", sock.display());
    let server = ServerProc::start(&[
        "-l",
        "tls://127.0.0.1:0",
        "--tls-self-signed",
        "--proxy-protocol",
        "-l",
        &unix,
    ]);
    let tls = format!("tls://127.0.0.1:{}", server.port);
    for (addr, version, source, name) in [
        (
            tls.as_str(),
            "v2",
            "203.0.113.5:4444",
            "echo_203.0.113.5_4444",
        ),
        (tls.as_str(), "v1", "[2001:db8::5]:6", "echo_2001:db8::5_6"),
        (
            &format!("unix:{}", sock.display()),
            "v2",
            "203.0.113.6:7",
            "echo_203.0.113.6_7",
        ),
    ] {
        // -k for tls:// only: the TLS trust flags are refused elsewhere.
        let trust: &[&str] = if addr.starts_with("tls://") {
            &["-k"]
        } else {
            &[]
        };
        let out = support::run(
            Command::new(CLIENT)
                .args(["-c", addr, "--proxy-protocol", version])
                .args(trust)
                .args(["--proxy-source", source, "hello", "world"]),
            b"",
            Duration::from_secs(20),
        );
        assert!(out.status.success(), "{addr} {version}: {}", out.stderr);
        server.wait_for_line(
            &format!("{name}: connection accepted via proxy"),
            Duration::from_secs(5),
        );
    }
    // Plain TLS without a header is refused before any handshake.
    let out = support::run(
        Command::new(CLIENT).args(["-c", &tls, "-k", "--timeout", "3s", "hi"]),
        b"",
        Duration::from_secs(20),
    );
    assert!(!out.status.success());
    // A TLS record, shown as Python's repr: b'\x16\x03…', or b"\x16\x03…"
    // when the ClientHello's random bytes happen to hold a `'`.
    server.wait_for_line(
        "refused: no PROXY header: the connection starts with b",
        Duration::from_secs(5),
    );
    assert!(
        server.count_lines("the connection starts with b'\\x16\\x03") == 1
            || server.count_lines("the connection starts with b\"\\x16\\x03") == 1,
        "the refusal does not show the TLS record"
    );
}

#[test]
fn udp_has_no_proxy_protocol_and_says_so() {
    let help = support::run(
        Command::new(support::SERVER).arg("--help"),
        b"",
        Duration::from_secs(10),
    );
    let text = String::from_utf8_lossy(&help.stdout).replace('\n', " ");
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains("--proxy-protocol"), "{text}");
    assert!(text.contains("Not used over UDP"), "{text}");
    let bad = support::run(
        Command::new(support::SERVER).args(["-l", "udp://127.0.0.1:0?proxy=optional"]),
        b"",
        Duration::from_secs(10),
    );
    assert_eq!(bad.status.code(), Some(2), "{}", bad.stderr);
    assert!(
        bad.stderr.contains("not used over udp://"),
        "{}",
        bad.stderr
    );
    let bad = support::run(
        Command::new(CLIENT).args(["-c", "udp://127.0.0.1:9", "--proxy-protocol", "v2"]),
        b"",
        Duration::from_secs(10),
    );
    assert_eq!(bad.status.code(), Some(2), "{}", bad.stderr);
    // With --proxy-protocol, UDP listeners answer datagrams as ever.
    let server = ServerProc::start(&["-l", "udp://127.0.0.1:0", "--proxy-protocol"]);
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock.send_to(b"dgram", ("127.0.0.1", server.port)).unwrap();
    let mut buf = [0u8; 16];
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"dgram");
}

/// `http://` listeners take the header too (peeked, so the request after
/// it is hyper's, whole): the reflection names the client it gave.
#[test]
fn an_http_listener_reads_the_header_before_the_request() {
    let server = ServerProc::start(&["-l", "http://127.0.0.1:0", "--proxy-protocol"]);
    let request = b"PROXY TCP4 203.0.113.7 127.0.0.1 51234 80\r\n\
                    GET /via HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let raw = support::http::raw_exchange(server.port, request, Duration::from_secs(10));
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let body = &text[text.find("\r\n\r\n").expect("a header block") + 4..];
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["client"]["address"], "203.0.113.7", "{v}");
    assert_eq!(v["client"]["port"], 51234, "{v}");
    server.wait_for_line(
        "echo_203.0.113.7_51234: connection accepted via proxy 127.0.0.1 port",
        Duration::from_secs(5),
    );
    // Without a header, no request is answered.
    let plain = support::http::raw_exchange(
        server.port,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(10),
    );
    assert!(plain.is_empty(), "{}", String::from_utf8_lossy(&plain));
    server.wait_for_line("refused: no PROXY header", Duration::from_secs(5));
}

/// The reflection shows what a v2 header said: the client it named, the
/// proxy it came through, and its TLVs (issue 14's "where the header
/// shows").
#[test]
fn an_http_reflection_shows_the_proxy_and_its_tlvs() {
    use echoes::proxy::{Addresses, Command as ProxyCommand, Protocol, ProxyHeader, Tlvs, Version};
    let server = ServerProc::start(&["-l", "http://127.0.0.1:0", "--proxy-protocol"]);
    let header = ProxyHeader {
        version: Version::V2,
        command: ProxyCommand::Proxy,
        addresses: Addresses::Inet {
            protocol: Protocol::Stream,
            source: "198.51.100.9:40000".parse().unwrap(),
            destination: "192.0.2.1:443".parse().unwrap(),
        },
        tlvs: Tlvs {
            alpn: Some(b"h2".to_vec()),
            authority: Some("shop.example".into()),
            aws_vpce_id: Some("vpce-0123456789abcdef0".into()),
            ..Tlvs::default()
        },
        len: 0,
    };
    let mut request = echoes::proxy::encode(&header).expect("encodes");
    request.extend_from_slice(b"GET /t HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let raw = crate::support::http::raw_exchange(server.port, &request, Duration::from_secs(10));
    let v = crate::support::http::parse_response(&raw).json();
    assert_eq!(v["client"]["address"], "198.51.100.9", "{v}");
    assert_eq!(v["client"]["port"], 40000, "{v}");
    let proxy = &v["proxy"];
    assert_eq!(proxy["address"], "127.0.0.1", "{v}");
    assert_eq!(proxy["version"], "v2", "{v}");
    assert_eq!(proxy["command"], "PROXY", "{v}");
    assert_eq!(proxy["destination"], "192.0.2.1:443", "{v}");
    assert_eq!(proxy["tlvs"]["alpn"], "h2", "{v}");
    assert_eq!(proxy["tlvs"]["authority"], "shop.example", "{v}");
    assert_eq!(
        proxy["tlvs"]["aws_vpce_id"], "vpce-0123456789abcdef0",
        "{v}"
    );
    // And as text.
    let mut request = echoes::proxy::encode(&header).expect("encodes");
    request.extend_from_slice(
        b"GET / HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\nConnection: close\r\n\r\n",
    );
    let raw = crate::support::http::raw_exchange(server.port, &request, Duration::from_secs(10));
    let text = crate::support::http::parse_response(&raw).text();
    assert!(
        text.contains("proxy: 127.0.0.1 port ") && text.contains("authority \"shop.example\""),
        "{text}"
    );
}

/// curl's own `--haproxy-protocol` (v1, naming curl's real socket) against
/// an `http://` listener that requires a header: a real sender's header,
/// read before the request.
#[test]
#[cfg_attr(
    not(has_curl),
    ignore = "needs curl: run .ci/install (Debian package curl)"
)]
fn curl_haproxy_protocol_reaches_an_http_listener() {
    let server = ServerProc::start(&["-l", "http://127.0.0.1:0", "--proxy-protocol"]);
    let url = format!("http://127.0.0.1:{}/curl", server.port);
    let answer = crate::support::http::curl(&["--haproxy-protocol", &url]);
    assert_eq!(answer.status, 200);
    let v = answer.json();
    assert_eq!(v["path"], "/curl", "{v}");
    assert_eq!(v["proxy"]["version"], "v1", "{v}");
    // curl is both the proxy and the client: its header names its own
    // socket, so the client and the proxy are the same address and port.
    assert_eq!(v["client"]["address"], "127.0.0.1", "{v}");
    assert_eq!(v["client"]["port"], v["proxy"]["port"], "{v}");
    // Without the flag, curl is refused.
    let plain = crate::support::run(
        Command::new("curl").args(["-sS", "-m", "10", &url]),
        b"",
        Duration::from_secs(20),
    );
    assert!(
        !plain.status.success(),
        "{}",
        String::from_utf8_lossy(&plain.stdout)
    );
}

/// The ports of every `starting up on` line, in the order logged (the
/// order of the `-l` flags).
fn listening_ports(server: &ServerProc, n: usize) -> Vec<u16> {
    support::wait_for(Duration::from_secs(5), "every listener", || {
        server.count_lines("starting up on") >= n
    });
    server
        .lines()
        .iter()
        .filter(|l| l.contains("starting up on"))
        .filter_map(|l| l.rsplit_once("port ")?.1.trim().parse().ok())
        .collect()
}

/// Issue 22: each `--listen` keeps its own PROXY mode, even when two are
/// spelled the same way (`127.0.0.1:0` twice): the mode is the
/// listener's, not looked up by its address.
#[test]
fn listeners_spelled_alike_keep_their_own_proxy_mode() {
    let header = b"PROXY TCP4 192.0.2.8 10.0.0.1 808 7\r\n";
    for (first, second) in [
        ("", "?proxy=required"),
        ("?proxy=optional", "?proxy=required"),
    ] {
        let (a, b) = (
            format!("127.0.0.1:0{first}"),
            format!("127.0.0.1:0{second}"),
        );
        let server = ServerProc::start(&["-l", &a, "-l", &b]);
        let ports = listening_ports(&server, 2);
        let at = |i: usize| SocketAddr::from(([127, 0, 0, 1], ports[i]));
        // The first takes plain data (off, or optional), the second
        // refuses it and takes a header.
        assert_eq!(talk(at(0), b"plain"), b"plain", "{a} {b}");
        assert_eq!(talk(at(1), b"plain"), b"", "{a} {b}");
        let mut proxied = header.to_vec();
        proxied.extend_from_slice(b"proxied");
        assert_eq!(talk(at(1), &proxied), b"proxied", "{a} {b}");
        server.wait_for_line("refused: no PROXY header", Duration::from_secs(5));
    }
    // The same over http://.
    let server = ServerProc::start(&[
        "-l",
        "http://127.0.0.1:0",
        "-l",
        "http://127.0.0.1:0?proxy=required",
    ]);
    let ports = listening_ports(&server, 2);
    let get = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let plain = support::http::raw_exchange(ports[0], get, Duration::from_secs(10));
    assert!(
        plain.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&plain)
    );
    let refused = support::http::raw_exchange(ports[1], get, Duration::from_secs(10));
    assert!(refused.is_empty(), "{}", String::from_utf8_lossy(&refused));
}
