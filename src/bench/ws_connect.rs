//! Reaching a WebSocket server (`ws://`, `wss://`): the probe, the
//! [`WsConnector`] it sets up, and each slot's [`WsConnection`], which
//! shakes hands on its first exchange (it needs the message size for its
//! limits) and ends with the closing handshake. The exchange loop itself
//! is in [`ws`](super::ws).

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures_util::{Sink, Stream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::exchange::{ExchangeEnd, ExchangePlan, Failure};
use super::record::FailureKind;
use super::source::{self, Source};
use super::tcp;
use crate::addr::{Addr, Transport};
use crate::proxy::send::ProxySend;
use crate::transport::{BoxStream, ConnectError, web};

/// The longest a connection waits for the server's Close at the end of
/// the run (and never longer than the timeout).
const GOODBYE: Duration = Duration::from_secs(1);

/// How the bench reaches a WebSocket server: over TCP to the address the
/// probe reached (from each of the `--source` addresses in turn, as plain
/// TCP does), or over TLS (resolving the name for each connection, as the
/// certificate check needs it).
#[derive(Debug, Clone)]
pub(crate) struct WsConnector {
    addr: Arc<Addr>,
    /// `ws://`: the address that answered the probe.
    peer: Option<SocketAddr>,
    /// `ws://`: the addresses to connect from (none: the system's choice).
    sources: Arc<[IpAddr]>,
    /// `wss://`: the client configuration, offering ALPN `http/1.1`.
    tls: Option<Arc<rustls::ClientConfig>>,
    /// A PROXY header to send first (`--proxy-protocol`).
    proxy: Option<ProxySend>,
}

/// Connects once and shakes hands, to prove the server speaks WebSocket
/// (a fatal error otherwise, before the run starts).
pub(crate) async fn probe(
    addr: &Addr,
    timeout: Duration,
    tls: Option<&Arc<rustls::ClientConfig>>,
    source: &Source,
    proxy: Option<&ProxySend>,
) -> Result<WsConnector, ConnectError> {
    let under = web::stream_addr(addr)?;
    let (peer, tls, stream): (_, _, BoxStream) = match addr.transport() {
        Transport::Ws => {
            let (stream, peer) = tcp::probe(&under, addr, timeout, proxy).await?;
            (Some(peer), None, Box::new(stream))
        }
        _ => {
            let config = web::tls_config(tls, &[b"http/1.1"])?;
            let stream =
                crate::transport::connect_with(&under, timeout, Some(&config), proxy).await?;
            (None, Some(config), stream)
        }
    };
    let mut ws = web::handshake(stream, addr, timeout, web::ws_config(64 * 1024)).await?;
    goodbye(&mut ws, timeout).await;
    let sources = match peer {
        Some(peer) => source.addrs_for(peer, Transport::Tcp).into(),
        None => Arc::from([]),
    };
    Ok(WsConnector {
        addr: Arc::new(addr.clone()),
        peer,
        sources,
        tls,
        proxy: proxy.cloned(),
    })
}

impl WsConnector {
    /// How many source addresses connections spread over (1: the
    /// system's choice).
    pub(crate) fn sources(&self) -> usize {
        self.sources.len().max(1)
    }

    /// A new connection, within `timeout`; `seq` picks its source address.
    /// Its opening handshake waits for its first exchange.
    pub(crate) async fn connect(
        &self,
        timeout: Duration,
        seq: u64,
    ) -> Result<WsConnection, Failure> {
        let err = |detail: String| Failure::new(FailureKind::Connect, detail);
        let stream: BoxStream = match (&self.peer, &self.tls) {
            (Some(peer), _) => {
                let from = source::pick(&self.sources, seq);
                Box::new(tcp::connect_slot(*peer, from, timeout, self.proxy.as_ref()).await?)
            }
            (None, tls) => {
                let under = web::stream_addr(&self.addr).map_err(|e| err(e.to_string()))?;
                crate::transport::connect_with(&under, timeout, tls.as_ref(), self.proxy.as_ref())
                    .await
                    .map_err(|e| err(e.to_string()))?
            }
        };
        Ok(WsConnection {
            addr: self.addr.clone(),
            state: WsState::Connected(stream),
        })
    }
}

/// A WebSocket over the bench's streams.
pub(crate) type WsStream = WebSocketStream<BoxStream>;

/// One slot's WebSocket connection: connected, then upgraded once the
/// opening handshake is done, then closed.
pub(crate) struct WsConnection {
    addr: Arc<Addr>,
    state: WsState,
}

enum WsState {
    /// Connected; the opening handshake waits for the first exchange.
    Connected(BoxStream),
    /// The opening handshake is done.
    Upgraded(Box<WsStream>),
    /// Closed (or failed during the handshake).
    Closed,
}

impl WsConnection {
    /// The WebSocket, shaking hands first if that is not done yet.
    pub(crate) async fn websocket(
        &mut self,
        plan: &ExchangePlan,
    ) -> Result<&mut WsStream, Failure> {
        if let WsState::Connected(_) = self.state {
            let WsState::Connected(stream) = std::mem::replace(&mut self.state, WsState::Closed)
            else {
                unreachable!("checked just above");
            };
            let ws = web::handshake(stream, &self.addr, plan.timeout, web::ws_config(plan.size))
                .await
                .map_err(|e| Failure::new(FailureKind::Connect, e.to_string()))?;
            self.state = WsState::Upgraded(Box::new(ws));
        }
        match &mut self.state {
            WsState::Upgraded(ws) => Ok(ws),
            _ => Err(Failure::new(
                FailureKind::Reset,
                "the WebSocket is already closed",
            )),
        }
    }

    /// Ends the connection after an exchange that ended with `end`: with
    /// the closing handshake, awaited for `timeout`, after the message
    /// limit (churn: the operation ends with it); with a polite close,
    /// waited for briefly and not counted, at the end of the run.
    pub(crate) async fn close(
        &mut self,
        end: ExchangeEnd,
        timeout: Duration,
    ) -> Result<(), Failure> {
        let WsState::Upgraded(ws) = &mut self.state else {
            return Ok(());
        };
        match end {
            ExchangeEnd::LimitReached => {
                tokio::time::timeout(timeout, close(ws))
                    .await
                    .map_err(|_| {
                        Failure::new(
                            FailureKind::Timeout,
                            format!("no Close from the server within {timeout:?}"),
                        )
                    })??;
            }
            // A WebSocket exchange does not end so: it ends the same as the run.
            ExchangeEnd::Deadline | ExchangeEnd::Closed => goodbye(ws, timeout).await,
        }
        self.state = WsState::Closed;
        Ok(())
    }
}

/// Sends a Close and reads until the server's, which ends the stream;
/// a data message meanwhile is one more than was sent.
async fn close<S>(ws: &mut WebSocketStream<S>) -> Result<(), Failure>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match closing(ws).await {
        Ok(0) => Ok(()),
        Ok(_) => Err(Failure::new(
            FailureKind::Mismatch,
            "a message came back after every echo: more than was sent",
        )),
        Err(e) => Err(ws_error("closing", e, 0)),
    }
}

