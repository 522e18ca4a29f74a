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

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::BytesMut;
use futures_util::{Sink, Stream};
use tokio_tungstenite::tungstenite::Message;

use super::exchange::{
    ExchangeEnd, ExchangePlan, ExchangeSides, ExchangeTimer, Failure, SlotBuffers, poll_exchange,
};
use super::pattern::Pattern;
use super::record::{FailureKind, Recorder};
use super::schedule::Schedule;
use super::ws_connect::{WsConnection, WsStream, ws_error};

/// Exchanges messages over `conn` until the run ends, the limit is
/// reached (then closes with the closing handshake), or something goes
/// wrong; see the module's documentation.
pub(crate) async fn drive(
    conn: &mut WsConnection,
    pattern: Pattern,
    plan: &ExchangePlan,
    bufs: &mut SlotBuffers,
    schedule: Option<&mut Schedule>,
    rec: &Recorder,
) -> Result<ExchangeEnd, Failure> {
    let ws = conn.websocket(plan).await?;
    let sleep = tokio::time::sleep_until(plan.end.into());
    tokio::pin!(sleep);
    let mut ex = WsExchange {
        pattern,
        plan,
        bufs,
        schedule,
        rec,
        out: BytesMut::with_capacity(plan.size),
        sent: 0,
        done: 0,
        flush: false,
        timer: ExchangeTimer::new(plan),
    };
    let end = std::future::poll_fn(|cx| poll_exchange(&mut ex, cx, ws, sleep.as_mut())).await?;
    conn.close(end, plan.timeout).await?;
    Ok(end)
}

/// The state of one exchange over a WebSocket; see [`drive`].
struct WsExchange<'a> {
    pattern: Pattern,
    plan: &'a ExchangePlan,
    bufs: &'a mut SlotBuffers,
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
    /// The one timer, and the watch on owed echoes.
    timer: ExchangeTimer,
}

impl ExchangeSides<WsStream> for WsExchange<'_> {
    fn plan(&self) -> &ExchangePlan {
        self.plan
    }

    fn owed(&self) -> bool {
        self.sent > self.done || self.flush
    }

    fn timed_out(&self) -> Failure {
        Failure::new(
            FailureKind::Timeout,
            format!(
                "nothing moved for {:?} with {} message(s) of echo owed ({} sent, {} received)",
                self.plan.timeout,
                self.sent - self.done,
                self.sent,
                self.done
            ),
        )
    }

    fn timer(&mut self) -> (&mut ExchangeTimer, Option<&mut Schedule>) {
        (&mut self.timer, self.schedule.as_deref_mut())
    }

    /// Sends what may be sent. Returns whether a message went out, and the
    /// due time being waited for, if the schedule is what holds it back.
    fn write_side(
        &mut self,
        cx: &mut Context<'_>,
        ws: &mut WsStream,
        now: Instant,
    ) -> Result<(bool, Option<Instant>), Failure> {
        let size = self.plan.size;
        let mut wrote = false;
        loop {
            if self.flush {
                match Pin::new(&mut *ws).poll_flush(cx) {
                    Poll::Ready(Ok(())) => self.flush = false,
                    Poll::Ready(Err(e)) => return Err(ws_error("sending", e, size)),
                    Poll::Pending => return Ok((wrote, None)),
                }
            }
            let owed = (self.sent - self.done) as usize;
            if let Some(due) = self
                .plan
                .held_back(self.sent, owed, self.schedule.as_deref(), now)
            {
                return Ok((wrote, due));
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
            self.bufs.set_start(self.sent, start);
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
            self.timer.progressed(now);
            wrote = true;
        }
    }

    /// Receives and checks what is owed. Returns whether a message came
    /// in, and whether the message limit is reached.
    fn read_side(
        &mut self,
        cx: &mut Context<'_>,
        ws: &mut WsStream,
    ) -> Result<(bool, bool), Failure> {
        let size = self.plan.size;
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
                    return Err(Failure::new(
                        FailureKind::Mismatch,
                        format!(
                            "echo mismatch at message {}: a text message came back for a binary one",
                            self.done
                        ),
                    ));
                }
                Message::Close(frame) => return Err(self.closed(frame.map(|f| f.code.into()))),
                // Pings are answered by tungstenite.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            };
            self.check(&data)?;
            self.timer.progressed(now);
            read = true;
            self.rec.received(now, size);
            if self.plan.record_messages {
                let start = self.bufs.start_of(self.done);
                self.rec
                    .completed(now, Some(now.saturating_duration_since(start)));
            }
            self.done += 1;
            if self.plan.limit.is_some_and(|limit| self.done >= limit) {
                return Ok((read, true));
            }
        }
        Ok((read, false))
    }
}

