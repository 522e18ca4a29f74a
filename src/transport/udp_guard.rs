//! The UDP reflection guard: which datagrams get an answer.
//!
//! An echo over UDP answers whoever the source address claims to be, so a
//! forged source turns the server into a reflector. Three checks, in order:
//!
//! - **Loops.** Nothing is answered whose source is one of the server's
//!   own UDP addresses (its IP and port; for a wildcard bind, any local
//!   address with its port): the answer would come back to the server and
//!   be answered again, forever. This holds whatever the rate limit.
//! - **inetd's rules.** As OpenBSD's inetd does, nothing is answered whose
//!   source port is below 1024 or 2049 (NFS) (two echo/chargen services
//!   answering each other never stop, CVE-1999-0103), nor whose source
//!   address is unspecified, broadcast or multicast.
//! - **Rate.** What passes is rate limited per source IP (`--udp-rate`), so
//!   a flood with forged sources cannot make the server a full-speed
//!   reflector toward any one address: see [`RateLimiter`] for how this
//!   stays exact for every address in bounded memory.
//!
//! One [`Guard`] serves every UDP socket of a server (each shard's
//! `SO_REUSEPORT` socket included), so a source's rate is one budget
//! however many sockets its datagrams reach, and no socket answers
//! another. Each socket judges through its own [`Checker`]: the rate
//! limiter's lock is taken once per batch of datagrams, not once per
//! datagram, and nothing else is shared on the hot path.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::udp_rate::RateLimiter;

/// The default replies per second to one source address.
pub const DEFAULT_RATE: u32 = 1000;

/// How often the interfaces' addresses are looked up again.
const INTERFACE_REFRESH: Duration = Duration::from_secs(30);

/// How soon they may be looked up again when a datagram comes from an
/// address not known to be local, with a wildcard socket's port (an
/// address added since the last look would otherwise loop until then).
const INTERFACE_RELOOK: Duration = Duration::from_secs(1);

pub use crate::metrics::UdpResult;

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
        UdpResult::RefusedSelf => {
            "not answered: the source is this server's own address, which would loop"
        }
    }
}

/// The local interfaces' addresses, as looked up now and then.
#[derive(Debug, Default, Clone)]
struct Interfaces {
    /// Directed broadcast addresses (`192.168.1.255` and the like), which no
    /// address check alone can know.
    broadcasts: Vec<Ipv4Addr>,
    /// Every address of every interface.
    addresses: Vec<IpAddr>,
}

/// What the guard knows about addresses: the server's own, the host's.
#[derive(Debug, Clone)]
struct Addresses {
    /// The server's UDP sockets' bound addresses.
    own: Vec<SocketAddr>,
    interfaces: Interfaces,
    refreshed: Instant,
    /// Bumped at every change, so that each [`Checker`] knows when its
    /// copy is out of date.
    version: u64,
}

/// The whole guard of a server's UDP sockets: loops, source checks, rate.
/// Share it in an `Arc` among every UDP socket (and shard) of the server;
/// each socket judges through its own `Checker`.
///
/// The addresses (the server's own, the host's) change rarely: each
/// checker keeps a copy, and one atomic read per batch tells it whether the
/// copy is still current, so sockets on different cores share nothing
/// while no rate limit is set. The rate limiter is one table behind one
/// lock, taken once per batch (and only when some datagram of the batch
/// passed the other checks), so that a source's rate is one budget
/// across all sockets.
#[derive(Debug)]
pub struct Guard {
    version: AtomicU64,
    addresses: Mutex<Addresses>,
    /// `None` when there is no limit.
    limiter: Option<Mutex<RateLimiter>>,
}

impl Guard {
    /// A guard limiting each source to `rate` replies per second (0: no limit).
    pub fn new(rate: u32) -> Guard {
        Guard {
            version: AtomicU64::new(0),
            addresses: Mutex::new(Addresses {
                own: Vec::new(),
                interfaces: Interfaces::read(),
                refreshed: Instant::now(),
                version: 0,
            }),
            limiter: (rate > 0).then(|| Mutex::new(RateLimiter::new(rate))),
        }
    }

