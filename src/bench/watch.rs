//! What the main thread does while the workers run: the progress bar,
//! and the bench's own CPU time over the measured window (so a report
//! says whether the bench itself was the ceiling); and what the figures
//! suggest afterwards.

use std::sync::atomic::Ordering;
use std::thread::ScopedJoinHandle;
use std::time::{Duration, Instant};

use super::config::{BenchConfig, Mode};
use super::record::{LiveCounters, Totals};
use super::report::Report;
use crate::addr::Transport;

/// Until the workers finish: the bench's own CPU time over the measured
/// window (from the end of the warm-up to the end of the run), and a
/// progress bar when `show` is set (elapsed time, the measured rate so
/// far). Returns the CPU time, if the window was reached.
pub(crate) fn watch(
    config: &BenchConfig,
    t0: Instant,
    live: &LiveCounters,
    handles: &[ScopedJoinHandle<'_, Result<Totals, std::io::Error>>],
    show: bool,
) -> Option<Duration> {
    let total = config.warmup + config.duration;
    let bar = show.then(|| {
        let bar = indicatif::ProgressBar::new(total.as_millis() as u64);
        let style = indicatif::ProgressStyle::with_template("{bar:30} {elapsed}/{duration} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        bar.set_style(style);
        bar
    });
    let from = t0 + config.warmup;
    let end = from + config.duration;
    let (mut cpu_from, mut cpu_to) = (None, None);
    while !handles.iter().all(|h| h.is_finished()) {
        let now = Instant::now();
        if cpu_from.is_none() && now >= from {
            cpu_from = process_cpu();
        }
        if cpu_to.is_none() && now >= end {
            cpu_to = process_cpu();
        }
        if let Some(bar) = &bar {
            progress(bar, config, now, t0, from, live);
        }
        // Wake at the window's edges on time, and every 100 ms besides.
        let tick = now + Duration::from_millis(100);
        let next = [from, end]
            .into_iter()
            .filter(|&t| t > now)
            .fold(tick, Instant::min);
        std::thread::sleep(next.saturating_duration_since(now));
    }
    if cpu_to.is_none() && cpu_from.is_some() {
        cpu_to = process_cpu();
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Some(cpu_to?.saturating_sub(cpu_from?))
}

/// One update of the progress bar.
fn progress(
    bar: &indicatif::ProgressBar,
    config: &BenchConfig,
    now: Instant,
    t0: Instant,
    from: Instant,
    live: &LiveCounters,
) {
    bar.set_position(now.saturating_duration_since(t0).as_millis() as u64);
    let errors = live.errors.load(Ordering::Relaxed);
    let measured = now.saturating_duration_since(from).as_secs_f64().max(1e-3);
    let msg = if now < t0 {
        "waiting for the start time".to_string()
    } else if now < from {
        "warming up".to_string()
    } else if config.mode == Mode::Stream {
        let bytes = live.bytes.load(Ordering::Relaxed);
        format!("{:.1} MB/s", bytes as f64 / measured / 1e6)
    } else {
        let messages = live.messages.load(Ordering::Relaxed);
        format!("{:.0} msg/s", messages as f64 / measured)
    };
    bar.set_message(if errors > 0 {
        format!("{msg}, {errors} errors")
    } else {
        msg
    });
}

/// The CPU time (user and system, every thread) this process has used.
fn process_cpu() -> Option<Duration> {
    // SAFETY: getrusage writes only the struct it is given, which is
    // plain integers, valid when zeroed.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return None;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    Some(tv(usage.ru_utime) + tv(usage.ru_stime))
}

/// A note for a UDP run whose losses look like a server's per-source rate
/// limit: losses, while the replies per source address sat near what
/// `echo-server` allows one source by default (half of it to two and a
/// half times: a burst of one second's worth comes on top in a short run).
pub(crate) fn rate_limit_note(config: &BenchConfig, report: &Report) -> Option<String> {
    let limit = f64::from(crate::transport::udp_guard::DEFAULT_RATE);
    let per_source = report.msgs_per_sec / report.sources.max(1) as f64;
    (config.addr.transport() == Transport::Udp
        && report.error_kinds.loss > 0
        && (0.5 * limit..=2.5 * limit).contains(&per_source))
    .then(|| {
        format!(
            "{per_source:.0} replies/s per source address, with losses: the server may be \
                 rate-limiting this source: see --udp-rate (echo-server answers one source \
                 {limit:.0} times a second by default; --udp-rate 0 lifts the limit)"
        )
    })
}