/// The end of the run: a polite close, waited for briefly; echoes still
/// in flight are read and dropped, and a failure is not counted.
async fn goodbye<S>(ws: &mut WebSocketStream<S>, timeout: Duration)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let _ = tokio::time::timeout(timeout.min(GOODBYE), closing(ws)).await;
}

/// The closing handshake: sends a Close while reading whatever comes
/// (so that a server blocked on writing echoes can get to the Close),
/// until the server's Close ends the stream. Returns how many data
/// messages came meanwhile.
async fn closing<S>(ws: &mut WebSocketStream<S>) -> Result<u64, WsError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut sent = false;
    let mut data = 0u64;
    std::future::poll_fn(|cx| {
        loop {
            match Pin::new(&mut *ws).poll_next(cx) {
                Poll::Ready(Some(Ok(Message::Text(_) | Message::Binary(_)))) => data += 1,
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Ready(None) => return Poll::Ready(Ok(data)),
                // A TLS server that closes without close_notify after its
                // Close ends the session all the same.
                Poll::Ready(Some(Err(WsError::Io(e))))
                    if sent && e.kind() == std::io::ErrorKind::UnexpectedEof =>
                {
                    return Poll::Ready(Ok(data));
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Pending => break,
            }
        }
        if !sent {
            match Pin::new(&mut *ws).poll_close(cx) {
                Poll::Ready(Ok(())) => {
                    sent = true;
                    // Read again: the Close may have been answered already.
                    cx.waker().wake_by_ref();
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        Poll::Pending
    })
    .await
}

/// What a tungstenite error while `what` (sending, receiving, closing)
/// means for the run, with messages of `size` bytes.
pub(crate) fn ws_error(what: &str, e: WsError, size: usize) -> Failure {
    let kind = match &e {
        WsError::Io(io) => return Failure::io(what, io),
        WsError::Capacity(_) => {
            return Failure::new(
                FailureKind::Mismatch,
                format!("{what}: a message longer than the {size} bytes sent came back ({e})"),
            );
        }
        WsError::ConnectionClosed
        | WsError::AlreadyClosed
        | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => FailureKind::ShortEcho,
        _ => FailureKind::Reset,
    };
    Failure::new(kind, format!("{what}: {e}"))
}
