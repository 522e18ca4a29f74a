//! One connection's traffic: the hot path of the bench.
//!
//! [`drive`] keeps up to `depth` messages in flight on any
//! `AsyncRead + AsyncWrite` stream, writing and reading at once from a
//! single future: it polls the write side and the read side of the same
//! stream in turn, so both wakers are registered and a message larger than
//! the socket buffers cannot deadlock against a server that stops reading
//! until its echo is read. There is no split, no channel and no lock.
//!
//! Every message's start (its send time, or its due time in open loop) goes
//! into a fixed ring of `depth` slots; its latency is taken when its last
//! byte comes back. Bytes are generated into, and checked in, buffers that
//! live as long as the connection's slot (across reconnects): nothing here
//! allocates per message. One `Sleep` per connection serves the rate, the
//! timeout and the end of the run, re-armed only when its target moves.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UdpSocket;

use super::pacer::Pacer;
use super::pattern::Pattern;
use super::report::{ErrorKind, Recorder};
use super::source::Source;
use super::tcp::Tcp;
use super::udp;
use super::ws::{self, WsConnector, WsLink};
use crate::addr::{Addr, Transport};
use crate::proxy::send::ProxySend;
use crate::transport::{self, BoxStream, ConnectError};

/// The largest read the bench asks for: big transfers take few reads.
pub(crate) const READ_CHUNK: usize = 64 * 1024;

/// The most of a message generated at once: a larger message is written
/// in windows of this many bytes, so memory stays bounded whatever `-s`
/// says. It holds any UDP datagram whole.
pub(crate) const WRITE_CHUNK: usize = 64 * 1024;

/// How a connection's exchange ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    /// The run is over.
    Deadline,
    /// The message limit was reached (churn: one message per connection).
    Limit,
}

/// Why a connection's exchange failed.
#[derive(Debug)]
pub(crate) struct ConnError {
    pub kind: ErrorKind,
    pub detail: String,
}

impl ConnError {
    pub(crate) fn io(what: &str, e: &io::Error) -> ConnError {
        let kind = match e.kind() {
            io::ErrorKind::TimedOut => ErrorKind::Timeout,
            io::ErrorKind::UnexpectedEof => ErrorKind::ShortEcho,
            // Over UDP, the ICMP report that nobody listens on the port.
            io::ErrorKind::ConnectionRefused => ErrorKind::Connect,
            _ => ErrorKind::Reset,
        };
        ConnError {
            kind,
            detail: format!("{what}: {e}"),
        }
    }
}

/// What one exchange does; the same for every connection of a run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    /// Bytes per message.
    pub size: usize,
    /// Messages in flight at most (`usize::MAX`: as many as the socket takes).
    pub depth: usize,
    /// Record each message's latency and count it (pingpong); otherwise
    /// only bytes are counted and the caller counts operations.
    pub record_messages: bool,
    /// Stop after this many messages.
    pub limit: Option<u64>,
    /// An owed echo with no traffic for this long is an error.
    pub timeout: Duration,
    /// The end of the run.
    pub end: Instant,
}

/// The buffers of one connection slot, allocated once and reused for
/// every message and every reconnect.
pub(crate) struct Buffers {
    /// The part of the current message being written: all of it, for a
    /// message of up to [`WRITE_CHUNK`] bytes.
    pub write: Vec<u8>,
    pub read: Vec<u8>,
    /// The start time of each message in flight, by message number % depth.
    pub(crate) ring: Vec<Instant>,
}

impl Buffers {
    pub fn new(spec: &Spec) -> Buffers {
        let in_flight = spec.size.saturating_mul(spec.depth);
        let ring = if spec.record_messages { spec.depth } else { 0 };
        Buffers {
            write: vec![0; spec.size.min(WRITE_CHUNK)],
            // Room for more than is ever owed, so that a read that drains
            // the socket comes back short (see `tcp`); and for anything a
            // broken server sends beyond what it was sent.
            read: vec![0; in_flight.saturating_add(4096).min(READ_CHUNK)],
            ring: vec![Instant::now(); ring],
        }
    }
}

