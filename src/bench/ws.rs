//! The bench over `ws://` and `wss://`: each message one binary WebSocket
//! message of `size` bytes, its echo one message with the same bytes.
//!
//! The bytes are the connection's [`Pattern`], as over TCP: message `n`
//! carries the stream from offset `n * size`, and every echo is checked
//! against it in place. An echo that is not a binary message of exactly
//! `size` bytes is wrong: a `mismatch` (with the offset of the first
//! wrong byte), or a `short_echo` when it is a truncated copy, as over UDP.
//! A server that closes (or sends a Close) with echoes owed is a
//! `short_echo`; a message longer than `size` is refused by tungstenite
//! before it is read whole (a `mismatch`), so a connection's memory stays
//! bounded by one message and tungstenite's buffers, whatever the server
//! sends.
//!
//! [`drive`] polls the sending and the receiving side of one
//! `WebSocketStream` from a single future, as the TCP loop does with its
//! stream: up to `depth` messages in flight, one timer for the rate, the
//! timeout and the end of the run, latency from each message's start (its
//! due time in open loop). Payloads are built in a buffer the connection
//! keeps; tungstenite copies each into its frame (masking it, as a client
//! must) and lets go, so that buffer is reused rather than reallocated.
//!
//! The opening handshake happens on the connection's first exchange (it
//! needs the message size for its limits); in churn, every operation is a
//! connection, an opening handshake, one message, and the closing
//! handshake. At the end of the run each connection is closed with the
//! closing handshake, so the server sees clients that leave properly.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_util::{Sink, Stream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::conn::{Buffers, ConnError, Finish, Schedule, Spec};
use super::pattern::Pattern;
use super::report::{ErrorKind, Recorder};
use super::source::Source;
use super::tcp::Tcp;
use crate::addr::{Addr, Transport};
use crate::proxy::send::ProxySend;
use crate::transport::{self, BoxStream, ConnectError, web};

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
            let mut stream = transport::tcp::connect(&under, timeout).await?;
            let err = |error| ConnectError::Connect {
                target: addr.to_string(),
                error,
            };
            let peer = stream.peer_addr().map_err(err)?;
            if let Some(p) = proxy {
                let local = stream.local_addr().ok();
                p.write_to(&mut stream, local, Some(peer))
                    .await
                    .map_err(err)?;
            }
            (Some(peer), None, Box::new(stream))
        }
        _ => {
            let config = web::tls_config(tls, &[b"http/1.1"])?;
            let stream = crate::proxy::send::connect(&under, timeout, Some(&config), proxy).await?;
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
    pub(crate) async fn connect(&self, timeout: Duration, seq: u64) -> Result<WsLink, ConnError> {
        let err = |detail: String| ConnError {
            kind: ErrorKind::Connect,
            detail,
        };
        let stream: BoxStream = match (&self.peer, &self.tls) {
            (Some(peer), _) => {
                let sources = &self.sources;
                let from =
                    (!sources.is_empty()).then(|| sources[(seq % sources.len() as u64) as usize]);
                let mut tcp = tokio::time::timeout(timeout, Tcp::connect_from(*peer, from))
                    .await
                    .map_err(|_| err(format!("connecting to {peer}: timed out")))?
                    .map_err(|e| err(format!("connecting to {peer}: {e}")))?;
                if let Some(p) = &self.proxy {
                    let local = tcp.local_addr();
                    p.write_to(&mut tcp, local, Some(*peer))
                        .await
                        .map_err(|e| err(format!("sending the PROXY header to {peer}: {e}")))?;
                }
                Box::new(tcp)
            }
            (None, tls) => {
                let under = web::stream_addr(&self.addr).map_err(|e| err(e.to_string()))?;
                crate::proxy::send::connect(&under, timeout, tls.as_ref(), self.proxy.as_ref())
                    .await
                    .map_err(|e| err(e.to_string()))?
            }
        };
        Ok(WsLink {
            addr: self.addr.clone(),
            state: State::Connected(stream),
        })
    }
}

/// One connection: connected, then a WebSocket once the handshake is done.
pub(crate) struct WsLink {
    addr: Arc<Addr>,
    state: State,
}

enum State {
    Connected(BoxStream),
    Open(Box<WebSocketStream<BoxStream>>),
    Gone,
}

