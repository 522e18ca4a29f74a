#!/usr/bin/env python3
"""Puts echo-server beside its peers, measured by echo-bench.

Builds echo-server and echo-bench in release and the reference peers with
../shared/peers/build.sh, then, for several rounds, runs every workload
against every server in turn (the order rotates each round, so a noisy
moment of the shared machine does not always hit the same server). Each
server runs pinned to core 0 with one worker thread; echo-bench runs pinned
to core 1 on its single-threaded runtime. It records what echo-bench
reports, the server's CPU time per message (utime + stime from
/proc/PID/stat over the measured window), and the server's resident memory
per idle connection. The medians, and ratios against the C epoll peer, go
into BENCHMARKS.md between markers, so text around them survives.

Ratios matter, not absolutes: the machine is shared and noisy. A ratio is
the median over rounds of (server / c-epoll) measured in the same round.

Usage: python3 scripts/compare_peers.py [--quick] [--only NAME,...] [--workloads W,...]
Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lib.rounds import Results, Running, cpu_model, git_commit, log, median, ratio_median, run, start, stop
from lib.rounds import write_section
from lib.support import cpu_seconds, open_fds, rss_kib

REPO = Path(__file__).resolve().parent.parent
BEGIN = "<!-- compare_peers.py: begin generated section -->"
END = "<!-- compare_peers.py: end generated section -->"
REFERENCE = "c-epoll"
BENCHMARKS = REPO / "BENCHMARKS.md"
SERVER_CORE = "0"
BENCH_CORE = "1"
# `nice -n N` or `chrt -f PRIO` before every server and bench command
# (--nice, --realtime); empty for neither.
PRIORITY: list[str] = []
# What a new BENCHMARKS.md starts with.
NEW_FILE = "# Benchmarks\n\n`echo-server` beside its peers, measured by `echo-bench`.\n\n"


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    args: tuple[str, ...]


WORKLOADS = [
    Workload("pingpong-64", "pingpong 64 B x 50 connections", ("-m", "pingpong", "-s", "64", "-c", "50")),
    Workload("pingpong-1k", "pingpong 1 KiB x 50 connections", ("-m", "pingpong", "-s", "1KiB", "-c", "50")),
    Workload("pingpong-16k", "pingpong 16 KiB x 10 connections", ("-m", "pingpong", "-s", "16KiB", "-c", "10")),
    Workload("stream-64k", "stream 64 KiB x 1 connection", ("-m", "stream", "-s", "64KiB", "-c", "1")),
    Workload("churn-64", "churn 64 B x 8 concurrent", ("-m", "churn", "-s", "64", "-c", "8")),
]
# Open loop at half of c-epoll's closed-loop rate (measured in the same
# round by pingpong-64, or --rate): the tail under a load every server can
# carry, with latency counted from when each message was due.
RATE = Workload("rate-64", "pingpong 64 B x 50 connections at a fixed rate (half of c-epoll's maximum)",
                ("-m", "pingpong", "-s", "64", "-c", "50"))
IDLE = "idle"
ALL_WORKLOADS = [w.name for w in WORKLOADS] + [RATE.name, IDLE]


@dataclass
class Server:
    name: str
    command: list[str]  # with "{port}" where the port goes
    cores: str = SERVER_CORE
    # Extra echo-bench flags for this server's runs (--bench-args).
    bench_args: tuple[str, ...] = ()

    def argv(self, port: int) -> list[str]:
        return PRIORITY + ["taskset", "-c", self.cores] + [a.replace("{port}", str(port)) for a in self.command]


def build(peers_dir: Path, include_seed: bool) -> tuple[Path, list[Server]]:
    run(["cargo", "build", "--release", "--bins"], cwd=REPO)
    out = run(
        ["bash", str(peers_dir / "build.sh"), "target/peers"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    target = REPO / "target" / "release"
    servers = [Server("echo-server", [str(target / "echo-server"), "--threads", "1", "-q", "-l", "127.0.0.1:{port}"])]
    for line in out.splitlines():
        if "|" not in line:
            continue
        name, command = line.split("|", 1)
        if name == "python-seed" and not include_seed:
            continue
        servers.append(Server(name.strip(), shlex.split(command.strip())))
    return target / "echo-bench", servers


def bench_once(
    bench: Path,
    r: Running,
    w: Workload,
    duration: float,
    warmup: float,
    extra: tuple[str, ...] = (),
    cores: str = BENCH_CORE,
    priority: bool = True,
) -> dict:
    cmd = (PRIORITY if priority else []) + [
        "taskset", "-c", cores, str(bench),
        "--connect", f"127.0.0.1:{r.port}",
        *w.args, *extra,
        "-d", f"{duration}s", "--warmup", f"{warmup}s", "--json",
    ]
    pid = r.proc.pid
    # The bench's own CPU: children's usage grows when a child is reaped,
    # and the only child reaped during a run is the bench (taskset execs it).
    usage0, wall0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Server CPU over (about) the measured window: from the end of the
    # warm-up (plus a margin for connecting) to the end of the run.
    time.sleep(warmup + 0.2)
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    try:
        out, err = proc.communicate(timeout=duration + warmup + 60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    cpu1, t1 = cpu_seconds(pid), time.monotonic()
    usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    bench_cpu = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    record: dict = {
        "exit": proc.returncode,
        "stderr": err.strip()[-500:],
        "bench_cpu_util": bench_cpu / max(t1 - wall0, 1e-3),
    }
    try:
        report = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        record["error"] = "no JSON report"
        return record
    record.update(report)
    window = max(t1 - t0, 1e-3)
    cpu = cpu1 - cpu0
    msgs = report["msgs_per_sec"] * window
    mb = report["mb_per_sec"] * window
    record["server_cpu_util"] = cpu / window
    record["cpu_us_per_msg"] = cpu * 1e6 / msgs if msgs > 0 else None
    record["cpu_us_per_mb"] = cpu * 1e6 / mb if mb > 0 else None
    return record


def idle_once(server: Server, logs: Path, count: int) -> dict:
    r = start(server, logs)
    pid = r.proc.pid
    socks: list[socket.socket] = []
    try:
        time.sleep(0.3)
        base_fds, before = open_fds(pid), rss_kib(pid)
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", r.port), timeout=10)
            socks.append(s)
        # Wait until the server has accepted them all (its descriptors
        # show it), then for its memory to settle.
        deadline = time.monotonic() + 60
        while open_fds(pid) < base_fds + count and time.monotonic() < deadline:
            time.sleep(0.1)
        accepted = open_fds(pid) - base_fds
        time.sleep(0.5)
        after = rss_kib(pid)
        return {
            "connections": count,
            "accepted": accepted,
            "rss_before_kib": before,
            "rss_after_kib": after,
            "bytes_per_conn": (after - before) * 1024 / max(accepted, 1),
        }
    finally:
        for s in socks:
            s.close()
        stop(r)


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def fmt_num(x, digits=0) -> str:
    if x is None:
        return "–"
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def fmt_us(x) -> str:
    if x is None:
        return "–"
    if x >= 1000:
        return f"{x / 1000:.2f} ms"
    return f"{x:.0f} µs"


def fmt_pct(x) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def fmt_ratio(x) -> str:
    return "–" if x is None else f"{x:.2f}×"


def machine() -> dict:
    return {
        "commit": git_commit(REPO),
        "nproc": os.cpu_count(),
        "cpu": cpu_model() or "unknown",
        "kernel": platform.release(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def table(results: Results, servers: list[str], args, command: str, info: dict) -> str:
    lines = [BEGIN, ""]
    lines.append(f"Generated by `{command}` on {info['date']}, at commit `{info['commit']}`.")
    lines.append("")
    lines.append(
        f"Machine: {info['nproc']} cores ({info['cpu']}), Linux {info['kernel']}; shared and noisy "
        f"(load average {info['load_before']} before the run, {info['load_after']} after), "
        "so compare ratios, not absolute numbers."
    )
    lines.append(
        f"Each run: {args.duration:g} s measured after {args.warmup:g} s of warm-up; {args.rounds} round(s), "
        "servers in rotating order; figures are medians over rounds. Server pinned to core 0 with one "
        "worker thread, `echo-bench` pinned to core 1 (one thread)"
        + (f", both under `{' '.join(PRIORITY)}`." if PRIORITY else ".")
    )
    lines.append(
        "Ratios are against the C epoll peer, the median over rounds of the ratio within each round: "
        "for msgs/s higher is better, for CPU/msg and memory lower is better. Server CPU is "
        "utime + stime from `/proc/PID/stat` over the measured window, per message (per MB for stream). "
        "CPU busy is the share of one core each side used: a bench near 100% with a server well below "
        "means the bench, not the server, set the pace. Latency is from send (closed loop)."
    )
    lines.append("")
    ref_name = REFERENCE if REFERENCE in servers else None
    for w in WORKLOADS:
        runs = results.runs.get(w.name)
        if not runs:
            continue
        stream = w.name.startswith("stream")
        lines.append(f"### {w.title}")
        lines.append("")
        if stream:
            lines.append("| server | MB/s | vs c-epoll | server CPU µs/MB | vs c-epoll | CPU busy server / bench | errors |")
            lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        else:
            lines.append(
                "| server | msgs/s | vs c-epoll | p50 | p99 | p99.9 | server CPU µs/msg | vs c-epoll "
                "| CPU busy server / bench | errors |"
            )
            lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        ref = runs.get(ref_name, []) if ref_name else []
        for s in servers:
            rs = runs.get(s)
            if not rs:
                continue
            errors = sum((r.get("errors") or 0) for r in rs)
            failed = sum(1 for r in rs if r.get("exit") != 0)
            err_cell = str(errors) + (f" ({failed} failed run)" if failed else "")
            busy = (
                f"{fmt_pct(median(r.get('server_cpu_util') for r in rs))} / "
                f"{fmt_pct(median(r.get('bench_cpu_util') for r in rs))}"
            )
            if stream:
                lines.append(
                    f"| {s} | {fmt_num(median(r.get('mb_per_sec') for r in rs), 1)} "
                    f"| {fmt_ratio(ratio_median(rs, ref, 'mb_per_sec'))} "
                    f"| {fmt_num(median(r.get('cpu_us_per_mb') for r in rs), 0)} "
                    f"| {fmt_ratio(ratio_median(rs, ref, 'cpu_us_per_mb'))} | {busy} | {err_cell} |"
                )
            else:
                lines.append(
                    f"| {s} | {fmt_num(median(r.get('msgs_per_sec') for r in rs))} "
                    f"| {fmt_ratio(ratio_median(rs, ref, 'msgs_per_sec'))} "
                    f"| {fmt_us(median(r.get('p50_us') for r in rs))} "
                    f"| {fmt_us(median(r.get('p99_us') for r in rs))} "
                    f"| {fmt_us(median(r.get('p999_us') for r in rs))} "
                    f"| {fmt_num(median(r.get('cpu_us_per_msg') for r in rs), 2)} "
                    f"| {fmt_ratio(ratio_median(rs, ref, 'cpu_us_per_msg'))} | {busy} | {err_cell} |"
                )
        lines.append("")
    rate = results.runs.get(RATE.name)
    if rate:
        target = median(r.get("rate_target") for rs in rate.values() for r in rs)
        lines.append(f"### {RATE.title}")
        lines.append("")
        lines.append(
            f"Open loop (`--rate`, about {fmt_num(target)} msgs/s in total): latency counts from when each "
            "message was due, so a stall shows in the tail. For p99, lower is better. The bench runs at normal "
            "priority here even under `--realtime` (real-time throttling would stall it for 50 ms a second), "
            "and open loop costs it a timer per message, so at this rate its own queueing is part of every "
            "figure: compare the servers with each other, not with zero."
        )
        lines.append("")
        lines.append("| server | msgs/s | p50 | p90 | p99 | p99.9 | max | p99 vs c-epoll | server CPU µs/msg | errors |")
        lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        ref = rate.get(ref_name, []) if ref_name else []
        for s in servers:
            rs = rate.get(s)
            if not rs:
                continue
            errors = sum((r.get("errors") or 0) for r in rs)
            lines.append(
                f"| {s} | {fmt_num(median(r.get('msgs_per_sec') for r in rs))} "
                f"| {fmt_us(median(r.get('p50_us') for r in rs))} "
                f"| {fmt_us(median(r.get('p90_us') for r in rs))} "
                f"| {fmt_us(median(r.get('p99_us') for r in rs))} "
                f"| {fmt_us(median(r.get('p999_us') for r in rs))} "
                f"| {fmt_us(median(r.get('max_us') for r in rs))} "
                f"| {fmt_ratio(ratio_median(rs, ref, 'p99_us'))} "
                f"| {fmt_num(median(r.get('cpu_us_per_msg') for r in rs), 2)} | {errors} |"
            )
        lines.append("")
    idle = results.runs.get(IDLE)
    if idle:
        n = max((r["connections"] for rs in idle.values() for r in rs), default=0)
        lines.append(f"### idle memory, {n:,} idle connections")
        lines.append("")
        lines.append("| server | RSS before | RSS after | bytes per connection | vs c-epoll |")
        lines.append("| --- | ---: | ---: | ---: | ---: |")
        ref = idle.get(ref_name, []) if ref_name else []
        for s in servers:
            rs = idle.get(s)
            if not rs:
                continue
            short = [r for r in rs if r["accepted"] < r["connections"]]
            note = f" (only {short[0]['accepted']} accepted)" if short else ""
            lines.append(
                f"| {s} | {fmt_num(median(r['rss_before_kib'] for r in rs))} KiB "
                f"| {fmt_num(median(r['rss_after_kib'] for r in rs))} KiB "
                f"| {fmt_num(median(r['bytes_per_conn'] for r in rs))}{note} "
                f"| {fmt_ratio(ratio_median(rs, ref, 'bytes_per_conn'))} |"
            )
        lines.append("")
    lines.extend(scaling_table(results))
    lines.append(END)
    return "\n".join(lines) + "\n"


SCALING = Workload("pingpong-64x100", "pingpong 64 B x 100 connections", ("-m", "pingpong", "-s", "64", "-c", "100"))


def with_threads(command: list[str], n: int) -> list[str]:
    """`command` with the value of its `--threads` flag set to `n`."""
    out = list(command)
    i = out.index("--threads")
    out[i + 1] = str(n)
    return out


def scaling(bench: Path, servers: list[Server], logs: Path, args, results: Results) -> None:
    """Two worker threads on this two-core machine, beside a bench that
    needs both cores too: each side gets whatever the scheduler gives it,
    so this shows what a second thread buys here, not on a larger machine."""
    ours = next(s for s in servers if s.name == "echo-server")
    ref = next((s for s in servers if s.name == REFERENCE), None)
    both = "0,1"
    variants = [
        ("echo-server, 1 thread, pinned; bench pinned to the other core", ours, ()),
        (
            "echo-server, 2 threads; bench 2 threads; both on both cores",
            Server("echo-server-2t", with_threads(ours.command, 2), both),
            ("--threads", "2"),
        ),
    ]
    if ref:
        variants.append(
            ("c-epoll (1 thread); bench 2 threads; both on both cores", Server(REFERENCE, ref.command, both), ("--threads", "2"))
        )
    for rnd in range(args.rounds):
        for label, server, extra in variants:
            r = start(server, logs)
            try:
                cores = BENCH_CORE if server is ours else both
                rec = bench_once(bench, r, SCALING, args.duration, args.warmup, extra, cores)
            finally:
                stop(r)
            rec["round"], rec["label"] = rnd, label
            results.add(SCALING.name, label, rec)
            log(f"round {rnd + 1} scaling {label}: {rec.get('msgs_per_sec')} msg/s, cpu/msg {rec.get('cpu_us_per_msg')}")


def scaling_table(results: Results) -> list[str]:
    runs = results.runs.get(SCALING.name)
    if not runs:
        return []
    lines = [f"### scaling: {SCALING.title}, one and two worker threads", ""]
    lines.append(
        "This machine has two cores, and the bench needs one of them as much as the server does: with two "
        "worker threads, server and bench share both cores, so this shows what a second thread buys *here*, "
        "not on a larger machine (see the design notes). Server CPU busy can exceed 100% with two threads."
    )
    lines.append("")
    lines.append("| setup | msgs/s | p99 | server CPU µs/msg | CPU busy server / bench |")
    lines.append("| --- | ---: | ---: | ---: | ---: |")
    for label, rs in runs.items():
        lines.append(
            f"| {label} | {fmt_num(median(r.get('msgs_per_sec') for r in rs))} "
            f"| {fmt_us(median(r.get('p99_us') for r in rs))} "
            f"| {fmt_num(median(r.get('cpu_us_per_msg') for r in rs), 2)} "
            f"| {fmt_pct(median(r.get('server_cpu_util') for r in rs))} / "
            f"{fmt_pct(median(r.get('bench_cpu_util') for r in rs))} |"
        )
    lines.append("")
    return lines


def output_path(quick: bool, output: Path | None) -> Path:
    """Where the tables go: a smoke run's one-second noise never lands in
    the tracked BENCHMARKS.md."""
    if output is None:
        return REPO / "target" / "compare" / "quick.md" if quick else BENCHMARKS
    if quick and output.resolve() == BENCHMARKS:
        raise ValueError("--quick is a smoke run and does not write BENCHMARKS.md: drop --output, or name another file")
    return output


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, help="rounds over every server (default 3)")
    p.add_argument("--duration", type=float, help="measured seconds per run (default 4)")
    p.add_argument("--warmup", type=float, help="warm-up seconds per run (default 1)")
    p.add_argument("--idle-connections", type=int, help="for the idle memory test (default 10000)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="defaults for a smoke test: 1 round, 1 s runs after 0.5 s, 1000 idle connections",
    )
    p.add_argument("--only", default="", help="comma-separated server names (c-epoll is added for ratios)")
    p.add_argument("--workloads", default="", help="comma-separated, from: " + ", ".join(ALL_WORKLOADS))
    p.add_argument("--include-seed", action="store_true", help="also measure the (slow) python-seed peer")
    p.add_argument(
        "--server",
        action="append",
        default=[],
        metavar="NAME=COMMAND",
        help="an extra server to measure, e.g. an older build: "
        "'old=/tmp/echo-server --threads 1 -q -l 127.0.0.1:{port}' (repeatable)",
    )
    p.add_argument(
        "--bench-args",
        action="append",
        default=[],
        metavar="NAME=FLAGS",
        help="extra echo-bench flags for one server's runs, e.g. a PROXY header for a server "
        "that requires one: 'proxied=--proxy-protocol v2' (repeatable)",
    )
    p.add_argument(
        "--rate",
        type=float,
        help="total msgs/s for rate-64 (default: half of c-epoll's pingpong-64 rate in the same round)",
    )
    p.add_argument(
        "--peers-dir",
        type=Path,
        default=Path(os.environ.get("ECHOES_PEERS_DIR", REPO.parent / "shared" / "peers")),
        help="where build.sh is (default: $ECHOES_PEERS_DIR or ../shared/peers)",
    )
    prio = p.add_mutually_exclusive_group()
    prio.add_argument(
        "--nice",
        type=int,
        help="run servers and bench under `nice -n N` (e.g. -10, as root), the same for every server",
    )
    prio.add_argument(
        "--realtime",
        type=int,
        metavar="PRIO",
        help="run servers and bench under `chrt -f PRIO` (SCHED_FIFO, as root): on a machine busy with "
        "other work, a waking server or bench otherwise waits out another task's time slice, which "
        "both sides do thousands of times a second; the kernel's RT throttling still leaves others a share",
    )
    p.add_argument(
        "--scaling",
        action="store_true",
        help="also run 64 B ping-pong with one and two worker threads, sharing both cores with the bench",
    )
    p.add_argument(
        "--output",
        type=Path,
        help="where the tables go (default BENCHMARKS.md; with --quick, target/compare/quick.md)",
    )
    p.add_argument("--raw", type=Path, default=REPO / "target" / "compare" / "results.json")
    args = p.parse_args()
    try:
        args.output = output_path(args.quick, args.output)
    except ValueError as e:
        p.error(str(e))
    defaults = (1, 1.0, 0.5, 1000) if args.quick else (3, 4.0, 1.0, 10_000)
    for name, value in zip(("rounds", "duration", "warmup", "idle_connections"), defaults):
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.rounds < 1 or args.duration <= 0 or args.warmup < 0 or args.idle_connections < 1:
        p.error("--rounds, --duration and --idle-connections must be positive, --warmup not negative")
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()] or ALL_WORKLOADS
    unknown = set(workloads) - set(ALL_WORKLOADS)
    if unknown:
        p.error(f"unknown workload(s): {', '.join(sorted(unknown))}; choose from {', '.join(ALL_WORKLOADS)}")
    if not (args.peers_dir / "build.sh").exists():
        p.error(f"no build.sh in {args.peers_dir} (use --peers-dir or ECHOES_PEERS_DIR)")
    if (os.cpu_count() or 1) < 2:
        p.error("needs two cores: the server on core 0, the bench on core 1")

    if args.nice is not None:
        PRIORITY.extend(["nice", "-n", str(args.nice)])
    elif args.realtime is not None:
        PRIORITY.extend(["chrt", "-f", str(args.realtime)])
    if PRIORITY:
        probe = subprocess.run(PRIORITY + ["true"], capture_output=True, text=True)
        if probe.returncode != 0 or probe.stderr:
            p.error(f"cannot run under {' '.join(PRIORITY)}: {probe.stderr.strip() or probe.returncode}")
    raise_nofile()
    logs = REPO / "target" / "compare" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    bench, servers = build(args.peers_dir, args.include_seed)
    if args.only:
        wanted = {n.strip() for n in args.only.split(",")} | {REFERENCE}
        servers = [s for s in servers if s.name in wanted]
    # Extra servers are measured whatever --only says.
    for spec in args.server:
        name, _, command = spec.partition("=")
        if not name or "{port}" not in command:
            p.error(f"--server wants NAME=COMMAND with {{port}} in the command, not {spec!r}")
        servers.append(Server(name.strip(), shlex.split(command)))
    for spec in args.bench_args:
        name, _, flags = spec.partition("=")
        matching = [s for s in servers if s.name == name.strip()]
        if not matching:
            p.error(f"--bench-args names no server: {spec!r}")
        for s in matching:
            s.bench_args = tuple(shlex.split(flags))
    names = [s.name for s in servers]
    log(f"servers: {', '.join(names)}; workloads: {', '.join(workloads)}")

    results = Results()
    load_before = os.getloadavg()
    started = time.monotonic()
    for rnd in range(args.rounds):
        order = servers[rnd % len(servers) :] + servers[: rnd % len(servers)]
        load = [w for w in WORKLOADS if w.name in workloads]
        if load or RATE.name in workloads:
            running = []
            try:
                for s in order:
                    running.append(start(s, logs))
                for w in load:
                    for r in running:
                        rec = bench_once(bench, r, w, args.duration, args.warmup, r.server.bench_args)
                        rec["round"] = rnd
                        results.add(w.name, r.server.name, rec)
                        log(
                            f"round {rnd + 1} {w.name} {r.server.name}: {rec.get('msgs_per_sec')} msg/s, "
                            f"{rec.get('mb_per_sec')} MB/s, p99 {rec.get('p99_us')} us, "
                            f"cpu/msg {rec.get('cpu_us_per_msg') and round(rec['cpu_us_per_msg'], 2)} us, "
                            f"errors {rec.get('errors')}, exit {rec.get('exit')}"
                        )
                if RATE.name in workloads:
                    target = args.rate
                    if target is None:
                        ref = [r for r in results.runs.get("pingpong-64", {}).get(REFERENCE, []) if r["round"] == rnd]
                        target = ref[0]["msgs_per_sec"] / 2 if ref and ref[0].get("msgs_per_sec") else None
                    if target is None:
                        log("rate-64 needs pingpong-64 (with c-epoll) in the same round, or --rate; skipped")
                    else:
                        for r in running:
                            # Not under --realtime: a SCHED_FIFO bench that is
                            # busy for most of a second is throttled by the
                            # kernel (sched_rt_runtime_us) for the rest, which
                            # would put a 50 ms stall into every tail.
                            extra = ("--rate", f"{target:.0f}", *r.server.bench_args)
                            rec = bench_once(bench, r, RATE, args.duration, args.warmup, extra, priority=False)
                            rec["round"], rec["rate_target"] = rnd, target
                            results.add(RATE.name, r.server.name, rec)
                            log(
                                f"round {rnd + 1} rate-64 {r.server.name} at {target:.0f}/s: "
                                f"p50 {rec.get('p50_us')} p99 {rec.get('p99_us')} max {rec.get('max_us')} us, "
                                f"errors {rec.get('errors')}, exit {rec.get('exit')}"
                            )
            finally:
                for r in running:
                    stop(r)
        if IDLE in workloads:
            for s in order:
                rec = idle_once(s, logs, args.idle_connections)
                rec["round"] = rnd
                results.add(IDLE, s.name, rec)
                log(f"round {rnd + 1} idle {s.name}: {rec['bytes_per_conn']:.0f} bytes/conn ({rec['accepted']} accepted)")
    if args.scaling:
        scaling(bench, servers, logs, args, results)
    log(f"done in {time.monotonic() - started:.0f} s")

    args.raw.parent.mkdir(parents=True, exist_ok=True)
    args.raw.write_text(json.dumps(results.runs, indent=1))
    command = "python3 scripts/compare_peers.py" + "".join(" " + shlex.quote(a) for a in sys.argv[1:])
    info = machine()
    info["load_before"] = "/".join(f"{x:.1f}" for x in load_before)
    info["load_after"] = "/".join(f"{x:.1f}" for x in os.getloadavg())
    section = table(results, names, args, command, info)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_section(args.output, section, BEGIN, END, NEW_FILE)
    log(f"wrote {args.output} (raw figures in {args.raw})")
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
