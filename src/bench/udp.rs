//! Ping-pong over UDP: each message one datagram, its reply awaited for a
//! while, then given up as lost.
//!
//! A datagram has no connection to reset and no order to keep, so errors
//! here are per message and the exchange goes on after them: a reply that
//! does not come within the timeout is a `loss` (not resent: resending
//! would hide what the bench is there to measure); one that comes back
//! different is a `mismatch`, or a `short_echo` if it is a truncated copy.
//! Message `n` of a socket carries the bytes of its [`Pattern`] from offset
//! `n * size`, so a reply is recognised by its content alone: one that
//! matches an earlier message is that message's late or duplicated reply,
//! and is ignored (it was checked, all the same).
//!
//! Only the socket's own errors end the exchange (the ICMP report that
//! nobody listens, as `ECONNREFUSED`); the slot then opens a new socket.
//! Nothing here allocates per message: the datagram is generated into,
//! and received into, the slot's buffers.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use super::exchange::{ExchangeEnd, ExchangePlan, Failure, SlotBuffers};
use super::pattern::Pattern;
use super::record::{FailureKind, Recorder};
use super::schedule::Schedule;
use crate::addr::Addr;
use crate::transport::{self, ConnectError};

/// How many earlier messages a reply is compared with before it counts as
/// wrong rather than late: replies later than this many timeouts are
/// unlikely, and each comparison stops at the first differing word.
const RECENT: u64 = 64;

/// Datagrams the probe sends (one at a time) before giving up.
const PROBE_TRIES: u32 = 3;

/// A non-blocking UDP socket on an ephemeral port (of `source`, when
/// given), connected to `peer` so that only its replies come in. Must be
/// called inside a tokio runtime.
pub(crate) fn socket(peer: SocketAddr, source: Option<IpAddr>) -> io::Result<UdpSocket> {
    let local: SocketAddr = match source {
        Some(ip) => (ip, 0).into(),
        None if peer.is_ipv6() => (Ipv6Addr::UNSPECIFIED, 0).into(),
        None => (Ipv4Addr::UNSPECIFIED, 0).into(),
    };
    let socket = std::net::UdpSocket::bind(local)?;
    socket.connect(peer)?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

/// Finds the first address of `addr` that echoes a datagram, trying each
/// up to [`PROBE_TRIES`] times, `timeout` each.
pub(crate) async fn probe(addr: &Addr, timeout: Duration) -> Result<SocketAddr, ConnectError> {
    let (host, port, targets) = transport::resolve_inet(addr).await?;
    let target = format!("{addr} ({host} port {port})");
    transport::first_that_connects(targets, &target, |peer| async move {
        probe_one(peer, timeout).await.map(|()| peer)
    })
    .await
}

async fn probe_one(peer: SocketAddr, timeout: Duration) -> io::Result<()> {
    const PROBE: &[u8] = b"echo-bench probe";
    let socket = socket(peer, None)?;
    let mut buf = [0u8; 64];
    for _ in 0..PROBE_TRIES {
        socket.send(PROBE).await?;
        let deadline = tokio::time::Instant::now() + timeout;
        while let Ok(got) = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
            if &buf[..got?] == PROBE {
                return Ok(());
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "no reply to {PROBE_TRIES} datagrams, {timeout:?} each (is a UDP echo server there?)"
        ),
    ))
}

/// What a reply turned out to be.
enum Reply {
    /// The echo of the message being waited for.
    Current,
    /// The late or duplicated echo of an earlier message.
    Stale,
    /// Neither: an error, counted.
    Wrong,
}

