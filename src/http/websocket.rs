//! WebSocket (RFC 6455): the opening handshake on any path, over HTTP/1.1
//! (`Upgrade: websocket`) and over HTTP/2 (RFC 8441, an extended
//! `CONNECT` with `:protocol websocket`), and the echo that follows, with
//! tokio-tungstenite.
//!
//! The echo sends back every text and binary message as it came (its
//! type, its bytes), answers pings, and completes the close handshake. It
//! reads the next message only once the last echo is written, so a client
//! that does not read stops being read from, as over TCP, and a session
//! holds at most one message (`--ws-max-message`) and its frames
//! (`--ws-max-frame`). A peer that breaks the protocol is closed with 1002
//! (1007 for text that is not UTF-8, 1009 for a message over the limit)
//! and counted in `echoes_errors_total{transport="ws"}`.

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::upgrade::OnUpgrade;
use hyper::{Method, Request, Response, StatusCode, Version};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::debug;

use crate::addr::Transport;
use crate::metrics::{ErrorKind, Metrics};
use crate::pyrepr::PyBytes;
use crate::transport::PeerName;

use super::HttpConfig;

/// The read buffer of a session: as large as the TCP echo's read.
const READ_BUFFER: usize = 64 * 1024;

/// How long a session that closed cleanly waits to shut its stream down.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether a request asks for a WebSocket: `Upgrade: websocket` (HTTP/1.1)
/// or an extended `CONNECT` for `websocket` (HTTP/2, RFC 8441).
pub fn is_upgrade(req: &Request<Incoming>) -> bool {
    if req.version() == Version::HTTP_2 {
        return req.method() == Method::CONNECT
            && req
                .extensions()
                .get::<hyper::ext::Protocol>()
                .is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket"));
    }
    has_token(req.headers(), header::UPGRADE, "websocket")
}

/// Whether a comma-separated header lists `token` (any case).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// An accepted upgrade: the response to send, and the connection to come.
pub struct Accepted {
    /// `101 Switching Protocols` (HTTP/1.1) or `200 OK` (HTTP/2).
    pub response: Response<()>,
    /// Resolves to the WebSocket's stream once the response is out.
    pub upgrade: OnUpgrade,
}

/// A refused upgrade: the status and why.
#[derive(Debug)]
pub struct Refused {
    /// 400, or 426 for a version other than 13.
    pub status: StatusCode,
    /// What was wrong, for the body.
    pub reason: &'static str,
}

/// Checks an upgrade request (RFC 6455 section 4.2.1, RFC 8441 section 5)
/// and makes its response. The first subprotocol the client offers, if
/// any, is accepted: an echo speaks them all.
pub fn accept(req: &mut Request<Incoming>) -> Result<Accepted, Refused> {
    let refuse = |reason| Refused {
        status: StatusCode::BAD_REQUEST,
        reason,
    };
    let h2 = req.version() == Version::HTTP_2;
    let headers = req.headers();
    if !h2 {
        if req.method() != Method::GET {
            return Err(refuse("a WebSocket upgrade is a GET"));
        }
        if req.version() < Version::HTTP_11 {
            return Err(refuse("a WebSocket upgrade needs HTTP/1.1"));
        }
        if !has_token(headers, header::CONNECTION, "upgrade") {
            return Err(refuse("a WebSocket upgrade needs Connection: Upgrade"));
        }
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err(Refused {
            status: StatusCode::UPGRADE_REQUIRED,
            reason: "this server speaks WebSocket version 13 (Sec-WebSocket-Version: 13)",
        });
    }
    let mut response = Response::new(());
    if h2 {
        *response.status_mut() = StatusCode::OK;
    } else {
        let key = headers
            .get(header::SEC_WEBSOCKET_KEY)
            .filter(|k| {
                base64::engine::general_purpose::STANDARD
                    .decode(k.as_bytes())
                    .is_ok_and(|raw| raw.len() == 16)
            })
            .ok_or_else(|| refuse("Sec-WebSocket-Key must be 16 bytes in base64"))?;
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = response.headers_mut();
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        if let Ok(v) = HeaderValue::from_str(&accept) {
            h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
        }
    }
    let protocol = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find(|p| !p.is_empty())
        .and_then(|p| HeaderValue::from_str(p).ok());
    if let Some(p) = protocol {
        response
            .headers_mut()
            .insert(header::SEC_WEBSOCKET_PROTOCOL, p);
    }
    Ok(Accepted {
        response,
        upgrade: hyper::upgrade::on(req),
    })
}

