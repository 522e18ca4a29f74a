#!/usr/bin/env python3
"""A WebSocket echo server in Python: the `websockets` library's own echo
example, on uvloop.

Usage: ws_python.py PORT [ADDRESS] [--no-uvloop]

Every text and binary message is sent back as it came; compression is
off (echo-bench does not offer it, and it would only cost CPU). Logs one
line on standard error when it listens. Needs `websockets` (13 or newer)
and, unless --no-uvloop, `uvloop` (scripts/web_peers/build.sh puts both in a
virtualenv).
"""

import asyncio
import sys

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed


async def echo(websocket):
    try:
        async for message in websocket:
            await websocket.send(message)
    except ConnectionClosed:
        # A Close that arrives with echoes still owed (the end of a bench
        # run with messages in flight) ends them here: no traceback.
        pass


async def main(port: int, host: str) -> None:
    # max_size=None: the limit is the bench's to test, not the peer's
    # (16 KiB messages are under the 1 MiB default anyway).
    async with serve(echo, host, port, compression=None, max_size=None) as server:
        bound = ", ".join(str(s.getsockname()[:2]) for s in server.sockets)
        print(f"ws_python: listening on {bound}", file=sys.stderr, flush=True)
        await asyncio.get_running_loop().create_future()


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if not args:
        sys.exit("usage: ws_python.py PORT [ADDRESS] [--no-uvloop]")
    port, host = int(args[0]), (args[1] if len(args) > 1 else "127.0.0.1")
    try:
        if "--no-uvloop" in sys.argv:
            asyncio.run(main(port, host))
        else:
            import uvloop

            uvloop.run(main(port, host))
    except KeyboardInterrupt:
        pass
