//! The per-source rate limit of the UDP [guard](super::udp_guard): token
//! buckets in fixed memory, which a flood of forged sources can neither
//! fill nor get around.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::Instant;

/// Buckets in each of the rate limiter's two rows: its memory is
/// `2 × BUCKETS × 8` bytes (512 KiB), whatever the number of sources.
pub const BUCKETS: usize = 32 * 1024;

/// A per-source rate limiter in fixed memory: hashed token buckets.
///
/// Each source may burst one second's worth, then `rate` per second. There
/// is no table of sources to fill, and so nothing to evict: every source
/// IP hashes (with a key random per process, which a sender cannot
/// predict) to one bucket in each of two rows of [`BUCKETS`], and a
/// datagram is allowed only when both of its buckets have a token, taking
/// one from each. Sources that share a bucket share its rate.
///
/// The trade-off, against an exact table of sources:
///
/// - **No address ever gets more than its rate**, however many sources
///   come and go: its datagrams always meet the same two buckets, and
///   sharing them with others only leaves it less. An exact table must
///   forget someone when it is full, and a forgotten source comes back
///   with a full burst (or, as this guard did before, new sources are
///   refused while it is full, so a flood from ~17k forged sources a second
///   locked every new client out).
/// - **New sources keep being answered under a flood of forged ones**: a
///   source is refused only when both of its buckets are empty, that is
///   when each is shared with sources that together send more than the
///   rate. A flood of spread-out forged sources empties buckets only above
///   about `BUCKETS × rate` datagrams a second (32 million at the default
///   rate, far more than a server can receive); a few heavy senders empty
///   only their own buckets, and a newcomer shares both of its buckets with
///   them with odds of about `(heavy / BUCKETS)²` (one in a thousand with a
///   thousand heavy senders).
/// - **The cost**: an innocent source that shares both buckets with heavy
///   senders is limited with them, and the memory is fixed (512 KiB) even
///   for a handful of sources. Each bucket is one theoretical arrival time
///   (GCRA, the token bucket as a single number), so a check is one hash
///   and two reads.
#[derive(Debug)]
pub struct RateLimiter {
    /// Nanoseconds between two tokens; 0 when there is no limit.
    interval: u64,
    /// How far a bucket's theoretical arrival time may run ahead of now:
    /// `(burst - 1) × interval`.
    tolerance: u64,
    hasher: RandomState,
    epoch: Instant,
    /// Two rows of [`BUCKETS`] theoretical arrival times, in nanoseconds
    /// since `epoch`; empty when there is no limit.
    tats: Box<[u64]>,
}

impl RateLimiter {
    /// A limiter allowing `rate` replies per second per source; 0 means no
    /// limit (and no memory).
    pub fn new(rate: u32) -> RateLimiter {
        if rate == 0 {
            return RateLimiter {
                interval: 0,
                tolerance: 0,
                hasher: RandomState::new(),
                epoch: Instant::now(),
                tats: Box::new([]),
            };
        }
        // Rounded up, so that no source gets more than `rate` a second.
        let interval = 1_000_000_000u64.div_ceil(u64::from(rate));
        RateLimiter {
            interval,
            tolerance: (u64::from(rate) - 1) * interval,
            hasher: RandomState::new(),
            epoch: Instant::now(),
            tats: vec![0; 2 * BUCKETS].into_boxed_slice(),
        }
    }

