//! One connection's traffic over a byte stream (TCP, TLS, Unix): the hot
//! path of the bench.
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
//! timeout and the end of the run, re-armed only when its target moves
//! (see [`ExchangeTimer`]).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::exchange::{
    ExchangeEnd, ExchangePlan, ExchangeSides, ExchangeTimer, Failure, SlotBuffers, poll_exchange,
};
use super::pattern::Pattern;
use super::record::{FailureKind, Recorder};
use super::schedule::Schedule;

/// Exchanges messages over `stream` until the run ends, the limit is
/// reached, or something goes wrong. `pattern` is the connection's stream
/// of bytes; `schedule`, when given, says when each message is due.
pub(crate) async fn drive<S>(
    stream: &mut S,
    pattern: Pattern,
    plan: &ExchangePlan,
    bufs: &mut SlotBuffers,
    schedule: Option<&mut Schedule>,
    rec: &Recorder,
) -> Result<ExchangeEnd, Failure>
where
    S: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let sleep = tokio::time::sleep_until(plan.end.into());
    tokio::pin!(sleep);
    let mut ex = StreamExchange {
        pattern,
        plan,
        bufs,
        schedule,
        rec,
        sent: 0,
        done: 0,
        left: 0,
        written: 0,
        echoed: 0,
        chunk_written: 0,
        chunk_len: 0,
        flush: false,
        timer: ExchangeTimer::new(plan),
    };
    std::future::poll_fn(|cx| poll_exchange(&mut ex, cx, &mut *stream, sleep.as_mut())).await
}

/// The state of one exchange over a stream; see [`drive`].
struct StreamExchange<'a> {
    pattern: Pattern,
    plan: &'a ExchangePlan,
    bufs: &'a mut SlotBuffers,
    schedule: Option<&'a mut Schedule>,
    rec: &'a Recorder,
    /// Messages whose writing has begun.
    sent: u64,
    /// Messages fully echoed.
    done: u64,
    /// Bytes of the current message still to write; 0 when none is begun.
    left: usize,
    /// Bytes written: the stream offset of the next byte to write.
    written: u64,
    /// Bytes read back and checked: the stream offset of the next echo byte.
    echoed: u64,
    /// The bytes of the chunk in `bufs.write` written so far.
    chunk_written: usize,
    /// The bytes of the current message generated into `bufs.write`.
    chunk_len: usize,
    /// A message was written and not yet flushed.
    flush: bool,
    /// The one timer, and the watch on owed echoes.
    timer: ExchangeTimer,
}

