//! gRPC ping-pong on one call (`--grpc duplex`): each connection opens
//! `grpc.testing.TestService/FullDuplexCall` with its first message, and
//! every message is one `StreamingOutputCallRequest` carrying `size`
//! bytes of the connection's pattern and asking for one answer of `size`
//! bytes; the answers come in order, each must be `size` zeros
//! ([`grpc::check_payload`]), and its latency runs from its request's
//! start (its due time in open loop). Up to `depth` (`--pipeline`)
//! messages are in flight on the call; the request body is fed through a
//! channel of that many, so a message never waits for room.
//!
//! The call ends with the run (its request stream is dropped); a status
//! other than OK ends it early, as a `status` failure of the connection,
//! which the slot counts and connects again. What is buffered of the
//! answers is bounded by `depth` messages.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{BufMut, BytesMut};
use hyper::body::{Body, Incoming};
use prost::Message;
use tokio::sync::mpsc;

use super::config::GRPC_DUPLEX_CALL;
use super::exchange::{
    ExchangeEnd, ExchangePlan, ExchangeSides, ExchangeTimer, Failure, poll_exchange,
};
use super::grpc;
use super::http_connect::{HttpConnection, PatternBody, ResponseFuture, hyper_failure};
use super::pattern::Pattern;
use super::record::{FailureKind, Recorder};
use super::schedule::Schedule;
use crate::grpc::generated::testing::StreamingOutputCallResponse;

/// Exchanges messages on one duplex call over `conn` until the run ends,
/// the limit is reached, or something goes wrong.
pub(crate) async fn drive(
    conn: &mut HttpConnection,
    pattern: Pattern,
    plan: &ExchangePlan,
    schedule: Option<&mut Schedule>,
    rec: &Recorder,
) -> Result<ExchangeEnd, Failure> {
    let sleep = tokio::time::sleep_until(plan.end.into());
    tokio::pin!(sleep);
    let mut ex = Duplex {
        pattern,
        plan,
        schedule,
        rec,
        call: None,
        answers: Answers::Owed,
        sent_at: VecDeque::with_capacity(plan.depth.min(1024)),
        buf: BytesMut::new(),
        sent: 0,
        done: 0,
        timer: ExchangeTimer::new(plan),
        head: grpc::duplex_request_head(plan.size),
    };
    std::future::poll_fn(|cx| poll_exchange(&mut ex, cx, conn, sleep.as_mut())).await
}

/// Where the call's answers are.
enum Answers {
    /// The call is not started.
    Owed,
    /// The call is started; its response head is on its way.
    Head(ResponseFuture),
    /// The answers' body, being read.
    Body(Incoming),
}

/// The state of one duplex call; see [`drive`].
struct Duplex<'a> {
    pattern: Pattern,
    plan: &'a ExchangePlan,
    schedule: Option<&'a mut Schedule>,
    rec: &'a Recorder,
    /// Where the messages go, once the call is started.
    call: Option<mpsc::Sender<bytes::Bytes>>,
    answers: Answers,
    /// When each message owed an answer started, oldest first.
    sent_at: VecDeque<Instant>,
    /// Answer bytes not yet a whole message.
    buf: BytesMut,
    sent: u64,
    done: u64,
    timer: ExchangeTimer,
    /// Each message's framing, the same for every message of the run.
    head: bytes::Bytes,
}

impl Duplex<'_> {
    /// One message: its framing and `size` bytes of the pattern from
    /// where the last one ended.
    fn message(&self) -> bytes::Bytes {
        let size = self.plan.size;
        let mut m = BytesMut::with_capacity(self.head.len() + size);
        m.put_slice(&self.head);
        let at = m.len();
        m.resize(at + size, 0);
        self.pattern.fill(self.sent * size as u64, &mut m[at..]);
        m.freeze()
    }

    /// Checks one whole answer and records it.
    fn answered(&mut self, message: &[u8], now: Instant) -> Result<(), Failure> {
        let answer = StreamingOutputCallResponse::decode(message).map_err(|e| {
            grpc::mismatch(format!(
                "an answer of {GRPC_DUPLEX_CALL} is not a StreamingOutputCallResponse: {e}"
            ))
        })?;
        let body = answer.payload.map(|p| p.body).unwrap_or_default();
        grpc::check_payload(&body, self.plan.size, GRPC_DUPLEX_CALL)?;
        let Some(start) = self.sent_at.pop_front() else {
            return Err(grpc::mismatch(format!(
                "{GRPC_DUPLEX_CALL} answered more messages than were sent ({})",
                self.sent
            )));
        };
        self.rec.received(now, message.len() + 5);
        if self.plan.record_messages {
            self.rec
                .completed(now, Some(now.saturating_duration_since(start)));
        }
        self.done += 1;
        Ok(())
    }

    /// The call's end, in its trailers: a failure unless OK with nothing
    /// owed (which only a limit reached can make so).
    fn ended(&self, trailers: Option<&hyper::HeaderMap>) -> Failure {
        if let Some(f) = trailers.and_then(|t| grpc::status_failure(t, GRPC_DUPLEX_CALL)) {
            return f;
        }
        Failure::new(
            FailureKind::ShortEcho,
            format!(
                "short echo: {GRPC_DUPLEX_CALL} ended with {} answer(s) owed ({} sent)",
                self.sent_at.len(),
                self.sent
            ),
        )
    }
}

