#!/usr/bin/env bash
# `make bench-overhead`: where atelierd's CPU goes per request on the embedded 28x28
# classifier, one image per Classify call, sent as a PNG and as a raw RGB frame, at
# concurrency 32 and 128; raw RGB frames on ClassifyStreams, as cameras send them, one
# stream per client with one frame in flight, 32 and 64 streams (64: the default
# --max-streams-per-caller, and loadgen is one caller); and, as the floor, a grpc.health.v1 Check, which passes the
# same interceptors and transport but no model. Each line splits the server's process
# CPU (process_cpu_seconds_total) per request into the TensorFlow session runs as the
# server measures them (atelier_tensorflow_cpu_seconds_total) and the rest, and names
# the Go garbage collector's share of the rest as the Go runtime estimates it
# (go_cpu_classes_gc_total_cpu_seconds_total); decoding a PNG is calibrated in-process
# (loadgen -raw-cpu). Two servers run side by side, rounds interleaved and the order
# of the servers alternating: atelierd as shipped and atelierd without its heap floor
# (--gc-heap-floor-mib 0: Go's default garbage collection); BENCH_OVERHEAD_SERVERS
# lists others as "label=settings;label=settings" (bench/sidebyside.sh). Prints the
# JSON lines and the table docs/BENCHMARKS.md quotes. Run it on an otherwise idle
# machine.
#   BENCH_OVERHEAD_SECONDS=10 BENCH_OVERHEAD_ROUNDS=2 bench/overhead.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/tfenv.sh
SECONDS_PER_RUN=${BENCH_OVERHEAD_SECONDS:-10}
ROUNDS=${BENCH_OVERHEAD_ROUNDS:-2}
LEVELS=${BENCH_OVERHEAD_LEVELS:-32,128}
STREAM_LEVELS=${BENCH_OVERHEAD_STREAM_LEVELS:-32,64}
SERVERS=${BENCH_OVERHEAD_SERVERS:-shipped=;no heap floor=--gc-heap-floor-mib 0}
PORT=${BENCH_OVERHEAD_PORT:-18530} # server i listens on PORT+i, its metrics on PORT+1000+i
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
out=$work/results.jsonl

echo "==> overhead 1/3: 64 PNGs (28x28) and build"
(cd savedmodels && PYTHONPATH=. ../.venv/bin/python ../bench/small_pngs.py "$work/pngs" 64)
go build -o "$work/loadgen" ./bench/loadgen
go build -o "$work/atelierd" ./server/cmd/atelierd
mkdir -p "$work/models" && ln -s "$PWD/savedmodels/classifier" "$work/models/classifier"
"$work/loadgen" -raw-cpu "$PWD/savedmodels/classifier/1" -images "$work/pngs" | tee "$work/raw.json"

. bench/sidebyside.sh
start_servers "$work/atelierd" "$work/models" "$PORT" "$SERVERS"
servers=("${labels[@]}")
echo "==> overhead 2/3: ${#servers[@]} atelierd (fp32) side by side, $ROUNDS rounds of PNG, raw and health calls at concurrency $LEVELS, streamed raw frames on $STREAM_LEVELS streams"
wait_servers "$work/loadgen" "$work/pngs" "$PORT"
for r in $(seq 1 "$ROUNDS"); do
  order="native raw stream health"; [ $((r % 2)) -eq 0 ] && order="health stream raw native"
  for p in $order; do
    levels=$LEVELS; [ "$p" = stream ] && levels=$STREAM_LEVELS
    order_servers=$(seq 0 $((${#servers[@]} - 1))); [ $((r % 2)) -eq 0 ] && order_servers=$(echo "$order_servers" | tac)
    for i in $order_servers; do
      "$work/loadgen" -addr "127.0.0.1:$((PORT + i))" -metrics "http://127.0.0.1:$((PORT + 1000 + i))/metrics" -images "$work/pngs" \
        -protocol "$p" -concurrency "$levels" -duration "${SECONDS_PER_RUN}s" -label "${servers[$i]}|$p" | tee -a "$out"
    done
  done
done

echo "==> overhead 3/3: CPU per request (µs), mean over rounds; flags: $(grep -o -w 'avx2\|avx512f\|avx512_bf16\|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')"
.venv/bin/python - "$out" "$work/raw.json" <<'PY'
import json, sys
from collections import defaultdict
runs = defaultdict(list)
for line in open(sys.argv[1]):
    d = json.loads(line)
    server, label = d["label"].split("|")
    runs[(server, label, d["concurrency"])].append(d)
decode = json.load(open(sys.argv[2]))["decode_cpu_us"]
servers = list(dict.fromkeys(k[0] for k in runs))
print("| server | payload | concurrency | requests/s | CPU per request | session run | outside the session | of which garbage collection (Go's estimate) | of which PNG decode (calibrated) | GC cycles/s | mean batch |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
order = {"health": 0, "native": 1, "raw": 2, "stream": 3}
for (server, label, c), ds in sorted(runs.items(), key=lambda kv: (order[kv[0][1]], kv[0][2], servers.index(kv[0][0]))):
    # A health Check runs no model: no session CPU, no batches.
    mean = lambda k: sum(d.get(k, 0) for d in ds) / len(ds)
    total, sess = mean("cpu_us_per_request"), mean("session_cpu_us_per_request")
    dec = f"{decode:.0f}" if label == "native" else "0"
    name = {"native": "PNG", "raw": "raw RGB frame", "stream": "raw RGB frame, ClassifyStream", "health": "health Check (no model)"}[label]
    batch = "-" if label == "health" else f"{mean('mean_batch'):.1f}"
    print(f"| {server} | {name} | {c} | {mean('images_per_second'):.0f} | {total:.0f} | {sess:.0f} | **{total - sess:.0f}** | {mean('gc_cpu_us_per_request'):.0f} | {dec} | {mean('gc_cycles_per_second'):.1f} | {batch} |")
PY
