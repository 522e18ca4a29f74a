//! The TLS handshake, the last step of admission for `tls://` and
//! `https://` connections: in the connection's own task, within its
//! timeout, and closed so that a refused peer can read why.

use std::time::Duration;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::info;

use super::tcp_conn::TcpConn;
use crate::metrics::{ErrorKind, Metrics};
use crate::transport::PeerName;
use crate::units::format_duration;

/// Shakes hands as a TLS server within `timeout`. A peer that fails
/// (plain text, garbage, an untrusted client certificate, silence) costs
/// one log line and a count, under the connection's transport.
pub(super) async fn handshake(
    socket: TcpConn,
    acceptor: TlsAcceptor,
    timeout: Duration,
    peer: PeerName,
    metrics: &Metrics,
) -> Option<TlsStream<TcpConn>> {
    let transport = socket.lease().transport();
    let accept = acceptor.accept(socket).into_fallible();
    let (why, refused) = match tokio::time::timeout(timeout, accept).await {
        Ok(Ok(tls)) => return Some(tls),
        Ok(Err((e, socket))) => (e.to_string(), Some(socket)),
        Err(_) => (
            format!("no handshake within {}", format_duration(timeout)),
            None,
        ),
    };
    metrics.error(transport, ErrorKind::TlsHandshake);
    info!(name = %peer, "TLS handshake failed: {why}");
    if let Some(socket) = refused {
        close_after_alert(socket).await;
    }
    None
}

/// How long a refused TLS peer has to read the alert that says why.
const ALERT_LINGER: Duration = Duration::from_millis(500);

/// Closes a socket whose handshake failed so that its peer can read the
/// alert rustls sent (a client certificate required, say): the write
/// side first, then what the peer still sends is read and dropped, for at
/// most [`ALERT_LINGER`]. Closed at once with unread data, the socket
/// would send a reset, and the peer's next write would see only `Broken
/// pipe`, the alert lost.
async fn close_after_alert(mut socket: TcpConn) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let drain = async {
        let _ = socket.shutdown().await;
        let mut sink = [0u8; 1024];
        while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
    };
    let _ = tokio::time::timeout(ALERT_LINGER, drain).await;
}
