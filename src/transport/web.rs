//! The client side of the web addresses: `ws://` and `http://` connect over
//! TCP, `wss://` and `https://` over TLS (with the client's trust settings
//! and an ALPN offer), and `ws://`/`wss://` then shake hands as a
//! WebSocket client (RFC 6455), with tokio-tungstenite.
//!
//! A WebSocket echo inside a test, against the server's `http://` listener:
//!
//! ```
//! use std::time::Duration;
//! use echoes::transport::{connect_ws, ws_config};
//! use echoes::{Server, ServerConfig};
//! use futures_util::{SinkExt, StreamExt};
//! use tokio_tungstenite::tungstenite::Message;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::bind(ServerConfig::new("http://127.0.0.1:0".parse()?)).await?;
//! let port = server.local_addrs()[0].host_port().unwrap().1;
//! let shutdown = server.shutdown_handle();
//! let running = tokio::spawn(server.run());
//!
//! let addr = format!("ws://127.0.0.1:{port}/chat").parse()?;
//! let config = ws_config(64 * 1024);
//! let mut ws = connect_ws(&addr, Duration::from_secs(5), None, None, config).await?;
//! ws.send(Message::binary(&b"over WebSocket"[..])).await?;
//! let echo = ws.next().await.unwrap()?;
//! assert_eq!(echo.into_data(), &b"over WebSocket"[..]);
//! ws.close(None).await?;
//!
//! shutdown.shutdown();
//! running.await??;
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, http};

use super::error::ConnectError;
use super::stream::BoxStream;
use super::tls;
use crate::addr::{Addr, Transport};
use crate::proxy::send::ProxySend;

/// The TCP (`ws://`, `http://`) or TLS (`wss://`, `https://`) address a
/// web address is reached through: same host and port, no path.
pub fn stream_addr(addr: &Addr) -> Result<Addr, ConnectError> {
    let Addr::Web {
        transport,
        host,
        port,
        ..
    } = addr
    else {
        return Err(ConnectError::Unsupported(addr.transport()));
    };
    let transport = match transport {
        Transport::Ws | Transport::Http => Transport::Tcp,
        _ => Transport::Tls,
    };
    Ok(Addr::Inet {
        transport,
        host: host.clone(),
        port: *port,
    })
}

