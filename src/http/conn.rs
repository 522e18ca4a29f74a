//! One HTTP connection, from the server's hand-over to its close, in one
//! task: hyper serves the requests (HTTP/1.1 or HTTP/2, whichever the
//! client speaks first), and the WebSockets it upgrades run beside it in
//! the same task, so the connection's slot, registry entry and `closing`
//! line last exactly as long as its last byte.
//!
//! The driver also does what hyper leaves to its caller:
//!
//! - **Graceful shutdown**: when the server begins to shut down, hyper
//!   finishes the requests in flight and closes idle keep-alive
//!   connections (HTTP/2: GOAWAY). WebSockets go on, like TCP echoes,
//!   until their peers close or the server's shutdown timeout.
//! - **408**: hyper ends a connection whose request head is too slow
//!   (`--http-header-timeout`) without a word; the driver gets the stream
//!   back and answers `408 Request Timeout`, unless the connection was
//!   merely idle between requests, which just closes.
//! - **A silent peer** (nothing sent at all) is closed after the header
//!   timeout too.
//! - **`--idle-timeout`**: nothing moved either way for that long.
//! - Errors: hyper has answered 400 or 431 itself; they are counted here.

use std::error::Error as StdError;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, mpsc, oneshot};
use tracing::debug;

use crate::addr::Transport;
use crate::echo::Ending;
use crate::metrics::{ErrorKind, Metrics};
use crate::transport::PeerName;
use crate::units::format_duration;

use super::facts::ConnFacts;
use super::io::{ConnIo, IoState};
use super::service::{Ctx, Handler, Session};
use super::{HttpServer, websocket};

/// What happened next on the connection.
enum Event {
    Served(Result<(), Box<dyn StdError + Send + Sync>>),
    Upgrade(Option<Session>),
    SessionEnded,
    Shutdown,
    CloseAsked,
    Idle,
    Silent,
    Stalled,
    Aged,
}

