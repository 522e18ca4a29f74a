//! The server's step between `accept` and the echo: read a PROXY header
//! off the socket, within a deadline, without ever waiting for bytes that
//! will not come.
//!
//! Two ways to take the header, both at most one read more than a plain
//! connection costs, and nothing per message:
//!
//! - [`Take::Read`] (TCP, Unix): read what is there, as the echo loop's
//!   first read would. The header is parsed out of the worker thread's
//!   buffer; whatever came after it in the same read is handed back, to be
//!   echoed first. When the header and the data arrive together, this
//!   costs no extra system call at all.
//! - [`Take::Peek`] (TLS): `recv(MSG_PEEK)`, then read exactly the
//!   header's bytes, so that the TLS handshake finds its ClientHello in
//!   the kernel, untouched.
//!
//! In required mode, anything but a complete, valid header within the
//! header timeout closes the connection. In optional mode, the first bytes
//! decide: the start of a signature (`P`, `PRO`, `\r\n\r\n`…) waits at
//! most [`SIGNATURE_WAIT`] for the rest of it, after which the bytes are
//! taken as data (so a client that sent `PRO` and waits for its echo gets
//! it, late); a full signature (`PROXY `, or v2's 12 bytes) commits the
//! connection to a header within the timeout. The first read is tried at
//! once, as the echo loop's is: the deadline's timer is armed only when
//! the header has not arrived yet. Memory stays bounded: the
//! bytes held while a header is incomplete are at most one header's worth
//! (107 bytes for v1, 64 KiB for v2) plus one read.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tracing::{debug, info};

use crate::addr::Transport;
use crate::metrics::{ErrorKind, Metrics};
use crate::proxy::ProxyMode;
use crate::proxy::header::ProxyHeader;
use crate::proxy::parse::{HeaderError, Parse, V2_MAX_LEN, parse};
use crate::pyrepr::PyBytes;
use crate::transport::{PeerName, StreamSocket};
use crate::units::format_duration;

/// In optional mode, how long the start of a signature may wait for the
/// rest of it before the bytes are taken as data. Real proxies send the
/// header at once, so this only delays a client whose first bytes happen
/// to look like one.
pub const SIGNATURE_WAIT: Duration = Duration::from_millis(250);

/// The most the first read takes; a larger header is read on.
const FIRST_READ: usize = 4096;

thread_local! {
    /// Where headers are read or peeked: one buffer per worker thread,
    /// borrowed between two awaits only, as the echo loop's.
    static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// How the header is taken off the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Read: the bytes past the header come back in [`Outcome`].
    Read,
    /// Peek, then read the header alone: the rest stays in the kernel
    /// (for a TLS handshake or an HTTP request that a library reads).
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    Peek,
}

/// The time limits of the header step.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// For the whole header, from the first byte (required mode: from the
    /// connection).
    pub header: Duration,
    /// Optional mode: for the first byte (the server's idle timeout).
    pub idle: Option<Duration>,
}

/// What the header step found.
// Made once per connection and moved a few times: not worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Outcome {
    /// A valid header, and the bytes read past it (none with
    /// [`Take::Peek`]), which are the peer's first data.
    Header {
        /// The header.
        header: ProxyHeader,
        /// Data read in the same read as the header.
        rest: Vec<u8>,
    },
    /// Optional mode: no header. `data` is what was read (none with
    /// [`Take::Peek`]): the peer's first data.
    Plain {
        /// Data read while deciding.
        data: Vec<u8>,
    },
    /// Optional mode: nothing came for the idle timeout.
    Idle,
}

/// Why a connection was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// A malformed header.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// Required mode, and the connection does not start with a signature.
    #[error("no PROXY header: the connection starts with {0}")]
    Missing(String),
    /// The header was not complete in time.
    #[error("no complete PROXY header within {0}")]
    Timeout(String),
    /// The peer closed before the header was complete.
    #[error("closed before its PROXY header was complete")]
    Closed,
    /// Reading failed.
    #[error("reading the PROXY header: {0}")]
    Io(#[from] io::Error),
}

/// How far the bytes so far have got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Nothing,
    /// The start of a signature.
    Undecided,
    /// A signature: a header has begun.
    Incomplete,
}

