"""The plumbing of a comparison run, shared by compare_peers.py and
compare_web_peers.py: logging the commands, starting a server on a free
port and stopping it, collecting each round's records, medians and ratios
over rounds, and writing a generated section into BENCHMARKS.md."""

from __future__ import annotations

import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lib.support import free_port


def log(msg: str) -> None:
    """One line on standard error, after the script's name."""
    print(f"{Path(sys.argv[0]).stem}: {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    """Logs `cmd`, runs it, and fails if it fails."""
    log("$ " + " ".join(shlex.quote(c) for c in cmd))
    return subprocess.run(cmd, check=True, **kw)


@dataclass
class Running:
    """A started server: anything with a `name` and an `argv(port)`."""

    server: Any
    port: int
    proc: subprocess.Popen


@dataclass
class Results:
    # runs[workload][server] = list of per-round records
    runs: dict = field(default_factory=dict)

    def add(self, workload: str, server: str, record: dict) -> None:
        self.runs.setdefault(workload, {}).setdefault(server, []).append(record)


def start(server: Any, logs: Path) -> Running:
    """Starts `server` on a free port, its output appended to
    LOGS/NAME.log, and waits (20 s at most) until it accepts a connection."""
    port = free_port()
    path = logs / f"{server.name.replace(' ', '-')}.log"
    err = open(path, "ab")
    proc = subprocess.Popen(server.argv(port), stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {proc.returncode}; see {path}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return Running(server, port, proc)
        except OSError:
            time.sleep(0.05)
    stop(Running(server, port, proc))
    raise RuntimeError(f"{server.name} did not listen on port {port} within 20 s")


def stop(r: Running) -> None:
    """SIGTERM, then SIGKILL after 5 s."""
    # nice, chrt, taskset and env exec the server, so this PID is the server itself.
    if r.proc.poll() is None:
        r.proc.send_signal(signal.SIGTERM)
        try:
            r.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            r.proc.kill()
            r.proc.wait()


def median(xs):
    """The median of the values that are not None, or None."""
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ratio_median(mine: list[dict], ref: list[dict], key: str):
    """Median over rounds of mine/ref, pairing the same round."""
    pairs = [(a.get(key), b.get(key)) for a, b in zip(mine, ref)]
    return median([a / b for a, b in pairs if a is not None and b])


def cpu_model() -> str | None:
    """The CPU's model name from /proc/cpuinfo, or None."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def git_commit(repo: Path) -> str:
    """The short hash of HEAD, or "unknown"."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_section(path: Path, section: str, begin: str, end: str, new_file: str = "") -> None:
    """Puts `section` (which starts with `begin` and ends with `end`) in
    place of the text between those markers in `path`, or at its end; a
    missing file starts as `new_file`."""
    text = path.read_text() if path.exists() else new_file
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1]
        text = head + section.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    path.write_text(text)
