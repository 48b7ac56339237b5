#!/usr/bin/env bash
# `make soak`: a bounded load run (10 minutes by default, SOAK_SECONDS to change) on the
# embedded classifier that samples the server's RSS and goroutine count every 10 s from
# /metrics, then writes docs/SOAK.md with the samples, the drift, and the precision the
# classifier ran in (SOAK_PRECISION, default auto: bf16 where the CPU has it).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/tfenv.sh
duration=${SOAK_SECONDS:-600}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/loadgen" ./bench/loadgen
go build -o "$work/atelierd" ./server/cmd/atelierd
(cd savedmodels && ../.venv/bin/python -m atelier_train.image_folder --dest "$work/jpegs" --per-class 10 --size 56 --split test >/dev/null)

"$work/atelierd" --listen 127.0.0.1:18700 --metrics-listen 127.0.0.1:18701 --model-dir savedmodels \
  --precision "${SOAK_PRECISION:-auto}" --log-level info 2> "$work/atelierd.log" &
server=$!
for _ in $(seq 1 300); do curl -sf http://127.0.0.1:18701/metrics >/dev/null && break; sleep 0.2; done
"$work/loadgen" -addr 127.0.0.1:18700 -images "$work/jpegs" -concurrency 8 -duration 5s -warmup 0s >/dev/null

echo "==> soak: concurrency 8 for ${duration}s, sampling every 10s"
"$work/loadgen" -addr 127.0.0.1:18700 -images "$work/jpegs" -concurrency 8 -duration "${duration}s" -warmup 0s -label soak > "$work/load.json" &
load=$!
samples=bench/soak.csv
echo "seconds,rss_bytes,goroutines,rpcs" > "$samples"
start=$(date +%s)
while kill -0 $load 2>/dev/null; do
  m=$(curl -sf http://127.0.0.1:18701/metrics || true)
  rss=$(awk '/^process_resident_memory_bytes/ {print $2}' <<<"$m")
  gor=$(awk '/^atelier_goroutines/ {print $2}' <<<"$m")
  rpcs=$(awk '/^atelier_rpc_total/ {s+=$2} END {print s+0}' <<<"$m")
  echo "$(( $(date +%s) - start )),$rss,$gor,$rpcs" | tee -a "$samples"
  sleep 10
done
wait $load
cat "$work/load.json"
.venv/bin/python - "$samples" "$work/load.json" "$work/atelierd.log" <<'PY'
import csv, json, os, re, sys
precision = "unknown"
for line in open(sys.argv[3]):
    m = re.search(r'msg="model precision" dir=\S*/classifier/\d+ precision=(\S+) why="([^"]*)"', line)
    if m:
        precision = f"{m.group(1)} ({m.group(2)})"
    m = re.search(r'msg="bf16 calibration" dir=\S*/classifier/\d+ result="([^"]*)"', line)
    if m:
        precision += f"; calibrated: {m.group(1)}"
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["rss_bytes"]]
load = json.loads(open(sys.argv[2]).read())
n = max(1, len(rows) // 6)
first, last = rows[:n], rows[-n:]
avg = lambda rs, k: sum(float(r[k]) for r in rs) / len(rs)
rss0, rss1 = avg(first, "rss_bytes"), avg(last, "rss_bytes")
g0, g1 = avg(first, "goroutines"), avg(last, "goroutines")
command = "make soak" if not os.environ.get("SOAK_PRECISION") else f"SOAK_PRECISION={os.environ['SOAK_PRECISION']} make soak"
lines = ["# Soak", "", f"Measured by `{command}` (bench/soak.sh): the embedded classifier under closed-loop",
         f"load at concurrency 8 for {load['seconds']:.0f} s, {load['requests']} requests, {load['errors']} errors,",
         f"{load['images_per_second']:.1f} requests/s, p50 {load['p50_ms']:.1f} ms, p99 {load['p99_ms']:.1f} ms.",
         f"The classifier ran in {precision}.",
         "RSS and goroutines were sampled every 10 s from /metrics; raw samples in `bench/soak.csv`.", "",
         "| | first sixth (mean) | last sixth (mean) | change |", "| --- | ---: | ---: | ---: |",
         f"| RSS (MiB) | {rss0/2**20:.1f} | {rss1/2**20:.1f} | {100*(rss1-rss0)/rss0:+.1f}% |",
         f"| goroutines | {g0:.1f} | {g1:.1f} | {100*(g1-g0)/g0:+.1f}% |", "",
         f"Samples: {len(rows)}; RSS min {min(float(r['rss_bytes']) for r in rows)/2**20:.1f} MiB, "
         f"max {max(float(r['rss_bytes']) for r in rows)/2**20:.1f} MiB."]
open("docs/SOAK.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
kill -TERM $server; wait $server || true
