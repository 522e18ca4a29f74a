//! The standard `process_*` metrics, with the names, types and units that
//! Prometheus's client libraries give them, read from `/proc/self` at each
//! scrape. Where `/proc` cannot be read, they are left out of the page.

use std::fmt::Write as _;

/// One reading of the process's own figures.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Process {
    /// User and system CPU time, in seconds.
    cpu_seconds: f64,
    /// Resident memory, in bytes.
    resident_bytes: u64,
    /// Virtual memory, in bytes.
    virtual_bytes: u64,
    /// Open file descriptors.
    open_fds: u64,
    /// The soft limit on file descriptors (`RLIMIT_NOFILE`).
    max_fds: u64,
    /// When the process started, in seconds since the Unix epoch.
    start_time_seconds: f64,
}

/// The fields of `/proc/self/stat` this page needs, in their own units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    /// utime + stime, in clock ticks.
    cpu_ticks: u64,
    /// Start time after boot, in clock ticks.
    start_ticks: u64,
    /// Virtual memory size, in bytes.
    vsize: u64,
    /// Resident set size, in pages.
    rss_pages: u64,
}

/// Parses a `/proc/PID/stat` line; `None` if it is not one.
fn parse_stat(stat: &str) -> Option<Stat> {
    // The command name (field 2) may hold spaces and parentheses; the
    // fields after its last `)` do not. `rest` starts at field 3.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    Some(Stat {
        cpu_ticks: field(14)?.checked_add(field(15)?)?,
        start_ticks: field(22)?,
        vsize: field(23)?,
        rss_pages: field(24)?,
    })
}

/// The boot time (`btime`, seconds since the epoch) in `/proc/stat`.
fn parse_btime(proc_stat: &str) -> Option<u64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

impl Process {
    /// Reads `/proc/self`; `None` where it cannot.
    fn read() -> Option<Process> {
        let stat = parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
        let btime = parse_btime(&std::fs::read_to_string("/proc/stat").ok()?)?;
        // SAFETY: sysconf and getrlimit only write the struct they are given.
        let (ticks, page, limit) = unsafe {
            let mut limit: libc::rlimit = std::mem::zeroed();
            let ok = libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0;
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
                ok.then_some(limit.rlim_cur),
            )
        };
        let (ticks, page) = (u64::try_from(ticks).ok()?, u64::try_from(page).ok()?);
        if ticks == 0 {
            return None;
        }
        // The directory's own descriptor, open while it is read, is not counted.
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
        Some(Process {
            cpu_seconds: stat.cpu_ticks as f64 / ticks as f64,
            resident_bytes: stat.rss_pages.saturating_mul(page),
            virtual_bytes: stat.vsize,
            open_fds: open_fds.saturating_sub(1),
            max_fds: limit?,
            start_time_seconds: btime as f64 + stat.start_ticks as f64 / ticks as f64,
        })
    }
}

/// Appends the `process_*` families to `out`, if `/proc/self` can be read.
pub(super) fn render(out: &mut String) {
    let Some(p) = Process::read() else {
        return;
    };
    let families: [(&str, &str, &str, f64); 6] = [
        (
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            p.cpu_seconds,
        ),
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            p.resident_bytes as f64,
        ),
        (
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            p.virtual_bytes as f64,
        ),
        (
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            p.open_fds as f64,
        ),
        (
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            p.max_fds as f64,
        ),
        (
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            p.start_time_seconds,
        ),
    ];
    for (name, kind, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_even_with_a_hostile_command_name() {
        // Fields 3 to 24 of stat(5): utime 14 = 150, stime 15 = 50,
        // starttime 22 = 12345, vsize 23 = 4096000, rss 24 = 300.
        let line = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 3 0 12345 4096000 300 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                cpu_ticks: 200,
                start_ticks: 12345,
                vsize: 4_096_000,
                rss_pages: 300,
            })
        );
        assert_eq!(parse_stat("4242 (truncated) S 1 2"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn finds_btime() {
        assert_eq!(
            parse_btime("cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_btime("cpu 1 2 3\n"), None);
    }

    #[test]
    fn reads_this_process() {
        let p = Process::read().expect("/proc/self is readable on Linux");
        assert!(p.resident_bytes > 0 && p.virtual_bytes >= p.resident_bytes);
        assert!(p.open_fds >= 3 && p.open_fds <= p.max_fds, "{p:?}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        // Started within the last day, and not in the future (btime is
        // whole seconds, so allow one).
        assert!(p.start_time_seconds <= now + 1.0 && p.start_time_seconds > now - 86_400.0);
        let mut page = String::new();
        render(&mut page);
        assert!(page.contains("# TYPE process_cpu_seconds_total counter\n"));
        assert!(page.contains("\nprocess_max_fds "));
    }
}