    /// Records `addr` as one of the server's own UDP addresses, never to be
    /// answered while the guard lives. [`udp::serve`](super::udp::serve)
    /// records its socket's address; a wildcard address (`0.0.0.0`, `[::]`)
    /// stands for every local address with its port.
    pub fn add_own(&self, addr: SocketAddr) {
        self.update(|a| {
            if !a.own.contains(&addr) {
                a.own.push(addr);
            }
        });
    }

    /// A checker for one socket, with its own copy of the addresses.
    pub fn checker(self: &Arc<Self>) -> Checker {
        Checker {
            view: lock(&self.addresses).clone(),
            guard: self.clone(),
        }
    }

    /// What to do with a datagram from `src` arriving at `now`. A socket
    /// judging many should keep a [`checker`](Self::checker) instead.
    #[cfg(test)]
    pub fn check(self: &Arc<Self>, src: SocketAddr, now: Instant) -> UdpResult {
        let mut verdict = [UdpResult::Answered];
        self.checker().check_batch(&[src], &mut verdict, now);
        verdict[0]
    }

    /// Changes the addresses with `f` and makes every checker's copy out
    /// of date.
    fn update(&self, f: impl FnOnce(&mut Addresses)) {
        let mut a = lock(&self.addresses);
        f(&mut a);
        a.version += 1;
        self.version.store(a.version, Ordering::Release);
    }
}

/// Locks `m`; every update leaves its state consistent, so a panic
/// elsewhere while it was held changes nothing.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One socket's way to its server's [`Guard`]: a copy of the addresses,
/// brought up to date when they change.
#[derive(Debug)]
pub struct Checker {
    guard: Arc<Guard>,
    view: Addresses,
}

impl Checker {
    /// What to do with a datagram from `src` arriving at `now`.
    #[cfg(test)]
    pub fn check(&mut self, src: SocketAddr, now: Instant) -> UdpResult {
        let mut verdict = [UdpResult::Answered];
        self.check_batch(&[src], &mut verdict, now);
        verdict[0]
    }

    /// What to do with each of a batch of datagrams from `srcs`, arriving
    /// at `now`, into `verdicts` (as long as `srcs`): the rate limiter's
    /// lock is taken once for all.
    pub fn check_batch(&mut self, srcs: &[SocketAddr], verdicts: &mut [UdpResult], now: Instant) {
        if now.saturating_duration_since(self.view.refreshed) >= INTERFACE_REFRESH {
            self.refresh(now, INTERFACE_REFRESH);
        } else if self.guard.version.load(Ordering::Acquire) != self.view.version {
            self.view = lock(&self.guard.addresses).clone();
        }
        let mut any = false;
        for (&src, verdict) in srcs.iter().zip(verdicts.iter_mut()) {
            *verdict = if self.is_own(src, now) {
                UdpResult::RefusedSelf
            } else {
                check_source(src, &self.view.interfaces.broadcasts)
            };
            any |= *verdict == UdpResult::Answered;
        }
        let Some(limiter) = self.guard.limiter.as_ref().filter(|_| any) else {
            return;
        };
        let mut limiter = lock(limiter);
        for (&src, verdict) in srcs.iter().zip(verdicts) {
            if *verdict == UdpResult::Answered && !limiter.allow(src.ip().to_canonical(), now) {
                *verdict = UdpResult::RefusedRate;
            }
        }
    }

    /// Whether `src` is one of the server's own addresses.
    fn is_own(&mut self, src: SocketAddr, now: Instant) -> bool {
        let ip = src.ip().to_canonical();
        let mut wildcard = false;
        for own in &self.view.own {
            if own.port() == src.port() {
                let own_ip = own.ip().to_canonical();
                if own_ip == ip {
                    return true;
                }
                wildcard |= own_ip.is_unspecified();
            }
        }
        if !wildcard {
            return false;
        }
        if is_local(ip, &self.view.interfaces.addresses) {
            return true;
        }
        // An address added since the last look would loop until the next:
        // look again, at most once a second.
        if now.saturating_duration_since(self.view.refreshed) >= INTERFACE_RELOOK {
            self.refresh(now, INTERFACE_RELOOK);
            return is_local(ip, &self.view.interfaces.addresses);
        }
        false
    }

    /// Looks the interfaces up again if no socket did in the last `age`,
    /// and takes the guard's addresses as they are then.
    fn refresh(&mut self, now: Instant, age: Duration) {
        let mut a = lock(&self.guard.addresses);
        if now.saturating_duration_since(a.refreshed) >= age {
            a.interfaces = Interfaces::read();
            a.refreshed = now;
            a.version += 1;
            self.guard.version.store(a.version, Ordering::Release);
        }
        self.view = a.clone();
    }
}

