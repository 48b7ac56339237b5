#!/usr/bin/env bash
# `make bench`: TensorFlow itself (fp32 and with the bf16 rewrite), Atelier (fp32 and
# bf16) and a plain Python grpcio server on the same full-size VGG19 SavedModel, then
# the embedded 28x28 classifier in fp32 and bf16, in one run; writes
# docs/BENCHMARKS.md and a plot. Takes about 15 minutes; run it on an otherwise idle
# machine.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/tfenv.sh
SECONDS_PER_LEVEL=${BENCH_SECONDS:-15}
LEVELS=${BENCH_LEVELS:-1,4,16,64}
SMALL_LEVELS=${BENCH_SMALL_LEVELS:-32,128}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
out=bench/results.jsonl
: > "$out"

echo "==> bench 1/8: full VGG19 224x224 SavedModel (savedmodels/classifier-full/1)"
(cd savedmodels && ../.venv/bin/python -m atelier_train.build --only classifier-full)
model=$PWD/savedmodels/classifier-full/1
mkdir -p "$work/models" "$work/small" && ln -s "$PWD/savedmodels/classifier-full" "$work/models/classifier-full"
ln -s "$PWD/savedmodels/classifier" "$work/small/classifier"

echo "==> bench 2/8: 64 JPEG payloads (224x224) and 64 PNG payloads (28x28)"
(cd savedmodels && ../.venv/bin/python -m atelier_train.image_folder --dest "$work/jpegs" --per-class 7 --size 224 --split test >/dev/null)
(cd savedmodels && PYTHONPATH=. ../.venv/bin/python ../bench/small_pngs.py "$work/pngs" 64)

echo "==> bench 3/8: TensorFlow in Python on the same signature, fp32 and bf16"
for p in fp32 bf16; do
  .venv/bin/python bench/tf_baseline.py --model "$model" --seconds "$SECONDS_PER_LEVEL" --precision $p | tee -a "$out"
done

echo "==> bench 4/8: raw in-process path (decode + resize + session run, batch 1)"
go build -o "$work/loadgen" ./bench/loadgen
go build -o "$work/atelierd" ./server/cmd/atelierd
"$work/loadgen" -raw-model "$model" -images "$work/jpegs" -runs 30 | tee -a "$out"

wait_ready() { # address images
  for _ in $(seq 1 300); do
    "$work/loadgen" -addr "$1" -images "$2" -concurrency 1 -duration 1ms -warmup 0s >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "server at $1 did not come up"; return 1
}

serve_and_load() { # label models images levels atelierd-flags...
  local label=$1 models=$2 images=$3 levels=$4
  shift 4
  "$work/atelierd" --listen 127.0.0.1:18500 --metrics-listen 127.0.0.1:19500 --model-dir "$models" --log-level warn "$@" &
  local pid=$!
  wait_ready 127.0.0.1:18500 "$images"
  "$work/loadgen" -addr 127.0.0.1:18500 -metrics http://127.0.0.1:19500/metrics -images "$images" -concurrency "$levels" \
    -duration "${SECONDS_PER_LEVEL}s" -label "$label" | tee -a "$out"
  kill -TERM $pid; wait $pid || true
}

echo "==> bench 5/8: Atelier over gRPC, fp32, at concurrency $LEVELS"
serve_and_load atelier "$work/models" "$work/jpegs" "$LEVELS" --precision fp32
echo "==> bench 6/8: Atelier over gRPC, bf16, at concurrency $LEVELS"
serve_and_load atelier-bf16 "$work/models" "$work/jpegs" "$LEVELS" --precision bf16

echo "==> bench 7/8: Python grpcio + TensorFlow server at concurrency $LEVELS"
.venv/bin/python bench/grpcio_server.py --model "$model" --port 18600 &
pid=$!
wait_ready 127.0.0.1:18600 "$work/jpegs"
"$work/loadgen" -addr 127.0.0.1:18600 -images "$work/jpegs" -concurrency "$LEVELS" \
  -duration "${SECONDS_PER_LEVEL}s" -label python-grpcio | tee -a "$out"
kill -TERM $pid; wait $pid || true

echo "==> bench 8/8: the embedded 28x28 classifier, one PNG per request, fp32 and bf16, at concurrency $SMALL_LEVELS"
.venv/bin/python bench/tf_baseline.py --model "$PWD/savedmodels/classifier/1" --seconds "$SECONDS_PER_LEVEL" \
  --batch-sizes 1,16,64 --label tensorflow-small | tee -a "$out"
"$work/loadgen" -raw-cpu "$PWD/savedmodels/classifier/1" -images "$work/pngs" | tee -a "$out"
serve_and_load small-fp32 "$work/small" "$work/pngs" "$SMALL_LEVELS" --precision fp32
serve_and_load small-bf16 "$work/small" "$work/pngs" "$SMALL_LEVELS" --precision bf16

command="make bench"
[ -z "${BENCH_SECONDS:-}" ] || command="BENCH_SECONDS=$BENCH_SECONDS bench/run.sh      # the first part of \`make bench\`, $BENCH_SECONDS s a level"
.venv/bin/python bench/report.py "$out" --command "$command"
echo "==> wrote docs/BENCHMARKS.md and docs/images/bench_throughput_latency.png"