/// Open loop: when each message of one connection is due.
pub(crate) struct Schedule {
    base: Instant,
    interval_ns: f64,
    next: u64,
    due: Instant,
    /// Wakes the connection when a message is due; without one (outside
    /// a runtime, or if the system has no timerfd) tokio's timer does,
    /// to the millisecond.
    pacer: Option<Pacer>,
}

impl Schedule {
    /// Messages every `interval`, the first at `base`.
    pub fn new(base: Instant, interval: Duration) -> Schedule {
        Schedule {
            base,
            interval_ns: interval.as_nanos() as f64,
            next: 0,
            due: base,
            pacer: None,
        }
    }

    /// The same schedule, woken to the microsecond (see [`Pacer`]) when
    /// the system allows. Must be called inside a tokio runtime.
    pub fn precise(mut self) -> Schedule {
        self.pacer = Pacer::new().ok();
        self
    }

    /// Waits until the next message is due.
    pub async fn wait(&mut self) {
        let due = self.due;
        match self.pacer.as_mut() {
            Some(pacer) => std::future::poll_fn(|cx| pacer.poll_until(cx, due)).await,
            None => tokio::time::sleep_until(due.into()).await,
        }
    }

    /// When the next message is due.
    pub fn due(&self) -> Instant {
        self.due
    }

    /// Takes the next message's due time and moves on. Computed from the
    /// base each time, so rounding never accumulates into drift.
    pub fn take(&mut self) -> Instant {
        let due = self.due;
        self.next += 1;
        self.due = self.base + Duration::from_nanos((self.next as f64 * self.interval_ns) as u64);
        due
    }

    /// Ready once `due` has passed, woken by the pacer; `None` when there
    /// is no pacer (tokio's timer must wait instead).
    pub(crate) fn poll_pacer(&mut self, cx: &mut Context<'_>, due: Instant) -> Option<Poll<()>> {
        self.pacer.as_mut().map(|pacer| pacer.poll_until(cx, due))
    }
}

/// How the bench reaches the server. The address is resolved once, by the
/// probe, so that churn does not look the name up for every operation
/// (except over TLS, whose certificate check needs the name: there
/// [`transport::connect_with`] resolves it for each connection).
#[derive(Debug, Clone)]
pub(crate) enum Connector {
    /// TCP to the address the probe reached, through the bench's own
    /// [`Tcp`] stream, from each of `sources` in turn (none: the system's
    /// choice), with a PROXY header first when asked.
    Tcp {
        peer: SocketAddr,
        sources: Arc<[IpAddr]>,
        proxy: Option<ProxySend>,
    },
    /// TLS or Unix, through [`transport::connect_with`] (and
    /// [`proxy::send::connect`](crate::proxy::send::connect) for a PROXY
    /// header).
    Stream {
        addr: Addr,
        tls: Option<Arc<rustls::ClientConfig>>,
        proxy: Option<ProxySend>,
    },
    /// UDP: a socket of its own for each slot, connected to the address
    /// that answered the probe, from each of `sources` in turn.
    Udp {
        peer: SocketAddr,
        sources: Arc<[IpAddr]>,
    },
    /// WebSocket (`ws://`, `wss://`): see [`ws`].
    Ws(WsConnector),
}

/// One slot's way to the server: a byte stream, or a connected UDP socket.
pub(crate) enum Link {
    Stream(BoxStream),
    Datagram(UdpSocket),
    Ws(Box<WsLink>),
}

