//! A tiny HTTP/1.1 responder for `GET /metrics`: one request per
//! connection, then close. Enough for Prometheus, `curl` and a browser,
//! without a web framework on the server's dependency list.
//!
//! A scrape endpoint should not become a way in: requests are read with a
//! size cap and a deadline, and at most [`MAX_CONCURRENT`] are served at
//! once (more wait in the backlog).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::debug;

use super::Metrics;

/// The largest request head read; anything longer is refused.
const MAX_HEAD: usize = 8 * 1024;

/// How long a client has to send its request and take the response.
const DEADLINE: Duration = Duration::from_secs(5);

/// Scrapes served at once.
pub const MAX_CONCURRENT: usize = 16;

/// Serves `metrics` on `listener` until the future is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    let slots = Arc::new(Semaphore::new(MAX_CONCURRENT));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                debug!(name = "metrics", "accept: {e}");
                // Out of descriptors and the like: do not spin on it.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match tokio::time::timeout(DEADLINE, respond(stream, &metrics)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => debug!(name = "metrics", "{peer}: {e}"),
                Err(_) => debug!(name = "metrics", "{peer}: timed out"),
            }
        });
    }
}

/// Reads one request head and answers it.
async fn respond(mut stream: TcpStream, metrics: &Metrics) -> io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEAD {
            return write(
                &mut stream,
                "431 Request Header Fields Too Large",
                "",
                false,
            )
            .await;
        }
    }
    let request_line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let request_line = String::from_utf8_lossy(request_line);
    let (status, body) = route(request_line.trim_end(), metrics);
    let with_body = !request_line.starts_with("HEAD ");
    write(&mut stream, status, &body, with_body).await
}

/// What to answer to a request line.
fn route(request_line: &str, metrics: &Metrics) -> (&'static str, String) {
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return ("400 Bad Request", "bad request\n".into());
    };
    if !version.starts_with("HTTP/1.") {
        return ("505 HTTP Version Not Supported", String::new());
    }
    let path = target.split('?').next().unwrap_or_default();
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => ("200 OK", metrics.render()),
        (_, "/metrics") => ("405 Method Not Allowed", "use GET\n".into()),
        ("GET" | "HEAD", "/") => ("200 OK", "echoes: metrics are at /metrics\n".into()),
        _ => (
            "404 Not Found",
            "not found; metrics are at /metrics\n".into(),
        ),
    }
}

async fn write(
    stream: &mut TcpStream,
    status: &str,
    body: &str,
    with_body: bool,
) -> io::Result<()> {
    let mut response = format!(
        "HTTP/1.1 {status}\r\n\
         Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\n\
         Connection: close\r\n",
        body.len()
    );
    if status.starts_with("405") {
        response.push_str("Allow: GET, HEAD\r\n");
    }
    response.push_str("\r\n");
    if with_body {
        response.push_str(body);
    }
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let m = Metrics::new();
        assert_eq!(route("GET /metrics HTTP/1.1", &m).0, "200 OK");
        assert_eq!(route("GET /metrics?x=1 HTTP/1.0", &m).0, "200 OK");
        assert!(route("HEAD /metrics HTTP/1.1", &m).1.contains("# TYPE"));
        assert_eq!(
            route("POST /metrics HTTP/1.1", &m).0,
            "405 Method Not Allowed"
        );
        assert_eq!(route("GET /nope HTTP/1.1", &m).0, "404 Not Found");
        assert_eq!(
            route("GET /metrics SPDY/3", &m).0,
            "505 HTTP Version Not Supported"
        );
        assert_eq!(route("garbage", &m).0, "400 Bad Request");
    }
}