/// The session's settings: the size limits of `config`.
pub fn session_config(config: &HttpConfig) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(config.ws_max_message))
        .max_frame_size(Some(config.ws_max_frame))
}

/// Echoes a WebSocket session on `stream` (the server's side, after the
/// handshake; `read_ahead` is what the client sent past its request)
/// until it closes. Counts messages and bytes under `ws`, and a broken
/// protocol as an error; an I/O error is returned.
pub async fn echo<S>(
    stream: S,
    read_ahead: Vec<u8>,
    config: WebSocketConfig,
    peer: PeerName,
    metrics: &Metrics,
) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut ws =
        WebSocketStream::from_partially_read(stream, read_ahead, Role::Server, Some(config)).await;
    let result = echo_messages(&mut ws, peer, metrics).await;
    match result {
        Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => {
            // The closing handshake is done: end the stream itself cleanly
            // too (over TLS, close_notify, without which a strict client
            // such as rustls reads the end as a truncation), then read
            // until the client closes its side, briefly: closed with bytes
            // unread (its own close_notify), the socket would send a reset,
            // which can cost the client the close frame still in its
            // buffers (it then sees 1006).
            let stream = ws.get_mut();
            let _ = tokio::time::timeout(CLOSE_GRACE, async {
                use tokio::io::AsyncReadExt as _;
                let _ = stream.shutdown().await;
                let mut sink = [0u8; 1024];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
            })
            .await;
            Ok(())
        }
        Err(WsError::Io(e)) => Err(e),
        Err(e) => {
            let (kind, code) = match &e {
                WsError::Capacity(_) => (ErrorKind::MessageTooLarge, CloseCode::Size),
                WsError::Utf8(_) => (ErrorKind::Protocol, CloseCode::Invalid),
                _ => (ErrorKind::Protocol, CloseCode::Protocol),
            };
            metrics.error(Transport::Ws, kind);
            debug!(name = %peer, "websocket closed: {e}");
            // Says why, if the connection still takes it.
            let close = CloseFrame {
                code,
                reason: "".into(),
            };
            let _ = ws.close(Some(close)).await;
            Ok(())
        }
    }
}

async fn echo_messages<S>(
    ws: &mut WebSocketStream<S>,
    peer: PeerName,
    metrics: &Metrics,
) -> Result<(), WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(msg) = ws.next().await {
        let msg = msg?;
        match &msg {
            Message::Text(_) | Message::Binary(_) => {
                let n = msg.len();
                metrics.received(Transport::Ws, n);
                debug!(name = %peer, "received {}", PyBytes(payload(&msg)));
                // A copy to log (a reference count), only when logging.
                let logged = tracing::enabled!(tracing::Level::DEBUG).then(|| msg.clone());
                ws.send(msg).await?;
                metrics.sent(Transport::Ws, n);
                if let Some(m) = logged {
                    debug!(name = %peer, "sent {}", PyBytes(payload(&m)));
                }
            }
            // tungstenite queued the pong; send it now, not with the next echo.
            Message::Ping(_) => ws.flush().await?,
            // The reply is queued: send it before reading on. The next read
            // would try to send it too, but if the socket cannot take it at
            // that instant, tungstenite reads on, and a client that
            // half-closed after its close frame (Python's websockets does)
            // ends the session there, its close frame never answered: the
            // client sees 1006, not the code it sent.
            Message::Close(_) => ws.flush().await?,
            Message::Pong(_) | Message::Frame(_) => {}
        }
    }
    Ok(())
}

fn payload(msg: &Message) -> &[u8] {
    match msg {
        Message::Text(t) => t.as_bytes(),
        Message::Binary(b) => b,
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_found_in_lists_in_any_case() {
        let mut h = HeaderMap::new();
        h.append(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        h.append(header::UPGRADE, HeaderValue::from_static("h2c"));
        h.append(header::UPGRADE, HeaderValue::from_static("WebSocket"));
        assert!(has_token(&h, header::CONNECTION, "upgrade"));
        assert!(has_token(&h, header::UPGRADE, "websocket"));
        assert!(!has_token(&h, header::CONNECTION, "close"));
        assert!(!has_token(&h, header::SEC_WEBSOCKET_PROTOCOL, "x"));
    }

    #[test]
    fn sessions_take_the_size_limits() {
        let config = HttpConfig {
            ws_max_message: 1000,
            ws_max_frame: 100,
            ..HttpConfig::default()
        };
        let c = session_config(&config);
        assert_eq!(
            (c.max_message_size, c.max_frame_size),
            (Some(1000), Some(100))
        );
        assert!(!c.accept_unmasked_frames);
    }
}
