#!/usr/bin/env python3
"""The server's memory per idle connection, plain and behind a PROXY
listener: the growth of its VmRSS over N connections that each sent (a v2
header and) one byte, got it back, and stay open.

Usage: python3 scripts/idle_proxy_memory.py N NAME=ECHO-SERVER-BINARY...
e.g.   python3 scripts/idle_proxy_memory.py 5000 now=target/release/echo-server

Python 3.11 standard library only; bounded: N connections, then it stops
each server it started.
"""

from __future__ import annotations

import re
import resource
import socket
import struct
import subprocess
import sys
import threading
import time

from lib.support import rss_kib

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(src_port: int) -> bytes:
    """A PROXY v2 header: PROXY command, TCP over IPv4, 127.0.0.1 both ways."""
    body = bytes([127, 0, 0, 1, 127, 0, 0, 1]) + struct.pack(">HH", src_port, 10000)
    return V2_SIGNATURE + bytes([0x21, 0x11]) + struct.pack(">H", len(body)) + body


def start(binary: str, proxied: bool) -> tuple[subprocess.Popen, int]:
    """Starts the server on a free port; returns it and the port."""
    args = [binary, "--threads", "1", "-l", "127.0.0.1:0"] + (["--proxy-protocol"] if proxied else [])
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    while "port" not in line:
        if not line:
            raise RuntimeError(f"{binary} exited before it listened")
        line = proc.stderr.readline()
    port = int(re.search(r"port (\d+)", line).group(1))
    # Keep reading its log, so that it never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    return proc, port


def idle_bytes_per_connection(binary: str, n: int, proxied: bool) -> float:
    proc, port = start(binary, proxied)
    conns = []
    try:

        def connect(i: int) -> None:
            c = socket.create_connection(("127.0.0.1", port), timeout=10)
            if proxied:
                c.sendall(v2_header(i % 60000 + 1))
            c.sendall(b"x")
            if c.recv(1) != b"x":
                raise RuntimeError("no echo")
            conns.append(c)

        connect(0)  # the first connection's one-off costs, outside the measure
        time.sleep(0.3)
        before = rss_kib(proc.pid)
        for i in range(1, n + 1):
            connect(i)
        time.sleep(0.5)
        return (rss_kib(proc.pid) - before) * 1024 / n
    finally:
        # Closed first: on SIGTERM the server waits for open connections.
        for c in conns:
            c.close()
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    if len(sys.argv) < 3 or "=" not in sys.argv[2]:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    n = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_NOFILE, (n + 1024, n + 1024))
    for spec in sys.argv[2:]:
        name, _, binary = spec.partition("=")
        for proxied in (False, True):
            per = idle_bytes_per_connection(binary, n, proxied)
            print(f"{name} {'proxied' if proxied else 'plain'}: {per:.0f} bytes per idle connection", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