impl Connector {
    /// Connects once to find (and prove) a working address. The TCP
    /// connection it made is returned too, to be the run's first, so that
    /// a server that serves one connection at a time can be measured.
    /// Over UDP, proving means a datagram that comes back.
    pub async fn probe(
        addr: &Addr,
        timeout: Duration,
        tls: Option<&Arc<rustls::ClientConfig>>,
        source: &Source,
        proxy: Option<&ProxySend>,
    ) -> Result<(Connector, Option<std::net::TcpStream>), ConnectError> {
        match addr.transport() {
            Transport::Tcp => {
                let mut stream = transport::tcp::connect(addr, timeout).await?;
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
                // Leaves this runtime's reactor, to join a worker's.
                let stream = stream.into_std().map_err(err)?;
                let sources = source.addrs_for(peer, Transport::Tcp).into();
                let proxy = proxy.cloned();
                Ok((
                    Connector::Tcp {
                        peer,
                        sources,
                        proxy,
                    },
                    Some(stream),
                ))
            }
            Transport::Udp => {
                let peer = udp::probe(addr, timeout).await?;
                let sources = source.addrs_for(peer, Transport::Udp).into();
                Ok((Connector::Udp { peer, sources }, None))
            }
            Transport::Tls | Transport::Unix => {
                crate::proxy::send::connect(addr, timeout, tls, proxy).await?;
                let (tls, proxy) = (tls.cloned(), proxy.cloned());
                Ok((
                    Connector::Stream {
                        addr: addr.clone(),
                        tls,
                        proxy,
                    },
                    None,
                ))
            }
            Transport::Ws | Transport::Wss => Ok((
                Connector::Ws(ws::probe(addr, timeout, tls, source, proxy).await?),
                None,
            )),
            web @ (Transport::Http | Transport::Https) => Err(ConnectError::Unsupported(web)),
        }
    }

    /// How many source addresses connections spread over (1: the
    /// system's choice).
    pub fn sources(&self) -> usize {
        match self {
            Connector::Tcp { sources, .. } | Connector::Udp { sources, .. } => sources.len().max(1),
            Connector::Stream { .. } => 1,
            Connector::Ws(ws) => ws.sources(),
        }
    }

    /// A new connection (over UDP, a new connected socket), within
    /// `timeout`; `seq` (any number that differs from one connection to
    /// the next) picks its source address.
    pub async fn connect(&self, timeout: Duration, seq: u64) -> Result<Link, ConnError> {
        let err = |detail: String| ConnError {
            kind: ErrorKind::Connect,
            detail,
        };
        let pick = |sources: &[IpAddr]| {
            (!sources.is_empty()).then(|| sources[(seq % sources.len() as u64) as usize])
        };
        match self {
            Connector::Tcp {
                peer,
                sources,
                proxy,
            } => {
                let from = pick(sources);
                let mut stream = tokio::time::timeout(timeout, Tcp::connect_from(*peer, from))
                    .await
                    .map_err(|_| err(format!("connecting to {peer}: timed out")))?
                    .map_err(|e| match from {
                        Some(ip) => err(format!("connecting to {peer} from {ip}: {e}")),
                        None => err(format!("connecting to {peer}: {e}")),
                    })?;
                if let Some(p) = proxy {
                    let local = stream.local_addr();
                    p.write_to(&mut stream, local, Some(*peer))
                        .await
                        .map_err(|e| err(format!("sending the PROXY header to {peer}: {e}")))?;
                }
                Ok(Link::Stream(Box::new(stream)))
            }
            Connector::Stream { addr, tls, proxy } => {
                crate::proxy::send::connect(addr, timeout, tls.as_ref(), proxy.as_ref())
                    .await
                    .map(Link::Stream)
                    .map_err(|e| err(e.to_string()))
            }
            Connector::Udp { peer, sources } => udp::socket(*peer, pick(sources))
                .map(Link::Datagram)
                .map_err(|e| err(format!("opening a UDP socket to {peer}: {e}"))),
            Connector::Ws(ws) => ws
                .connect(timeout, seq)
                .await
                .map(|l| Link::Ws(Box::new(l))),
        }
    }
}

