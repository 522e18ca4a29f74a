//! The connection limits, global across shards: `--max-connections`, a
//! semaphore whose permit is taken before `accept` (so the excess waits in
//! the kernel's backlog), and `--max-connections-per-ip`, a table checked
//! after `accept`, whose refusals are logged at most once a second.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{debug, info};

use crate::transport::PeerName;

/// Both limits of one server, shared by every shard.
pub(super) struct Limits {
    /// `--max-connections`: a permit per connection served.
    pub(super) permits: Option<Arc<Semaphore>>,
    /// `--max-connections-per-ip`.
    pub(super) per_ip: Option<PerIpLimit>,
}

impl Limits {
    pub(super) fn new(max: Option<usize>, per_ip: Option<usize>) -> Limits {
        Limits {
            permits: max.map(|n| Arc::new(Semaphore::new(n))),
            per_ip: per_ip.map(PerIpLimit::new),
        }
    }
}

/// The limit slots one connection holds, given back when it is dropped;
/// boxed, so that without limits they cost an idle connection one null
/// pointer.
pub(super) type Slots = Option<Box<(Option<OwnedSemaphorePermit>, Option<IpSlot>)>>;

/// The `--max-connections-per-ip` bookkeeping.
pub(super) struct PerIpLimit {
    max: usize,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    /// When the next refusal may be logged, and how many were not since
    /// the last line: a flooding host must not flood the log too.
    refusals: Mutex<(Instant, u64)>,
}

impl PerIpLimit {
    /// At most one refusal line per this long.
    const LOG_EVERY: Duration = Duration::from_secs(1);

    fn new(max: usize) -> PerIpLimit {
        PerIpLimit {
            max,
            counts: Arc::default(),
            refusals: Mutex::new((Instant::now(), 0)),
        }
    }

    /// Logs a refusal of `peer`, or counts it when one was logged less
    /// than [`LOG_EVERY`](Self::LOG_EVERY) ago.
    pub(super) fn log_refusal(&self, peer: PeerName) {
        let now = Instant::now();
        let unlogged = {
            let mut refusals = lock(&self.refusals);
            let (next, unlogged) = &mut *refusals;
            if now < *next {
                *unlogged += 1;
                debug!(name = %peer, "refused: over the per-address limit");
                return;
            }
            *next = now + Self::LOG_EVERY;
            std::mem::take(unlogged)
        };
        if unlogged == 0 {
            info!(
                name = %peer,
                "refused: {} connections from this address already", self.max
            );
        } else {
            info!(
                name = %peer,
                "refused: {} connections from this address already \
                 ({unlogged} more refusals since the last line)",
                self.max
            );
        }
    }

    /// A slot for one more connection from `ip`, or `None` at the limit.
    pub(super) fn take(&self, ip: IpAddr) -> Option<IpSlot> {
        let ip = ip.to_canonical();
        let mut counts = lock(&self.counts);
        let count = counts.entry(ip).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            ip,
            counts: self.counts.clone(),
        })
    }
}

/// One connection's place in the per-IP count; given back on drop.
pub(super) struct IpSlot {
    ip: IpAddr,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Locks a mutex, carrying on if a panicking thread poisoned it: every
/// structure guarded here stays consistent between statements.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_slots_are_counted_and_given_back() {
        let limit = PerIpLimit::new(2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let first = limit.take(a).expect("first");
        let second = limit.take(mapped).expect("second, the same host");
        assert!(limit.take(a).is_none(), "a third from one host");
        assert!(limit.take([10, 0, 0, 2].into()).is_some(), "another host");
        drop(first);
        assert!(limit.take(a).is_some(), "a slot given back");
        drop(second);
    }
}