/// Sends messages over `socket` one at a time, each awaited for
/// `plan.timeout`, until the run ends or the limit is reached. Lost and
/// wrong replies are counted in `rec` and the exchange goes on; only an
/// error of the socket itself is returned.
pub(crate) async fn drive(
    socket: &UdpSocket,
    pattern: Pattern,
    plan: &ExchangePlan,
    bufs: &mut SlotBuffers,
    mut schedule: Option<&mut Schedule>,
    rec: &Recorder,
) -> Result<ExchangeEnd, Failure> {
    let size = plan.size;
    let sleep = tokio::time::sleep_until(plan.end.into());
    tokio::pin!(sleep);
    let mut seq: u64 = 0;
    loop {
        if plan.limit.is_some_and(|limit| seq >= limit) {
            return Ok(ExchangeEnd::LimitReached);
        }
        let due = match schedule.as_deref_mut() {
            Some(s) => {
                if s.due() >= plan.end {
                    return Ok(ExchangeEnd::Deadline);
                }
                s.wait().await;
                Some(s.take())
            }
            None => None,
        };
        if Instant::now() >= plan.end {
            return Ok(ExchangeEnd::Deadline);
        }
        pattern.fill(seq * size as u64, &mut bufs.write);
        let sent_at = Instant::now();
        let start = due.unwrap_or(sent_at);
        match socket.send(&bufs.write).await {
            Ok(n) if n == size => {}
            Ok(n) => {
                return Err(Failure::new(
                    FailureKind::Reset,
                    format!("sending: the socket took {n} of a {size}-byte datagram"),
                ));
            }
            Err(e) => return Err(Failure::io("sending", &e)),
        }
        let deadline = (sent_at + plan.timeout).min(plan.end);
        sleep.as_mut().reset(deadline.into());
        loop {
            tokio::select! {
                biased;
                got = socket.recv(&mut bufs.read) => {
                    let n = got.map_err(|e| Failure::io("receiving", &e))?;
                    let now = Instant::now();
                    match classify(&pattern, seq, size, &bufs.read[..n], rec) {
                        Reply::Current => {
                            rec.received(now, n);
                            rec.completed(now, Some(now.saturating_duration_since(start)));
                            break;
                        }
                        Reply::Stale => continue,
                        Reply::Wrong => break,
                    }
                }
                () = &mut sleep => {
                    if Instant::now() >= plan.end {
                        return Ok(ExchangeEnd::Deadline);
                    }
                    rec.error(FailureKind::Loss, || {
                        format!(
                            "loss: no reply to datagram {seq} ({size} bytes) within {:?}",
                            plan.timeout
                        )
                    });
                    break;
                }
            }
        }
        seq += 1;
    }
}

