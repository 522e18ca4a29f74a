//! Helpers for the HTTP and WebSocket tests: start a server with an
//! `http://` listener, run curl and read its answer, and speak raw
//! HTTP/1.1 over a socket.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use super::{ServerProc, run, server_command};

/// Starts `echo-server` listening on `scheme://127.0.0.1:0` with `args`.
pub fn server(scheme: &str, args: &[&str]) -> ServerProc {
    let listen = format!("{scheme}://127.0.0.1:0");
    let mut all = vec!["-l", listen.as_str()];
    all.extend_from_slice(args);
    ServerProc::start_cmd(&mut server_command(&all))
}

/// What curl got.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The response headers, names in lower case, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Runs `curl -sS -i ARGS` (within 30 s) and reads its answer; fails the
/// test if curl fails.
pub fn curl(args: &[&str]) -> Answer {
    let out = run(
        Command::new("curl").args(["-sS", "-i"]).args(args),
        b"",
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "curl {args:?} failed ({:?}): {}",
        out.status,
        out.stderr
    );
    parse_response(&out.stdout)
}

/// Reads an HTTP response as curl `-i` prints it (or as it comes off the
/// wire), skipping `100 Continue`.
pub fn parse_response(mut raw: &[u8]) -> Answer {
    loop {
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no header block in {:?}", String::from_utf8_lossy(raw)));
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let body = &raw[end + 4..];
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {status_line:?}"));
        if status == 100 {
            raw = body;
            continue;
        }
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        return Answer {
            status,
            headers,
            body: body.to_vec(),
        };
    }
}

/// Sends `request` on a new connection to `port` and reads until the
/// server closes (or `timeout`); returns the raw bytes.
pub fn raw_exchange(port: u16, request: &[u8], timeout: Duration) -> Vec<u8> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    conn.set_read_timeout(Some(timeout)).unwrap();
    // The server may answer (and close) before taking it all.
    let _ = conn.write_all(request);
    let mut out = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "reading the answer: {e}; got so far {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    out
}

/// The status code of a raw HTTP/1.1 response.
pub fn status_of(raw: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(raw);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"))
}

/// The Python 3 interpreter the tests run helpers with.
pub fn python3() -> Command {
    Command::new("python3")
}
