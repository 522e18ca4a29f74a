//! The reflection: what the server saw of a request, as JSON (the
//! default) or readable text (`Accept: text/plain`).
//!
//! ```json
//! {
//!   "method": "POST",
//!   "uri": "/api?x=1",
//!   "path": "/api",
//!   "query": "x=1",
//!   "version": "HTTP/1.1",
//!   "headers": [
//!     ["host", "localhost:8080"],
//!     ["x-high", "caf\u{fffd}", "Y2Fm6Q=="],
//!     ["content-length", "5"]
//!   ],
//!   "body": {"length": 5, "sha256": "2cf2…", "encoding": "utf-8", "data": "hello"},
//!   "client": {"address": "127.0.0.1", "port": 53094},
//!   "server": {"name": "web-1", "shard": 0, "address": "127.0.0.1", "port": 8080},
//!   "tls": null,
//!   "proxy": null
//! }
//! ```
//!
//! Headers come in the order they arrived, except that the values of a
//! repeated name stay together at its first place (hyper keeps them so);
//! names are lower case (HTTP/2's, and hyper's for HTTP/1). A header value
//! that is not UTF-8 is shown with U+FFFD for what is not, and its bytes
//! follow in base64 as a third element, so they can be recovered; a body
//! that is not UTF-8 is shown in base64 (`"encoding": "base64"`). Each
//! header pair takes one line of the JSON.

use std::fmt::Write as _;
use std::net::SocketAddr;

use base64::Engine as _;
use hyper::{HeaderMap, Method, Uri, Version};
use serde::Serialize;

use super::body::Seen;
use super::facts::{ConnFacts, ProxyFacts, TlsFacts};

/// What the server saw of one request.
#[derive(Debug, Serialize)]
pub struct Reflection<'a> {
    /// `GET`, `POST`, …
    pub method: &'a str,
    /// The request target as hyper parsed it (HTTP/2: scheme and
    /// authority too; a `#fragment` is dropped).
    pub uri: String,
    /// The path.
    pub path: &'a str,
    /// The query, without the `?`, if there is one.
    pub query: Option<&'a str>,
    /// `HTTP/1.0`, `HTTP/1.1` or `HTTP/2.0`.
    pub version: &'static str,
    /// Every header as `[name, value]`, repeats kept.
    pub headers: Vec<HeaderView>,
    /// The body.
    pub body: BodyView,
    /// The peer, as seen on the socket.
    pub client: Endpoint,
    /// Who answered.
    pub server: ServerView<'a>,
    /// The TLS session, on `https://`.
    pub tls: Option<&'a TlsFacts>,
    /// The PROXY protocol header the connection came with, if any.
    pub proxy: Option<&'a ProxyFacts>,
}

/// A body as the reflection shows it.
#[derive(Debug, Serialize)]
pub struct BodyView {
    /// Its length in bytes.
    pub length: usize,
    /// Its SHA-256, in lower-case hex.
    pub sha256: String,
    /// `utf-8` when `data` is the body itself, `base64` when it is not text.
    pub encoding: &'static str,
    /// The body, as text or base64.
    pub data: String,
}

/// An IP address and port.
#[derive(Debug, Serialize)]
pub struct Endpoint {
    /// The IP address.
    pub address: String,
    /// The port.
    pub port: u16,
}

/// Who answered.
#[derive(Debug, Serialize)]
pub struct ServerView<'a> {
    /// `--name`.
    pub name: &'a str,
    /// The shard (worker) that served the connection.
    pub shard: usize,
    /// The server's address the connection came in on.
    pub address: String,
    /// Its port.
    pub port: u16,
}

impl From<SocketAddr> for Endpoint {
    fn from(a: SocketAddr) -> Endpoint {
        Endpoint {
            address: a.ip().to_canonical().to_string(),
            port: a.port(),
        }
    }
}

/// The parts of a request a reflection shows.
pub struct Request<'a> {
    /// The method.
    pub method: &'a Method,
    /// The target.
    pub uri: &'a Uri,
    /// The version.
    pub version: Version,
    /// The headers.
    pub headers: &'a HeaderMap,
}

