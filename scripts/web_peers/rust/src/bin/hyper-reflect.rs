//! The JSON reflection as a hyper 1 idiom would build it: the request's
//! body collected, its SHA-256 taken, and the same fields as
//! `echo-server`'s reflection (method, uri, path, query, version, headers
//! as `[name, value]` pairs, body, client, server, tls, proxy) put in a
//! `serde_json` value and pretty-printed. HTTP/1.1 with keep-alive, and
//! h2c with prior knowledge (hyper-util's auto builder), one task per
//! connection. Usage: hyper-reflect PORT [ADDRESS]
use std::convert::Infallible;
use std::net::SocketAddr;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

async fn reflect(
    req: Request<Incoming>,
    client: SocketAddr,
    local: SocketAddr,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let sha256: String = Sha256::digest(&body).iter().map(|b| format!("{b:02x}")).collect();
    let (encoding, data) = match std::str::from_utf8(&body) {
        Ok(text) => ("utf-8", text.to_string()),
        Err(_) => ("base64", String::new()),
    };
    let headers: Vec<Value> = parts
        .headers
        .iter()
        .map(|(k, v)| json!([k.as_str(), String::from_utf8_lossy(v.as_bytes())]))
        .collect();
    let version = match parts.version {
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    };
    let doc = json!({
        "method": parts.method.as_str(),
        "uri": parts.uri.to_string(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "version": version,
        "headers": headers,
        "body": {"length": body.len(), "sha256": sha256, "encoding": encoding, "data": data},
        "client": {"address": client.ip().to_string(), "port": client.port()},
        "server": {"name": "hyper-reflect", "shard": 0,
                   "address": local.ip().to_string(), "port": local.port()},
        "tls": null,
        "proxy": null,
    });
    let mut out = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    out.push(b'\n');
    let mut response = Response::new(Full::new(Bytes::from(out)));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let port = args.next().ok_or("usage: hyper-reflect PORT [ADDRESS]")?;
    let host = args.next().unwrap_or_else(|| "127.0.0.1".into());
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let listener = TcpListener::bind(addr.as_str()).await?;
    let local = listener.local_addr()?;
    eprintln!("hyper-reflect: listening on {local}");
    loop {
        let (stream, client) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let service = service_fn(move |req| reflect(req, client, local));
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