/// The TLS configuration for a web address: `config` (or the system's
/// CAs when `None`) offering `alpn` by ALPN, as browsers do, so that a
/// proxy in front routes the connection to the right protocol.
pub fn tls_config(
    config: Option<&Arc<rustls::ClientConfig>>,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ClientConfig>, ConnectError> {
    let base = match config {
        Some(c) => c.clone(),
        None => tls::default_client_config()?,
    };
    let mut config = rustls::ClientConfig::clone(&base);
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Connects the TCP or TLS stream under a web address, within `timeout`
/// for the connection and again for the TLS handshake, sending `proxy`'s
/// PROXY header first when given. `tls` is used as it is (see
/// [`tls_config`] for the ALPN offer); `None` trusts the system's CAs and
/// offers no ALPN.
pub async fn connect_stream(
    addr: &Addr,
    timeout: Duration,
    tls: Option<&Arc<rustls::ClientConfig>>,
    proxy: Option<&ProxySend>,
) -> Result<BoxStream, ConnectError> {
    // The one client connect (`tcp://` or `tls://` under the web address).
    super::connect::connect_with(&stream_addr(addr)?, timeout, tls, proxy).await
}

/// The session settings of a WebSocket client that expects messages of at
/// most `max_message` bytes: a larger one ends the session with
/// [`WsError::Capacity`], so memory stays bounded whatever the server
/// sends. Messages are written out as they are sent (no batching), and
/// what waits unsent is at most one message and `WRITE_SLACK` (64 KiB): the
/// answers to a server's pings that it does not read do not pile up
/// (tungstenite then keeps only the latest), and a message that would pass
/// the bound fails to send instead of being held.
pub fn ws_config(max_message: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(max_message.saturating_add(16).clamp(4096, 64 * 1024))
        .write_buffer_size(0)
        .max_write_buffer_size(max_message.saturating_add(WRITE_SLACK))
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}

/// Room for unsent frames besides one message: a message's header, a
/// close frame, and pongs (at most 131 bytes each).
pub const WRITE_SLACK: usize = 64 * 1024;

/// The opening handshake's request for `addr` (`GET PATH` with `Host`,
/// `Upgrade: websocket` and a fresh key).
pub fn ws_request(addr: &Addr) -> Result<Request, ConnectError> {
    let url = match addr {
        // An address without a path asks for `/`.
        Addr::Web {
            transport: Transport::Ws | Transport::Wss,
            path,
            ..
        } if path.is_empty() => format!("{addr}/"),
        Addr::Web {
            transport: Transport::Ws | Transport::Wss,
            ..
        } => addr.to_string(),
        _ => return Err(ConnectError::Unsupported(addr.transport())),
    };
    let mut request = url
        .into_client_request()
        .map_err(|e| handshake_error(addr, &e))?;
    request.headers_mut().insert(
        http::header::USER_AGENT,
        http::HeaderValue::from_static(concat!("echoes/", env!("CARGO_PKG_VERSION"))),
    );
    Ok(request)
}

/// Shakes hands as a WebSocket client of `addr` (`ws://` or `wss://`) on
/// a connected `stream`, within `timeout`.
pub async fn handshake<S>(
    stream: S,
    addr: &Addr,
    timeout: Duration,
    config: WebSocketConfig,
) -> Result<WebSocketStream<S>, ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let request = ws_request(addr)?;
    let shake = tokio_tungstenite::client_async_with_config(request, stream, Some(config));
    match tokio::time::timeout(timeout, shake).await {
        Ok(Ok((ws, _response))) => Ok(ws),
        Ok(Err(e)) => Err(handshake_error(addr, &e)),
        Err(_) => Err(ConnectError::WebSocket {
            target: addr.to_string(),
            reason: format!("no answer within {timeout:?}"),
        }),
    }
}

/// Connects to a `ws://` or `wss://` address (sending `proxy`'s PROXY
/// header first when given) and shakes hands, each step within
/// `timeout`. Over `wss://`, `tls` (or the system's CAs) offers ALPN
/// `http/1.1`.
pub async fn connect_ws(
    addr: &Addr,
    timeout: Duration,
    tls: Option<&Arc<rustls::ClientConfig>>,
    proxy: Option<&ProxySend>,
    config: WebSocketConfig,
) -> Result<WebSocketStream<BoxStream>, ConnectError> {
    ws_request(addr)?;
    let tls = match addr.transport() {
        Transport::Wss => Some(tls_config(tls, &[b"http/1.1"])?),
        _ => None,
    };
    let stream = connect_stream(addr, timeout, tls.as_ref(), proxy).await?;
    handshake(stream, addr, timeout, config).await
}

/// Says why a handshake failed, in a user's words: the status the server
/// answered with, or what went wrong on the way.
fn handshake_error(addr: &Addr, e: &WsError) -> ConnectError {
    let reason = match e {
        WsError::Http(response) => {
            let status = response.status();
            format!(
                "the server answered {} {} instead of 101 Switching Protocols",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            )
        }
        WsError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the server closed the connection".to_string()
        }
        other => other.to_string(),
    };
    ConnectError::WebSocket {
        target: addr.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_addresses_go_over_tcp_or_tls() {
        for (web, under) in [
            ("ws://h:1/x", "tcp://h:1"),
            ("http://[::1]:2", "tcp://[::1]:2"),
            ("wss://h:3/", "tls://h:3"),
            ("https://h:4/a?b", "tls://h:4"),
        ] {
            let web: Addr = web.parse().unwrap();
            let want: Addr = under.parse().unwrap();
            assert_eq!(stream_addr(&web).unwrap(), want);
        }
        assert!(stream_addr(&"h:1".parse().unwrap()).is_err());
    }

    #[test]
    fn requests_name_the_path_and_host() {
        let addr: Addr = "ws://[::1]:8080/chat?room=1".parse().unwrap();
        let req = ws_request(&addr).unwrap();
        assert_eq!(req.uri().path_and_query().unwrap().as_str(), "/chat?room=1");
        assert_eq!(req.headers()["host"], "[::1]:8080");
        let bare = ws_request(&"wss://h:1".parse().unwrap()).unwrap();
        assert_eq!(bare.uri().path(), "/");
        assert!(ws_request(&"http://h:1".parse().unwrap()).is_err());
    }
}
