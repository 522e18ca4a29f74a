//! A tiny HTTP/1.1 responder for `GET /metrics`: one request per
//! connection, then close. Enough for Prometheus, `curl` and a browser,
//! and written here rather than on hyper so that the metrics page needs
//! no feature: a server built without `http` (an embedder's TCP echo)
//! still serves it, and hyper stays off its dependency list.
//!
//! A scrape endpoint should not become a way in, nor be starved by peers
//! that connect and say nothing, nor refuse a burst of honest scrapes.
//! Every connection is held in one of [`MAX_CONCURRENT`] slots (the bound
//! on the descriptors and memory the endpoint holds: a few KiB each), and
//! one that has not sent its whole request head within [`HEAD_DEADLINE`]
//! is closed: slow and silent peers are cut by that deadline, not by the
//! number of slots. When a connection arrives and every slot is held, the
//! oldest connection still waiting for its request is closed to make
//! room, so a new scrape is served at once however many idle peers there
//! are, and however fast they reconnect. When every slot is busy
//! answering, accepting pauses until one is free: the newcomers wait in
//! the listen backlog and are each answered in turn, none is closed
//! unanswered. Each connection closed without an answer is counted in
//! `echoes_metrics_connections_dropped_total`, by reason.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::counters::Metrics;
pub use super::dropped::Dropped;

/// The largest request head read; anything longer is refused.
const MAX_HEAD: usize = 8 * 1024;

/// How long a client has, from its connection, to send its request head.
/// Prometheus, `curl` and browsers send it at once.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(2);

/// How long a connection must have been silent before a newcomer may take
/// its slot. An honest client's request follows its connection within
/// microseconds on an idle machine, but a loaded one can hold a client
/// back for hundreds of milliseconds: at 200 ms, a burst of 2,000 scrapes
/// on a busy 2-core machine lost a dozen of its own to eviction (their
/// request arrived after the close, and got a reset). A second keeps that
/// margin and still halves what a silent peer holds ([`HEAD_DEADLINE`]).
const EVICT_AFTER: Duration = Duration::from_secs(1);

/// How long a client has to take the response (a few KiB, which fits in
/// any socket buffer: this only bounds a peer with a zero window).
const WRITE_DEADLINE: Duration = Duration::from_secs(5);

/// Connections held at once, waiting for their request or being answered:
/// a burst of this many scrapes is answered at once, a larger one in turn.
pub const MAX_CONCURRENT: usize = 512;

/// The connections held, oldest first.
#[derive(Default)]
struct Slots {
    next_id: u64,
    held: VecDeque<Held>,
}

/// The slots, and the accept loop's wake-up when one is given back.
#[derive(Default)]
struct Endpoint {
    slots: Mutex<Slots>,
    released: Notify,
}

struct Held {
    id: u64,
    /// Who it is from: a peer that holds many slots gives one up first.
    ip: IpAddr,
    /// Its socket, to look for a request not read yet.
    fd: RawFd,
    /// Still waiting for its request head: may be evicted.
    idle: bool,
    /// When it was accepted.
    since: Instant,
    evict: CancellationToken,
}

impl Slots {
    /// How long from `now` until the next held connection that is still
    /// too young to evict becomes old enough; `None` when none is (every
    /// one busy, or already old enough).
    fn until_next_evictable(&self, now: Instant) -> Option<Duration> {
        self.held
            .iter()
            .filter(|h| h.idle)
            .map(|h| (h.since + EVICT_AFTER).saturating_duration_since(now))
            .filter(|d| !d.is_zero())
            .min()
    }

    /// Which held connection to close for a newcomer at `now`: one silent
    /// for [`EVICT_AFTER`] at least, whose request has not already arrived
    /// unread (`has_unread`: it is about to be answered), from the address
    /// that holds the most slots, the oldest of those. `None` when there
    /// is none such.
    fn victim(&self, now: Instant, has_unread: impl Fn(RawFd) -> bool) -> Option<usize> {
        let silent = |h: &Held| h.idle && now.duration_since(h.since) >= EVICT_AFTER;
        let evictable: Vec<usize> = (0..self.held.len())
            .filter(|&i| silent(&self.held[i]) && !has_unread(self.held[i].fd))
            .collect();
        let holds = |ip: IpAddr| self.held.iter().filter(|h| h.ip == ip).count();
        let most = evictable.iter().map(|&i| holds(self.held[i].ip)).max()?;
        // `evictable` is oldest first, so `find` takes the oldest.
        evictable
            .into_iter()
            .find(|&i| holds(self.held[i].ip) == most)
    }
}

