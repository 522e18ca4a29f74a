#!/usr/bin/env bash
# Builds the WebSocket and HTTP peers into OUT (default: target/peers-web
# under the current directory) and prints one line per server,
# KIND NAME|COMMAND, with {port} where the port goes; KIND is ws (a
# WebSocket echo: ws://127.0.0.1:{port}/) or http (an HTTP/1.1 server for
# wrk: http://127.0.0.1:{port}/).
# Needs: cargo (the crates come from the registry, or its local cache) and
# python3; websockets and uvloop are installed into OUT/venv, and the
# Python line is left out when that fails.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="${1:-$PWD/target/peers-web}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

cargo build --quiet --release --locked \
    --manifest-path "$HERE/rust/Cargo.toml" --target-dir "$OUT/cargo" >&2
cp "$OUT/cargo/release/ws-tokio-echo" "$OUT/cargo/release/hyper-echo" \
    "$OUT/cargo/release/hyper-reflect" "$OUT/cargo/release/hyper-size" "$OUT/"

if [ ! -x "$OUT/venv/bin/python" ]; then
    python3 -m venv "$OUT/venv" >&2
fi
"$OUT/venv/bin/pip" install --quiet -r "$HERE/requirements.txt" >&2 \
    || echo "build.sh: websockets or uvloop not installed; the Python peer is skipped" >&2

echo "ws tokio-tungstenite|env TOKIO_WORKER_THREADS=1 $OUT/ws-tokio-echo {port}"
if "$OUT/venv/bin/python" -c 'import websockets.asyncio.server, uvloop' 2>/dev/null; then
    echo "ws python-websockets-uvloop|$OUT/venv/bin/python $HERE/ws_python.py {port}"
fi
echo "http hyper|env TOKIO_WORKER_THREADS=1 $OUT/hyper-echo {port}"
echo "idiom hyper-reflect|env TOKIO_WORKER_THREADS=1 $OUT/hyper-reflect {port}"
echo "idiom hyper-size|env TOKIO_WORKER_THREADS=1 $OUT/hyper-size {port}"
