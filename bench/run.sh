#!/usr/bin/env bash
# `make bench`: TensorFlow itself, Atelier and a plain Python grpcio server on the same
# full-size VGG19 SavedModel, in one run; writes docs/BENCHMARKS.md and a plot.
# Takes about 10 minutes; run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/tfenv.sh
SECONDS_PER_LEVEL=${BENCH_SECONDS:-15}
LEVELS=${BENCH_LEVELS:-1,4,16,64}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
out=bench/results.jsonl
: > "$out"

echo "==> bench 1/6: full VGG19 224x224 SavedModel (savedmodels/classifier-full/1)"
(cd savedmodels && ../.venv/bin/python -m atelier_train.build --only classifier-full)
model=$PWD/savedmodels/classifier-full/1
mkdir -p "$work/models" && ln -s "$PWD/savedmodels/classifier-full" "$work/models/classifier-full"

echo "==> bench 2/6: 64 JPEG payloads (224x224)"
(cd savedmodels && ../.venv/bin/python -m atelier_train.image_folder --dest "$work/jpegs" --per-class 7 --size 224 --split test >/dev/null)

echo "==> bench 3/6: TensorFlow in Python on the same signature"
.venv/bin/python bench/tf_baseline.py --model "$model" --seconds "$SECONDS_PER_LEVEL" | tee -a "$out"

echo "==> bench 4/6: raw in-process path (decode + resize + session run, batch 1)"
go build -o "$work/loadgen" ./bench/loadgen
go build -o "$work/atelierd" ./server/cmd/atelierd
"$work/loadgen" -raw-model "$model" -images "$work/jpegs" -runs 30 | tee -a "$out"

wait_ready() { # address
  for _ in $(seq 1 300); do
    "$work/loadgen" -addr "$1" -images "$work/jpegs" -concurrency 1 -duration 1ms -warmup 0s >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "server at $1 did not come up"; return 1
}

echo "==> bench 5/6: Atelier over gRPC at concurrency $LEVELS"
"$work/atelierd" --listen 127.0.0.1:18500 --model-dir "$work/models" --log-level warn &
pid=$!
wait_ready 127.0.0.1:18500
"$work/loadgen" -addr 127.0.0.1:18500 -images "$work/jpegs" -concurrency "$LEVELS" \
  -duration "${SECONDS_PER_LEVEL}s" -label atelier | tee -a "$out"
kill -TERM $pid; wait $pid || true

echo "==> bench 6/6: Python grpcio + TensorFlow server at concurrency $LEVELS"
.venv/bin/python bench/grpcio_server.py --model "$model" --port 18600 &
pid=$!
wait_ready 127.0.0.1:18600
"$work/loadgen" -addr 127.0.0.1:18600 -images "$work/jpegs" -concurrency "$LEVELS" \
  -duration "${SECONDS_PER_LEVEL}s" -label python-grpcio | tee -a "$out"
kill -TERM $pid; wait $pid || true

.venv/bin/python bench/report.py "$out" --command "make bench"
echo "==> wrote docs/BENCHMARKS.md and docs/images/bench_throughput_latency.png"