/// Exchanges messages over `stream` until the run ends, the limit is
/// reached, or something goes wrong. `pattern` is the connection's stream
/// of bytes; `schedule`, when given, says when each message is due.
pub(crate) async fn drive<S>(
    stream: &mut S,
    pattern: Pattern,
    spec: &Spec,
    bufs: &mut Buffers,
    schedule: Option<&mut Schedule>,
    rec: &Recorder,
) -> Result<Finish, ConnError>
where
    S: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let sleep = tokio::time::sleep_until(spec.end.into());
    tokio::pin!(sleep);
    let mut ex = Exchange {
        pattern,
        spec,
        bufs,
        schedule,
        rec,
        sent: 0,
        done: 0,
        left: 0,
        woff: 0,
        roff: 0,
        wat: 0,
        wlen: 0,
        flush: false,
        last_progress: Instant::now(),
        timeout_check: Instant::now() + spec.timeout,
    };
    std::future::poll_fn(|cx| ex.poll(cx, &mut *stream, sleep.as_mut())).await
}

/// The state of one exchange; see [`drive`].
struct Exchange<'a> {
    pattern: Pattern,
    spec: &'a Spec,
    bufs: &'a mut Buffers,
    schedule: Option<&'a mut Schedule>,
    rec: &'a Recorder,
    /// Messages whose writing has begun.
    sent: u64,
    /// Messages fully echoed.
    done: u64,
    /// Bytes of the current message still to write; 0 when none is begun.
    left: usize,
    /// Bytes written.
    woff: u64,
    /// Bytes read back (and checked).
    roff: u64,
    /// The bytes of `bufs.write` written so far, and those generated.
    wat: usize,
    wlen: usize,
    /// A message was written and not yet flushed.
    flush: bool,
    /// The last time a byte moved either way.
    last_progress: Instant,
    /// When to look at `last_progress` again for the timeout.
    timeout_check: Instant,
}

