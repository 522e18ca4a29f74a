#!/usr/bin/env python3
"""Puts echo-server's WebSocket echo and HTTP/1.1 beside their peers.

WebSocket: echo-bench --connect ws://... measures echo-server (-l http://,
one worker thread), the tokio-tungstenite echo idiom and Python
`websockets` on uvloop (scripts/web_peers/, built by its build.sh):
ping-pong 20 B and 16 KiB x 100 connections, and churn (a connection, a
handshake, one message and the closing handshake per operation).

HTTP/1.1 keep-alive: wrk against echo-server -l http:// (the JSON
reflection of each request, and `?echo_body`, an empty body back as the
hyper peer gives) and the hyper echo idiom.

Each server runs pinned to core 0 (one worker thread), the load
generator pinned to core 1. For several rounds every workload runs
against every server in turn, the order rotating each round, so a noisy
moment does not always hit the same server. Recorded: the load
generator's rate and latency, and the server's CPU time per message
(utime + stime from /proc/PID/stat over the measured window). Printed: a
Markdown table of medians, and ratios against the reference peer
(tokio-tungstenite for WebSocket, hyper for HTTP) measured in the same
round; a ratio is the median over rounds of (server / reference).
`--update` also writes the tables into BENCHMARKS.md between markers.

Usage: python3 scripts/compare_web_peers.py [--quick] [--rounds N] [--duration S]
           [--only NAME,...] [--workloads W,...] [--realtime PRIO] [--update]
           [--json FILE] [--bin-dir DIR]
Python 3.11 standard library only; needs cargo, taskset, wrk (for the HTTP
part) and python3 -m venv with pip (for the Python peer).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lib.rounds import Results, Running, cpu_model, git_commit, log, median, ratio_median, run, start, stop
from lib.rounds import write_section
from lib.support import cpu_seconds

REPO = Path(__file__).resolve().parent.parent
BEGIN = "<!-- compare_web_peers.py: begin generated section -->"
END = "<!-- compare_web_peers.py: end generated section -->"
SERVER_CORE = "0"
LOAD_CORE = "1"
WS_REFERENCE = "tokio-tungstenite"
HTTP_REFERENCE = "hyper"
# `chrt -f PRIO` before every server and load command (--realtime).
PRIORITY: list[str] = []


@dataclass(frozen=True)
class Workload:
    name: str
    kind: str  # "ws" (echo-bench) or "http" (wrk)
    title: str
    args: tuple[str, ...]


WORKLOADS = [
    Workload("ws-pingpong-20", "ws", "WebSocket ping-pong 20 B x 100 connections",
             ("-m", "pingpong", "-s", "20", "-c", "100")),
    Workload("ws-pingpong-16k", "ws", "WebSocket ping-pong 16 KiB x 100 connections",
             ("-m", "pingpong", "-s", "16KiB", "-c", "100")),
    Workload("ws-churn", "ws", "WebSocket churn (connect, handshake, 20 B, close) x 8 concurrent",
             ("-m", "churn", "-s", "20", "-c", "8")),
    # wrk: one thread, 100 keep-alive connections; the path is the server's.
    Workload("http-keepalive", "http", "HTTP/1.1 keep-alive GET x 100 connections (wrk)",
             ("-t1", "-c100")),
]


@dataclass
class Server:
    name: str
    kind: str  # "ws" or "http"
    command: list[str]  # with "{port}" where the port goes
    path: str = "/"  # what wrk asks for

    def argv(self, port: int) -> list[str]:
        return PRIORITY + ["taskset", "-c", SERVER_CORE] + [a.replace("{port}", str(port)) for a in self.command]


def build(bin_dir: Path | None) -> tuple[Path, list[Server]]:
    if bin_dir is None:
        run(["cargo", "build", "--release", "--bins"], cwd=REPO)
    out = run(["bash", str(REPO / "scripts" / "web_peers" / "build.sh"), "target/peers-web"],
              cwd=REPO, stdout=subprocess.PIPE, text=True).stdout
    release = bin_dir or REPO / "target" / "release"
    echo_server = [str(release / "echo-server"), "--threads", "1", "-q", "-l", "http://127.0.0.1:{port}"]
    servers = [
        Server("echo-server", "ws", echo_server),
        Server("echo-server", "http", echo_server),
        Server("echo-server echo_body", "http", echo_server, "/?echo_body"),
    ]
    for line in out.splitlines():
        head, _, command = line.partition("|")
        kind, _, name = head.partition(" ")
        if command and kind in ("ws", "http"):
            servers.append(Server(name, kind, shlex.split(command)))
    return release / "echo-bench", servers


def measured(proc: subprocess.Popen, pid: int, wait: float, timeout: float) -> tuple[str, str, float, float]:
    """Waits `wait` s (the warm-up), then measures the server's CPU until
    the load generator ends. Returns its output, the CPU s, the window s."""
    time.sleep(wait)
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    cpu1, t1 = cpu_seconds(pid), time.monotonic()
    return out, err, cpu1 - cpu0, max(t1 - t0, 1e-3)


def bench_ws(bench: Path, r: Running, w: Workload, duration: float, warmup: float) -> dict:
    cmd = PRIORITY + [
        "taskset", "-c", LOAD_CORE, str(bench),
        "--connect", f"ws://127.0.0.1:{r.port}/", *w.args,
        "-d", f"{duration}s", "--warmup", f"{warmup}s", "--json",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # From the end of the warm-up (plus a margin for connecting) to the end.
    out, err, cpu, window = measured(proc, r.proc.pid, warmup + 0.3, duration + warmup + 60)
    record: dict = {"exit": proc.returncode, "stderr": err.strip()[-500:]}
    try:
        report = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        record["error"] = "no JSON report"
        return record
    record.update(report)
    msgs = report["msgs_per_sec"] * window
    record["rate"] = report["msgs_per_sec"]
    record["server_cpu_util"] = cpu / window
    record["cpu_us_per_msg"] = cpu * 1e6 / msgs if msgs > 0 else None
    record["bench_cpu_util"] = report.get("bench_cpu_seconds", 0.0) / max(report.get("seconds", 1.0), 1e-3)
    return record


WRK_LATENCY = re.compile(r"^\s+(50|90|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$")


def wrk_us(value: str, unit: str) -> float:
    return float(value) * {"us": 1.0, "ms": 1e3, "s": 1e6}[unit]


def bench_http(r: Running, w: Workload, duration: float, warmup: float) -> dict:
    url = f"http://127.0.0.1:{r.port}{r.server.path}"
    base = PRIORITY + ["taskset", "-c", LOAD_CORE, "wrk", *w.args]
    # wrk takes whole seconds.
    if warmup > 0:
        subprocess.run(base + ["-d", f"{max(round(warmup), 1)}s", url],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    proc = subprocess.Popen(base + ["-d", f"{max(round(duration), 1)}s", "--latency", url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err, cpu, window = measured(proc, r.proc.pid, 0.0, duration + 60)
    record: dict = {"exit": proc.returncode, "stderr": err.strip()[-500:]}
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    if not rate:
        record["error"] = "no Requests/sec in wrk's output"
        return record
    record["rate"] = float(rate.group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    record["errors"] = int(bad.group(1)) if bad else 0
    if errors:
        record["socket_errors"] = errors.group(1)
    for line in out.splitlines():
        m = WRK_LATENCY.match(line)
        if m:
            record[f"p{m.group(1)}_us"] = wrk_us(m.group(2), m.group(3))
    requests = record["rate"] * window
    record["server_cpu_util"] = cpu / window
    record["cpu_us_per_msg"] = cpu * 1e6 / requests if requests > 0 else None
    return record


def fmt(x, digits=0) -> str:
    if x is None:
        return "-"
    return f"{x:,.{digits}f}"


def fmt_ratio(x) -> str:
    return "-" if x is None else f"{x:.2f}x"


def table(results: Results, workloads: list[Workload], args, info: dict) -> str:
    lines = [
        BEGIN,
        "",
        f"Run of {info['date']} on {info['machine']}, commit {info['commit']}: "
        f"{args.rounds} round(s) of {args.duration} s after {args.warmup} s of warm-up; "
        f"servers on core {SERVER_CORE} (one worker thread), the load generator on core {LOAD_CORE}"
        + (f", both SCHED_FIFO {args.realtime}" if args.realtime else "") + ".",
        f"Command: `python3 scripts/compare_web_peers.py {' '.join(args.argv)}`".rstrip() + "",
        "",
    ]
    for w in workloads:
        runs = results.runs.get(w.name, {})
        if not runs:
            continue
        ref_name = WS_REFERENCE if w.kind == "ws" else HTTP_REFERENCE
        ref = runs.get(ref_name, [])
        unit = "ops/s" if "churn" in w.name else ("req/s" if w.kind == "http" else "msgs/s")
        lines += [
            f"**{w.title}** (ratios against `{ref_name}` in the same round)",
            "",
            f"| server | {unit} | ratio | server CPU µs/msg | ratio | p50 µs | p99 µs | errors | load gen. CPU |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, recs in runs.items():
            ok = [r for r in recs if "error" not in r]
            lines.append(
                f"| {name} | {fmt(median([r.get('rate') for r in ok]))} "
                f"| {fmt_ratio(ratio_median(recs, ref, 'rate')) if ref else '-'} "
                f"| {fmt(median([r.get('cpu_us_per_msg') for r in ok]), 2)} "
                f"| {fmt_ratio(ratio_median(recs, ref, 'cpu_us_per_msg')) if ref else '-'} "
                f"| {fmt(median([r.get('p50_us') for r in ok]), 1)} "
                f"| {fmt(median([r.get('p99_us') for r in ok]), 1)} "
                f"| {sum(r.get('errors', 0) or 0 for r in ok) + len(recs) - len(ok)} "
                f"| {fmt(median([r.get('bench_cpu_util') for r in ok]), 2)} |"
            )
        lines.append("")
    lines += [
        "(`load gen. CPU`: echo-bench's own CPU in cores over the window; near 1.00 it,",
        "not the server, sets the rate, and the CPU column is what separates the servers.)",
        "",
        END,
    ]
    return "\n".join(lines)


def machine() -> dict:
    model = cpu_model() or platform.processor() or "unknown CPU"
    return {
        "date": datetime.date.today().isoformat(),
        "machine": f"{model}, {os.cpu_count()} CPUs, Linux {platform.release()}",
        "commit": git_commit(REPO),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="one round of 1 s runs: a smoke test")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured per run")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    p.add_argument("--only", help="servers to run, by name (the references are always run)")
    p.add_argument("--workloads", help="comma-separated: " + ",".join(w.name for w in WORKLOADS))
    p.add_argument("--realtime", type=int, metavar="PRIO", help="run servers and load as SCHED_FIFO PRIO (root)")
    p.add_argument("--update", action="store_true", help="write the tables into BENCHMARKS.md")
    p.add_argument("--json", type=Path, help="also write every run's record to this file")
    p.add_argument("--bin-dir", type=Path, help="echo-server and echo-bench from here, not built in release")
    args = p.parse_args()
    args.argv = sys.argv[1:]
    if args.quick and args.update:
        p.error("--quick is a smoke run and does not write BENCHMARKS.md: drop --update")
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 1.0, 0.5
    if args.realtime:
        PRIORITY[:] = ["chrt", "-f", str(args.realtime)]
    workloads = WORKLOADS
    if args.workloads:
        wanted = set(args.workloads.split(","))
        unknown = wanted - {w.name for w in WORKLOADS}
        if unknown:
            p.error(f"unknown workload(s): {', '.join(sorted(unknown))}")
        workloads = [w for w in WORKLOADS if w.name in wanted]
    if (os.cpu_count() or 1) < 2:
        p.error("needs two cores: the server on core 0, the load on core 1")

    bench, servers = build(args.bin_dir.resolve() if args.bin_dir else None)
    if args.only:
        keep = set(args.only.split(",")) | {WS_REFERENCE, HTTP_REFERENCE}
        servers = [s for s in servers if s.name in keep]
    logs = REPO / "target" / "compare_web_peers-logs"
    logs.mkdir(parents=True, exist_ok=True)
    results = Results()
    for rnd in range(args.rounds):
        for w in workloads:
            group = [s for s in servers if s.kind == w.kind]
            # Rotate the order each round.
            group = group[rnd % len(group):] + group[:rnd % len(group)] if group else group
            for s in group:
                log(f"round {rnd + 1}/{args.rounds}: {w.name} against {s.name}")
                r = start(s, logs)
                try:
                    if w.kind == "ws":
                        rec = bench_ws(bench, r, w, args.duration, args.warmup)
                    else:
                        rec = bench_http(r, w, args.duration, args.warmup)
                finally:
                    stop(r)
                if "error" in rec or rec.get("exit"):
                    log(f"  {s.name}: {rec.get('error', '')} exit {rec.get('exit')}: {rec.get('stderr', '')}")
                else:
                    log(f"  {s.name}: {rec['rate']:,.0f}/s, {fmt(rec.get('cpu_us_per_msg'), 2)} server CPU µs/msg")
                results.add(w.name, s.name, rec)
    section = table(results, workloads, args, machine())
    print(section)
    if args.json:
        args.json.write_text(json.dumps(results.runs, indent=1, default=str))
    if args.update:
        write_section(REPO / "BENCHMARKS.md", section, BEGIN, END)
        log("BENCHMARKS.md updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
