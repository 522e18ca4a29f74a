#!/usr/bin/env python3
"""Fixed-rate latency: echoes --threads N against C epoll xN at a given total
rate (open loop, 512 connections, 64 B), server on cores 0..N-1, bench on the
upper half. usage: rate.py BIN_DIR OUT_DIR N:RATE[,N:RATE...]"""
import json, os, socket, subprocess, sys, time
BIN, OUT, PLAN = sys.argv[1], sys.argv[2], sys.argv[3]
NCPU = os.cpu_count(); HALF = NCPU // 2
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
def wait_port(p):
    end = time.time() + 5
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", p), timeout=0.2).close(); return True
        except OSError:
            time.sleep(0.05)
    return False
res = open(f"{OUT}/rate.jsonl", "a")
for item in PLAN.split(","):
    n, rate = (int(x) for x in item.split(":"))
    for name in (f"echoes-t{n}", f"c-epoll-x{n}"):
        p = free_port()
        if name.startswith("echoes"):
            cmds = [["taskset", "-c", f"0-{n-1}", f"{BIN}/echo-server", "-l", f"127.0.0.1:{p}", "-q", "--threads", str(n)]]
        else:
            cmds = [["taskset", "-c", str(i), f"{BIN}/echo_epoll", str(p)] for i in range(n)]
        procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for c in cmds]
        rec = {"server": name, "cores": n, "rate": rate}
        try:
            if not wait_port(p):
                rec["error"] = "server did not start"
            else:
                out = subprocess.run(["taskset", "-c", f"{HALF}-{NCPU-1}", f"{BIN}/echo-bench", "--connect", f"127.0.0.1:{p}",
                                      "-c", "512", "-s", "64", "--rate", str(rate), "--threads", str(NCPU - HALF),
                                      "--warmup", "1s", "-d", "3s", "--json"], capture_output=True, text=True, timeout=40)
                try:
                    j = json.loads(out.stdout.strip().splitlines()[-1])
                    rec.update({k: j.get(k) for k in ("msgs_per_sec", "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "errors")})
                except (ValueError, IndexError):
                    rec["error"] = (out.stderr or out.stdout)[-300:]
        finally:
            for x in procs: x.terminate()
            for x in procs:
                try: x.wait(timeout=5)
                except subprocess.TimeoutExpired: x.kill()
        res.write(json.dumps(rec) + "\n"); res.flush()
        print(json.dumps(rec), flush=True)
