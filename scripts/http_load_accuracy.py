#!/usr/bin/env python3
"""echo-bench's HTTP load beside the established HTTP load generators, on
the same echo-server, in one run (issue: the L7 path, loaded and checked).

- Closed loop, HTTP/2: h2load against echo-bench --http2 (same
  connections and streams): throughput ratio.
- Closed loop, HTTP/1.1 keep-alive: wrk against echo-bench: throughput
  ratio.
- Open loop at half the HTTP/1.1 maximum, and at a low rate (LOW_RATE):
  oha --latency-correction against echo-bench --rate: p50 and p99
  ratios, and each load generator's own CPU per request (utime + stime
  of the process, from the kernel's accounting of the child; neither
  warms up, so both count every request they make).

Every request is `GET /?size=64` (echo-bench: --http-request size -s 64,
each body checked against the server's pattern; the others check only
the status). The server (release build, one shard) is pinned to core 0,
each load generator to core 1; the tools alternate, the order turning
each round. Prints a Markdown table of medians over the rounds.

Usage: python3 scripts/http_load_accuracy.py [--rounds N] [--duration S]
Needs target/release/echo-server and echo-bench (cargo build --release),
h2load (Debian nghttp2-client), wrk (Debian wrk) and oha (cargo install
oha --locked; found on PATH or with --oha).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lib.rounds import median  # noqa: E402
from lib.support import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release"
CONNS, STREAMS = 4, 8
# A request per connection every 2 ms.
LOW_RATE = CONNS * 500


def timed_child(cmd: list[str]) -> tuple[str, float]:
    """Runs `cmd` pinned to core 1; its output and its CPU seconds (the
    child's rusage, from wait4)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.dup2(w, 1)
        os.dup2(w, 2)
        os.close(r)
        os.execvp("taskset", ["taskset", "-c", "1", *cmd])
    os.close(w)
    chunks = []
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    _, status, usage = os.wait4(pid, 0)
    out = b"".join(chunks).decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{cmd[0]} failed ({status}):\n{out}")
    return out, usage.ru_utime + usage.ru_stime


def bench(url: str, secs: float, extra: list[str], warmup: str = "1s") -> dict:
    """echo-bench's run; its CPU per request counts the whole process, so
    an open-loop run (compared with oha, which has no warm-up) has none."""
    out, cpu = timed_child([str(BIN / "echo-bench"), "--connect", url, "--http-request", "size",
                            "-s", "64", "-c", str(CONNS), "-d", f"{secs}s", "--warmup", warmup,
                            "--json", *extra])
    r = json.loads(out.strip().splitlines()[-1])
    assert r["errors"] == 0, r
    return {"rps": r["msgs_per_sec"], "p50": r["p50_us"], "p99": r["p99_us"],
            "cpu_per_req_us": cpu / (r["messages"] or 1) * 1e6}


def h2load(url: str, secs: float) -> dict:
    out, _ = timed_child(["h2load", "-c", str(CONNS), "-m", str(STREAMS), "-D", str(int(secs)),
                          "--warm-up-time=1", url])
    m = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out)
    assert m and "0 failed, 0 errored" in out, out
    return {"rps": float(m.group(1))}


def wrk(url: str, secs: float) -> dict:
    out, _ = timed_child(["wrk", "-t1", f"-c{CONNS}", f"-d{int(secs)}s", url])
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert m and "Non-2xx" not in out, out
    return {"rps": float(m.group(1))}