/// What one read (or peek) did.
#[allow(clippy::large_enum_variant)]
enum Step {
    Done(Outcome),
    /// Keep waiting; `drained` when the socket has nothing more now.
    More {
        drained: bool,
        seen: Seen,
    },
}

/// Reads a header off `io` as `mode` says (not [`ProxyMode::Off`]); see
/// the module documentation.
pub async fn read_header<S: StreamSocket>(
    io: &AsyncFd<S>,
    mode: ProxyMode,
    deadlines: Deadlines,
    take: Take,
) -> Result<Outcome, ProxyError> {
    let start = Instant::now();
    let mut first_byte = start;
    let mut seen = Seen::Nothing;
    let mut held: Vec<u8> = Vec::new();
    // The header usually arrives with the connection: read before arming
    // a timer, which costs tokio a wake-up of its own driver (an eventfd
    // write) per connection. Only if nothing is there yet is it waited
    // for, within the deadline.
    let mut try_now = true;
    loop {
        let mut guard = None;
        if !std::mem::take(&mut try_now) {
            // A zero timeout is none, as everywhere on the command line.
            let header = Some(deadlines.header).filter(|d| !d.is_zero());
            let deadline = match (mode, seen) {
                (ProxyMode::Required, _) => header.map(|d| start + d),
                (_, Seen::Nothing) => deadlines.idle.map(|d| start + d),
                (_, Seen::Undecided) => {
                    Some(first_byte + SIGNATURE_WAIT.min(header.unwrap_or(SIGNATURE_WAIT)))
                }
                (_, Seen::Incomplete) => header.map(|d| first_byte + d),
            };
            let ready = match deadline {
                Some(at) => tokio::time::timeout_at(at.into(), io.readable()).await,
                None => Ok(io.readable().await),
            };
            let Ok(ready) = ready else {
                return match (mode, seen) {
                    (ProxyMode::Optional, Seen::Nothing) => Ok(Outcome::Idle),
                    (ProxyMode::Optional, Seen::Undecided) => Ok(Outcome::Plain { data: held }),
                    _ => Err(ProxyError::Timeout(format_duration(deadlines.header))),
                };
            };
            guard = Some(ready?);
        }
        let sock = io.get_ref();
        let step = match take {
            Take::Read => read_step(sock, &mut held, mode, seen)?,
            Take::Peek => peek_step(sock.as_raw_fd(), mode, seen)?,
        };
        match step {
            Step::Done(outcome) => return Ok(outcome),
            Step::More { drained, seen: now } => {
                if seen == Seen::Nothing && now != Seen::Nothing {
                    first_byte = Instant::now();
                }
                seen = now;
                if drained && let Some(guard) = guard.as_mut() {
                    guard.clear_ready();
                }
            }
        }
    }
}

/// What the parse of everything so far means for the step.
fn decide(
    view: &[u8],
    mode: ProxyMode,
    rest_of: impl FnOnce(usize) -> Vec<u8>,
    data: impl FnOnce() -> Vec<u8>,
) -> Result<Result<Outcome, Seen>, ProxyError> {
    match parse(view)? {
        Parse::Header(header) => {
            let rest = rest_of(header.len);
            Ok(Ok(Outcome::Header { header, rest }))
        }
        Parse::NotProxy if mode == ProxyMode::Optional => Ok(Ok(Outcome::Plain { data: data() })),
        Parse::NotProxy => Err(ProxyError::Missing(
            PyBytes(&view[..view.len().min(24)]).to_string(),
        )),
        Parse::Undecided => Ok(Err(Seen::Undecided)),
        Parse::Incomplete => Ok(Err(Seen::Incomplete)),
    }
}

/// What one read or peek got: bytes, or a step already decided. Made
/// once per read and matched at once: not worth a box.
#[allow(clippy::large_enum_variant)]
enum Got {
    Bytes(usize),
    Step(Step),
}

