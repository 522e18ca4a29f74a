//! The UDP reflection guard: which datagrams get an answer.
//!
//! An echo over UDP answers whoever the source address claims to be, so a
//! forged source turns the server into a reflector. As OpenBSD's inetd
//! does, nothing is answered whose source port is below 1024 or 2049 (NFS)
//! (two echo/chargen services answering each other never stop,
//! CVE-1999-0103), nor whose source address is unspecified, broadcast or
//! multicast. What passes is rate limited per source IP with a token
//! bucket, in a table of bounded size, so a flood with forged sources
//! cannot make the server a full-speed reflector nor eat its memory.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::metrics::UdpResult;

/// The default replies per second to one source address.
pub const DEFAULT_RATE: u32 = 1000;

/// The most sources the rate limiter tracks at once (about 40 bytes each).
pub const MAX_SOURCES: usize = 16 * 1024;

/// How often the interfaces' broadcast addresses are looked up again.
const BROADCAST_REFRESH: Duration = Duration::from_secs(30);

/// Whether `src` may be answered at all, whatever the rate: the inetd
/// checks on the source port and address. `broadcasts` are the local
/// interfaces' directed broadcast addresses.
pub fn check_source(src: SocketAddr, broadcasts: &[Ipv4Addr]) -> UdpResult {
    match src.ip().to_canonical() {
        IpAddr::V4(ip) => {
            if ip.is_multicast()
                || ip.is_broadcast()
                || ip.octets()[0] == 0
                || ip.octets()[0] == 255
                || broadcasts.contains(&ip)
            {
                return UdpResult::RefusedBroadcast;
            }
        }
        IpAddr::V6(ip) => {
            if ip.is_multicast() || ip.is_unspecified() {
                return UdpResult::RefusedBroadcast;
            }
        }
    }
    if src.port() < 1024 || src.port() == 2049 {
        return UdpResult::RefusedPort;
    }
    UdpResult::Answered
}

/// Why a refusal happened, as the debug log line says it.
pub fn reason(result: UdpResult) -> &'static str {
    match result {
        UdpResult::Answered => "answered",
        UdpResult::RefusedPort => "not answered: source port below 1024 or NFS's 2049",
        UdpResult::RefusedBroadcast => "not answered: broadcast, multicast or unspecified source",
        UdpResult::RefusedRate => "not answered: over the --udp-rate limit for this source",
    }
}

/// One source's token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// A per-source token bucket rate limiter with a bounded table.
///
/// Each source may burst one second's worth, then `rate` per second. A
/// bucket untouched for a second is full again, the same as no bucket, so
/// when the table is full such buckets are dropped; if none can be (more
/// than [`MAX_SOURCES`] sources active within a second, a forged flood),
/// new sources are refused until room is made: failing closed is what a
/// reflection guard should do.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    max_sources: usize,
    buckets: HashMap<IpAddr, Bucket>,
    next_sweep: Option<Instant>,
}

impl RateLimiter {
    /// A limiter allowing `rate` replies per second per source; 0 means no limit.
    pub fn new(rate: u32) -> RateLimiter {
        RateLimiter::with_capacity(rate, MAX_SOURCES)
    }

    /// As [`new`](Self::new), tracking at most `max_sources` sources.
    pub fn with_capacity(rate: u32, max_sources: usize) -> RateLimiter {
        RateLimiter {
            rate: f64::from(rate),
            max_sources: max_sources.max(1),
            buckets: HashMap::new(),
            next_sweep: None,
        }
    }

    /// Sources tracked now.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }

    /// Takes a token for `ip` at `now`; false when it has none left.
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let (rate, burst) = (self.rate, self.rate.max(1.0));
        if let Some(b) = self.buckets.get_mut(&ip) {
            let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
            b.tokens = (b.tokens + elapsed * rate).min(burst);
            b.last = now;
            if b.tokens >= 1.0 {
                b.tokens -= 1.0;
                return true;
            }
            return false;
        }
        if self.buckets.len() >= self.max_sources {
            self.sweep(now);
            if self.buckets.len() >= self.max_sources {
                return false;
            }
        }
        self.buckets.insert(
            ip,
            Bucket {
                tokens: burst - 1.0,
                last: now,
            },
        );
        true
    }

    /// Drops the buckets that are full again. At most once a second, so a
    /// full table of live sources costs one pass per second, not per datagram.
    fn sweep(&mut self, now: Instant) {
        if self.next_sweep.is_some_and(|t| now < t) {
            return;
        }
        self.next_sweep = Some(now + Duration::from_secs(1));
        let refill = Duration::from_secs(1);
        self.buckets
            .retain(|_, b| now.saturating_duration_since(b.last) < refill);
    }
}

/// The whole guard of one UDP address: source checks, then the rate
/// limit. One guard serves every shard's socket of the address, so its
/// state is behind a lock.
#[derive(Debug)]
pub struct Guard(Mutex<GuardState>);

#[derive(Debug)]
struct GuardState {
    broadcasts: Vec<Ipv4Addr>,
    refreshed: Instant,
    limiter: RateLimiter,
}