impl HttpServer {
    /// Serves one accepted connection (a TCP stream, or a TLS stream after
    /// its handshake) until it closes. `facts` are what the reflection
    /// shows of it, `peer` its name in the logs, `shard` the shard serving
    /// it, `idle` the server's `--idle-timeout`. What ended it is returned
    /// as the TCP echo's is: `Ending::Idle` for the idle timeout, an error
    /// for an I/O failure; HTTP's own errors are answered and counted here.
    ///
    /// Longer than 80 lines on purpose: it is one `select!` over the nine
    /// things a connection waits for, and each arm's few lines read best
    /// beside the loop state they change (split up, that state would be
    /// passed around as a bag of `&mut`).
    pub async fn serve_connection<T>(
        self: &Arc<Self>,
        io: T,
        facts: ConnFacts,
        peer: PeerName,
        shard: usize,
        idle: Option<Duration>,
    ) -> io::Result<Ending>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let state = Arc::new(IoState::new(idle.is_some()));
        let (back_tx, mut back_rx) = oneshot::channel();
        let io = ConnIo::new(io, state.clone(), self.metrics.clone(), Some(back_tx));
        let (sessions_tx, mut sessions_rx) = mpsc::unbounded_channel();
        let close = Arc::new(Notify::new());
        let ctx = Arc::new(Ctx {
            server: self.clone(),
            facts,
            peer,
            shard,
            sessions: sessions_tx,
            close: close.clone(),
            io: state.clone(),
            websockets: Arc::default(),
        });
        let mut conn = Some(Box::pin(
            self.builder
                .serve_connection_with_upgrades(TokioIo::new(io), Handler(ctx)),
        ));
        let mut sessions: FuturesUnordered<BoxFuture<'static, ()>> = FuturesUnordered::new();
        let mut upgrades_open = true;
        let mut shutting_down = false;
        let header_timeout = self.config.header_timeout;
        let silent =
            tokio::time::sleep(header_timeout.unwrap_or(Duration::from_secs(86_400 * 365)));
        tokio::pin!(silent);
        let mut silent_armed = header_timeout.is_some();
        let max_age = self.config.max_age;
        let aged = tokio::time::sleep(max_age.unwrap_or(Duration::from_secs(86_400 * 365)));
        tokio::pin!(aged);
        let mut age_armed = max_age.is_some();
        let mut outcome = Ok(Ending::Eof);
        while conn.is_some() || upgrades_open || !sessions.is_empty() {
            let serving = conn.is_some();
            let event = tokio::select! {
                r = async {
                    match conn.as_mut() {
                        Some(c) => c.as_mut().await,
                        None => std::future::pending().await,
                    }
                }, if serving => Event::Served(r),
                s = sessions_rx.recv(), if upgrades_open => Event::Upgrade(s),
                Some(()) = sessions.next(), if !sessions.is_empty() => Event::SessionEnded,
                () = self.shutdown.wait_shutdown(), if serving && !shutting_down => Event::Shutdown,
                () = close.notified(), if serving => Event::CloseAsked,
                () = idle_expired(&state, idle) => Event::Idle,
                () = &mut silent, if silent_armed => Event::Silent,
                () = h2_stalled(&state, header_timeout), if serving && sessions.is_empty() => Event::Stalled,
                () = &mut aged, if serving && age_armed => Event::Aged,
            };
            match event {
                Event::Served(r) => {
                    // Dropping hyper's side gives the stream back (unless
                    // it became a WebSocket) and the service's sender.
                    conn = None;
                    outcome = self.served(r, &state, &mut back_rx, peer).await;
                }
                Event::Upgrade(Some(session)) => {
                    sessions.push(Box::pin(self.clone().run_session::<T>(session, peer)));
                }
                Event::Upgrade(None) => upgrades_open = false,
                Event::SessionEnded => {}
                Event::Shutdown => {
                    shutting_down = true;
                    if let Some(c) = conn.as_mut() {
                        c.as_mut().graceful_shutdown();
                    }
                }
                Event::CloseAsked => {
                    if let Some(c) = conn.as_mut() {
                        c.as_mut().graceful_shutdown();
                    }
                }
                Event::Aged => {
                    age_armed = false;
                    debug!(
                        name = %peer,
                        "--http-max-age of {} reached: closing gracefully",
                        format_duration(max_age.unwrap_or_default())
                    );
                    if let Some(c) = conn.as_mut() {
                        c.as_mut().graceful_shutdown();
                    }
                }
                Event::Idle => return Ok(Ending::Idle),
                // Bytes came since the timer was armed: hyper's own
                // header timeout watches the request from here.
                Event::Silent if state.read_any() => silent_armed = false,
                Event::Silent => {
                    debug!(
                        name = %peer,
                        "nothing sent within {}",
                        format_duration(header_timeout.unwrap_or_default())
                    );
                    return Ok(Ending::Eof);
                }
                Event::Stalled => {
                    self.metrics
                        .error(Transport::Http, ErrorKind::RequestTimeout);
                    debug!(
                        name = %peer,
                        "HTTP/2: no request within {}: closing",
                        format_duration(header_timeout.unwrap_or_default())
                    );
                    return Ok(Ending::Eof);
                }
            }
        }
        outcome
    }

    /// Counts how hyper's side ended, and answers 408 to a request head
    /// that took too long.
    async fn served<T>(
        &self,
        result: Result<(), Box<dyn StdError + Send + Sync>>,
        state: &IoState,
        back: &mut oneshot::Receiver<T>,
        peer: PeerName,
    ) -> io::Result<Ending>
    where
        T: AsyncWrite + Unpin,
    {
        let Err(e) = result else {
            return Ok(Ending::Eof);
        };
        let metrics = &self.metrics;
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_parse_too_large() {
                metrics.error(Transport::Http, ErrorKind::HeadersTooLarge);
            } else if h.is_parse() {
                metrics.error(Transport::Http, ErrorKind::BadRequest);
            } else if h.is_timeout() {
                if state.read_since_write() {
                    metrics.error(Transport::Http, ErrorKind::RequestTimeout);
                    if let Ok(io) = back.try_recv() {
                        self.answer_408(io, metrics).await;
                    }
                } else {
                    debug!(name = %peer, "idle between requests: closing");
                }
                return Ok(Ending::Eof);
            } else if let Some(io) = io_source(h) {
                return Err(io::Error::new(io.kind(), io.to_string()));
            }
            debug!(name = %peer, "http: {h}");
            return Ok(Ending::Eof);
        }
        match e.downcast_ref::<io::Error>() {
            // The wait for the first bytes, cancelled by a graceful shutdown.
            Some(io) if io.kind() == io::ErrorKind::Interrupted => Ok(Ending::Eof),
            Some(io) => Err(io::Error::new(io.kind(), io.to_string())),
            None => {
                debug!(name = %peer, "http: {e}");
                Ok(Ending::Eof)
            }
        }
    }

    /// Writes `408 Request Timeout` and closes, within a second.
    async fn answer_408<T: AsyncWrite + Unpin>(&self, mut io: T, metrics: &Metrics) {
        let why = format!(
            "echoes: the request head did not arrive within {}\n",
            format_duration(self.config.header_timeout.unwrap_or_default())
        );
        let name = if self
            .config
            .name
            .bytes()
            .all(|b| b.is_ascii_graphic() || b == b' ')
        {
            self.config.name.as_str()
        } else {
            "echoes"
        };
        let response = format!(
            "HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n\
             content-length: {}\r\nconnection: close\r\nx-echo-server: {name}\r\n\r\n{why}",
            why.len()
        );
        let write = async {
            io.write_all(response.as_bytes()).await?;
            io.shutdown().await
        };
        if let Ok(Ok(())) = tokio::time::timeout(Duration::from_secs(1), write).await {
            metrics.sent(Transport::Http, response.len());
        }
    }

    /// Runs one WebSocket, counted under `ws` while it is open.
    async fn run_session<T>(self: Arc<Self>, session: Session, peer: PeerName)
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let upgraded = match session.upgrade.await {
            Ok(u) => u,
            Err(e) => {
                debug!(name = %peer, "websocket upgrade failed: {e}");
                return;
            }
        };
        let metrics = &self.metrics;
        metrics.opened(Transport::Ws);
        let _open = WsOpen(metrics);
        let config = websocket::session_config(&self.config);
        type Plain<T> = TokioIo<ConnIo<T>>;
        let result = match hyper_util::server::conn::auto::upgrade::downcast::<Plain<T>>(upgraded) {
            // HTTP/1.1: the connection's own stream, unwrapped.
            Ok(parts) => {
                let io = parts.io.into_inner().into_websocket();
                websocket::echo(io, parts.read_buf.to_vec(), config, peer, metrics).await
            }
            // HTTP/2: one stream of the connection.
            Err(upgraded) => {
                websocket::echo(TokioIo::new(upgraded), Vec::new(), config, peer, metrics).await
            }
        };
        if let Err(e) = result {
            metrics.error(Transport::Ws, ErrorKind::Io);
            debug!(name = %peer, "websocket error: {e}");
        }
    }
}