impl<S> ExchangeSides<S> for StreamExchange<'_>
where
    S: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    fn plan(&self) -> &ExchangePlan {
        self.plan
    }

    fn owed(&self) -> bool {
        self.written > self.echoed || self.left > 0
    }

    fn timed_out(&self) -> Failure {
        Failure::new(
            FailureKind::Timeout,
            format!(
                "nothing moved for {:?} with {} bytes of echo owed ({} sent, {} received)",
                self.plan.timeout,
                self.written - self.echoed,
                self.written,
                self.echoed
            ),
        )
    }

    fn timer(&mut self) -> (&mut ExchangeTimer, Option<&mut Schedule>) {
        (&mut self.timer, self.schedule.as_deref_mut())
    }

    /// Writes what may be written. Returns whether any byte went out, and
    /// the due time being waited for, if the schedule is what holds it back.
    fn write_side(
        &mut self,
        cx: &mut Context<'_>,
        stream: &mut S,
        now: Instant,
    ) -> Result<(bool, Option<Instant>), Failure> {
        let size = self.plan.size;
        let mut wrote = false;
        loop {
            if self.left == 0 {
                if self.flush {
                    // Buffering transports (TLS) send only on flush; for TCP
                    // this returns at once.
                    match Pin::new(&mut *stream).poll_flush(cx) {
                        Poll::Ready(Ok(())) => self.flush = false,
                        Poll::Ready(Err(e)) => return Err(Failure::io("sending", &e)),
                        Poll::Pending => return Ok((wrote, None)),
                    }
                }
                if self.plan.limit.is_some_and(|limit| self.sent >= limit) {
                    return Ok((wrote, None));
                }
                if self.sent - self.done >= self.plan.depth as u64 {
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
                self.bufs.set_start(self.sent, start);
                self.left = size;
                self.sent += 1;
                self.refill();
            } else if self.chunk_written == self.chunk_len {
                self.refill();
            }
            let chunk = &self.bufs.write[self.chunk_written..self.chunk_len];
            match Pin::new(&mut *stream).poll_write(cx, chunk) {
                Poll::Ready(Ok(0)) => {
                    return Err(Failure::new(
                        FailureKind::Reset,
                        "sending: the connection took no more bytes",
                    ));
                }
                Poll::Ready(Ok(n)) => {
                    let n = n.min(self.chunk_len - self.chunk_written);
                    self.chunk_written += n;
                    self.left -= n;
                    self.written += n as u64;
                    self.flush = self.left == 0;
                    self.timer.progressed(now);
                    wrote = true;
                }
                Poll::Ready(Err(e)) => return Err(Failure::io("sending", &e)),
                Poll::Pending => return Ok((wrote, None)),
            }
        }
    }

    /// Reads and checks what is owed. Returns whether any byte came in, and
    /// whether the message limit is reached.
    fn read_side(&mut self, cx: &mut Context<'_>, stream: &mut S) -> Result<(bool, bool), Failure> {
        let size = self.plan.size as u64;
        let mut read = false;
        loop {
            let owed = self.written - self.echoed;
            if owed == 0 {
                return Ok((read, false));
            }
            let mut buf = ReadBuf::new(&mut self.bufs.read);
            match Pin::new(&mut *stream).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(Failure::io("receiving", &e)),
                Poll::Pending => return Ok((read, false)),
            }
            let got = buf.filled();
            let now = Instant::now();
            check_echo(&self.pattern, self.echoed, self.written, got)?;
            let n = got.len();
            self.echoed += n as u64;
            self.timer.progressed(now);
            read = true;
            self.rec.received(now, n);
            let done = self.echoed / size;
            if self.plan.record_messages {
                while self.done < done {
                    let start = self.bufs.start_of(self.done);
                    self.rec
                        .completed(now, Some(now.saturating_duration_since(start)));
                    self.done += 1;
                }
            } else {
                self.done = done;
            }
            if self.plan.limit.is_some_and(|limit| self.done >= limit) {
                return Ok((read, true));
            }
        }
    }
}

impl StreamExchange<'_> {
    /// Generates the next chunk of the current message, from `written` on.
    fn refill(&mut self) {
        self.chunk_len = self.left.min(self.bufs.write.len());
        self.chunk_written = 0;
        self.pattern
            .fill(self.written, &mut self.bufs.write[..self.chunk_len]);
    }
}