/// What the read and the peek share: end of stream before a header is
/// data in optional mode (what was `held`) and an error otherwise; nothing
/// there now, or an interrupted call, is a step with nothing new.
fn got(
    result: io::Result<usize>,
    mode: ProxyMode,
    seen: Seen,
    held: &mut Vec<u8>,
) -> Result<Got, ProxyError> {
    match result {
        Ok(0) => match (mode, seen) {
            (ProxyMode::Optional, Seen::Nothing | Seen::Undecided) => {
                let data = std::mem::take(held);
                Ok(Got::Step(Step::Done(Outcome::Plain { data })))
            }
            _ => Err(ProxyError::Closed),
        },
        Ok(n) => Ok(Got::Bytes(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Got::Step(Step::More {
            drained: true,
            seen,
        })),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(Got::Step(Step::More {
            drained: false,
            seen,
        })),
        Err(e) => Err(e.into()),
    }
}

/// One read: parse what was held plus what came.
fn read_step<S: StreamSocket>(
    sock: &S,
    held: &mut Vec<u8>,
    mode: ProxyMode,
    seen: Seen,
) -> Result<Step, ProxyError> {
    // Read on only as far as a v2 header's declared end, so that the data
    // after it stays in the kernel.
    let want = match held.get(14..16) {
        Some(len)
            if seen == Seen::Incomplete && held.starts_with(crate::proxy::parse::V2_SIGNATURE) =>
        {
            let total = 16 + usize::from(u16::from_be_bytes([len[0], len[1]]));
            total.saturating_sub(held.len()).clamp(1, V2_MAX_LEN)
        }
        _ => FIRST_READ,
    };
    BUF.with_borrow_mut(|buf| {
        if buf.len() < want {
            buf.resize(want, 0);
        }
        let n = match got(sock.recv(&mut buf[..want]), mode, seen, held)? {
            Got::Bytes(n) => n,
            Got::Step(step) => return Ok(step),
        };
        let drained = n < want;
        let decided = if held.is_empty() {
            let view = &buf[..n];
            decide(view, mode, |len| view[len..].to_vec(), || view.to_vec())?
        } else {
            held.extend_from_slice(&buf[..n]);
            let whole = std::mem::take(held);
            let decided = decide(&whole, mode, |len| whole[len..].to_vec(), || whole.clone())?;
            *held = whole;
            decided
        };
        match decided {
            Ok(outcome) => Ok(Step::Done(outcome)),
            Err(seen) => {
                if held.is_empty() {
                    held.extend_from_slice(&buf[..n]);
                }
                Ok(Step::More { drained, seen })
            }
        }
    })
}

/// One peek: parse what the kernel holds; on a header, read exactly it.
fn peek_step(fd: i32, mode: ProxyMode, seen: Seen) -> Result<Step, ProxyError> {
    BUF.with_borrow_mut(|buf| {
        if buf.len() < V2_MAX_LEN {
            buf.resize(V2_MAX_LEN, 0);
        }
        let peeked = recv(fd, &mut buf[..V2_MAX_LEN], libc::MSG_PEEK);
        let n = match got(peeked, mode, seen, &mut Vec::new())? {
            Got::Bytes(n) => n,
            Got::Step(step) => return Ok(step),
        };
        match decide(&buf[..n], mode, |_| Vec::new(), Vec::new)? {
            Ok(outcome) => {
                if let Outcome::Header { header, .. } = &outcome {
                    consume(fd, &mut buf[..header.len])?;
                }
                Ok(Step::Done(outcome))
            }
            // The same bytes stay there: wait for more to arrive.
            Err(seen) => Ok(Step::More {
                drained: true,
                seen,
            }),
        }
    })
}

/// Reads exactly `buf.len()` bytes that a peek showed are there.
fn consume(fd: i32, buf: &mut [u8]) -> io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        match recv(fd, &mut buf[got..], 0) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn recv(fd: i32, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of its length; a bad descriptor
    // makes recv fail, nothing worse.
    let n = unsafe {
        libc::recv(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            flags | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// A connection the header step let through.
#[derive(Debug)]
pub struct Admitted {
    /// Who the connection is with: the header's client, or the socket's
    /// peer when it names none.
    pub peer: PeerName,
    /// The header, if there was one.
    pub header: Option<ProxyHeader>,
    /// The peer's first data, already read, to be echoed first.
    pub first: Vec<u8>,
    /// The socket's own peer: the proxy, when there was a header.
    pub proxy: PeerName,
}

impl Admitted {
    /// What the `connection accepted` line adds: the proxy the connection
    /// came through, and how.
    pub fn via(&self) -> Via<'_> {
        Via(self)
    }
}

/// ` via proxy 127.0.0.1 port 40000 (PROXY v2)`, or nothing without a
/// header; see [`Admitted::via`].
pub struct Via<'a>(&'a Admitted);

impl fmt::Display for Via<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(header) = &self.0.header else {
            return Ok(());
        };
        let proxy = ProxyName(self.0.proxy);
        if header.client().is_some() {
            write!(f, " via proxy {proxy} ({})", header.kind())
        } else {
            write!(
                f,
                " from proxy {proxy} ({}: no client address)",
                header.kind()
            )
        }
    }
}

