//! The bench's own HTTP/1.1 client: one keep-alive connection's requests
//! and responses, on the exchange loop every transport shares
//! ([`poll_exchange`]).
//!
//! Written by hand because it is the hot path of an HTTP/1.1 run. hyper's
//! client keeps a connection task beside the caller and hands each
//! request and response across a channel, with a request, a header map
//! and a boxed future per message; on one core that costs about a third
//! of the throughput wrk reaches (BENCHMARKS.md). Here one future writes
//! the run's request head (made once, in [`Target`]) and the body straight
//! from the connection's [`Pattern`] into the slot's buffer, and reads
//! the response into the slot's read buffer, through
//! [`ResponseReader`] (`httparse` for the head): nothing allocates per
//! request, and the same body checks ([`Check`]) apply as over HTTP/2.
//!
//! One request is in flight at a time (HTTP/1.1 has no streams; the
//! bench refuses a pipeline over it). A status other than 2xx is a
//! `status` error, its body read (up to [`MAX_REFLECTION`]) and dropped,
//! and the connection goes on; in churn the operation fails. A response
//! that says the server closes (`Connection: close`, HTTP/1.0) ends the
//! exchange with [`ExchangeEnd::Closed`] once read: the slot reconnects,
//! as a browser would, and nothing is counted against the server.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::config::HttpRequestKind;
use super::exchange::{
    ExchangeEnd, ExchangePlan, ExchangeSides, ExchangeTimer, Failure, READ_CHUNK, SlotBuffers,
    WRITE_CHUNK, poll_exchange,
};
use super::h1_response::{Head, Progress, ResponseReader};
use super::http_check::{Check, MAX_REFLECTION};
use super::http_connect::Target;
use super::pattern::Pattern;
use super::record::{FailureKind, Recorder};
use super::schedule::Schedule;

/// Exchanges requests over `stream` until the run ends, the limit is
/// reached, the server closes as HTTP lets it, or something goes wrong;
/// see the module's documentation.
pub(crate) async fn drive<S>(
    stream: &mut S,
    target: &Target,
    pattern: Pattern,
    plan: &ExchangePlan,
    bufs: &mut SlotBuffers,
    schedule: Option<&mut Schedule>,
    rec: &Recorder,
) -> Result<ExchangeEnd, Failure>
where
    S: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let head = target.h1_head.len();
    // Room for the head and a window of the body; the head of a response
    // must fit the read buffer. Grown once per slot.
    let write = head + plan.size.min(WRITE_CHUNK);
    if bufs.write.len() < write {
        bufs.write.resize(write, 0);
    }
    if bufs.read.len() < READ_CHUNK {
        bufs.read.resize(READ_CHUNK, 0);
    }
    let sleep = tokio::time::sleep_until(plan.end.into());
    tokio::pin!(sleep);
    let mut ex = H1Exchange {
        target,
        pattern,
        plan,
        bufs,
        schedule,
        rec,
        sent: 0,
        done: 0,
        out_at: 0,
        out_len: 0,
        body_left: 0,
        body_at: 0,
        flush: false,
        start: Instant::now(),
        reader: ResponseReader::default(),
        used: 0,
        filled: 0,
        got: 0,
        kept: Vec::new(),
        closing: false,
        timer: ExchangeTimer::new(plan),
    };
    std::future::poll_fn(|cx| poll_exchange(&mut ex, cx, &mut *stream, sleep.as_mut())).await
}

/// The state of one HTTP/1.1 exchange; see [`drive`].
struct H1Exchange<'a> {
    target: &'a Target,
    pattern: Pattern,
    plan: &'a ExchangePlan,
    bufs: &'a mut SlotBuffers,
    schedule: Option<&'a mut Schedule>,
    rec: &'a Recorder,
    /// Requests begun.
    sent: u64,
    /// Responses read whole.
    done: u64,
    /// What of `bufs.write` is still to write: from `out_at` to `out_len`.
    out_at: usize,
    out_len: usize,
    /// Body bytes of the request not yet put in `bufs.write`, and the
    /// offset in the pattern of the next one.
    body_left: u64,
    body_at: u64,
    /// A request was written and not yet flushed.
    flush: bool,
    /// When the request in flight started (its due time in open loop).
    start: Instant,
    reader: ResponseReader,
    /// What of `bufs.read` is read and not yet used: from `used` to `filled`.
    used: usize,
    filled: usize,
    /// Body bytes of the response so far (a non-2xx one: drained).
    got: usize,
    /// A reflection's body, to parse once whole (bounded).
    kept: Vec<u8>,
    /// The server said it closes after the last response.
    closing: bool,
    timer: ExchangeTimer,
}