def oha(exe: str, url: str, secs: float, rate: int, corrected: bool = True) -> dict:
    """oha at `rate`; its latency from each request's scheduled time
    (`--latency-correction`), or, not `corrected`, from when it sent it."""
    correction = ["--latency-correction"] if corrected else []
    out, cpu = timed_child([exe, "--no-tui", "--output-format", "json", *correction,
                            "-q", str(rate), "-z", f"{secs}s", "-c", str(CONNS), url])
    r = json.loads(out[out.index("{"):])
    count = sum(r["statusCodeDistribution"].values())
    assert list(r["statusCodeDistribution"]) == ["200"], r["statusCodeDistribution"]
    p = r["latencyPercentiles"]
    return {"rps": r["summary"]["requestsPerSec"], "p50": p["p50"] * 1e6, "p99": p["p99"] * 1e6,
            "cpu_per_req_us": cpu / count * 1e6}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--oha", default=shutil.which("oha") or "oha")
    a = ap.parse_args()
    port = free_port()
    server = subprocess.Popen(["taskset", "-c", "0", str(BIN / "echo-server"), "-l",
                               f"http://127.0.0.1:{port}", "--threads", "1", "-q"])
    time.sleep(0.5)
    url = f"http://127.0.0.1:{port}/"
    sized = url + "?size=64"
    res: dict[str, list[dict]] = {}
    try:
        for rnd in range(a.rounds):
            h1 = [("wrk h1", lambda: wrk(sized, a.duration)),
                  ("echo-bench h1", lambda: bench(url, a.duration, []))]
            h2 = [("h2load h2", lambda: h2load(sized, a.duration)),
                  ("echo-bench h2", lambda: bench(url, a.duration,
                                                  ["--http2", "--pipeline", str(STREAMS)]))]
            for pair in (h1, h2):
                for name, f in (pair if rnd % 2 == 0 else pair[::-1]):
                    res.setdefault(name, []).append(f())
                    print(name, res[name][-1], flush=True)
            half = int(median([r["rps"] for r in res["wrk h1"]]) / 2)
            # Half the maximum, as asked; and LOW_RATE, at which oha's
            # millisecond timer releases under one request per connection
            # per tick, so that its own queueing stays out of its figures.
            for rate, label in ((half, "open"), (LOW_RATE, "open low")):
                opens = [(f"oha -q {rate}", lambda: oha(a.oha, sized, a.duration, rate)),
                         (f"echo-bench --rate {rate}",
                          lambda: bench(url, a.duration, ["--rate", str(rate)], warmup="0s"))]
                if label == "open":
                    # What oha's own sending adds: its latency from the send.
                    opens.append((f"oha -q {rate} (uncorrected)",
                                  lambda: oha(a.oha, sized, a.duration, rate, corrected=False)))
                for name, f in (opens if rnd % 2 == 0 else opens[::-1]):
                    key = f"{name.split(' -')[0]} {label}" + (
                        " uncorrected" if "uncorrected" in name else "")
                    res.setdefault(key, []).append(f())
                    print(name, res[key][-1], flush=True)
    finally:
        server.terminate()
        server.wait()
    print("\n| run | req/s | p50 µs | p99 µs | load CPU µs/req |\n|---|---|---|---|---|")
    for name, rs in res.items():
        cells = [f"{median([r[k] for r in rs]):.1f}" if k in rs[0] else "" for k in
                 ["rps", "p50", "p99", "cpu_per_req_us"]]
        print(f"| {name} | " + " | ".join(cells) + " |")

    def ratio(a_, b_, k):
        return median([x[k] / y[k] for x, y in zip(res[a_], res[b_])])
    print(f"\nclosed loop h1, echo-bench/wrk: {ratio('echo-bench h1', 'wrk h1', 'rps'):.3f}")
    print(f"closed loop h2, echo-bench/h2load: {ratio('echo-bench h2', 'h2load h2', 'rps'):.3f}")
    for label in ("open", "open low"):
        for k in ["p50", "p99", "cpu_per_req_us"]:
            r = ratio(f"echo-bench {label}", f"oha {label}", k)
            print(f"{label} loop {k}, echo-bench/oha: {r:.3f}")
    for k in ["p50", "p99"]:
        r = ratio("echo-bench open", "oha open uncorrected", k)
        print(f"open loop {k}, echo-bench/oha uncorrected: {r:.3f}")


if __name__ == "__main__":
    main()