    /// Takes a token for `ip` at `now`; false when it has none left.
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.tats.is_empty() {
            return true;
        }
        let t =
            u64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX);
        let rows = self.rows(ip);
        // A bucket whose arrival time is in the past is full: it starts now.
        let tat = rows.map(|i| self.tats[i].max(t));
        if tat.iter().any(|&a| a - t > self.tolerance) {
            return false;
        }
        for (i, a) in rows.into_iter().zip(tat) {
            self.tats[i] = a.saturating_add(self.interval);
        }
        true
    }

    /// The indexes of `ip`'s bucket in each row.
    fn rows(&self, ip: IpAddr) -> [usize; 2] {
        let h = self.hasher.hash_one(ip);
        [h as usize % BUCKETS, BUCKETS + (h >> 32) as usize % BUCKETS]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::udp_guard::DEFAULT_RATE;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    /// An address whose buckets are none of `ip`'s, so that a test's
    /// counts do not depend on the random hash key.
    fn apart(l: &RateLimiter, ip: IpAddr) -> IpAddr {
        let taken = l.rows(ip);
        (1..)
            .map(|i| IpAddr::V4(Ipv4Addr::from(0x0a01_0000 + i)))
            .find(|other| l.rows(*other).iter().all(|r| !taken.contains(r)))
            .unwrap()
    }

    #[test]
    fn rate_limit_bursts_then_refills() {
        let mut l = RateLimiter::new(10);
        let t0 = l.epoch;
        let a: IpAddr = [10, 0, 0, 1].into();
        let b = apart(&l, a);
        let allowed = (0..25).filter(|_| l.allow(a, t0)).count();
        assert_eq!(allowed, 10, "one second's burst");
        assert!(l.allow(b, t0), "another source is not affected");
        assert!(!l.allow(a, t0 + Duration::from_millis(50)));
        assert!(l.allow(a, t0 + Duration::from_millis(150)), "refilled");
        // Over ten seconds, a greedy source gets its burst and the rate.
        let greedy = (1..=10_000)
            .filter(|i| l.allow(b, t0 + Duration::from_millis(*i)))
            .count();
        assert_eq!(greedy, 9 + 100, "the rest of its burst, then 10 a second");
        let mut unlimited = RateLimiter::new(0);
        assert!((0..10_000).all(|_| unlimited.allow(a, t0)));
    }

    #[test]
    fn sources_sharing_a_bucket_share_its_rate() {
        let mut l = RateLimiter::new(10);
        let t0 = l.epoch;
        let a: IpAddr = [10, 0, 0, 1].into();
        let row = l.rows(a)[0];
        let b = (1..)
            .map(|i| IpAddr::V4(Ipv4Addr::from(0x0a02_0000 + i)))
            .find(|b| l.rows(*b)[0] == row)
            .unwrap();
        assert_eq!((0..6).filter(|_| l.allow(a, t0)).count(), 6);
        assert_eq!((0..6).filter(|_| l.allow(b, t0)).count(), 4);
    }

    #[test]
    fn a_flood_of_forged_sources_leaves_room_for_new_ones() {
        // 40,000 sources in one second, each sending twice (more than any
        // table of sources could hold; the old one held 16,384 and then
        // refused every newcomer); a newcomer every 1,000 of them is
        // answered every time.
        let mut l = RateLimiter::new(DEFAULT_RATE);
        let t0 = l.epoch;
        let mut newcomers = 0;
        for i in 0..40_000u32 {
            let t = t0 + Duration::from_micros(u64::from(i) * 25);
            let forged = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            l.allow(forged, t);
            l.allow(forged, t);
            if i % 1000 == 999 {
                let new = IpAddr::V4(Ipv4Addr::from(0xc0a8_0000 + i));
                assert!(l.allow(new, t), "newcomer {new} refused");
                newcomers += 1;
            }
        }
        assert_eq!(newcomers, 40);
    }

    #[test]
    fn one_source_gets_no_more_than_its_rate_while_sources_churn() {
        // A heavy source sends 100 a second for 3 s, among 300,000 others
        // that come and go.
        let mut l = RateLimiter::new(5);
        let t0 = l.epoch;
        let heavy: IpAddr = [10, 9, 9, 9].into();
        let mut answered = 0;
        for i in 0..300_000u32 {
            let t = t0 + Duration::from_micros(u64::from(i) * 10);
            l.allow(IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i)), t);
            if i % 1000 == 0 && l.allow(heavy, t) {
                answered += 1;
            }
        }
        // At most its burst of 5, then 5 a second for the 3 s that
        // followed; less if it shares a bucket with busy others.
        assert!((1..=5 + 15).contains(&answered), "{answered}");
    }
}