/// Whether `ip` (canonical) is an address of this host: loopback (all of
/// 127.0.0.0/8 on Linux) or one of the interfaces' `addresses`.
fn is_local(ip: IpAddr, addresses: &[IpAddr]) -> bool {
    ip.is_loopback() || addresses.contains(&ip)
}

impl Interfaces {
    /// This host's interfaces' addresses now; none if they cannot be read.
    fn read() -> Interfaces {
        let mut found = Interfaces::default();
        let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
        // SAFETY: getifaddrs fills `list` with a linked list we only read,
        // and free with freeifaddrs below, once.
        if unsafe { libc::getifaddrs(&mut list) } != 0 {
            return found;
        }
        let mut cur = list;
        while !cur.is_null() {
            // SAFETY: `cur` is a node of the list getifaddrs returned, not
            // yet freed.
            let ifa = unsafe { &*cur };
            // SAFETY: ifa_addr is null or points to a sockaddr of the list.
            if let Some(ip) = unsafe { ip_of(ifa.ifa_addr) } {
                found.addresses.push(ip.to_canonical());
            }
            if ifa.ifa_flags & libc::IFF_BROADCAST as u32 != 0 {
                // SAFETY: with IFF_BROADCAST, ifa_ifu is null or points to
                // the broadcast address, a sockaddr of the list.
                if let Some(IpAddr::V4(b)) = unsafe { ip_of(ifa.ifa_ifu) } {
                    found.broadcasts.push(b);
                }
            }
            cur = ifa.ifa_next;
        }
        // SAFETY: `list` came from getifaddrs and is freed once.
        unsafe { libc::freeifaddrs(list) };
        found
    }
}

/// The IP address in `addr`, if it is an IPv4 or IPv6 one.
///
/// # Safety
///
/// `addr` is null or points to a valid sockaddr whose family says how much
/// of it there is.
unsafe fn ip_of(addr: *const libc::sockaddr) -> Option<IpAddr> {
    if addr.is_null() {
        return None;
    }
    // SAFETY: the caller's promise; the family is read first, and the
    // address read only as the type that family says it is.
    unsafe {
        match i32::from((*addr).sa_family) {
            libc::AF_INET => {
                let sin = &*(addr as *const libc::sockaddr_in);
                Some(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)).into())
            }
            libc::AF_INET6 => {
                let sin6 = &*(addr as *const libc::sockaddr_in6);
                Some(Ipv6Addr::from(sin6.sin6_addr.s6_addr).into())
            }
            _ => None,
        }
    }
}

