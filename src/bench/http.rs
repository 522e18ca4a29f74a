//! The bench over `http://` and `https://`: each message one HTTP
//! request, its response checked.
//!
//! What a request is, and what its response must be, is the run's
//! [`HttpRequestKind`]:
//!
//! - `echo`: `POST PATH?echo_body` with `size` bytes of the connection's
//!   [`Pattern`] (message `n` carries the stream from offset `n * size`,
//!   as over TCP); the body that comes back must be the same bytes.
//! - `size`: `GET PATH?size=N`; the body must be N bytes of the server's
//!   `size=` pattern ([`crate::http::byte_at`]).
//! - `reflect`: `GET PATH`; the body must be JSON (the server's
//!   reflection), at most [`MAX_REFLECTION`] bytes; the bytes that came
//!   are what is counted.
//!
//! A status other than 2xx is a `status` error (counted, its body read
//! and dropped, and the connection goes on; in churn the operation
//! fails), a wrong byte a
//! `mismatch` (with its offset), a body shorter than asked for a
//! `short_echo`. Bodies are checked as they arrive and never kept (but
//! a reflection's, up to its bound): a body longer than it should be is
//! an error as soon as its first extra byte arrives, so a server that
//! sends without end cannot grow the bench's memory.
//!
//! [`drive`] runs on the exchange loop every transport shares
//! ([`poll_exchange`]): up to `depth` requests in flight (HTTP/1.1: one;
//! HTTP/2: `--pipeline` concurrent streams), one timer for the rate, the
//! timeout and the end of the run, latency from each request's start
//! (its due time in open loop) to the last byte of its response. A
//! response that is owed and moves neither its head nor a piece of its
//! body for the timeout is a `timeout`.

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::stream::{FuturesUnordered, StreamExt};
use http_body_util::BodyExt;

use super::config::HttpRequestKind;
use super::exchange::{
    ExchangeEnd, ExchangePlan, ExchangeSides, ExchangeTimer, Failure, SlotBuffers, poll_exchange,
};
use super::grpc::{self, UNARY_CALL};
use super::http_check::{Check, MAX_REFLECTION};
use super::http_connect::{HttpConnection, PatternBody, ResponseFuture, Target, hyper_failure};
use super::pattern::Pattern;
use super::record::{FailureKind, Recorder};
use super::schedule::Schedule;

/// Exchanges requests over `conn` until the run ends, the limit is
/// reached, or something goes wrong; see the module's documentation.
pub(crate) async fn drive(
    conn: &mut HttpConnection,
    pattern: Pattern,
    plan: &ExchangePlan,
    // hyper reads and writes through buffers of its own.
    _bufs: &mut SlotBuffers,
    schedule: Option<&mut Schedule>,
    rec: &Recorder,
) -> Result<ExchangeEnd, Failure> {
    if conn.target.kind == HttpRequestKind::GrpcDuplex {
        return super::grpc_duplex::drive(conn, pattern, plan, schedule, rec).await;
    }
    let sleep = tokio::time::sleep_until(plan.end.into());
    tokio::pin!(sleep);
    let mut ex = HttpExchange {
        pattern,
        plan,
        schedule,
        rec,
        in_flight: FuturesUnordered::new(),
        sent: 0,
        done: 0,
        moved: Rc::new(Cell::new(Instant::now())),
        timer: ExchangeTimer::new(plan),
        grpc_head: grpc::request_head(plan.size),
    };
    std::future::poll_fn(|cx| poll_exchange(&mut ex, cx, conn, sleep.as_mut())).await
}

/// One request's response, read and checked.
type Pending = Pin<Box<dyn Future<Output = Result<Answer, Failure>>>>;

/// A response read whole.
enum Answer {
    /// 2xx, its body as it should be: its latency's start, and the body
    /// bytes it brought.
    Checked(Instant, usize),
    /// A status other than 2xx, its body read and dropped: the connection
    /// can go on.
    Status(Failure),
}