impl WsExchange<'_> {
    /// Checks one echoed message: message `done` of the connection.
    fn check(&self, data: &[u8]) -> Result<(), Failure> {
        let size = self.plan.size;
        let offset = self.done * size as u64;
        if let Err(m) = self.pattern.check(offset, &data[..data.len().min(size)]) {
            return Err(Failure::new(
                FailureKind::Mismatch,
                format!(
                    "echo mismatch at byte {} of the connection: sent {:#04x}, got {:#04x}",
                    m.offset, m.expected, m.got
                ),
            ));
        }
        if data.len() > size {
            return Err(Failure::new(
                FailureKind::Mismatch,
                format!(
                    "echo mismatch at byte {}: message {} came back longer than the {size} bytes sent",
                    offset + size as u64,
                    self.done
                ),
            ));
        }
        if data.len() < size {
            return Err(Failure::new(
                FailureKind::ShortEcho,
                format!(
                    "short echo: message {} came back with {} of its {size} bytes",
                    self.done,
                    data.len()
                ),
            ));
        }
        Ok(())
    }

    /// The server closed with echoes owed.
    fn closed(&self, code: Option<u16>) -> Failure {
        let how = match code {
            Some(code) => format!("sent a Close ({code})"),
            None => "closed the connection".to_string(),
        };
        Failure::new(
            FailureKind::ShortEcho,
            format!(
                "short echo: the server {how} after echoing {} of {} messages",
                self.done, self.sent
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::Addr;
    use crate::bench::source::Source;
    use crate::bench::ws_connect::probe;
    use futures_util::{SinkExt, StreamExt};
    use std::time::Duration;
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

    async fn exchange(
        addr: &Addr,
        plan: &ExchangePlan,
    ) -> (Result<ExchangeEnd, Failure>, Recorder) {
        let connector = probe(addr, Duration::from_secs(5), None, &Source::System, None)
            .await
            .unwrap();
        let mut conn = connector.connect(Duration::from_secs(5), 0).await.unwrap();
        let rec = Recorder::counting_from_now();
        let mut bufs = SlotBuffers::new(plan);
        let r = drive(&mut conn, Pattern::new(7), plan, &mut bufs, None, &rec).await;
        (r, rec)
    }

    #[tokio::test]
    async fn every_message_comes_back_checked() {
        let addr = server(None, false).await;
        for (size, depth) in [(1, 1), (20, 1), (1000, 8), (70_000, 2)] {
            let plan = ExchangePlan::for_test(size, depth, 30);
            let (r, rec) = exchange(&addr, &plan).await;
            assert_eq!(
                r.unwrap(),
                ExchangeEnd::LimitReached,
                "size {size} depth {depth}"
            );
            let t = rec.totals();
            assert_eq!((t.messages, t.hist.len()), (30, 30));
            assert_eq!(t.bytes, 30 * size as u64);
        }
    }

    #[tokio::test]
    async fn a_flipped_byte_is_a_mismatch_at_its_offset() {
        let addr = server(Some(1234), false).await;
        let (r, _) = exchange(&addr, &ExchangePlan::for_test(100, 4, 50)).await;
        let e = r.unwrap_err();
        assert_eq!(e.kind, FailureKind::Mismatch);
        assert!(e.detail.contains("byte 1234"), "{}", e.detail);
    }

    #[tokio::test]
    async fn text_for_binary_is_a_mismatch() {
        let addr = server(None, true).await;
        let (r, _) = exchange(&addr, &ExchangePlan::for_test(10, 1, 5)).await;
        let e = r.unwrap_err();
        assert_eq!(e.kind, FailureKind::Mismatch);
        assert!(e.detail.contains("text"), "{}", e.detail);
    }
}