impl Exchange<'_> {
    fn poll<S>(
        &mut self,
        cx: &mut Context<'_>,
        stream: &mut S,
        mut sleep: Pin<&mut tokio::time::Sleep>,
    ) -> Poll<Result<Finish, ConnError>>
    where
        S: AsyncRead + AsyncWrite + Unpin + ?Sized,
    {
        loop {
            let now = Instant::now();
            if now >= self.spec.end {
                return Poll::Ready(Ok(Finish::Deadline));
            }
            let (wrote, due) = self.write_side(cx, stream, now)?;
            let (read, finished) = self.read_side(cx, stream)?;
            if finished {
                return Poll::Ready(Ok(Finish::Limit));
            }
            if wrote || read {
                continue;
            }
            // Both sides wait: on the socket, on the pipeline, or on the
            // schedule. Arm the one timer for the earliest thing to look at.
            let owed = self.woff > self.roff || self.left > 0;
            if owed && now >= self.timeout_check {
                let quiet = now.saturating_duration_since(self.last_progress);
                if quiet >= self.spec.timeout {
                    return Poll::Ready(Err(ConnError {
                        kind: ErrorKind::Timeout,
                        detail: format!(
                            "nothing moved for {:?} with {} bytes of echo owed ({} sent, {} received)",
                            self.spec.timeout,
                            self.woff - self.roff,
                            self.woff,
                            self.roff
                        ),
                    }));
                }
                self.timeout_check = self.last_progress + self.spec.timeout;
            }
            let mut wake = self.spec.end;
            if let (Some(due), Some(schedule)) = (due, self.schedule.as_deref_mut()) {
                match schedule.pacer.as_mut() {
                    Some(pacer) => {
                        if pacer.poll_until(cx, due).is_ready() {
                            continue;
                        }
                    }
                    None => wake = wake.min(due),
                }
            }
            if owed {
                wake = wake.min(self.timeout_check);
            } else if self.timeout_check <= now {
                // Nothing owed: the next wait for an echo starts the clock.
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

    /// Writes what may be written. Returns whether any byte went out, and
    /// the due time being waited for, if the schedule is what holds it back.
    fn write_side<S>(
        &mut self,
        cx: &mut Context<'_>,
        stream: &mut S,
        now: Instant,
    ) -> Result<(bool, Option<Instant>), ConnError>
    where
        S: AsyncRead + AsyncWrite + Unpin + ?Sized,
    {
        let size = self.spec.size;
        let mut wrote = false;
        loop {
            if self.left == 0 {
                if self.flush {
                    // Buffering transports (TLS) send only on flush; for TCP
                    // this returns at once.
                    match Pin::new(&mut *stream).poll_flush(cx) {
                        Poll::Ready(Ok(())) => self.flush = false,
                        Poll::Ready(Err(e)) => return Err(ConnError::io("sending", &e)),
                        Poll::Pending => return Ok((wrote, None)),
                    }
                }
                if self.spec.limit.is_some_and(|limit| self.sent >= limit) {
                    return Ok((wrote, None));
                }
                if self.sent - self.done >= self.spec.depth as u64 {
                    return Ok((wrote, None));
                }
                let start = match self.schedule.as_deref_mut() {
                    Some(schedule) if schedule.due() > now => {
                        return Ok((wrote, Some(schedule.due())));
                    }
                    Some(schedule) => schedule.take(),
                    // Not `now`: a write may have happened since it was taken.
                    None => Instant::now(),
                };
                if !self.bufs.ring.is_empty() {
                    let slot = (self.sent % self.bufs.ring.len() as u64) as usize;
                    self.bufs.ring[slot] = start;
                }
                self.left = size;
                self.sent += 1;
                self.refill();
            } else if self.wat == self.wlen {
                self.refill();
            }
            match Pin::new(&mut *stream).poll_write(cx, &self.bufs.write[self.wat..self.wlen]) {
                Poll::Ready(Ok(0)) => {
                    return Err(ConnError {
                        kind: ErrorKind::Reset,
                        detail: "sending: the connection took no more bytes".into(),
                    });
                }
                Poll::Ready(Ok(n)) => {
                    let n = n.min(self.wlen - self.wat);
                    self.wat += n;
                    self.left -= n;
                    self.woff += n as u64;
                    self.flush = self.left == 0;
                    self.last_progress = now;
                    wrote = true;
                }
                Poll::Ready(Err(e)) => return Err(ConnError::io("sending", &e)),
                Poll::Pending => return Ok((wrote, None)),
            }
        }
    }

    /// Generates the next window of the current message, from `woff` on.
    fn refill(&mut self) {
        self.wlen = self.left.min(self.bufs.write.len());
        self.wat = 0;
        self.pattern
            .fill(self.woff, &mut self.bufs.write[..self.wlen]);
    }

    /// Reads and checks what is owed. Returns whether any byte came in, and
    /// whether the message limit is reached.
    fn read_side<S>(
        &mut self,
        cx: &mut Context<'_>,
        stream: &mut S,
    ) -> Result<(bool, bool), ConnError>
    where
        S: AsyncRead + AsyncWrite + Unpin + ?Sized,
    {
        let size = self.spec.size as u64;
        let mut read = false;
        loop {
            let owed = self.woff - self.roff;
            if owed == 0 {
                return Ok((read, false));
            }
            let mut buf = ReadBuf::new(&mut self.bufs.read);
            match Pin::new(&mut *stream).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(ConnError::io("receiving", &e)),
                Poll::Pending => return Ok((read, false)),
            }
            let got = buf.filled();
            let now = Instant::now();
            if got.is_empty() {
                return Err(ConnError {
                    kind: ErrorKind::ShortEcho,
                    detail: format!(
                        "short echo: the server closed after echoing {} of {} bytes sent",
                        self.roff, self.woff
                    ),
                });
            }
            let echo = usize::try_from(owed).map_or(got, |owed| &got[..got.len().min(owed)]);
            if let Err(m) = self.pattern.check(self.roff, echo) {
                return Err(ConnError {
                    kind: ErrorKind::Mismatch,
                    detail: format!(
                        "echo mismatch at byte {} of the connection: sent {:#04x}, got {:#04x}",
                        m.offset, m.expected, m.got
                    ),
                });
            }
            if echo.len() < got.len() {
                return Err(ConnError {
                    kind: ErrorKind::Mismatch,
                    detail: format!(
                        "echo mismatch at byte {}: the server sent more than it was sent",
                        self.woff
                    ),
                });
            }
            let n = got.len();
            self.roff += n as u64;
            self.last_progress = now;
            read = true;
            self.rec.received(now, n);
            let done = self.roff / size;
            if self.spec.record_messages {
                let ring = self.bufs.ring.len() as u64;
                while self.done < done {
                    let start = self.bufs.ring[(self.done % ring) as usize];
                    self.rec
                        .completed(now, Some(now.saturating_duration_since(start)));
                    self.done += 1;
                }
            } else {
                self.done = done;
            }
            if self.spec.limit.is_some_and(|limit| self.done >= limit) {
                return Ok((read, true));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on the other end of an in-memory pipe, optionally
    /// flipping the byte at `corrupt` or closing after `close_after` bytes.
    fn echo_pipe(corrupt: Option<u64>, close_after: Option<u64>) -> tokio::io::DuplexStream {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut buf = vec![0u8; 4096];
            let mut off = 0u64;
            loop {
                let n = match server.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let mut n = n;
                if let Some(limit) = close_after
                    && off + n as u64 >= limit
                {
                    n = (limit - off) as usize;
                    let _ = server.write_all(&buf[..n]).await;
                    return;
                }
                if let Some(c) = corrupt
                    && (off..off + n as u64).contains(&c)
                {
                    buf[(c - off) as usize] ^= 0x20;
                }
                off += n as u64;
                if server.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        });
        client
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

    #[tokio::test]
    async fn pingpong_and_pipelined_messages_all_come_back() {
        for (size, depth) in [(1, 1), (64, 1), (1000, 8), (100_000, 1), (70_000, 3)] {
            let rec = Recorder::counting_from_now();
            let spec = spec(size, depth, 50);
            let mut bufs = Buffers::new(&spec);
            let mut s = echo_pipe(None, None);
            let r = drive(&mut s, Pattern::new(1), &spec, &mut bufs, None, &rec).await;
            assert_eq!(r.unwrap(), Finish::Limit, "size {size} depth {depth}");
            let t = rec.totals();
            assert_eq!(t.messages, 50);
            assert_eq!(t.hist.len(), 50);
            assert_eq!(t.bytes, 50 * size as u64);
        }
    }

    #[tokio::test]
    async fn a_flipped_byte_is_a_mismatch_at_its_offset() {
        let rec = Recorder::counting_from_now();
        let spec = spec(100, 4, 50);
        let mut bufs = Buffers::new(&spec);
        let mut s = echo_pipe(Some(1234), None);
        let err = drive(&mut s, Pattern::new(1), &spec, &mut bufs, None, &rec)
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Mismatch);
        assert!(err.detail.contains("byte 1234"), "{}", err.detail);
    }

    #[tokio::test]
    async fn an_early_close_is_a_short_echo() {
        let rec = Recorder::counting_from_now();
        let spec = spec(100, 1, 50);
        let mut bufs = Buffers::new(&spec);
        let mut s = echo_pipe(None, Some(250));
        let err = drive(&mut s, Pattern::new(1), &spec, &mut bufs, None, &rec)
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::ShortEcho);
        assert!(err.detail.contains("250 of 300"), "{}", err.detail);
    }

    #[tokio::test]
    async fn more_back_than_was_sent_is_a_mismatch() {
        let rec = Recorder::counting_from_now();
        let spec = spec(10, 1, 50);
        let mut bufs = Buffers::new(&spec);
        let (mut client, mut server) = tokio::io::duplex(1024);
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut buf = [0u8; 10];
            // Echo the first message twice.
            if server.read_exact(&mut buf).await.is_ok() {
                let _ = server.write_all(&buf).await;
                let _ = server.write_all(&buf).await;
            }
            // Keep the connection open, reading whatever else comes.
            while matches!(server.read(&mut buf).await, Ok(n) if n > 0) {}
        });
        let err = drive(&mut client, Pattern::new(1), &spec, &mut bufs, None, &rec)
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Mismatch, "{}", err.detail);
    }

    #[tokio::test]
    async fn silence_is_a_timeout() {
        let rec = Recorder::counting_from_now();
        let mut spec = spec(10, 1, 5);
        spec.timeout = Duration::from_millis(50);
        let mut bufs = Buffers::new(&spec);
        // The server end is kept but never read: nothing comes back.
        let (mut client, _server) = tokio::io::duplex(1024);
        let err = drive(&mut client, Pattern::new(1), &spec, &mut bufs, None, &rec)
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Timeout);
    }

    #[tokio::test]
    async fn the_deadline_ends_an_exchange() {
        let rec = Recorder::counting_from_now();
        let mut spec = spec(10, 1, u64::MAX);
        spec.limit = None;
        spec.end = Instant::now() + Duration::from_millis(100);
        let mut bufs = Buffers::new(&spec);
        let mut s = echo_pipe(None, None);
        let r = drive(&mut s, Pattern::new(1), &spec, &mut bufs, None, &rec).await;
        assert_eq!(r.unwrap(), Finish::Deadline);
        assert!(rec.totals().messages > 0);
    }

    #[tokio::test]
    async fn open_loop_latency_counts_from_when_each_message_was_due() {
        // Due times in the past: every message is late by at least 100 ms,
        // and that lateness is in its latency, not hidden.
        let rec = Recorder::counting_from_now();
        let spec = spec(10, 1, 20);
        let mut bufs = Buffers::new(&spec);
        let mut schedule = Schedule::new(
            Instant::now() - Duration::from_millis(200),
            Duration::from_millis(1),
        );
        let mut s = echo_pipe(None, None);
        let r = drive(
            &mut s,
            Pattern::new(1),
            &spec,
            &mut bufs,
            Some(&mut schedule),
            &rec,
        )
        .await;
        assert_eq!(r.unwrap(), Finish::Limit);
        let t = rec.totals();
        assert_eq!(t.hist.len(), 20);
        assert!(t.hist.min() >= 100_000_000, "min {} ns", t.hist.min());
    }

    #[test]
    fn messages_do_not_allocate() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // Allocations of one exchange of `messages` messages, buffers and
        // the echo task aside.
        let count = |size: usize, depth: usize, messages: u64| {
            rt.block_on(async {
                let rec = Recorder::counting_from_now();
                let spec = spec(size, depth, messages);
                let mut bufs = Buffers::new(&spec);
                let mut s = echo_pipe(None, None);
                tokio::task::yield_now().await;
                let before = crate::bench::counting::allocations();
                let r = drive(&mut s, Pattern::new(1), &spec, &mut bufs, None, &rec).await;
                let after = crate::bench::counting::allocations();
                assert_eq!(r.unwrap(), Finish::Limit);
                after - before
            })
        };
        for (size, depth) in [(64, 1), (1000, 8), (20_000, 2)] {
            let few = count(size, depth, 100);
            let many = count(size, depth, 2100);
            assert!(
                many <= few + 4,
                "size {size} depth {depth}: {few} allocations for 100 messages, {many} for 2100"
            );
        }
    }

    #[test]
    fn schedules_do_not_drift() {
        let base = Instant::now();
        let mut s = Schedule::new(base, Duration::from_nanos(333));
        for _ in 0..3000 {
            s.take();
        }
        assert_eq!(s.due() - base, Duration::from_nanos(999_000));
    }
}
