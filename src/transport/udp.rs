//! UDP, RFC 862: every datagram is sent back to its sender, the same bytes,
//! nothing more, unless the [reflection guard](super::udp_guard) says no.
//!
//! The server side is one loop per socket (per shard), in batches: read
//! up to 32 datagrams with one `recvmmsg`, have the
//! [guard](super::udp_guard) judge each (its rate limiter's lock taken
//! once for the batch), and send the answers back with `sendmmsg`, in the
//! order the datagrams came. When the socket takes only part of them, the
//! loop waits until it is writable and sends the rest, reading nothing
//! meanwhile: no answer is lost to a full send buffer, nor reordered.
//! Every slot holds 64 KiB, more than any UDP payload (65,507 bytes over
//! IPv4, 65,527 over IPv6), so nothing is answered truncated; that is
//! 2 MiB per socket at most, allocated once, its pages mostly untouched
//! while datagrams are small. Nothing is allocated per datagram. GRO and
//! GSO are left out: they coalesce datagrams of one flow, and an echo
//! server's load is many peers each sending a few.
//!
//! The client side sends one datagram and waits for its reply, resending
//! once if none comes in time.
//!
//! An echo server over UDP on a free port, and a client that sends one
//! datagram and awaits its reply:
//!
//! ```
//! use std::time::Duration;
//! use echoes::transport::UdpClient;
//! use echoes::{Server, ServerConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::bind(ServerConfig::new("udp://127.0.0.1:0".parse()?)).await?;
//! let addr = server.local_addrs()[0].clone(); // with the port picked
//! let shutdown = server.shutdown_handle();
//! let running = tokio::spawn(server.run());
//!
//! let client = UdpClient::connect(&addr).await?;
//! // Wait up to 5 s for the reply, resending once.
//! let reply = client.exchange(b"one datagram", None, Duration::from_secs(5), 1).await?;
//! assert_eq!(reply, b"one datagram");
//!
//! shutdown.shutdown();
//! running.await??;
//! # Ok(())
//! # }
//! ```

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tracing::{debug, warn};

use super::error::ConnectError;
use super::peer::PeerName;
use super::udp_batch::{BATCH, Batch, SLOT};
use super::udp_guard::{self, Checker, Guard, UdpResult};
use crate::addr::{Addr, Transport};
use crate::metrics::{ByteCounter, ErrorKind, Metrics};
use crate::pyrepr::PyBytes;

/// The largest UDP payload over IPv4, and so the largest message the
/// client sends.
pub const MAX_DATAGRAM: usize = 65_507;