/// The directed broadcast addresses of this host's IPv4 interfaces
/// (`192.168.1.255` and the like), which no address check alone can know.
#[cfg(test)]
pub fn interface_broadcasts() -> Vec<Ipv4Addr> {
    Interfaces::read().broadcasts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// A guard with no interfaces but loopback, limiting to `rate`.
    fn guard(rate: u32, own: &[&str]) -> Arc<Guard> {
        let g = Arc::new(Guard::new(rate));
        g.update(|a| a.interfaces = Interfaces::default());
        for a in own {
            g.add_own(src(a));
        }
        g
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
    fn the_guard_is_one_budget_for_a_source_on_every_port() {
        let g = guard(1, &[]);
        let now = Instant::now();
        assert_eq!(g.check(src("127.0.0.1:7"), now), UdpResult::RefusedPort);
        assert_eq!(g.check(src("127.0.0.1:5000"), now), UdpResult::Answered);
        assert_eq!(g.check(src("127.0.0.1:5001"), now), UdpResult::RefusedRate);
        let mut v = [UdpResult::Answered; 3];
        let srcs = [src("10.0.0.1:5000"), src("10.0.0.1:6000"), src("0.0.0.0:1")];
        g.checker().check_batch(&srcs, &mut v, now);
        assert_eq!(
            v,
            [
                UdpResult::Answered,
                UdpResult::RefusedRate,
                UdpResult::RefusedBroadcast
            ]
        );
    }

    #[test]
    fn the_servers_own_addresses_are_never_answered() {
        // Whatever the rate (0: no limit), a source that is one of the
        // server's sockets is refused: the answer would loop.
        let g = guard(0, &["127.0.0.1:7007", "[::1]:7008"]);
        let now = Instant::now();
        for (s, verdict) in [
            ("127.0.0.1:7007", UdpResult::RefusedSelf),
            ("[::ffff:127.0.0.1]:7007", UdpResult::RefusedSelf),
            ("[::1]:7008", UdpResult::RefusedSelf),
            ("127.0.0.1:7008", UdpResult::Answered),
            ("127.0.0.2:7007", UdpResult::Answered),
            ("127.0.0.1:7009", UdpResult::Answered),
        ] {
            assert_eq!(g.check(src(s), now), verdict, "{s}");
        }
        // Another socket of the same server is just as much a loop.
        g.add_own(src("127.0.0.1:7008"));
        assert_eq!(g.check(src("127.0.0.1:7008"), now), UdpResult::RefusedSelf);
    }

    #[test]
    fn a_checker_sees_addresses_added_after_it_was_made() {
        // Each socket's checker keeps a copy; another socket's address,
        // added later, reaches it by its next batch.
        let g = guard(0, &["127.0.0.1:7007"]);
        let mut c = g.checker();
        let now = Instant::now();
        assert_eq!(c.check(src("127.0.0.1:7008"), now), UdpResult::Answered);
        g.add_own(src("127.0.0.1:7008"));
        assert_eq!(c.check(src("127.0.0.1:7008"), now), UdpResult::RefusedSelf);
        assert_eq!(c.check(src("127.0.0.1:7007"), now), UdpResult::RefusedSelf);
    }

    #[test]
    fn a_wildcard_bind_owns_every_local_address_with_its_port() {
        let g = guard(0, &["0.0.0.0:7007", "[::]:7008"]);
        g.update(|a| {
            a.interfaces.addresses = vec![
                "192.0.2.10".parse().unwrap(),
                "2001:db8::10".parse().unwrap(),
            ]
        });
        let now = Instant::now();
        for (s, verdict) in [
            ("127.0.0.1:7007", UdpResult::RefusedSelf),
            ("127.45.6.7:7007", UdpResult::RefusedSelf),
            ("192.0.2.10:7007", UdpResult::RefusedSelf),
            ("192.0.2.11:7007", UdpResult::Answered),
            ("192.0.2.10:7006", UdpResult::Answered),
            ("[::1]:7008", UdpResult::RefusedSelf),
            ("[2001:db8::10]:7008", UdpResult::RefusedSelf),
            ("[2001:db8::11]:7008", UdpResult::Answered),
            // A dual-stack [::] socket sees IPv4 peers as mapped addresses.
            ("[::ffff:192.0.2.10]:7008", UdpResult::RefusedSelf),
        ] {
            assert_eq!(g.check(src(s), now), verdict, "{s}");
        }
    }

    #[test]
    fn unknown_addresses_with_a_wildcard_port_look_the_interfaces_up_again() {
        // An address added since the last look would loop until the next
        // one: a wildcard port's datagram from an address not known to be
        // local looks again at once, at most once a second.
        let g = guard(0, &["0.0.0.0:7007"]);
        let t0 = lock(&g.addresses).refreshed + INTERFACE_RELOOK;
        let stranger = src("192.0.2.99:7007");
        assert_eq!(g.check(stranger, t0), UdpResult::Answered);
        assert_eq!(lock(&g.addresses).refreshed, t0, "looked up again");
        let soon = t0 + Duration::from_millis(10);
        assert_eq!(g.check(stranger, soon), UdpResult::Answered);
        assert_eq!(
            lock(&g.addresses).refreshed,
            t0,
            "not again within a second"
        );
        // Another port, or a specific bind, never looks.
        let later = t0 + INTERFACE_RELOOK;
        assert_eq!(g.check(src("192.0.2.99:7006"), later), UdpResult::Answered);
        assert_eq!(lock(&g.addresses).refreshed, t0);
    }

    #[test]
    fn interfaces_are_listed_without_failing() {
        // Loopback has no broadcast address; whatever else is here, no panic.
        let i = Interfaces::read();
        assert!(!i.broadcasts.contains(&Ipv4Addr::LOCALHOST));
        assert!(!interface_broadcasts().contains(&Ipv4Addr::LOCALHOST));
    }
}