/// The name of an HTTP version.
pub fn version_name(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/?",
    }
}

impl<'a> Reflection<'a> {
    /// The reflection of `req` with body `body`, on a connection with
    /// `facts`, answered by `name` on `shard`.
    pub fn new(
        req: &Request<'a>,
        body: &Seen,
        facts: &'a ConnFacts,
        name: &'a str,
        shard: usize,
    ) -> Reflection<'a> {
        let headers = req
            .headers
            .iter()
            .map(|(k, v)| HeaderView::new(k.as_str(), v.as_bytes()))
            .collect();
        let (encoding, data) = match std::str::from_utf8(&body.data) {
            Ok(text) => ("utf-8", text.to_string()),
            Err(_) => (
                "base64",
                base64::engine::general_purpose::STANDARD.encode(&body.data),
            ),
        };
        Reflection {
            method: req.method.as_str(),
            uri: req.uri.to_string(),
            path: req.uri.path(),
            query: req.uri.query(),
            version: version_name(req.version),
            headers,
            body: BodyView {
                length: body.data.len(),
                sha256: hex(&body.sha256()),
                encoding,
                data,
            },
            client: facts.peer.into(),
            server: ServerView {
                name,
                shard,
                address: facts.local.ip().to_canonical().to_string(),
                port: facts.local.port(),
            },
            tls: facts.tls.as_ref(),
            proxy: facts.proxy.as_ref(),
        }
    }

    /// As JSON, pretty-printed, with a final newline.
    pub fn to_json(&self) -> String {
        let mut out = super::json::to_string(self).unwrap_or_else(|e| {
            // Only strings and numbers go in: this cannot fail.
            format!("{{\"error\": \"{e}\"}}")
        });
        out.push('\n');
        out
    }

    /// As readable text: the request as it came, then what the server knew.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{} {} {}", self.method, self.uri, self.version);
        for h in &self.headers {
            let _ = write!(out, "{}: {}", h.name, h.value);
            if let Some(raw) = &h.base64 {
                let _ = write!(out, " (not UTF-8; base64 {raw})");
            }
            out.push('\n');
        }
        out.push('\n');
        let c = &self.client;
        let _ = writeln!(out, "client: {} port {}", c.address, c.port);
        let s = &self.server;
        let _ = writeln!(
            out,
            "server: {} (shard {}) on {} port {}",
            s.name, s.shard, s.address, s.port
        );
        if let Some(tls) = self.tls {
            let _ = write!(out, "tls: {} {}", tls.version, tls.cipher);
            if let Some(sni) = &tls.sni {
                let _ = write!(out, ", SNI {sni}");
            }
            if let Some(alpn) = &tls.alpn {
                let _ = write!(out, ", ALPN {alpn}");
            }
            out.push('\n');
            if let Some(cert) = &tls.client_certificate {
                let _ = writeln!(
                    out,
                    "client certificate: {}, SHA-256 {}",
                    cert.subject, cert.sha256
                );
            }
        }
        if let Some(p) = self.proxy {
            let _ = write!(
                out,
                "proxy: {} port {} ({} {})",
                p.address, p.port, p.command, p.version
            );
            for (name, value) in &p.tlvs {
                let _ = write!(out, ", {name} {value}");
            }
            out.push('\n');
        }
        let b = &self.body;
        let _ = writeln!(
            out,
            "body: {} bytes, SHA-256 {}, {}",
            b.length, b.sha256, b.encoding
        );
        if !b.data.is_empty() {
            out.push_str(&b.data);
            if !b.data.ends_with('\n') {
                out.push('\n');
            }
        }
        out
    }
}

/// One header: `[name, value]` in JSON, or `[name, value, base64]` when
/// the value is not UTF-8 (the value then has U+FFFD where it is not).
#[derive(Debug)]
pub struct HeaderView {
    /// The name, in lower case.
    pub name: String,
    /// The value as text.
    pub value: String,
    /// The value's bytes in base64, when they are not UTF-8.
    pub base64: Option<String>,
}