/// Checks a reply of `got.len()` bytes against message `seq`, and, if it
/// is not that, against the [`RECENT`] messages before it. Counts a wrong
/// reply in `rec`.
fn classify(pattern: &Pattern, seq: u64, size: usize, got: &[u8], rec: &Recorder) -> Reply {
    let offset = seq * size as u64;
    let wrong = |kind: FailureKind, detail: String| {
        rec.error(kind, || detail);
        Reply::Wrong
    };
    if got.len() > size {
        return wrong(
            FailureKind::Mismatch,
            format!(
                "echo mismatch: {} bytes came back for datagram {seq} of {size} bytes",
                got.len()
            ),
        );
    }
    let first = match pattern.check(offset, got) {
        Ok(()) if got.len() == size => return Reply::Current,
        Ok(()) => None,
        Err(m) => Some(m),
    };
    let earlier = (1..=RECENT.min(seq)).any(|back| {
        let from = (seq - back) * size as u64;
        got.len() == size && pattern.check(from, got).is_ok()
    });
    if earlier {
        return Reply::Stale;
    }
    match first {
        Some(m) => wrong(
            FailureKind::Mismatch,
            format!(
                "echo mismatch at byte {} of datagram {seq}: sent {:#04x}, got {:#04x}",
                m.offset - offset,
                m.expected,
                m.got
            ),
        ),
        None => wrong(
            FailureKind::ShortEcho,
            format!(
                "short echo: {} of datagram {seq}'s {size} bytes came back",
                got.len()
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A blocking UDP echo server on a thread of its own, answering every
    /// datagram except those `drop` picks (by datagram number from 0) and
    /// flipping the first byte of those `corrupt` picks. Stops when dropped.
    struct Echo {
        addr: SocketAddr,
        stop: Arc<AtomicBool>,
    }

    impl Echo {
        fn start(drop: fn(u64) -> bool, corrupt: fn(u64) -> bool) -> Echo {
            let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            let addr = socket.local_addr().unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let stopping = stop.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                let mut n = 0u64;
                while !stopping.load(Ordering::Relaxed) {
                    let Ok((len, from)) = socket.recv_from(&mut buf) else {
                        continue;
                    };
                    if !drop(n) {
                        if corrupt(n) {
                            buf[0] ^= 1;
                        }
                        let _ = socket.send_to(&buf[..len], from);
                    }
                    n += 1;
                }
            });
            Echo { addr, stop }
        }
    }

    impl Drop for Echo {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
        }
    }

    fn plan(size: usize, limit: u64, timeout: Duration) -> ExchangePlan {
        ExchangePlan {
            timeout,
            ..ExchangePlan::for_test(size, 1, limit)
        }
    }

    async fn run(echo: &Echo, plan: &ExchangePlan, rec: &Recorder) -> ExchangeEnd {
        let socket = socket(echo.addr, None).unwrap();
        let mut bufs = SlotBuffers::new(plan);
        drive(&socket, Pattern::new(5), plan, &mut bufs, None, rec)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn every_datagram_comes_back_checked() {
        let echo = Echo::start(|_| false, |_| false);
        for size in [1, 64, 1472, crate::transport::udp::MAX_DATAGRAM] {
            let rec = Recorder::counting_from_now();
            let plan = plan(size, 20, Duration::from_secs(5));
            assert_eq!(run(&echo, &plan, &rec).await, ExchangeEnd::LimitReached);
            let t = rec.totals();
            assert_eq!((t.messages, t.hist.len()), (20, 20), "size {size}");
            assert_eq!(t.bytes, 20 * size as u64);
            assert_eq!(t.errors.total(), 0, "{:?}", t.first_error);
        }
    }

    #[tokio::test]
    async fn a_dropped_datagram_is_a_loss_and_the_run_goes_on() {
        let echo = Echo::start(|n| n % 10 == 9, |_| false);
        let rec = Recorder::counting_from_now();
        let plan = plan(32, 30, Duration::from_millis(100));
        assert_eq!(run(&echo, &plan, &rec).await, ExchangeEnd::LimitReached);
        let t = rec.totals();
        // Datagrams 9, 19 and 29 are lost (and any reply a busy machine
        // delays past the timeout; its late arrival is then ignored).
        assert!(t.errors.loss >= 3, "{:?}", t.first_error);
        assert_eq!(t.errors.total(), t.errors.loss);
        assert_eq!(t.messages + t.errors.loss, 30);
        let first = t.first_error.unwrap();
        assert!(first.starts_with("loss: no reply to datagram"), "{first}");
    }

    #[tokio::test]
    async fn a_corrupt_reply_is_a_mismatch() {
        let echo = Echo::start(|_| false, |n| n == 4);
        let rec = Recorder::counting_from_now();
        let plan = plan(32, 10, Duration::from_secs(5));
        assert_eq!(run(&echo, &plan, &rec).await, ExchangeEnd::LimitReached);
        let t = rec.totals();
        assert_eq!(t.errors.mismatch, 1);
        assert_eq!(t.messages, 9);
        let first = t.first_error.unwrap();
        assert!(first.contains("byte 0 of datagram 4"), "{first}");
    }

    #[test]
    fn late_and_duplicate_replies_are_ignored_wrong_ones_are_not() {
        let p = Pattern::new(1);
        let rec = Recorder::counting_from_now();
        let size = 16;
        let message = |seq: u64| {
            let mut v = vec![0u8; size];
            p.fill(seq * size as u64, &mut v);
            v
        };
        assert!(matches!(
            classify(&p, 7, size, &message(7), &rec),
            Reply::Current
        ));
        assert!(matches!(
            classify(&p, 7, size, &message(6), &rec),
            Reply::Stale
        ));
        assert!(matches!(
            classify(&p, 7, size, &message(0), &rec),
            Reply::Stale
        ));
        let kinds = |got: &[u8]| {
            assert!(matches!(classify(&p, 7, size, got, &rec), Reply::Wrong));
            rec.totals().errors
        };
        assert_eq!(kinds(&message(8)).mismatch, 1);
        assert_eq!(kinds(&message(7)[..10]).short_echo, 1);
        let mut long = message(7);
        long.push(0);
        assert_eq!(kinds(&long).mismatch, 2);
        assert_eq!(rec.totals().errors.total(), 3);
    }

    #[test]
    fn datagrams_do_not_allocate() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let echo = Echo::start(|_| false, |_| false);
        let count = |messages: u64| {
            rt.block_on(async {
                let rec = Recorder::counting_from_now();
                let plan = plan(64, messages, Duration::from_secs(5));
                let socket = socket(echo.addr, None).unwrap();
                let mut bufs = SlotBuffers::new(&plan);
                let before = crate::counting::allocations();
                let r = drive(&socket, Pattern::new(2), &plan, &mut bufs, None, &rec).await;
                let after = crate::counting::allocations();
                assert_eq!(r.unwrap(), ExchangeEnd::LimitReached);
                after - before
            })
        };
        let few = count(100);
        let many = count(2100);
        assert!(
            many <= few + 4,
            "{few} allocations for 100 datagrams, {many} for 2100"
        );
    }
}