/// Whether a request (or any byte) waits unread on socket `fd`.
fn has_unread(fd: RawFd) -> bool {
    let mut byte = 0u8;
    // SAFETY: recv writes at most one byte into `byte`; MSG_PEEK leaves it
    // in the socket and MSG_DONTWAIT never blocks. `fd` is a socket held
    // open by a connection listed in the slots (checked under their lock).
    let n = unsafe {
        libc::recv(
            fd,
            (&raw mut byte).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n > 0
}

/// One connection's hold on a slot, given back when dropped.
struct Slot {
    endpoint: Arc<Endpoint>,
    id: u64,
    evict: CancellationToken,
}

impl Slot {
    /// Takes a slot for a connection from `peer` on socket `fd`, first
    /// closing a silent one if every slot is held (see [`Slots::victim`]);
    /// `None` when none can be closed.
    fn take(
        endpoint: &Arc<Endpoint>,
        peer: SocketAddr,
        fd: RawFd,
        metrics: &Metrics,
    ) -> Option<Slot> {
        let mut s = endpoint
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if s.held.len() >= MAX_CONCURRENT {
            let victim = s.victim(Instant::now(), has_unread)?;
            if let Some(victim) = s.held.remove(victim) {
                victim.evict.cancel();
                metrics.metrics_dropped(Dropped::Evicted);
            }
        }
        let id = s.next_id;
        s.next_id += 1;
        let evict = CancellationToken::new();
        s.held.push_back(Held {
            id,
            ip: peer.ip().to_canonical(),
            fd,
            idle: true,
            since: Instant::now(),
            evict: evict.clone(),
        });
        Some(Slot {
            endpoint: endpoint.clone(),
            id,
            evict,
        })
    }

    /// The request head is in: this connection is answered, not evicted.
    fn busy(&self) {
        let mut s = self
            .endpoint
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(h) = s.held.iter_mut().find(|h| h.id == self.id) {
            h.idle = false;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut s = self
            .endpoint
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Gone already when evicted.
        if let Some(i) = s.held.iter().position(|h| h.id == self.id) {
            s.held.remove(i);
        }
        drop(s);
        self.endpoint.released.notify_one();
    }
}

/// A scrape: a connection to the metrics page, and its slot. Fields drop
/// in order: the slot (and with it the listed descriptor) goes before the
/// socket closes, so the slots never name a descriptor number that may be
/// reused.
struct Scrape {
    slot: Slot,
    stream: TcpStream,
}

/// Serves `metrics` on `listener` until the future is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    let endpoint = Arc::new(Endpoint::default());
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                debug!(name = "metrics", "accept: {e}");
                // Out of descriptors and the like: do not spin on it.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // No slot to take: wait for one to be given back, or for the next
        // silent one to become evictable, accepting nothing meanwhile.
        let slot = loop {
            match Slot::take(&endpoint, peer, stream.as_raw_fd(), &metrics) {
                Some(slot) => break slot,
                None => {
                    let wait = endpoint
                        .slots
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .until_next_evictable(Instant::now())
                        .unwrap_or(EVICT_AFTER);
                    let _ = tokio::time::timeout(wait, endpoint.released.notified()).await;
                }
            }
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            if let Err(e) = respond(Scrape { slot, stream }, &metrics).await {
                debug!(name = "metrics", "{peer}: {e}");
            }
        });
    }
}

/// What came in before the answer.
enum Head {
    /// A whole request head.
    Complete(Vec<u8>),
    /// More than [`MAX_HEAD`] bytes and no end in sight.
    TooLarge,
    /// The peer closed before finishing one.
    Closed,
}

/// Reads one request head, within the deadline and unless evicted, and
/// answers it.
async fn respond(mut conn: Scrape, metrics: &Metrics) -> io::Result<()> {
    let head = tokio::select! {
        biased;
        () = conn.slot.evict.cancelled() => return Ok(()),
        head = tokio::time::timeout(HEAD_DEADLINE, read_head(&mut conn.stream)) => head,
    };
    let head = match head {
        Ok(head) => head?,
        Err(_) => {
            metrics.metrics_dropped(Dropped::Timeout);
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no request in time",
            ));
        }
    };
    conn.slot.busy();
    let answer = async {
        match head {
            Head::Closed => Ok(()),
            Head::TooLarge => {
                write(
                    &mut conn.stream,
                    "431 Request Header Fields Too Large",
                    "",
                    false,
                )
                .await
            }
            Head::Complete(head) => {
                let request_line = head.split(|&b| b == b'\n').next().unwrap_or_default();
                let request_line = String::from_utf8_lossy(request_line);
                let (status, body) = route(request_line.trim_end(), metrics);
                let with_body = !request_line.starts_with("HEAD ");
                write(&mut conn.stream, status, &body, with_body).await
            }
        }
    };
    tokio::time::timeout(WRITE_DEADLINE, answer)
        .await
        .unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "response not taken",
            ))
        })
}

/// Reads until the blank line that ends a request head.
async fn read_head(stream: &mut TcpStream) -> io::Result<Head> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(Head::Closed);
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEAD {
            return Ok(Head::TooLarge);
        }
    }
    Ok(Head::Complete(head))
}

