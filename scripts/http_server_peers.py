#!/usr/bin/env python3
"""echo-server's HTTP answers beside the hyper idiom of each, under wrk
(HTTP/1.1 keep-alive) and h2load (h2c), in one run (issue: perf round 3):

| request | echo-server | idiom |
|---|---|---|
| echo_body | `POST /?echo_body`, 64 bytes | hyper-echo, `POST /` |
| size16 | `GET /?size=16` | hyper-size, `GET /?size=16` |
| reflect | `GET /` (the JSON reflection) | hyper-reflect, `GET /` |

Each server is pinned to core 0 with one worker thread (`--threads 1`,
TOKIO_WORKER_THREADS=1) and the load to core 1; the two servers of a
request alternate, the order turning each round. Figures: requests per
second as the load tool reports them, and the server's utime + stime
(/proc/PID/stat) over the whole load run divided by the requests it
answered. Ratios are echo-server / idiom within a round; the table has
their medians.

Usage: python3 scripts/http_server_peers.py [--rounds N] [--duration S]
Needs target/release/echo-server (cargo build --release), the idioms
(bash scripts/web_peers/build.sh), wrk and h2load (Debian wrk,
nghttp2-client).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lib.rounds import median  # noqa: E402
from lib.support import cpu_seconds, free_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release"
PEERS = ROOT / "target" / "peers-web"
BODY = b"x" * 64
# wrk: 50 connections on one thread; h2load: 10 connections of 5 streams.
WRK_CONNS, H2_CONNS, H2_STREAMS = 50, 10, 5

# request: (echo-server's path, the idiom's binary, its path, POST?)
REQUESTS = {
    "echo_body": ("/?echo_body", "hyper-echo", "/", True),
    "size16": ("/?size=16", "hyper-size", "/?size=16", False),
    "reflect": ("/", "hyper-reflect", "/", False),
}


def load(tool: str, url: str, post: Path | None, secs: float) -> tuple[float, int]:
    """Runs `tool` (wrk or h2load) on core 1: requests per second, and
    requests answered."""
    if tool == "wrk":
        cmd = ["wrk", "-t1", f"-c{WRK_CONNS}", f"-d{int(secs)}s", url]
        if post:
            cmd[1:1] = ["-s", str(post)]
    else:
        cmd = ["h2load", "-c", str(H2_CONNS), "-m", str(H2_STREAMS), "-D", str(int(secs)), url]
        if post:
            cmd[1:1] = ["-d", str(post.with_suffix(".body"))]
    out = subprocess.run(["taskset", "-c", "1", *cmd], capture_output=True, text=True,
                         check=True).stdout
    if tool == "wrk":
        assert "Non-2xx" not in out, out
        errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+)", out)
        assert not errors or errors.groups() == ("0", "0", "0"), out
        if "timeout" in out:
            # A stall of the shared machine (a request over wrk's 2 s).
            print("wrk:", out.strip().splitlines()[-3], file=sys.stderr)
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        n = int(re.search(r"(\d+) requests in", out).group(1))
    else:
        m = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
        assert m and m.group(1) == m.group(2), out
        rps = float(re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out).group(1))
        n = int(m.group(2))
    return rps, n


def measure(server: list[str], tool: str, url_path: str, post: Path | None,
            secs: float) -> dict:
    port = free_port()
    proc = subprocess.Popen(["taskset", "-c", "0", *[a.replace("{port}", str(port))
                                                     for a in server]],
                            stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.4)
        before = cpu_seconds(proc.pid)
        rps, n = load(tool, f"http://127.0.0.1:{port}{url_path}", post, secs)
        cpu = cpu_seconds(proc.pid) - before
    finally:
        proc.terminate()
        proc.wait()
    return {"rps": rps, "cpu_us_per_req": cpu / max(n, 1) * 1e6}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=3)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    post = tmp / "post.lua"
    post.write_text('wrk.method = "POST"\nwrk.body = "' + BODY.decode() + '"\n'
                    'wrk.headers["Content-Type"] = "application/octet-stream"\n')
    post.with_suffix(".body").write_bytes(BODY)
    ours = [str(BIN / "echo-server"), "--threads", "1", "-q", "-l", "http://127.0.0.1:{port}"]
    res: dict[tuple[str, str, str], list[dict]] = {}
    for rnd in range(a.rounds):
        for req, (path, idiom, idiom_path, is_post) in REQUESTS.items():
            for tool in ("wrk", "h2load"):
                runs = [("echo-server", ours, path),
                        (idiom, ["env", "TOKIO_WORKER_THREADS=1", str(PEERS / idiom), "{port}"],
                         idiom_path)]
                for name, cmd, p in (runs if rnd % 2 == 0 else runs[::-1]):
                    r = measure(cmd, tool, p, post if is_post else None, a.duration)
                    res.setdefault((req, tool, name), []).append(r)
                    print(req, tool, name, r, flush=True)
    print("\n| request | load | server | req/s | server CPU µs/req |\n|---|---|---|---|---|")
    for (req, tool, name), rs in res.items():
        print(f"| {req} | {tool} | {name} | {median([r['rps'] for r in rs]):.0f} | "
              f"{median([r['cpu_us_per_req'] for r in rs]):.2f} |")
    print("\n| request | load | req/s, echo-server / idiom | CPU per request, echo-server / idiom |"
          "\n|---|---|---|---|")
    for req, (_, idiom, _, _) in REQUESTS.items():
        for tool in ("wrk", "h2load"):
            ours_r, theirs = res[(req, tool, "echo-server")], res[(req, tool, idiom)]
            cells = []
            for k in ("rps", "cpu_us_per_req"):
                rounds = [x[k] / y[k] for x, y in zip(ours_r, theirs)]
                cells.append(f"{median(rounds):.3f} ({', '.join(f'{r:.2f}' for r in rounds)})")
            print(f"| {req} | {tool} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
