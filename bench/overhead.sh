#!/usr/bin/env bash
# `make bench-overhead`: where atelierd's CPU goes per request on the embedded 28x28
# classifier, one image per Classify call, sent as a PNG and as a raw RGB frame, at
# concurrency 32 and 128, rounds interleaved; and, as the floor, a grpc.health.v1
# Check, which passes the same interceptors and transport but no model. Each line splits the server's process
# CPU (process_cpu_seconds_total) per request into the TensorFlow session runs as the
# server measures them (atelier_tensorflow_cpu_seconds_total) and the rest; decoding a
# PNG is calibrated in-process (loadgen -raw-cpu). Prints the JSON lines and the table
# docs/BENCHMARKS.md quotes. Run it on an otherwise idle machine.
#   BENCH_OVERHEAD_SECONDS=10 BENCH_OVERHEAD_ROUNDS=2 bench/overhead.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/tfenv.sh
SECONDS_PER_RUN=${BENCH_OVERHEAD_SECONDS:-10}
ROUNDS=${BENCH_OVERHEAD_ROUNDS:-2}
LEVELS=${BENCH_OVERHEAD_LEVELS:-32,128}
ADDR=${BENCH_OVERHEAD_ADDR:-127.0.0.1:18530}
METRICS=${BENCH_OVERHEAD_METRICS:-127.0.0.1:19530}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
out=$work/results.jsonl

echo "==> overhead 1/3: 64 PNGs (28x28) and build"
(cd savedmodels && PYTHONPATH=. ../.venv/bin/python ../bench/small_pngs.py "$work/pngs" 64)
go build -o "$work/loadgen" ./bench/loadgen
go build -o "$work/atelierd" ./server/cmd/atelierd
mkdir -p "$work/models" && ln -s "$PWD/savedmodels/classifier" "$work/models/classifier"
"$work/loadgen" -raw-cpu "$PWD/savedmodels/classifier/1" -images "$work/pngs" | tee "$work/raw.json"

echo "==> overhead 2/3: atelierd (fp32) on $ADDR, $ROUNDS rounds of PNG, raw and health calls at concurrency $LEVELS"
"$work/atelierd" --listen "$ADDR" --metrics-listen "$METRICS" --model-dir "$work/models" --log-level warn --precision fp32 &
for _ in $(seq 1 300); do
  "$work/loadgen" -addr "$ADDR" -images "$work/pngs" -concurrency 1 -duration 1ms -warmup 0s >/dev/null 2>&1 && break
  sleep 0.2
done
for r in $(seq 1 "$ROUNDS"); do
  order="native raw health"; [ $((r % 2)) -eq 0 ] && order="health raw native"
  for p in $order; do
    "$work/loadgen" -addr "$ADDR" -metrics "http://$METRICS/metrics" -images "$work/pngs" -protocol "$p" \
      -concurrency "$LEVELS" -duration "${SECONDS_PER_RUN}s" -label "$p" | tee -a "$out"
  done
done

echo "==> overhead 3/3: CPU per request (µs), mean over rounds; flags: $(grep -o 'avx512_bf16\|amx_bf16\|avx512f\b' /proc/cpuinfo | sort -u | tr '\n' ' ')"
.venv/bin/python - "$out" "$work/raw.json" <<'PY'
import json, sys
from collections import defaultdict
runs = defaultdict(list)
for line in open(sys.argv[1]):
    d = json.loads(line)
    runs[(d["label"], d["concurrency"])].append(d)
decode = json.load(open(sys.argv[2]))["decode_cpu_us"]
print("| payload | concurrency | requests/s | CPU per request | session run | outside the session | of which PNG decode (calibrated) | mean batch |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for (label, c), ds in sorted(runs.items()):
    # A health Check runs no model: no session CPU, no batches.
    mean = lambda k: sum(d.get(k, 0) for d in ds) / len(ds)
    total, sess = mean("cpu_us_per_request"), mean("session_cpu_us_per_request")
    dec = f"{decode:.0f}" if label == "native" else "0"
    name = {"native": "PNG", "raw": "raw RGB frame", "health": "health Check (no model)"}[label]
    batch = "-" if label == "health" else f"{mean('mean_batch'):.1f}"
    print(f"| {name} | {c} | {mean('images_per_second'):.0f} | {total:.0f} | {sess:.0f} | **{total - sess:.0f}** | {dec} | {batch} |")
PY
