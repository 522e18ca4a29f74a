#!/bin/bash
# One device session: machine facts, scale.py over the workloads (most
# wanted first, so a cut-off run still has them), fixed-rate latency.
set -u
B="$(cd "$(dirname "$0")" && pwd)"
OUT="$1"
{ nproc; uname -a; python3 --version; lscpu | head -20; } > "$OUT/machine.txt" 2>&1
export PYTHONPATH="$B/pylib" DUR=3
python3 -c "import uvloop; print('uvloop', uvloop.__version__)" >> "$OUT/machine.txt" 2>&1
python3 "$B/scale.py" "$B" "$OUT" pp64,udp64,churn 2>&1 | tee -a "$OUT/scale.txt"
python3 "$B/rate.py" "$B" "$OUT" 2:220000,8:700000 2>&1 | tee "$OUT/rate.txt"
python3 "$B/scale.py" "$B" "$OUT" pp1k,tls1k,tlschurn,stream64k 2>&1 | tee -a "$OUT/scale.txt"