/// Binds a UDP socket; IPv6 sockets are IPv6-only, as for TCP.
pub fn bind(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Answers datagrams on `socket` until the future is dropped, each allowed
/// by `guard` (see the module documentation), counting them in `metrics`.
///
/// `guard` is the server's one guard, shared by all its UDP sockets (every
/// shard's included): the socket's own address is recorded in it, so that
/// no socket of the server answers another, and a source's rate is one
/// budget across them all.
pub async fn serve(socket: UdpSocket, guard: Arc<Guard>, metrics: Arc<Metrics>) {
    match socket.local_addr() {
        Ok(local) => guard.add_own(local),
        Err(e) => warn!(
            name = "main",
            "udp: cannot tell the socket's own address: {e}"
        ),
    }
    let mut checker = guard.checker();
    let bytes = metrics.bytes(Transport::Udp);
    // Allocated once; nothing in the loop allocates.
    let mut batch = Batch::new();
    let mut failures = 0u32;
    loop {
        match receive(&socket, &mut batch).await {
            Ok(_) => failures = 0,
            Err(e) => {
                metrics.error(Transport::Udp, ErrorKind::Io);
                // Errors here are about some earlier datagram (an ICMP
                // report) or the system (out of memory): log the first of a
                // burst, back off, carry on.
                if failures == 0 {
                    warn!(name = "main", "udp receive failed: {e}");
                }
                failures = failures.saturating_add(1);
                let delay =
                    Duration::from_millis(1 << failures.min(10)).min(Duration::from_secs(1));
                tokio::time::sleep(delay).await;
                continue;
            }
        }
        judge(&mut batch, &mut checker, &metrics, &bytes);
        answer(&socket, &mut batch, &metrics, &bytes).await;
    }
}

/// Waits for datagrams and reads a batch of them.
///
/// A batch that is not full means the socket's queue is empty: tokio is
/// then told the socket is no longer readable (by answering `WouldBlock`
/// from inside `try_io`, which clears the readiness unless a new datagram
/// has arrived since), as its own streams do after a short read. That
/// spares the `recvmmsg` that would only say `EAGAIN`: one system call in
/// three when batches are small.
async fn receive(socket: &UdpSocket, batch: &mut Batch) -> io::Result<usize> {
    let fd = socket.as_raw_fd();
    loop {
        socket.readable().await?;
        let mut got = 0;
        let result = socket.try_io(Interest::READABLE, || {
            got = batch.recv(fd)?;
            if got < BATCH {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(())
        });
        if got > 0 {
            return Ok(got);
        }
        match result {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
            // Readiness was stale: wait for the next datagram.
            _ => continue,
        }
    }
}

/// A source that no check lets through, for the rare datagram whose
/// address is neither IPv4 nor IPv6.
const NO_SOURCE: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

/// Has `guard` judge every datagram of `batch` and marks those to answer;
/// counts (and logs, at debug level) the others.
fn judge(batch: &mut Batch, guard: &mut Checker, metrics: &Metrics, bytes: &ByteCounter) {
    let n = batch.len();
    let mut srcs = [NO_SOURCE; BATCH];
    for (i, src) in srcs[..n].iter_mut().enumerate() {
        *src = batch.source(i).unwrap_or(NO_SOURCE);
    }
    let mut verdicts = [UdpResult::Answered; BATCH];
    guard.check_batch(&srcs[..n], &mut verdicts[..n], Instant::now());
    let mut refused = [
        (UdpResult::RefusedPort, 0u64),
        (UdpResult::RefusedBroadcast, 0),
        (UdpResult::RefusedRate, 0),
        (UdpResult::RefusedSelf, 0),
    ];
    let mut unsent = 0;
    for (i, (&src, &verdict)) in srcs[..n].iter().zip(&verdicts[..n]).enumerate() {
        let len = batch.data(i).len();
        debug!(name = %PeerName::Inet(src), "received {}", PyBytes(batch.data(i)));
        if batch.truncated(i) {
            // Cannot happen with slots larger than any UDP payload; if it
            // ever does, drop it rather than answer it short.
            unsent += len;
            metrics.error(Transport::Udp, ErrorKind::Io);
            debug!(name = %PeerName::Inet(src), "not answered: larger than {SLOT} bytes");
            continue;
        }
        if verdict == UdpResult::Answered {
            batch.answer(i);
            continue;
        }
        unsent += len;
        if let Some(count) = refused.iter_mut().find(|(r, _)| *r == verdict) {
            count.1 += 1;
        }
        debug!(name = %PeerName::Inet(src), "{}", udp_guard::reason(verdict));
    }
    if unsent > 0 {
        bytes.received_unsent(unsent, unsent);
    }
    for (result, count) in refused {
        if count > 0 {
            metrics.udp_add(result, count);
        }
    }
}

/// Where a batch's answers go: the socket, or a test's stand-in.
trait Transmit {
    /// Sends `batch`'s answers from the `from`-th on, waiting until at
    /// least one can go: how many went, in order, or the error of the first.
    async fn transmit(&self, batch: &mut Batch, from: usize) -> io::Result<usize>;
}

impl Transmit for UdpSocket {
    async fn transmit(&self, batch: &mut Batch, from: usize) -> io::Result<usize> {
        let fd = self.as_raw_fd();
        // `WouldBlock` (a full send buffer) waits here for writability.
        self.async_io(Interest::WRITABLE, || batch.send(fd, from))
            .await
    }
}

/// Sends every answer `batch` marked, in order, however few each call
/// takes. An error costs only the answer it is about (counted, and its
/// bytes counted unsent); the rest still go.
async fn answer(out: &impl Transmit, batch: &mut Batch, metrics: &Metrics, bytes: &ByteCounter) {
    let total = batch.reply_count();
    let (mut next, mut echoed, mut answered) = (0, 0, 0u64);
    while next < total {
        match out.transmit(batch, next).await {
            Ok(sent) => {
                let sent = sent.min(total - next);
                for k in next..next + sent {
                    let i = batch.reply(k);
                    echoed += batch.data(i).len();
                    debug!(
                        name = %PeerName::Inet(batch.source(i).unwrap_or(NO_SOURCE)),
                        "sent {}",
                        PyBytes(batch.data(i))
                    );
                }
                next += sent;
                answered += sent as u64;
            }
            Err(e) => {
                let i = batch.reply(next);
                let len = batch.data(i).len();
                bytes.received_unsent(len, len);
                metrics.error(Transport::Udp, ErrorKind::Io);
                debug!(
                    name = %PeerName::Inet(batch.source(i).unwrap_or(NO_SOURCE)),
                    "send failed: {e}"
                );
                next += 1;
            }
        }
    }
    if answered > 0 {
        bytes.echoed(echoed);
        metrics.udp_add(UdpResult::Answered, answered);
    }
}

/// A client's UDP socket, connected to one server so that only its replies
/// (and its ICMP errors, as `ECONNREFUSED`) come back.
#[derive(Debug)]
pub struct UdpClient {
    socket: UdpSocket,
    target: String,
}

/// Why a datagram exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The message does not fit in one datagram.
    #[error("a message of {0} bytes does not fit in one UDP datagram (at most 65507)")]
    TooLarge(usize),
    /// No reply came, even after resending.
    #[error("no reply after {tries} tries, {timeout:?} each")]
    Timeout {
        /// Datagrams sent.
        tries: u32,
        /// How long each was waited for.
        timeout: Duration,
    },
    /// The server's host said nobody listens there, or the socket failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
}

impl UdpClient {
    /// Resolves `addr` and connects a UDP socket to its first address that
    /// the system can route to.
    pub async fn connect(addr: &Addr) -> Result<UdpClient, ConnectError> {
        let (host, port, targets) = super::resolve::resolve_inet(addr).await?;
        let target = format!("{host} port {port}");
        let socket = super::resolve::first_that_connects(targets, &target, |to| async move {
            let local: SocketAddr = if to.is_ipv6() {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            } else {
                (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
            };
            let socket = UdpSocket::bind(local).await?;
            socket.connect(to).await?;
            Ok(socket)
        })
        .await?;
        Ok(UdpClient { socket, target })
    }

    /// Sends `msg` as one datagram and returns the reply, waiting `timeout`
    /// for it and resending up to `retries` times. A reply equal to
    /// `stale` (the previous message, whose late duplicate may still be on
    /// its way after a resend) is skipped.
    pub async fn exchange(
        &self,
        msg: &[u8],
        stale: Option<&[u8]>,
        timeout: Duration,
        retries: u32,
    ) -> Result<Vec<u8>, ExchangeError> {
        if msg.len() > MAX_DATAGRAM {
            return Err(ExchangeError::TooLarge(msg.len()));
        }
        let mut buf = vec![0u8; 64 * 1024];
        for _ in 0..=retries {
            self.socket.send(msg).await.map_err(|e| self.err(e))?;
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                let n = match tokio::time::timeout_at(deadline, self.socket.recv(&mut buf)).await {
                    Err(_) => break,
                    Ok(r) => r.map_err(|e| self.err(e))?,
                };
                let reply = &buf[..n];
                if reply != msg && stale == Some(reply) {
                    debug!(name = "echo_client", "skipping a late duplicate reply");
                    continue;
                }
                return Ok(reply.to_vec());
            }
        }
        Err(ExchangeError::Timeout {
            tries: retries + 1,
            timeout,
        })
    }

    fn err(&self, error: io::Error) -> ExchangeError {
        ExchangeError::Connect(ConnectError::Connect {
            target: self.target.clone(),
            error,
        })
    }
}

#[cfg(test)]
mod alloc_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::VecDeque;

    /// A stand-in for the socket that takes as many answers per call as
    /// its script says (all of them once the script is done), and records
    /// the bytes of each one that went.
    struct Script {
        steps: RefCell<VecDeque<io::Result<usize>>>,
        sent: RefCell<Vec<Vec<u8>>>,
    }

    impl Transmit for Script {
        async fn transmit(&self, batch: &mut Batch, from: usize) -> io::Result<usize> {
            let step = self.steps.borrow_mut().pop_front();
            let n = step.unwrap_or(Ok(usize::MAX))?;
            let n = n.min(batch.reply_count() - from);
            for k in from..from + n {
                let bytes = batch.data(batch.reply(k)).to_vec();
                self.sent.borrow_mut().push(bytes);
            }
            Ok(n)
        }
    }

    fn datagrams(n: usize) -> Vec<(SocketAddr, Vec<u8>)> {
        (0..n)
            .map(|i| {
                let src = SocketAddr::from(([127, 0, 0, 1], 5000 + i as u16));
                (src, vec![i as u8; 10 * i + 1])
            })
            .collect()
    }

    fn batch_of(d: &[(SocketAddr, Vec<u8>)]) -> Box<Batch> {
        let refs: Vec<(SocketAddr, &[u8])> = d.iter().map(|(a, b)| (*a, &b[..])).collect();
        Batch::filled(&refs)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn partial_sends_lose_and_reorder_nothing() {
        let d = datagrams(10);
        let mut batch = batch_of(&d);
        for i in 0..10 {
            batch.answer(i);
        }
        // 3 go, then 1, then the 5th fails, then 2, then the rest.
        let eperm = io::Error::from_raw_os_error(libc::EPERM);
        let script = Script {
            steps: RefCell::new([Ok(3), Ok(1), Err(eperm), Ok(2)].into()),
            sent: RefCell::default(),
        };
        let metrics = Arc::new(Metrics::new());
        let bytes = metrics.bytes(Transport::Udp);
        answer(&script, &mut batch, &metrics, &bytes).await;
        let expected: Vec<Vec<u8>> = d
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 4)
            .map(|(_, (_, b))| b.clone())
            .collect();
        assert_eq!(
            *script.sent.borrow(),
            expected,
            "in order, only the 5th missing"
        );
        assert_eq!(metrics.udp_datagrams(UdpResult::Answered), 9);
        assert_eq!(metrics.errors(Transport::Udp, ErrorKind::Io), 1);
        let snap = metrics.snapshot(Transport::Udp);
        let total: usize = d.iter().map(|(_, b)| b.len()).sum();
        assert_eq!(snap.received, total as u64);
        assert_eq!(snap.sent, (total - d[4].1.len()) as u64);
    }

    #[test]
    fn judging_marks_only_what_the_guard_allows() {
        let guard = Arc::new(Guard::new(2));
        guard.add_own("127.0.0.1:7007".parse().unwrap());
        let mut checker = guard.checker();
        let own = ("127.0.0.1:7007".parse().unwrap(), vec![1u8; 3]);
        let privileged = ("127.0.0.1:53".parse().unwrap(), vec![2u8; 5]);
        let d: Vec<(SocketAddr, Vec<u8>)> =
            [own, privileged].into_iter().chain(datagrams(4)).collect();
        let mut batch = batch_of(&d);
        let metrics = Arc::new(Metrics::new());
        judge(
            &mut batch,
            &mut checker,
            &metrics,
            &metrics.bytes(Transport::Udp),
        );
        // The rate is 2 a second for 127.0.0.1, whatever the port.
        let marked: Vec<usize> = (0..batch.reply_count()).map(|k| batch.reply(k)).collect();
        assert_eq!(marked, [2, 3]);
        for (result, n) in [
            (UdpResult::RefusedSelf, 1),
            (UdpResult::RefusedPort, 1),
            (UdpResult::RefusedRate, 2),
            (UdpResult::RefusedBroadcast, 0),
        ] {
            assert_eq!(metrics.udp_datagrams(result), n, "{result:?}");
        }
        let snap = metrics.snapshot(Transport::Udp);
        let refused: usize = [0, 1, 4, 5].iter().map(|&i| d[i].1.len()).sum();
        assert_eq!((snap.received, snap.sent), (refused as u64, 0));
    }
}