/// The state of one exchange over HTTP; see [`drive`].
struct HttpExchange<'a> {
    /// A gRPC call's framing, the same for every message of the run.
    grpc_head: bytes::Bytes,
    pattern: Pattern,
    plan: &'a ExchangePlan,
    schedule: Option<&'a mut Schedule>,
    rec: &'a Recorder,
    /// The responses owed, each read and checked by its own future.
    in_flight: FuturesUnordered<Pending>,
    /// Requests sent.
    sent: u64,
    /// Responses read (and checked).
    done: u64,
    /// When a response last moved (its head, or a piece of its body).
    moved: Rc<Cell<Instant>>,
    /// The one timer, and the watch on owed responses.
    timer: ExchangeTimer,
}

impl ExchangeSides<HttpConnection> for HttpExchange<'_> {
    fn plan(&self) -> &ExchangePlan {
        self.plan
    }

    fn owed(&self) -> bool {
        !self.in_flight.is_empty()
    }

    fn timed_out(&self) -> Failure {
        Failure::new(
            FailureKind::Timeout,
            format!(
                "nothing moved for {:?} with {} response(s) owed ({} sent, {} received)",
                self.plan.timeout,
                self.in_flight.len(),
                self.sent,
                self.done
            ),
        )
    }

    fn timer(&mut self) -> (&mut ExchangeTimer, Option<&mut Schedule>) {
        (&mut self.timer, self.schedule.as_deref_mut())
    }

    /// Sends what may be sent. Returns whether a request went out, and
    /// the due time being waited for, if the schedule is what holds it
    /// back.
    fn write_side(
        &mut self,
        cx: &mut Context<'_>,
        conn: &mut HttpConnection,
        now: Instant,
    ) -> Result<(bool, Option<Instant>), Failure> {
        let mut wrote = false;
        loop {
            let owed = self.in_flight.len();
            if let Some(due) = self
                .plan
                .held_back(self.sent, owed, self.schedule.as_deref(), now)
            {
                return Ok((wrote, due));
            }
            match conn.poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => return Ok((wrote, None)),
            }
            let start = match self.schedule.as_deref_mut() {
                Some(schedule) => schedule.take(),
                None => Instant::now(),
            };
            let size = self.plan.size as u64;
            let target = conn.target.clone();
            let body = match target.kind {
                HttpRequestKind::Echo => PatternBody::new(self.pattern, self.sent * size, size),
                HttpRequestKind::Grpc => PatternBody::with_head(
                    self.grpc_head.clone(),
                    self.pattern,
                    self.sent * size,
                    size,
                ),
                _ => PatternBody::empty(),
            };
            let response = conn.start(target.request(body));
            let check = Check {
                kind: target.kind,
                pattern: self.pattern,
                offset: self.sent * size,
                size: self.plan.size,
            };
            self.in_flight.push(Box::pin(read_response(
                response,
                target,
                check,
                self.moved.clone(),
                start,
            )));
            self.sent += 1;
            self.timer.progressed(now);
            wrote = true;
        }
    }

    /// Collects the responses read and checked. Returns whether one came
    /// in, and whether the message limit is reached.
    fn read_side(
        &mut self,
        cx: &mut Context<'_>,
        _conn: &mut HttpConnection,
    ) -> Result<(bool, bool), Failure> {
        let mut read = false;
        while let Poll::Ready(Some(done)) = self.in_flight.poll_next_unpin(cx) {
            let now = Instant::now();
            let (start, bytes) = match done? {
                Answer::Checked(start, bytes) => (start, bytes),
                // In churn, the operation fails; otherwise the error is
                // counted and the connection goes on, as a client of an
                // overloaded server would (no reconnect, no pause).
                Answer::Status(e) if self.plan.limit.is_some() => return Err(e),
                Answer::Status(e) => {
                    self.rec.error(e.kind, || e.detail);
                    read = true;
                    self.timer.progressed(now);
                    self.done += 1;
                    continue;
                }
            };
            read = true;
            self.timer.progressed(now);
            self.rec.received(now, bytes);
            if self.plan.record_messages {
                self.rec
                    .completed(now, Some(now.saturating_duration_since(start)));
            }
            self.done += 1;
            if self.plan.limit.is_some_and(|limit| self.done >= limit) {
                return Ok((read, true));
            }
        }
        if !read && !self.in_flight.is_empty() {
            // A head or a piece of a body counts as moving.
            self.timer.progressed(self.moved.get());
        }
        Ok((read, false))
    }
}

