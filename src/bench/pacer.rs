//! Waking a connection when its next open-loop message is due, to the
//! microsecond.
//!
//! tokio's timer has millisecond granularity: a message due 0.1 ms from now
//! would go out up to a millisecond late, and since open-loop latency
//! counts from the due time, that lateness would be reported as the
//! server's. A Linux `timerfd` (an hrtimer, no slack) registered with the
//! reactor wakes the connection within microseconds instead, for one
//! system call per wait, the one that arms it (the reactor's wake-up is
//! shared with the sockets').

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// A one-shot timer, re-armed for each due time.
pub(crate) struct Pacer {
    fd: AsyncFd<OwnedFd>,
    /// The due time it is armed for.
    armed: Option<Instant>,
}

impl Pacer {
    /// A new timer. Must be called inside a tokio runtime.
    pub fn new() -> io::Result<Pacer> {
        // SAFETY: timerfd_create takes no pointers; its result is checked.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a descriptor we just opened and nobody else owns.
        let owned = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: an `OwnedFd` keeps its descriptor open, unchanged, until
        // it is dropped with the `AsyncFd`.
        let fd = unsafe { AsyncFd::register_with_interest(owned, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(Pacer { fd, armed: None })
    }

    /// Ready once `due` has passed; otherwise arms the timer for it and
    /// registers the task to be woken then.
    pub fn poll_until(&mut self, cx: &mut Context<'_>, due: Instant) -> Poll<()> {
        loop {
            let now = Instant::now();
            if now >= due {
                return Poll::Ready(());
            }
            if self.armed != Some(due) {
                if self.arm(due - now).is_err() {
                    // Cannot happen with valid arguments; if it does, ask
                    // to be polled again rather than hang.
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                self.armed = Some(due);
            }
            let mut guard = match self.fd.poll_read_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(guard)) => guard,
                Poll::Ready(Err(_)) => {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
            };
            // The readiness is stale (a fire for an earlier due time) or
            // the fire for this one, and nothing needs reading to tell:
            // `due` is looked at again above. The descriptor is not read,
            // which saves a system call per message: re-arming resets its
            // count, and each fire is a new edge for the reactor.
            guard.clear_ready();
        }
    }

    /// Arms the timer to fire once, `after` from now.
    fn arm(&self, after: std::time::Duration) -> io::Result<()> {
        let after = after.max(std::time::Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: after.as_secs() as libc::time_t,
                tv_nsec: after.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: `spec` is a valid itimerspec; the old value is not asked for.
        let rc = unsafe {
            libc::timerfd_settime(
                self.fd.get_ref().as_raw_fd(),
                0,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn wakes_after_the_due_time_not_a_millisecond_later() {
        // Alternate the pacer with tokio's own timer, same offsets, so that
        // whatever else the machine is doing hits both alike.
        let mut pacer = Pacer::new().unwrap();
        let (mut ours, mut tokios) = (Vec::new(), Vec::new());
        for _ in 0..40 {
            let due = Instant::now() + Duration::from_micros(150);
            std::future::poll_fn(|cx| pacer.poll_until(cx, due)).await;
            let now = Instant::now();
            assert!(now >= due, "woke before the due time");
            ours.push(now - due);

            let due = Instant::now() + Duration::from_micros(150);
            tokio::time::sleep_until(due.into()).await;
            tokios.push(Instant::now().saturating_duration_since(due));
        }
        ours.sort();
        tokios.sort();
        let (ours, tokios) = (ours[20], tokios[20]);
        // Typically tens of µs against tokio's ~0.5 ms; on a machine so
        // busy that wake-ups take longer than that, still ahead of tokio.
        assert!(
            ours < Duration::from_micros(500) || ours < tokios,
            "median lateness {ours:?}, tokio's {tokios:?}"
        );
    }

    #[tokio::test]
    async fn a_past_due_time_is_ready_at_once() {
        let mut pacer = Pacer::new().unwrap();
        let due = Instant::now();
        std::future::poll_fn(|cx| pacer.poll_until(cx, due)).await;
    }
}