impl<S> ExchangeSides<S> for H1Exchange<'_>
where
    S: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    fn plan(&self) -> &ExchangePlan {
        self.plan
    }

    fn owed(&self) -> bool {
        self.sent > self.done || self.out_at < self.out_len || self.body_left > 0
    }

    fn timed_out(&self) -> Failure {
        Failure::new(
            FailureKind::Timeout,
            format!(
                "nothing moved for {:?} with the response to {} owed ({} sent, {} received)",
                self.plan.timeout,
                self.target.describe(),
                self.sent,
                self.done
            ),
        )
    }

    fn timer(&mut self) -> (&mut ExchangeTimer, Option<&mut Schedule>) {
        (&mut self.timer, self.schedule.as_deref_mut())
    }

    fn ending(&self) -> ExchangeEnd {
        if self.plan.limit.is_some_and(|limit| self.done >= limit) {
            ExchangeEnd::LimitReached
        } else {
            ExchangeEnd::Closed
        }
    }

    /// Writes what may be written: the rest of the request under way, or
    /// the next one when the last response is read and the plan lets it.
    fn write_side(
        &mut self,
        cx: &mut Context<'_>,
        stream: &mut S,
        now: Instant,
    ) -> Result<(bool, Option<Instant>), Failure> {
        let mut wrote = false;
        loop {
            if self.out_at < self.out_len {
                let out = &self.bufs.write[self.out_at..self.out_len];
                match Pin::new(&mut *stream).poll_write(cx, out) {
                    Poll::Ready(Ok(0)) => {
                        return Err(Failure::new(
                            FailureKind::Reset,
                            "sending: the connection took no more bytes",
                        ));
                    }
                    Poll::Ready(Ok(n)) => {
                        self.out_at += n.min(out.len());
                        self.timer.progressed(now);
                        wrote = true;
                        continue;
                    }
                    Poll::Ready(Err(e)) => return Err(Failure::io("sending", &e)),
                    Poll::Pending => return Ok((wrote, None)),
                }
            }
            if self.body_left > 0 {
                self.fill_body(0);
                continue;
            }
            if self.flush {
                // Buffering transports (TLS) send only on flush.
                match Pin::new(&mut *stream).poll_flush(cx) {
                    Poll::Ready(Ok(())) => self.flush = false,
                    Poll::Ready(Err(e)) => return Err(Failure::io("sending", &e)),
                    Poll::Pending => return Ok((wrote, None)),
                }
            }
            if self.closing {
                return Ok((wrote, None));
            }
            let owed = (self.sent - self.done) as usize;
            if let Some(due) = self
                .plan
                .held_back(self.sent, owed, self.schedule.as_deref(), now)
            {
                return Ok((wrote, due));
            }
            self.start = match self.schedule.as_deref_mut() {
                Some(schedule) => schedule.take(),
                // Not `now`: a write may have happened since it was taken.
                None => Instant::now(),
            };
            self.begin_request();
        }
    }

    /// Reads and checks the response owed. Returns whether anything came
    /// in, and whether the exchange is over ([`Self::ending`] says how).
    fn read_side(&mut self, cx: &mut Context<'_>, stream: &mut S) -> Result<(bool, bool), Failure> {
        let mut read = false;
        while self.sent > self.done {
            if self.used < self.filled && self.parse()? == Progress::Done {
                if self.finish_response()? {
                    return Ok((read, true));
                }
                continue;
            }
            // What is left (a head not yet whole) moves to the start, and
            // the read gets the rest of the buffer: never none of it, or
            // its `Ok(0)` would read as the server's close. (A response
            // that ended at the buffer's very end left `used == filled ==
            // len` here.)
            self.bufs.read.copy_within(self.used..self.filled, 0);
            self.filled -= self.used;
            self.used = 0;
            let mut buf = ReadBuf::new(&mut self.bufs.read[self.filled..]);
            match Pin::new(&mut *stream).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(Failure::io("receiving", &e)),
                Poll::Pending => return Ok((read, false)),
            }
            let n = buf.filled().len();
            read = true;
            self.timer.progressed(Instant::now());
            if n > 0 {
                self.filled += n;
            } else if self.reader.closed() {
                self.closing = true;
                return self.finish_response().map(|_| (read, true));
            } else {
                return Err(Failure::new(
                    FailureKind::ShortEcho,
                    format!(
                        "short echo: the server closed with the response to {} unfinished \
                         ({} body bytes of it read)",
                        self.target.describe(),
                        self.got
                    ),
                ));
            }
        }
        Ok((read, false))
    }
}