impl WsLink {
    /// The WebSocket, shaking hands first if that is not done yet.
    async fn open(&mut self, spec: &Spec) -> Result<&mut WebSocketStream<BoxStream>, ConnError> {
        if let State::Connected(_) = self.state {
            let State::Connected(stream) = std::mem::replace(&mut self.state, State::Gone) else {
                unreachable!("checked just above");
            };
            let ws = web::handshake(stream, &self.addr, spec.timeout, web::ws_config(spec.size))
                .await
                .map_err(|e| ConnError {
                    kind: ErrorKind::Connect,
                    detail: e.to_string(),
                })?;
            self.state = State::Open(Box::new(ws));
        }
        match &mut self.state {
            State::Open(ws) => Ok(ws),
            _ => Err(ConnError {
                kind: ErrorKind::Reset,
                detail: "the WebSocket is already closed".into(),
            }),
        }
    }
}

/// Exchanges messages over `link` until the run ends, the limit is
/// reached (then closes with the closing handshake), or something goes
/// wrong; see the module's documentation.
pub(crate) async fn drive(
    link: &mut WsLink,
    pattern: Pattern,
    spec: &Spec,
    bufs: &mut Buffers,
    schedule: Option<&mut Schedule>,
    rec: &Recorder,
) -> Result<Finish, ConnError> {
    let ws = link.open(spec).await?;
    let sleep = tokio::time::sleep_until(spec.end.into());
    tokio::pin!(sleep);
    let mut ex = Exchange {
        pattern,
        spec,
        bufs,
        schedule,
        rec,
        out: BytesMut::with_capacity(spec.size),
        sent: 0,
        done: 0,
        flush: false,
        last_progress: Instant::now(),
        timeout_check: Instant::now() + spec.timeout,
    };
    let finish = std::future::poll_fn(|cx| ex.poll(cx, ws, sleep.as_mut())).await?;
    match finish {
        Finish::Limit => {
            // Churn: the operation ends with the closing handshake.
            tokio::time::timeout(spec.timeout, close(ws))
                .await
                .map_err(|_| ConnError {
                    kind: ErrorKind::Timeout,
                    detail: format!("no Close from the server within {:?}", spec.timeout),
                })??;
        }
        Finish::Deadline => goodbye(ws, spec.timeout).await,
    }
    link.state = State::Gone;
    Ok(finish)
}

/// Sends a Close and reads until the server's, which ends the stream;
/// a data message meanwhile is one more than was sent.
async fn close<S>(ws: &mut WebSocketStream<S>) -> Result<(), ConnError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match closing(ws).await {
        Ok(0) => Ok(()),
        Ok(_) => Err(ConnError {
            kind: ErrorKind::Mismatch,
            detail: "a message came back after every echo: more than was sent".into(),
        }),
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

/// What a tungstenite error means for the run.
fn ws_error(what: &str, e: WsError, size: usize) -> ConnError {
    let kind = match &e {
        WsError::Io(io) => return ConnError::io(what, io),
        WsError::Capacity(_) => {
            return ConnError {
                kind: ErrorKind::Mismatch,
                detail: format!(
                    "{what}: a message longer than the {size} bytes sent came back ({e})"
                ),
            };
        }
        WsError::ConnectionClosed
        | WsError::AlreadyClosed
        | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => ErrorKind::ShortEcho,
        _ => ErrorKind::Reset,
    };
    ConnError {
        kind,
        detail: format!("{what}: {e}"),
    }
}

/// The state of one exchange; see [`drive`].
struct Exchange<'a> {
    pattern: Pattern,
    spec: &'a Spec,
    bufs: &'a mut Buffers,
    schedule: Option<&'a mut Schedule>,
    rec: &'a Recorder,
    /// The payloads, built here and handed to tungstenite.
    out: BytesMut,
    /// Messages sent.
    sent: u64,
    /// Messages echoed (and checked).
    done: u64,
    /// A message was sent and not yet flushed.
    flush: bool,
    /// The last time a message moved either way.
    last_progress: Instant,
    /// When to look at `last_progress` again for the timeout.
    timeout_check: Instant,
}

type Ws = WebSocketStream<BoxStream>;