/// A WebSocket's place in the `ws` gauge.
struct WsOpen<'a>(&'a Metrics);

impl Drop for WsOpen<'_> {
    fn drop(&mut self) {
        self.0.closed(Transport::Ws);
    }
}

/// The I/O error under a hyper error, if that is what it is.
fn io_source(e: &hyper::Error) -> Option<&io::Error> {
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            return Some(io);
        }
        source = s.source();
    }
    None
}

/// Resolves once an HTTP/2 connection has had no request under way for
/// `timeout` (`--http-header-timeout`): a peer that sent only its preface
/// and SETTINGS, or a HEADERS frame it never finished, or that keeps the
/// connection open with pings alone. HTTP/1.1 needs none of this: hyper's
/// header timeout covers it (and answers 408). Looked at once a `timeout`,
/// so such a connection ends within one to two of them.
async fn h2_stalled(state: &IoState, timeout: Option<Duration>) {
    let Some(timeout) = timeout else {
        return std::future::pending().await;
    };
    loop {
        let deadline = match state.quiet_since() {
            Some(since) if state.is_h2() => since + timeout,
            _ => Instant::now() + timeout,
        };
        if Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep_until(deadline.into()).await;
    }
}

/// Resolves once nothing has moved for `timeout` (never without one).
async fn idle_expired(state: &IoState, timeout: Option<Duration>) {
    let Some(timeout) = timeout else {
        return std::future::pending().await;
    };
    loop {
        let deadline = state.last_traffic() + timeout;
        if Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep_until(deadline.into()).await;
    }
}
