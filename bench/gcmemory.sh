#!/usr/bin/env bash
# `make bench-gc-memory`: what atelierd's garbage collection settings cost in memory
# where the Go heap is large: Classify of 8 different 3000x2000 JPEGs (6 MP, decoded
# and resized in Go) at concurrency 4 on the embedded classifier. Servers run side by
# side (bench/sidebyside.sh), each loaded in turn: atelierd as shipped (a 64 MiB heap
# floor over GOGC=100), without the floor, and with GOGC=400 instead. For each: its
# peak resident memory (VmHWM), the live heap and goal after the load, collections per
# second, and CPU per request. Run it on an otherwise idle machine.
#   BENCH_GC_SECONDS=20 bench/gcmemory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/tfenv.sh
SECONDS_PER_RUN=${BENCH_GC_SECONDS:-20}
SERVERS=${BENCH_GC_SERVERS:-shipped=;no heap floor=--gc-heap-floor-mib 0;GOGC 400=GOGC=400 --gc-heap-floor-mib 0}
PORT=${BENCH_GC_PORT:-18560}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

echo "==> gc memory 1/3: 8 JPEGs of 3000x2000 and build"
.venv/bin/python - "$work/jpegs" <<'PY'
import os, sys
import numpy as np
from PIL import Image
out = sys.argv[1]
os.makedirs(out)
rng = np.random.default_rng(0)
for i in range(8):
    Image.fromarray((rng.random((2000, 3000, 3)) * 255).astype("uint8")).save(f"{out}/{i}.jpg", quality=90)
PY
go build -o "$work/loadgen" ./bench/loadgen
go build -o "$work/atelierd" ./server/cmd/atelierd
mkdir -p "$work/models" && ln -s "$PWD/savedmodels/classifier" "$work/models/classifier"

. bench/sidebyside.sh
start_servers "$work/atelierd" "$work/models" "$PORT" "$SERVERS"
echo "==> gc memory 2/3: ${#labels[@]} atelierd side by side, each ${SECONDS_PER_RUN}s of 6 MP JPEGs at concurrency 4"
wait_servers "$work/loadgen" "$work/jpegs" "$PORT"
for i in "${!labels[@]}"; do
  metrics="http://127.0.0.1:$((PORT + 1000 + i))/metrics"
  "$work/loadgen" -addr "127.0.0.1:$((PORT + i))" -metrics "$metrics" -images "$work/jpegs" -concurrency 4 \
    -duration "${SECONDS_PER_RUN}s" -warmup 2s -label "${labels[$i]}" >"$work/load.json"
  hwm=$(awk '/^VmHWM/ {print $2 * 1024}' "/proc/${pids[$i]}/status")
  curl -s "$metrics" | awk -v hwm="$hwm" '/^go_gc_heap_(live|goal)_bytes / {m[$1] = $2} END {printf "{\"peak_rss_bytes\": %s, \"heap_live_bytes\": %s, \"heap_goal_bytes\": %s}\n", hwm, m["go_gc_heap_live_bytes"], m["go_gc_heap_goal_bytes"]}' >"$work/mem.json"
  jq -c -s '.[0] + .[1]' "$work/load.json" "$work/mem.json" | tee -a "$work/results.jsonl"
done

echo "==> gc memory 3/3: flags: $(grep -o -w 'avx2\|avx512f\|avx512_bf16\|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')"
.venv/bin/python - "$work/results.jsonl" <<'PY'
import json, sys
print("| server | images/s | CPU per request (ms) | GC cycles/s | peak RSS (MiB) | live heap after (MiB) | heap goal after (MiB) |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for line in open(sys.argv[1]):
    d = json.loads(line)
    mib = lambda k: d[k] / (1 << 20)
    print(f"| {d['label']} | {d['images_per_second']:.1f} | {d['cpu_us_per_request'] / 1000:.0f} | {d.get('gc_cycles_per_second', 0):.1f} | {mib('peak_rss_bytes'):.0f} | {mib('heap_live_bytes'):.0f} | {mib('heap_goal_bytes'):.0f} |")
PY