impl Exchange<'_> {
    fn poll(
        &mut self,
        cx: &mut Context<'_>,
        ws: &mut Ws,
        mut sleep: Pin<&mut tokio::time::Sleep>,
    ) -> Poll<Result<Finish, ConnError>> {
        loop {
            let now = Instant::now();
            if now >= self.spec.end {
                return Poll::Ready(Ok(Finish::Deadline));
            }
            let (wrote, due) = self.write_side(cx, ws, now)?;
            let (read, finished) = self.read_side(cx, ws)?;
            if finished {
                return Poll::Ready(Ok(Finish::Limit));
            }
            if wrote || read {
                continue;
            }
            let owed = self.sent > self.done || self.flush;
            if owed && now >= self.timeout_check {
                let quiet = now.saturating_duration_since(self.last_progress);
                if quiet >= self.spec.timeout {
                    return Poll::Ready(Err(ConnError {
                        kind: ErrorKind::Timeout,
                        detail: format!(
                            "nothing moved for {:?} with {} message(s) of echo owed ({} sent, {} received)",
                            self.spec.timeout,
                            self.sent - self.done,
                            self.sent,
                            self.done
                        ),
                    }));
                }
                self.timeout_check = self.last_progress + self.spec.timeout;
            }
            let mut wake = self.spec.end;
            if let (Some(due), Some(schedule)) = (due, self.schedule.as_deref_mut()) {
                match schedule.poll_pacer(cx, due) {
                    Some(Poll::Ready(())) => continue,
                    Some(Poll::Pending) => {}
                    None => wake = wake.min(due),
                }
            }
            if owed {
                wake = wake.min(self.timeout_check);
            } else if self.timeout_check <= now {
                self.timeout_check = now + self.spec.timeout;
            }
            let wake = tokio::time::Instant::from_std(wake);
            if sleep.deadline() != wake {
                sleep.as_mut().reset(wake);
            }
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    /// Sends what may be sent. Returns whether a message went out, and the
    /// due time being waited for, if the schedule is what holds it back.
    fn write_side(
        &mut self,
        cx: &mut Context<'_>,
        ws: &mut Ws,
        now: Instant,
    ) -> Result<(bool, Option<Instant>), ConnError> {
        let size = self.spec.size;
        let mut wrote = false;
        loop {
            if self.flush {
                match Pin::new(&mut *ws).poll_flush(cx) {
                    Poll::Ready(Ok(())) => self.flush = false,
                    Poll::Ready(Err(e)) => return Err(ws_error("sending", e, size)),
                    Poll::Pending => return Ok((wrote, None)),
                }
            }
            if self.spec.limit.is_some_and(|limit| self.sent >= limit)
                || self.sent - self.done >= self.spec.depth as u64
            {
                return Ok((wrote, None));
            }
            if let Some(schedule) = self.schedule.as_deref()
                && schedule.due() > now
            {
                return Ok((wrote, Some(schedule.due())));
            }
            match Pin::new(&mut *ws).poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(ws_error("sending", e, size)),
                Poll::Pending => return Ok((wrote, None)),
            }
            let start = match self.schedule.as_deref_mut() {
                Some(schedule) => schedule.take(),
                None => Instant::now(),
            };
            if !self.bufs.ring.is_empty() {
                let slot = (self.sent % self.bufs.ring.len() as u64) as usize;
                self.bufs.ring[slot] = start;
            }
            // Reclaims the buffer once tungstenite has let the last
            // payload go: no allocation per payload. The whole message is
            // built here (the slot's write buffer holds only a chunk).
            self.out.reserve(size);
            self.out.resize(size, 0);
            self.pattern.fill(self.sent * size as u64, &mut self.out);
            let payload = self.out.split().freeze();
            Pin::new(&mut *ws)
                .start_send(Message::Binary(payload))
                .map_err(|e| ws_error("sending", e, size))?;
            self.sent += 1;
            self.flush = true;
            self.last_progress = now;
            wrote = true;
        }
    }

    /// Receives and checks what is owed. Returns whether a message came
    /// in, and whether the message limit is reached.
    fn read_side(&mut self, cx: &mut Context<'_>, ws: &mut Ws) -> Result<(bool, bool), ConnError> {
        let size = self.spec.size;
        let mut read = false;
        while self.done < self.sent {
            let msg = match Pin::new(&mut *ws).poll_next(cx) {
                Poll::Pending => return Ok((read, false)),
                Poll::Ready(None) => return Err(self.closed(None)),
                Poll::Ready(Some(Err(e))) => return Err(ws_error("receiving", e, size)),
                Poll::Ready(Some(Ok(msg))) => msg,
            };
            let now = Instant::now();
            let data = match msg {
                Message::Binary(data) => data,
                Message::Text(_) => {
                    return Err(ConnError {
                        kind: ErrorKind::Mismatch,
                        detail: format!(
                            "echo mismatch at message {}: a text message came back for a binary one",
                            self.done
                        ),
                    });
                }
                Message::Close(frame) => return Err(self.closed(frame.map(|f| f.code.into()))),
                // Pings are answered by tungstenite.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            };
            self.check(&data)?;
            self.last_progress = now;
            read = true;
            self.rec.received(now, size);
            if self.spec.record_messages {
                let ring = self.bufs.ring.len() as u64;
                let start = self.bufs.ring[(self.done % ring) as usize];
                self.rec
                    .completed(now, Some(now.saturating_duration_since(start)));
            }
            self.done += 1;
            if self.spec.limit.is_some_and(|limit| self.done >= limit) {
                return Ok((read, true));
            }
        }
        Ok((read, false))
    }

    /// Checks one echoed message: message `done` of the connection.
    fn check(&self, data: &[u8]) -> Result<(), ConnError> {
        let size = self.spec.size;
        let offset = self.done * size as u64;
        if let Err(m) = self.pattern.check(offset, &data[..data.len().min(size)]) {
            return Err(ConnError {
                kind: ErrorKind::Mismatch,
                detail: format!(
                    "echo mismatch at byte {} of the connection: sent {:#04x}, got {:#04x}",
                    m.offset, m.expected, m.got
                ),
            });
        }
        if data.len() > size {
            return Err(ConnError {
                kind: ErrorKind::Mismatch,
                detail: format!(
                    "echo mismatch at byte {}: message {} came back longer than the {size} bytes sent",
                    offset + size as u64,
                    self.done
                ),
            });
        }
        if data.len() < size {
            return Err(ConnError {
                kind: ErrorKind::ShortEcho,
                detail: format!(
                    "short echo: message {} came back with {} of its {size} bytes",
                    self.done,
                    data.len()
                ),
            });
        }
        Ok(())
    }

    /// The server closed with echoes owed.
    fn closed(&self, code: Option<u16>) -> ConnError {
        let how = match code {
            Some(code) => format!("sent a Close ({code})"),
            None => "closed the connection".to_string(),
        };
        ConnError {
            kind: ErrorKind::ShortEcho,
            detail: format!(
                "short echo: the server {how} after echoing {} of {} messages",
                self.done, self.sent
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio::net::TcpListener;

    /// A WebSocket echo server on loopback that optionally flips byte
    /// `corrupt` of the connection, or answers with text.
    async fn server(corrupt: Option<u64>, text: bool) -> Addr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                        return;
                    };
                    let mut off = 0u64;
                    while let Some(Ok(msg)) = ws.next().await {
                        if !(msg.is_binary()) {
                            continue;
                        }
                        let mut data = msg.into_data().to_vec();
                        if let Some(c) = corrupt
                            && (off..off + data.len() as u64).contains(&c)
                        {
                            data[(c - off) as usize] ^= 1;
                        }
                        off += data.len() as u64;
                        let reply = if text {
                            Message::text("x".repeat(data.len()))
                        } else {
                            Message::binary(data)
                        };
                        if ws.send(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        format!("ws://127.0.0.1:{port}/").parse().unwrap()
    }

    fn spec(size: usize, depth: usize, limit: u64) -> Spec {
        Spec {
            size,
            depth,
            record_messages: true,
            limit: Some(limit),
            timeout: Duration::from_secs(5),
            end: Instant::now() + Duration::from_secs(30),
        }
    }

    async fn exchange(addr: &Addr, spec: &Spec) -> (Result<Finish, ConnError>, Recorder) {
        let connector = probe(addr, Duration::from_secs(5), None, &Source::System, None)
            .await
            .unwrap();
        let mut link = connector.connect(Duration::from_secs(5), 0).await.unwrap();
        let rec = Recorder::counting_from_now();
        let mut bufs = Buffers::new(spec);
        let r = drive(&mut link, Pattern::new(7), spec, &mut bufs, None, &rec).await;
        (r, rec)
    }

    #[tokio::test]
    async fn every_message_comes_back_checked() {
        let addr = server(None, false).await;
        for (size, depth) in [(1, 1), (20, 1), (1000, 8), (70_000, 2)] {
            let spec = spec(size, depth, 30);
            let (r, rec) = exchange(&addr, &spec).await;
            assert_eq!(r.unwrap(), Finish::Limit, "size {size} depth {depth}");
            let t = rec.totals();
            assert_eq!((t.messages, t.hist.len()), (30, 30));
            assert_eq!(t.bytes, 30 * size as u64);
        }
    }

    #[tokio::test]
    async fn a_flipped_byte_is_a_mismatch_at_its_offset() {
        let addr = server(Some(1234), false).await;
        let (r, _) = exchange(&addr, &spec(100, 4, 50)).await;
        let e = r.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Mismatch);
        assert!(e.detail.contains("byte 1234"), "{}", e.detail);
    }

    #[tokio::test]
    async fn text_for_binary_is_a_mismatch() {
        let addr = server(None, true).await;
        let (r, _) = exchange(&addr, &spec(10, 1, 5)).await;
        let e = r.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Mismatch);
        assert!(e.detail.contains("text"), "{}", e.detail);
    }
}
