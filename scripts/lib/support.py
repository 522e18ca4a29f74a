"""The Python twins of helpers in tests/support/mod.rs, so that the
comparison scripts read a process the way the integration tests do. Each
names the Rust function it mirrors; change both together."""

from __future__ import annotations

import os
import socket

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago
    (`support::free_port`)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of process `pid`, all its threads, from /proc/PID/stat
    (`support::cpu_time`)."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # The command name may hold spaces; the fields after it are fixed.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid: int) -> int:
    """Resident memory of process `pid` in KiB, from /proc/PID/status
    (`support::rss_kib`); 0 if it has none."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def open_fds(pid: int) -> int:
    """Open file descriptors of process `pid` (`support::fd_count`)."""
    return len(os.listdir(f"/proc/{pid}/fd"))
