#!/usr/bin/env bash
# The Open Inference Protocol's cost beside Atelier's own API: one atelierd serving
# the embedded classifier, and loadgen driving it in turn with one-image Classify
# calls (top_k 1) and with the same JPEG files as V2 ModelInfer calls on
# classifier_image (BYTES input, top-1 label and score), rounds interleaved and the
# order reversed every other round so that the machine's noise falls on both alike,
# at concurrency 1 and 16. Prints one JSON line per run (with the server's CPU
# seconds during it) and the table docs/INFERENCE.md quotes: requests/s, V2 against
# native, p50, and the server's CPU per call, steadier than throughput on a busy
# machine.
#   BENCH_V2_SECONDS=5 BENCH_V2_ROUNDS=2 bench/v2.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/tfenv.sh
SECONDS_PER_RUN=${BENCH_V2_SECONDS:-5}
ROUNDS=${BENCH_V2_ROUNDS:-2}
LEVELS=${BENCH_V2_LEVELS:-1,16}
MODELS=${BENCH_V2_MODEL_DIR:-$PWD/savedmodels}
ADDR=${BENCH_V2_ADDR:-127.0.0.1:18520}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
out=bench/v2-results.jsonl
: > "$out"

echo "==> v2 bench 1/3: payloads and build"
(cd savedmodels && ../.venv/bin/python -m atelier_train.image_folder --dest "$work/jpegs" --per-class 7 --size 28 --split test >/dev/null)
go build -o "$work/loadgen" ./bench/loadgen
go build -o "$work/atelierd" ./server/cmd/atelierd

echo "==> v2 bench 2/3: atelierd on $ADDR"
"$work/atelierd" --listen "$ADDR" --model-dir "$MODELS" --log-level warn &
pid=$!
for _ in $(seq 1 300); do
  "$work/loadgen" -addr "$ADDR" -images "$work/jpegs" -concurrency 1 -duration 1ms -warmup 0s -protocol v2 >/dev/null 2>&1 && break
  sleep 0.2
done
# cpu_seconds PID: the process's user+system CPU time so far.
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }

echo "==> v2 bench 3/3: $ROUNDS rounds x native, v2 at concurrency $LEVELS, ${SECONDS_PER_RUN}s each"
for r in $(seq 1 "$ROUNDS"); do
  order=(native v2)
  if (( r % 2 == 0 )); then order=(v2 native); fi
  for p in "${order[@]}"; do
    for level in ${LEVELS//,/ }; do
      "$work/loadgen" -addr "$ADDR" -images "$work/jpegs" -concurrency "$level" -warmup 0s -duration 1s \
        -protocol "$p" -label warmup >/dev/null
      before=$(cpu_seconds "$pid")
      line=$("$work/loadgen" -addr "$ADDR" -images "$work/jpegs" -concurrency "$level" -warmup 0s \
        -duration "${SECONDS_PER_RUN}s" -protocol "$p" -label "$p")
      after=$(cpu_seconds "$pid")
      echo "${line%\}},\"round\":$r,\"server_cpu_seconds\":$(awk -v a="$after" -v b="$before" 'BEGIN{printf "%.2f", a - b}')}" | tee -a "$out"
    done
  done
done
python3 - "$out" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
runs = {}  # (protocol, concurrency) -> rows, one per round
for r in rows:
    runs.setdefault((r["label"], r["concurrency"]), []).append(r)
print(f"\nCPU: {sys.argv[2]} ({sys.argv[3]} cores visible); load average at the end: {sys.argv[4]}")
print("| concurrency | native req/s | V2 req/s | V2 / native (per round) | p50 ms native / V2 | server CPU µs/call native / V2 | errors |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for conc in sorted({k[1] for k in runs}):
    n, v = runs[("native", conc)], runs[("v2", conc)]
    tn = [r["images_per_second"] for r in n]
    tv = [r["images_per_second"] for r in v]
    ratios = ", ".join(f"{b / a:.3f}" for a, b in zip(tn, tv))
    cpu = lambda rs: statistics.median(1e6 * r["server_cpu_seconds"] / max(1, r["requests"]) for r in rs)
    p50 = lambda rs: statistics.median(r["p50_ms"] for r in rs)
    print(f"| {conc} | {statistics.mean(tn):.1f} | {statistics.mean(tv):.1f} | {statistics.mean(tv) / statistics.mean(tn):.3f} ({ratios}) "
          f"| {p50(n):.2f} / {p50(v):.2f} | {cpu(n):.0f} / {cpu(v):.0f} | {sum(r['errors'] for r in n + v)} |")
# The targets: at most 3% added latency at concurrency 1, throughput within 5% at 16.
# A verdict on means over rounds; the per-round ratios above show how far to trust it.
def verdict(ok):
    return "met" if ok else "NOT met"
print()
if ("native", 1) in runs and ("v2", 1) in runs:
    added = p50(runs[("v2", 1)]) / p50(runs[("native", 1)]) - 1
    print(f"V2 p50 at concurrency 1: {100 * added:+.1f}% against native (target at most +3%): {verdict(added <= 0.03)}")
if ("native", 16) in runs and ("v2", 16) in runs:
    ratio = (statistics.mean(r["images_per_second"] for r in runs[("v2", 16)])
             / statistics.mean(r["images_per_second"] for r in runs[("native", 16)]))
    print(f"V2 throughput at concurrency 16: {ratio:.3f}x native (target within 5%): {verdict(ratio >= 0.95)}")
PY