impl ExchangeSides<HttpConnection> for Duplex<'_> {
    fn plan(&self) -> &ExchangePlan {
        self.plan
    }

    fn owed(&self) -> bool {
        !self.sent_at.is_empty()
    }

    fn timed_out(&self) -> Failure {
        Failure::new(
            FailureKind::Timeout,
            format!(
                "nothing moved for {:?} with {} answer(s) owed on {GRPC_DUPLEX_CALL} \
                 ({} sent, {} received)",
                self.plan.timeout,
                self.sent_at.len(),
                self.sent,
                self.done
            ),
        )
    }

    fn timer(&mut self) -> (&mut ExchangeTimer, Option<&mut Schedule>) {
        (&mut self.timer, self.schedule.as_deref_mut())
    }

    fn write_side(
        &mut self,
        cx: &mut Context<'_>,
        conn: &mut HttpConnection,
        now: Instant,
    ) -> Result<(bool, Option<Instant>), Failure> {
        let mut wrote = false;
        loop {
            let owed = self.sent_at.len();
            if let Some(due) = self
                .plan
                .held_back(self.sent, owed, self.schedule.as_deref(), now)
            {
                return Ok((wrote, due));
            }
            if self.call.is_none() {
                match conn.poll_ready(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => return Err(e),
                    Poll::Pending => return Ok((wrote, None)),
                }
                let (tx, rx) = mpsc::channel(self.plan.depth.clamp(1, 1024));
                let target = conn.target.clone();
                self.answers = Answers::Head(conn.start(target.request(PatternBody::messages(rx))));
                self.call = Some(tx);
            }
            let message = self.message();
            let start = match self.schedule.as_deref_mut() {
                Some(schedule) => schedule.take(),
                None => Instant::now(),
            };
            let Some(tx) = &self.call else {
                return Ok((wrote, None));
            };
            // Room for `depth` unsent messages, and at most `depth` owed.
            if tx.try_send(message).is_err() {
                return Err(Failure::new(
                    FailureKind::Reset,
                    format!("{GRPC_DUPLEX_CALL}: the call's request stream is closed"),
                ));
            }
            self.sent_at.push_back(start);
            self.sent += 1;
            self.timer.progressed(now);
            wrote = true;
        }
    }

    fn read_side(
        &mut self,
        cx: &mut Context<'_>,
        _conn: &mut HttpConnection,
    ) -> Result<(bool, bool), Failure> {
        let mut read = false;
        loop {
            match &mut self.answers {
                Answers::Owed => return Ok((read, false)),
                Answers::Head(response) => {
                    let Poll::Ready(r) = response.as_mut().poll(cx) else {
                        return Ok((read, false));
                    };
                    let response = r.map_err(|e| hyper_failure("receiving", &e))?;
                    self.timer.progressed(Instant::now());
                    if !response.status().is_success() {
                        return Err(Failure::new(
                            FailureKind::Status,
                            format!(
                                "HTTP status {} for {GRPC_DUPLEX_CALL}: not 2xx",
                                response.status().as_u16()
                            ),
                        ));
                    }
                    if let Some(f) = grpc::status_failure(response.headers(), GRPC_DUPLEX_CALL) {
                        return Err(f);
                    }
                    self.answers = Answers::Body(response.into_body());
                    read = true;
                }
                Answers::Body(body) => {
                    let frame = match Pin::new(body).poll_frame(cx) {
                        Poll::Pending => return Ok((read, false)),
                        Poll::Ready(None) => return Err(self.ended(None)),
                        Poll::Ready(Some(f)) => f.map_err(|e| hyper_failure("receiving", &e))?,
                    };
                    let now = Instant::now();
                    self.timer.progressed(now);
                    read = true;
                    let data = match frame.into_data() {
                        Ok(data) => data,
                        Err(frame) => return Err(self.ended(frame.trailers_ref())),
                    };
                    let bound = self.sent_at.len() * (5 + self.plan.size + grpc::SLACK);
                    if self.buf.len() + data.len() > bound {
                        return Err(grpc::mismatch(format!(
                            "{GRPC_DUPLEX_CALL} answered more than the {} message(s) owed",
                            self.sent_at.len()
                        )));
                    }
                    self.buf.extend_from_slice(&data);
                    while let Some(m) = grpc::next_message(&mut self.buf, GRPC_DUPLEX_CALL)? {
                        self.answered(&m, now)?;
                        if self.plan.limit.is_some_and(|limit| self.done >= limit) {
                            return Ok((true, true));
                        }
                    }
                }
            }
        }
    }
}