impl HeaderView {
    fn new(name: &str, value: &[u8]) -> HeaderView {
        let (value, base64) = match std::str::from_utf8(value) {
            Ok(text) => (text.to_string(), None),
            Err(_) => (
                String::from_utf8_lossy(value).into_owned(),
                Some(base64::engine::general_purpose::STANDARD.encode(value)),
            ),
        };
        HeaderView {
            name: name.to_string(),
            value,
            base64,
        }
    }
}

impl Serialize for HeaderView {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq as _;
        let mut seq = s.serialize_seq(Some(2 + usize::from(self.base64.is_some())))?;
        seq.serialize_element(&self.name)?;
        seq.serialize_element(&self.value)?;
        if let Some(raw) = &self.base64 {
            seq.serialize_element(raw)?;
        }
        seq.end()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Whether the client prefers text: its `Accept` lists `text/plain` (not
/// refused with `q=0`), and before any `application/json`.
pub fn wants_text(headers: &HeaderMap) -> bool {
    for value in headers.get_all(hyper::header::ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let refused = parts.any(|p| p.replace(' ', "") == "q=0");
            match media.as_str() {
                "text/plain" if !refused => return true,
                "application/json" if !refused => return false,
                _ => {}
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn facts() -> ConnFacts {
        ConnFacts {
            peer: "[::ffff:127.0.0.1]:5000".parse().unwrap(),
            local: "127.0.0.1:8080".parse().unwrap(),
            tls: None,
            proxy: None,
        }
    }

    fn seen(data: &[u8]) -> Seen {
        Seen {
            data: data.to_vec(),
        }
    }

    #[test]
    fn json_has_every_part_and_repeats_in_order() {
        let mut headers = HeaderMap::new();
        headers.append("host", HeaderValue::from_static("h"));
        headers.append("x-a", HeaderValue::from_static("1"));
        headers.append("x-a", HeaderValue::from_static("2"));
        let uri: Uri = "/p/q?x=1&y".parse().unwrap();
        let req = Request {
            method: &Method::POST,
            uri: &uri,
            version: Version::HTTP_11,
            headers: &headers,
        };
        let f = facts();
        let body = seen(&[0xff, 0x00]);
        let r = Reflection::new(&req, &body, &f, "web-1", 3);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["method"], "POST");
        assert_eq!(v["path"], "/p/q");
        assert_eq!(v["query"], "x=1&y");
        assert_eq!(v["version"], "HTTP/1.1");
        assert_eq!(
            v["headers"],
            serde_json::json!([["host", "h"], ["x-a", "1"], ["x-a", "2"]])
        );
        assert_eq!(v["body"]["encoding"], "base64");
        assert_eq!(v["body"]["data"], "/wA=");
        assert_eq!(v["body"]["length"], 2);
        assert_eq!(v["client"]["address"], "127.0.0.1");
        assert_eq!(v["server"]["name"], "web-1");
        assert_eq!(v["server"]["shard"], 3);
        assert!(v["tls"].is_null());
        let text = Reflection::new(&req, &seen(b"hi"), &f, "web-1", 3).to_text();
        assert!(
            text.starts_with("POST /p/q?x=1&y HTTP/1.1\nhost: h\nx-a: 1\nx-a: 2\n\n"),
            "{text}"
        );
        assert!(
            text.contains("server: web-1 (shard 3) on 127.0.0.1 port 8080"),
            "{text}"
        );
        assert!(text.ends_with(", utf-8\nhi\n"), "{text}");
    }

    #[test]
    fn accept_decides_text_or_json() {
        let with = |accept: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(hyper::header::ACCEPT, HeaderValue::from_static(accept));
            wants_text(&h)
        };
        assert!(with("text/plain"));
        assert!(with("text/plain;q=0.5, application/json;q=0.1"));
        assert!(!with("application/json, text/plain"));
        assert!(!with("text/plain;q=0"));
        assert!(!with("*/*"));
        assert!(!wants_text(&HeaderMap::new()));
    }
}