impl H1Exchange<'_> {
    /// Puts the next request's head, and the first window of its body,
    /// in `bufs.write`.
    fn begin_request(&mut self) {
        let head = &self.target.h1_head;
        self.bufs.write[..head.len()].copy_from_slice(head);
        self.out_at = 0;
        self.out_len = head.len();
        if self.target.kind == HttpRequestKind::Echo {
            let size = self.plan.size as u64;
            self.body_left = size;
            self.body_at = self.sent * size;
            self.fill_body(head.len());
        }
        self.sent += 1;
        self.flush = true;
    }

    /// Generates the next window of the request's body into `bufs.write`
    /// from `from` on, after what is there to write.
    fn fill_body(&mut self, from: usize) {
        let room = (self.bufs.write.len() - from) as u64;
        let n = self.body_left.min(room) as usize;
        self.pattern
            .fill(self.body_at, &mut self.bufs.write[from..from + n]);
        self.body_at += n as u64;
        self.body_left -= n as u64;
        if from == 0 {
            self.out_at = 0;
        }
        self.out_len = from + n;
    }

    /// Feeds what is read to the response reader, checking the body.
    fn parse(&mut self) -> Result<Progress, Failure> {
        let full = self.used == 0 && self.filled == self.bufs.read.len();
        let check = Check {
            kind: self.target.kind,
            pattern: self.pattern,
            offset: self.done * self.plan.size as u64,
            size: self.plan.size,
        };
        let (got, kept, target) = (&mut self.got, &mut self.kept, self.target);
        let mut piece = |head: Head, data: &[u8]| {
            if (200..300).contains(&head.status) {
                check.piece(*got, data, kept)?;
            } else if *got + data.len() > MAX_REFLECTION {
                return Err(status_failure(
                    head.status,
                    target,
                    " and a body over 1 MiB",
                ));
            }
            *got += data.len();
            Ok(())
        };
        let bytes = &self.bufs.read[self.used..self.filled];
        let (n, progress) = self.reader.feed(bytes, full, &mut piece)?;
        self.used += n;
        Ok(progress)
    }

    /// The response is read whole: counts it (or its status). Returns
    /// whether the exchange is over.
    fn finish_response(&mut self) -> Result<bool, Failure> {
        let Some(head) = self.reader.head() else {
            return Ok(true);
        };
        self.reader.reset();
        let now = Instant::now();
        let got = std::mem::take(&mut self.got);
        self.closing |= head.close;
        self.done += 1;
        if (200..300).contains(&head.status) {
            let check = Check {
                kind: self.target.kind,
                pattern: self.pattern,
                offset: 0,
                size: self.plan.size,
            };
            check.end(got, &self.kept, self.target)?;
            self.rec.received(now, got);
            if self.plan.record_messages {
                self.rec
                    .completed(now, Some(now.saturating_duration_since(self.start)));
            }
        } else {
            let failure = status_failure(head.status, self.target, "");
            // In churn, the operation fails; otherwise the error is
            // counted and the connection goes on.
            if self.plan.limit.is_some() {
                return Err(failure);
            }
            self.rec.error(failure.kind, || failure.detail);
        }
        self.kept.clear();
        self.timer.progressed(now);
        if self.used < self.filled {
            return Err(Failure::new(
                FailureKind::Mismatch,
                format!(
                    "response mismatch: {} bytes after the response to {}, which asked for one",
                    self.filled - self.used,
                    self.target.describe()
                ),
            ));
        }
        let limit = self.plan.limit.is_some_and(|limit| self.done >= limit);
        Ok(limit || self.closing)
    }
}