impl Guard {
    /// A guard limiting each source to `rate` replies per second (0: no limit).
    pub fn new(rate: u32) -> Guard {
        Guard(Mutex::new(GuardState {
            broadcasts: interface_broadcasts(),
            refreshed: Instant::now(),
            limiter: RateLimiter::new(rate),
        }))
    }

    /// What to do with a datagram from `src` arriving at `now`.
    pub fn check(&self, src: SocketAddr, now: Instant) -> UdpResult {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .check(src, now)
    }
}

impl GuardState {
    fn check(&mut self, src: SocketAddr, now: Instant) -> UdpResult {
        if now.saturating_duration_since(self.refreshed) >= BROADCAST_REFRESH {
            self.broadcasts = interface_broadcasts();
            self.refreshed = now;
        }
        match check_source(src, &self.broadcasts) {
            UdpResult::Answered if !self.limiter.allow(src.ip().to_canonical(), now) => {
                UdpResult::RefusedRate
            }
            verdict => verdict,
        }
    }
}

/// The directed broadcast addresses of this host's IPv4 interfaces
/// (`192.168.1.255` and the like), which no address check alone can know.
pub fn interface_broadcasts() -> Vec<Ipv4Addr> {
    let mut found = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list we only read, and
    // free with freeifaddrs below, once.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return found;
    }
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        let flags = ifa.ifa_flags;
        let addr = ifa.ifa_ifu;
        if flags & libc::IFF_BROADCAST as u32 != 0 && !addr.is_null() {
            // SAFETY: a non-null ifa_ifu points to a sockaddr; we read the
            // family first and only read it as sockaddr_in when it is AF_INET.
            let family = unsafe { (*addr).sa_family };
            if i32::from(family) == libc::AF_INET {
                // SAFETY: as above, the family says it is a sockaddr_in.
                let sin = unsafe { &*(addr as *const libc::sockaddr_in) };
                found.push(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)));
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn privileged_and_nfs_ports_are_refused() {
        for port in [0, 7, 19, 53, 1023, 2049] {
            let s = SocketAddr::new([127, 0, 0, 1].into(), port);
            assert_eq!(check_source(s, &[]), UdpResult::RefusedPort, "{port}");
        }
        for port in [1024, 2048, 2050, 40000, 65535] {
            let s = SocketAddr::new([127, 0, 0, 1].into(), port);
            assert_eq!(check_source(s, &[]), UdpResult::Answered, "{port}");
        }
    }

    #[test]
    fn broadcast_multicast_and_unspecified_sources_are_refused() {
        let directed: Ipv4Addr = "192.168.1.255".parse().unwrap();
        for s in [
            "255.255.255.255:5000",
            "224.0.0.1:5000",
            "239.1.2.3:5000",
            "0.0.0.0:5000",
            "192.168.1.255:5000",
            "[ff02::1]:5000",
            "[::]:5000",
            "[::ffff:224.0.0.1]:5000",
        ] {
            assert_eq!(
                check_source(src(s), &[directed]),
                UdpResult::RefusedBroadcast,
                "{s}"
            );
        }
        assert_eq!(check_source(src("[::1]:5000"), &[]), UdpResult::Answered);
        assert_eq!(
            check_source(src("192.168.1.254:5000"), &[directed]),
            UdpResult::Answered
        );
    }

    #[test]
    fn rate_limit_bursts_then_refills() {
        let mut l = RateLimiter::new(10);
        let t0 = Instant::now();
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let allowed = (0..25).filter(|_| l.allow(a, t0)).count();
        assert_eq!(allowed, 10, "one second's burst");
        assert!(l.allow(b, t0), "another source is not affected");
        assert!(!l.allow(a, t0 + Duration::from_millis(50)));
        assert!(l.allow(a, t0 + Duration::from_millis(150)), "refilled");
        let mut unlimited = RateLimiter::new(0);
        assert!((0..10_000).all(|_| unlimited.allow(a, t0)));
    }

    #[test]
    fn the_table_stays_bounded_and_fails_closed() {
        let mut l = RateLimiter::with_capacity(5, 100);
        let t0 = Instant::now();
        for i in 0..1000u32 {
            l.allow(IpAddr::V4(Ipv4Addr::from(i)), t0);
        }
        assert_eq!(l.tracked(), 100);
        assert!(!l.allow([9, 9, 9, 9].into(), t0), "full of live sources");
        // A second later every bucket is full again and may be dropped.
        let t1 = t0 + Duration::from_secs(1);
        assert!(l.allow([9, 9, 9, 9].into(), t1));
        assert!(l.tracked() <= 100);
    }

    #[test]
    fn guard_combines_source_checks_and_rate() {
        let mut g = GuardState {
            broadcasts: vec![],
            refreshed: Instant::now(),
            limiter: RateLimiter::new(1),
        };
        let now = Instant::now();
        assert_eq!(g.check(src("127.0.0.1:7"), now), UdpResult::RefusedPort);
        assert_eq!(g.check(src("127.0.0.1:5000"), now), UdpResult::Answered);
        assert_eq!(g.check(src("127.0.0.1:5001"), now), UdpResult::RefusedRate);
    }

    #[test]
    fn interfaces_are_listed_without_failing() {
        // Loopback has no broadcast address; whatever else is here, no panic.
        let b = interface_broadcasts();
        assert!(!b.contains(&Ipv4Addr::LOCALHOST));
    }
}