/// A proxy as the log names it: `127.0.0.1 port 40000`, as the
/// `starting up` line names an address.
struct ProxyName(PeerName);

impl fmt::Display for ProxyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            PeerName::Inet(a) => write!(f, "{} port {}", a.ip().to_canonical(), a.port()),
            PeerName::Unix(n) => write!(f, "unix peer {n}"),
        }
    }
}

/// A listener's PROXY protocol policy, shared by its connections: the
/// time limits, and the log of refusals, at most one line a second.
#[derive(Debug)]
pub struct Gate {
    header_timeout: Duration,
    /// When the next refusal may be logged, and how many were not since
    /// the last line.
    refusals: Mutex<(Instant, u64)>,
}

impl Gate {
    /// At most one refusal line per this long.
    pub const LOG_EVERY: Duration = Duration::from_secs(1);

    /// A gate with this header timeout.
    pub fn new(header_timeout: Duration) -> Gate {
        Gate {
            header_timeout,
            refusals: Mutex::new((Instant::now(), 0)),
        }
    }

    /// Runs the header step for one connection and accounts for it: a
    /// header is counted in the metrics; a refusal is counted as a
    /// `proxy` error and logged (at most once a second); `None` means the
    /// connection is to be closed (refused, or idle before its first byte).
    #[allow(clippy::too_many_arguments)]
    pub async fn admit<S: StreamSocket>(
        &self,
        io: &AsyncFd<S>,
        peer: PeerName,
        mode: ProxyMode,
        take: Take,
        idle: Option<Duration>,
        transport: Transport,
        metrics: &Metrics,
    ) -> Option<Admitted> {
        let deadlines = Deadlines {
            header: self.header_timeout,
            idle,
        };
        match read_header(io, mode, deadlines, take).await {
            Ok(Outcome::Header { header, rest }) => {
                metrics.proxy_header(transport, header.version);
                if !header.tlvs.is_empty() {
                    debug!(name = %peer, "{} TLVs: {}", header.kind(), header.tlvs);
                }
                let real = header.client().map_or(peer, PeerName::Inet);
                Some(Admitted {
                    peer: real,
                    header: Some(header),
                    first: rest,
                    proxy: peer,
                })
            }
            Ok(Outcome::Plain { data }) => Some(Admitted {
                peer,
                header: None,
                first: data,
                proxy: peer,
            }),
            Ok(Outcome::Idle) => {
                info!(name = %peer, "connection accepted");
                info!(
                    name = %peer,
                    "idle for {}",
                    idle.map(format_duration).unwrap_or_default()
                );
                info!(name = %peer, "closing");
                None
            }
            Err(e) => {
                metrics.error(transport, ErrorKind::Proxy);
                self.refused(peer, &e);
                None
            }
        }
    }

    /// Logs a refusal, or counts it when one was logged less than
    /// [`LOG_EVERY`](Self::LOG_EVERY) ago.
    fn refused(&self, peer: PeerName, e: &ProxyError) {
        let now = Instant::now();
        let unlogged = {
            let mut refusals = self
                .refusals
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let (next, unlogged) = &mut *refusals;
            if now < *next {
                *unlogged += 1;
                debug!(name = %peer, "refused: {e}");
                return;
            }
            *next = now + Self::LOG_EVERY;
            std::mem::take(unlogged)
        };
        if unlogged == 0 {
            info!(name = %peer, "refused: {e}");
        } else {
            info!(
                name = %peer,
                "refused: {e} ({unlogged} more refusals since the last line)"
            );
        }
    }
}