/// A `status` error: the response to `target` came with `status`.
fn status_failure(status: u16, target: &Target, and: &str) -> Failure {
    let reason = hyper::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    Failure::new(
        FailureKind::Status,
        format!(
            "HTTP status {status} {reason} for {}: not 2xx{and}",
            target.describe()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    /// How the fake server below frames each response.
    #[derive(Clone, Copy, PartialEq)]
    enum Framing {
        Length,
        /// In chunks of 7 bytes (a fifth of a larger body), with an
        /// extension and a trailer.
        Chunked,
        /// With `Connection: close`, then closing.
        Close,
        /// A 503, its body the request's.
        Unavailable,
    }

    /// The end of a head in `buf`, and its `content-length`.
    fn head_end(buf: &[u8]) -> Option<(usize, usize)> {
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let head = std::str::from_utf8(&buf[..end]).ok()?;
        let len = head
            .split("\r\n")
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length").then_some(value)
            })
            .map_or(0, |v| v.trim().parse().unwrap_or(0));
        Some((end, len))
    }

    /// An HTTP/1.1 server on the far end of an in-memory pipe that answers
    /// each request with its body (for `POST`), framed as `framing` says;
    /// fixed buffers, so that it allocates nothing per request.
    fn server(framing: Framing) -> DuplexStream {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 256 * 1024];
            let mut head = [0u8; 128];
            let mut filled = 0;
            loop {
                let (end, len) = loop {
                    if let Some(found) = head_end(&buf[..filled]) {
                        break found;
                    }
                    match server.read(&mut buf[filled..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => filled += n,
                    }
                };
                while filled < end + len {
                    match server.read(&mut buf[filled..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => filled += n,
                    }
                }
                let body = &buf[end..end + len];
                let mut w = std::io::Cursor::new(&mut head[..]);
                use std::io::Write as _;
                let _ = match framing {
                    Framing::Length => {
                        write!(w, "HTTP/1.1 200 OK\r\ncontent-length: {len}\r\n\r\n")
                    }
                    Framing::Chunked => {
                        write!(w, "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                    }
                    Framing::Close => write!(
                        w,
                        "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: {len}\r\n\r\n"
                    ),
                    Framing::Unavailable => write!(
                        w,
                        "HTTP/1.1 503 Service Unavailable\r\ncontent-length: {len}\r\n\r\n"
                    ),
                };
                let n = w.position() as usize;
                let mut ok = server.write_all(&head[..n]).await.is_ok();
                if framing == Framing::Chunked {
                    for piece in body.chunks(7.max(len / 5)) {
                        let mut w = std::io::Cursor::new(&mut head[..]);
                        let _ = write!(w, "{:x};ext=1\r\n", piece.len());
                        let n = w.position() as usize;
                        ok &= server.write_all(&head[..n]).await.is_ok();
                        ok &= server.write_all(piece).await.is_ok();
                        ok &= server.write_all(b"\r\n").await.is_ok();
                    }
                    ok &= server.write_all(b"0\r\nx-trailer: 1\r\n\r\n").await.is_ok();
                } else {
                    ok &= server.write_all(body).await.is_ok();
                }
                if !ok || framing == Framing::Close {
                    return;
                }
                buf.copy_within(end + len..filled, 0);
                filled -= end + len;
            }
        });
        client
    }

    /// One exchange of `plan` against `server(framing)`: how it ended, and
    /// what was counted.
    async fn exchange(
        framing: Framing,
        plan: &ExchangePlan,
    ) -> (Result<ExchangeEnd, Failure>, super::super::record::Totals) {
        let rec = Recorder::counting_from_now();
        let mut bufs = SlotBuffers::new(plan);
        let mut s = server(framing);
        let addr = "http://127.0.0.1:8/".parse().unwrap();
        let target = Target::new(&addr, HttpRequestKind::Echo, plan.size, false).unwrap();
        let r = drive(
            &mut s,
            &target,
            Pattern::new(1),
            plan,
            &mut bufs,
            None,
            &rec,
        )
        .await;
        (r, rec.totals())
    }

    #[tokio::test]
    async fn bodies_of_any_size_come_back_checked_by_length_or_chunked() {
        for framing in [Framing::Length, Framing::Chunked] {
            for size in [1, 64, 70_000, 200_000] {
                let plan = ExchangePlan::for_test(size, 1, 20);
                let (r, t) = exchange(framing, &plan).await;
                assert_eq!(r.unwrap(), ExchangeEnd::LimitReached, "size {size}");
                assert_eq!((t.messages, t.bytes), (20, 20 * size as u64));
                assert_eq!(t.hist.len(), 20);
            }
        }
    }

    #[tokio::test]
    async fn a_response_that_fills_the_read_buffer_exactly_is_not_a_close() {
        // 42 bytes of head (`content-length: 65494`) and the body: the
        // whole 64 KiB buffer in one read, response after response.
        let plan = ExchangePlan::for_test(READ_CHUNK - 42, 1, 5);
        let (r, t) = exchange(Framing::Length, &plan).await;
        assert_eq!(r.unwrap(), ExchangeEnd::LimitReached);
        assert_eq!((t.messages, t.errors.total()), (5, 0));
    }

    #[tokio::test]
    async fn a_response_that_closes_ends_the_exchange_without_an_error() {
        let mut plan = ExchangePlan::for_test(100, 1, 20);
        plan.limit = None;
        plan.end = Instant::now() + Duration::from_secs(5);
        let (r, t) = exchange(Framing::Close, &plan).await;
        assert_eq!(r.unwrap(), ExchangeEnd::Closed);
        assert_eq!((t.messages, t.errors.total()), (1, 0));
    }

    #[tokio::test]
    async fn a_status_is_counted_and_the_connection_goes_on() {
        let mut plan = ExchangePlan::for_test(10, 1, 20);
        plan.limit = None;
        plan.end = Instant::now() + Duration::from_millis(200);
        let (r, t) = exchange(Framing::Unavailable, &plan).await;
        assert_eq!(r.unwrap(), ExchangeEnd::Deadline);
        assert!(t.errors.status > 1, "{:?}", t.errors);
        let first = t.first_error.unwrap();
        assert_eq!(
            first,
            "HTTP status 503 Service Unavailable for POST /?echo_body: not 2xx"
        );
        // In churn (a limit), the operation fails.
        let plan = ExchangePlan::for_test(10, 1, 1);
        let (r, _) = exchange(Framing::Unavailable, &plan).await;
        assert_eq!(r.unwrap_err().kind, FailureKind::Status);
    }

    #[test]
    fn requests_do_not_allocate() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // Allocations of one exchange of `messages` requests, the server's
        // task and buffers included, and the seconds it took (the recorder
        // makes a histogram for each second).
        let count = |framing: Framing, size: usize, messages: u64| {
            rt.block_on(async {
                let plan = ExchangePlan::for_test(size, 1, messages);
                let (before, start) = (crate::counting::allocations(), Instant::now());
                let (r, _) = exchange(framing, &plan).await;
                let after = crate::counting::allocations();
                assert_eq!(r.unwrap(), ExchangeEnd::LimitReached);
                (after - before, start.elapsed().as_secs())
            })
        };
        for framing in [Framing::Length, Framing::Chunked] {
            for size in [64, 20_000] {
                let (few, _) = count(framing, size, 100);
                let (many, secs) = count(framing, size, 2100);
                assert!(
                    many <= few + 4 + 8 * secs,
                    "size {size}: {few} allocations for 100 requests, {many} for 2100 in {secs} s"
                );
            }
        }
    }
}