/// What to answer to a request line.
fn route(request_line: &str, metrics: &Metrics) -> (&'static str, String) {
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return ("400 Bad Request", "bad request\n".into());
    };
    if !version.starts_with("HTTP/1.") {
        return ("505 HTTP Version Not Supported", String::new());
    }
    let path = target.split('?').next().unwrap_or_default();
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => ("200 OK", metrics.render()),
        (_, "/metrics") => ("405 Method Not Allowed", "use GET\n".into()),
        ("GET" | "HEAD", "/") => ("200 OK", "echoes: metrics are at /metrics\n".into()),
        _ => (
            "404 Not Found",
            "not found; metrics are at /metrics\n".into(),
        ),
    }
}

async fn write(
    stream: &mut TcpStream,
    status: &str,
    body: &str,
    with_body: bool,
) -> io::Result<()> {
    let mut response = format!(
        "HTTP/1.1 {status}\r\n\
         Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\n\
         Connection: close\r\n",
        body.len()
    );
    if status.starts_with("405") {
        response.push_str("Allow: GET, HEAD\r\n");
    }
    response.push_str("\r\n");
    if with_body {
        response.push_str(body);
    }
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slots held by `(ip, fd, idle)`, oldest first, accepted at `T0`.
    fn slots(held: &[(u8, RawFd, bool)]) -> Slots {
        let mut s = Slots::default();
        for &(ip, fd, idle) in held {
            s.held.push_back(Held {
                id: s.next_id,
                ip: IpAddr::from([10, 0, 0, ip]),
                fd,
                idle,
                since: t0(),
                evict: CancellationToken::new(),
            });
            s.next_id += 1;
        }
        s
    }

    #[test]
    fn the_victim_is_the_oldest_idle_one_of_the_host_holding_most() {
        let none_unread = |_| false;
        let later = t0() + EVICT_AFTER;
        // Host 2 holds three slots, host 1 two: host 2's oldest idle goes,
        // though host 1's is older.
        let s = slots(&[
            (1, 10, true),
            (2, 11, false),
            (2, 12, true),
            (1, 13, true),
            (2, 14, true),
        ]);
        assert_eq!(s.victim(later, none_unread), Some(2));
        // A connection whose request waits unread is about to be answered.
        assert_eq!(s.victim(later, |fd| fd == 12), Some(4));
        assert_eq!(s.victim(later, |fd| fd == 12 || fd == 14), Some(0));
        // One host only: plain oldest idle first.
        let s = slots(&[(1, 10, false), (1, 11, true), (1, 12, true)]);
        assert_eq!(s.victim(later, none_unread), Some(1));
        // Every one busy answering, or about to be: none.
        let s = slots(&[(1, 10, false), (2, 11, true)]);
        assert_eq!(s.victim(later, |fd| fd == 11), None);
        assert_eq!(slots(&[]).victim(later, none_unread), None);
    }

    #[test]
    fn a_connection_just_accepted_is_not_evicted() {
        let s = slots(&[(1, 10, true), (1, 11, true)]);
        assert_eq!(s.victim(t0(), |_| false), None);
        assert_eq!(s.victim(t0() + EVICT_AFTER / 2, |_| false), None);
        assert_eq!(s.victim(t0() + EVICT_AFTER, |_| false), Some(0));
    }

    #[test]
    fn a_full_endpoint_waits_just_until_the_next_one_is_old_enough() {
        let s = slots(&[(1, 10, false), (1, 11, true)]);
        let quarter = EVICT_AFTER / 4;
        assert_eq!(
            s.until_next_evictable(t0() + quarter),
            Some(EVICT_AFTER - quarter)
        );
        // Old enough already, or busy: nothing to wait for but a release.
        assert_eq!(s.until_next_evictable(t0() + EVICT_AFTER), None);
        assert_eq!(slots(&[(1, 10, false)]).until_next_evictable(t0()), None);
    }

    /// One instant for every slot of a test.
    fn t0() -> Instant {
        static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *T0.get_or_init(Instant::now)
    }

    #[test]
    fn routes() {
        let m = Metrics::new();
        assert_eq!(route("GET /metrics HTTP/1.1", &m).0, "200 OK");
        assert_eq!(route("GET /metrics?x=1 HTTP/1.0", &m).0, "200 OK");
        assert!(route("HEAD /metrics HTTP/1.1", &m).1.contains("# TYPE"));
        assert_eq!(
            route("POST /metrics HTTP/1.1", &m).0,
            "405 Method Not Allowed"
        );
        assert_eq!(route("GET /nope HTTP/1.1", &m).0, "404 Not Found");
        assert_eq!(
            route("GET /metrics SPDY/3", &m).0,
            "505 HTTP Version Not Supported"
        );
        assert_eq!(route("garbage", &m).0, "400 Bad Request");
    }
}
