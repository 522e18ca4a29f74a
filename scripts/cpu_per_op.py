#!/usr/bin/env python3
"""The server's CPU per operation, echo-server against the C peer, for the
workloads where that is the figure to watch on two cores (issue: perf
round 3):

- udp64: 64-byte UDP ping-pong over 64 sockets, `echo-server --threads 1
  --udp-rate 0` against `echo_udp --mmsg` (recvmmsg/sendmmsg, 64 a call);
- churn64: a TCP connection, one 64-byte echo and the close per
  operation, 8 at once, `echo-server --threads 1` against `echo_epoll`.

Each server is pinned to core 0 and echo-bench to core 1; the servers
alternate, the order turning each round. A run's figure is the server's
utime + stime (from /proc/PID/stat, across the whole bench run, which has
no warm-up) divided by the operations echo-bench counted (datagrams
echoed, or connections served), and the ratio is taken within a round.
Prints a Markdown table of medians, and the per-round ratios.

Usage: python3 scripts/cpu_per_op.py [--rounds N] [--duration S] [--workloads udp64,churn64]
                                    [--candidate PATH]...
`--candidate` adds another echo-server binary (a build to compare) to
every round, reported against the C peer as the default one is.
Needs target/release/echo-server and echo-bench (cargo build --release)
and the peers (../shared/peers/build.sh target/peers).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lib.rounds import median  # noqa: E402
from lib.support import cpu_seconds, free_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release"
PEERS = ROOT / "target" / "peers"

# name: (echoes' listen flags, the peer's command, the bench's flags)
WORKLOADS = {
    "udp64": (
        lambda p: ["-l", f"udp://127.0.0.1:{p}", "--udp-rate", "0"],
        lambda p: [str(PEERS / "echo_udp"), str(p), "127.0.0.1", "--mmsg"],
        lambda p: ["--connect", f"udp://127.0.0.1:{p}", "-c", "64", "-s", "64"],
    ),
    "churn64": (
        lambda p: ["-l", f"127.0.0.1:{p}"],
        lambda p: [str(PEERS / "echo_epoll"), str(p)],
        lambda p: ["--connect", f"127.0.0.1:{p}", "-m", "churn", "-c", "8", "-s", "64"],
    ),
}


def measure(server: list[str], bench: list[str], secs: float) -> dict:
    """Starts `server` on core 0, runs echo-bench `bench` on core 1, and
    returns the operations per second and the server's CPU µs per one."""
    proc = subprocess.Popen(["taskset", "-c", "0", *server], stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.4)
        before = cpu_seconds(proc.pid)
        out = subprocess.run(["taskset", "-c", "1", str(BIN / "echo-bench"), *bench,
                              "-d", f"{secs}s", "--warmup", "0s", "--json"],
                             capture_output=True, text=True, check=True).stdout
        cpu = cpu_seconds(proc.pid) - before
    finally:
        proc.terminate()
        proc.wait()
    r = json.loads(out.strip().splitlines()[-1])
    assert r["errors"] == 0 or r["error_kinds"].get("loss", 0) == r["errors"], r
    ops = r["messages"] or 1
    return {"ops_per_sec": r["msgs_per_sec"], "cpu_us_per_op": cpu / ops * 1e6,
            "errors": r["errors"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=4)
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--candidate", action="append", default=[],
                    help="another echo-server binary to run in every round")
    a = ap.parse_args()
    servers = [("echo-server", str(BIN / "echo-server"))]
    servers += [(f"echo-server {c}", c) for c in a.candidate]
    res: dict[tuple[str, str], list[dict]] = {}
    for w in a.workloads.split(","):
        ours, peer, bench = WORKLOADS[w]
        for rnd in range(a.rounds):
            port = free_port()
            runs = [(name, [path, "--threads", "1", "-q", *ours(port)])
                    for name, path in servers] + [("c peer", peer(port))]
            for name, cmd in (runs if rnd % 2 == 0 else runs[::-1]):
                r = measure(cmd, bench(port), a.duration)
                res.setdefault((w, name), []).append(r)
                print(w, name, r, flush=True)
    print("\n| workload | server | ops/s | server CPU µs/op |\n|---|---|---|---|")
    for (w, name), rs in res.items():
        print(f"| {w} | {name} | {median([r['ops_per_sec'] for r in rs]):.0f} | "
              f"{median([r['cpu_us_per_op'] for r in rs]):.3f} |")
    for w in a.workloads.split(","):
        peer = res[(w, "c peer")]
        for name, _ in servers:
            ours = res[(w, name)]
            for k in ("ops_per_sec", "cpu_us_per_op"):
                rounds = [x[k] / y[k] for x, y in zip(ours, peer)]
                print(f"{w} {k}, {name} / c peer: median {median(rounds):.3f}, rounds "
                      + ", ".join(f"{r:.3f}" for r in rounds))


if __name__ == "__main__":
    main()