/// Waits for the response to `target`'s request, checks its status and
/// reads its body, checking it piece by piece; notes in `moved` when
/// anything arrives. A body that comes with a status other than 2xx is
/// read (up to [`MAX_REFLECTION`]) and dropped.
async fn read_response(
    response: ResponseFuture,
    target: std::sync::Arc<Target>,
    check: Check,
    moved: Rc<Cell<Instant>>,
    start: Instant,
) -> Result<Answer, Failure> {
    if target.kind == HttpRequestKind::Grpc {
        return Ok(
            match read_grpc_answer(response, check.size, &moved).await? {
                Ok(bytes) => Answer::Checked(start, bytes),
                Err(status) => Answer::Status(status),
            },
        );
    }
    let response = response.await.map_err(|e| hyper_failure("receiving", &e))?;
    moved.set(Instant::now());
    let status = response.status();
    let mut body = response.into_body();
    if !status.is_success() {
        let failure = Failure::new(
            FailureKind::Status,
            format!(
                "HTTP status {} {} for {}: not 2xx",
                status.as_u16(),
                status.canonical_reason().unwrap_or(""),
                target.describe()
            ),
        );
        // Drained, so that an HTTP/1.1 connection can carry the next
        // request; one too long to drain ends the connection.
        let mut left = MAX_REFLECTION;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return Err(failure);
            };
            moved.set(Instant::now());
            let len = frame.data_ref().map_or(0, |d| d.len());
            if len > left {
                return Err(failure);
            }
            left -= len;
        }
        return Ok(Answer::Status(failure));
    }
    let mut got = 0usize;
    let mut kept = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| hyper_failure("receiving", &e))?;
        moved.set(Instant::now());
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        check.piece(got, &data, &mut kept)?;
        got += data.len();
    }
    check.end(got, &kept, &target)?;
    Ok(Answer::Checked(start, got))
}

/// Waits for the answer to a `size`-byte gRPC call ([`grpc`]), reads it and checks it;
/// notes in `moved` when anything arrives. `Ok(Ok(bytes))`: the answer
/// as it should be, of `bytes` bytes of messages; `Ok(Err(_))`: a status
/// other than OK (the connection can go on); `Err(_)`: anything else.
async fn read_grpc_answer(
    response: ResponseFuture,
    size: usize,
    moved: &Rc<Cell<Instant>>,
) -> Result<Result<usize, Failure>, Failure> {
    let response = response.await.map_err(|e| hyper_failure("receiving", &e))?;
    moved.set(Instant::now());
    let status = response.status();
    if !status.is_success() {
        return Ok(Err(Failure::new(
            FailureKind::Status,
            format!("HTTP status {} for {UNARY_CALL}: not 2xx", status.as_u16()),
        )));
    }
    // Trailers-Only: an error before any message.
    if let Some(f) = grpc::status_failure(response.headers(), UNARY_CALL) {
        return Ok(Err(f));
    }
    let mut body = response.into_body();
    let mut kept = bytes::BytesMut::new();
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| hyper_failure("receiving", &e))?;
        moved.set(Instant::now());
        match frame.into_data() {
            Ok(data) => {
                if kept.len() + data.len() > 5 + size + grpc::SLACK {
                    return Err(grpc::mismatch(format!(
                        "the answer to {UNARY_CALL} is longer than a {size}-byte payload"
                    )));
                }
                kept.extend_from_slice(&data);
            }
            Err(frame) => trailers = frame.into_trailers().ok(),
        }
    }
    if let Some(f) = trailers
        .as_ref()
        .and_then(|t| grpc::status_failure(t, UNARY_CALL))
    {
        return Ok(Err(f));
    }
    if trailers.is_none_or(|t| !t.contains_key("grpc-status")) {
        return Err(Failure::new(
            FailureKind::ShortEcho,
            format!("short echo: the answer to {UNARY_CALL} ended without a grpc-status"),
        ));
    }
    grpc::check_message(&kept, size).map(Ok)
}