/// Checks the bytes `got` that came back, `echoed` bytes into the echo of
/// the `written` sent: nothing (the server closed), a byte that differs,
/// or more than was sent is a failure.
fn check_echo(pattern: &Pattern, echoed: u64, written: u64, got: &[u8]) -> Result<(), Failure> {
    if got.is_empty() {
        return Err(Failure::new(
            FailureKind::ShortEcho,
            format!("short echo: the server closed after echoing {echoed} of {written} bytes sent"),
        ));
    }
    let owed = written - echoed;
    let echo = usize::try_from(owed).map_or(got, |owed| &got[..got.len().min(owed)]);
    if let Err(m) = pattern.check(echoed, echo) {
        return Err(Failure::new(
            FailureKind::Mismatch,
            format!(
                "echo mismatch at byte {} of the connection: sent {:#04x}, got {:#04x}",
                m.offset, m.expected, m.got
            ),
        ));
    }
    if echo.len() < got.len() {
        return Err(Failure::new(
            FailureKind::Mismatch,
            format!("echo mismatch at byte {written}: the server sent more than it was sent"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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

    #[tokio::test]
    async fn pingpong_and_pipelined_messages_all_come_back() {
        for (size, depth) in [(1, 1), (64, 1), (1000, 8), (100_000, 1), (70_000, 3)] {
            let rec = Recorder::counting_from_now();
            let plan = ExchangePlan::for_test(size, depth, 50);
            let mut bufs = SlotBuffers::new(&plan);
            let mut s = echo_pipe(None, None);
            let r = drive(&mut s, Pattern::new(1), &plan, &mut bufs, None, &rec).await;
            assert_eq!(
                r.unwrap(),
                ExchangeEnd::LimitReached,
                "size {size} depth {depth}"
            );
            let t = rec.totals();
            assert_eq!(t.messages, 50);
            assert_eq!(t.hist.len(), 50);
            assert_eq!(t.bytes, 50 * size as u64);
        }
    }

    #[tokio::test]
    async fn a_flipped_byte_is_a_mismatch_at_its_offset() {
        let rec = Recorder::counting_from_now();
        let plan = ExchangePlan::for_test(100, 4, 50);
        let mut bufs = SlotBuffers::new(&plan);
        let mut s = echo_pipe(Some(1234), None);
        let err = drive(&mut s, Pattern::new(1), &plan, &mut bufs, None, &rec)
            .await
            .unwrap_err();
        assert_eq!(err.kind, FailureKind::Mismatch);
        assert!(err.detail.contains("byte 1234"), "{}", err.detail);
    }

    #[tokio::test]
    async fn an_early_close_is_a_short_echo() {
        let rec = Recorder::counting_from_now();
        let plan = ExchangePlan::for_test(100, 1, 50);
        let mut bufs = SlotBuffers::new(&plan);
        let mut s = echo_pipe(None, Some(250));
        let err = drive(&mut s, Pattern::new(1), &plan, &mut bufs, None, &rec)
            .await
            .unwrap_err();
        assert_eq!(err.kind, FailureKind::ShortEcho);
        assert!(err.detail.contains("250 of 300"), "{}", err.detail);
    }

    #[tokio::test]
    async fn more_back_than_was_sent_is_a_mismatch() {
        let rec = Recorder::counting_from_now();
        let plan = ExchangePlan::for_test(10, 1, 50);
        let mut bufs = SlotBuffers::new(&plan);
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
        let err = drive(&mut client, Pattern::new(1), &plan, &mut bufs, None, &rec)
            .await
            .unwrap_err();
        assert_eq!(err.kind, FailureKind::Mismatch, "{}", err.detail);
    }

    #[tokio::test]
    async fn silence_is_a_timeout() {
        let rec = Recorder::counting_from_now();
        let mut plan = ExchangePlan::for_test(10, 1, 5);
        plan.timeout = Duration::from_millis(50);
        let mut bufs = SlotBuffers::new(&plan);
        // The server end is kept but never read: nothing comes back.
        let (mut client, _server) = tokio::io::duplex(1024);
        let err = drive(&mut client, Pattern::new(1), &plan, &mut bufs, None, &rec)
            .await
            .unwrap_err();
        assert_eq!(err.kind, FailureKind::Timeout);
    }

    #[tokio::test]
    async fn the_deadline_ends_an_exchange() {
        let rec = Recorder::counting_from_now();
        let mut plan = ExchangePlan::for_test(10, 1, u64::MAX);
        plan.limit = None;
        plan.end = Instant::now() + Duration::from_millis(100);
        let mut bufs = SlotBuffers::new(&plan);
        let mut s = echo_pipe(None, None);
        let r = drive(&mut s, Pattern::new(1), &plan, &mut bufs, None, &rec).await;
        assert_eq!(r.unwrap(), ExchangeEnd::Deadline);
        assert!(rec.totals().messages > 0);
    }

    #[tokio::test]
    async fn open_loop_latency_counts_from_when_each_message_was_due() {
        // Due times in the past: every message is late by at least 100 ms,
        // and that lateness is in its latency, not hidden.
        let rec = Recorder::counting_from_now();
        let plan = ExchangePlan::for_test(10, 1, 20);
        let mut bufs = SlotBuffers::new(&plan);
        let mut schedule = Schedule::new(
            Instant::now() - Duration::from_millis(200),
            Duration::from_millis(1),
        );
        let mut s = echo_pipe(None, None);
        let r = drive(
            &mut s,
            Pattern::new(1),
            &plan,
            &mut bufs,
            Some(&mut schedule),
            &rec,
        )
        .await;
        assert_eq!(r.unwrap(), ExchangeEnd::LimitReached);
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
                let plan = ExchangePlan::for_test(size, depth, messages);
                let mut bufs = SlotBuffers::new(&plan);
                let mut s = echo_pipe(None, None);
                tokio::task::yield_now().await;
                let before = crate::counting::allocations();
                let r = drive(&mut s, Pattern::new(1), &plan, &mut bufs, None, &rec).await;
                let after = crate::counting::allocations();
                assert_eq!(r.unwrap(), ExchangeEnd::LimitReached);
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
}
