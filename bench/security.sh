#!/usr/bin/env bash
# The cost of TLS and of token checks: four atelierd servers on the same model run
# side by side (plaintext; plaintext + tokens; TLS; mTLS + tokens), and loadgen drives
# each in turn, rounds interleaved so that the machine's noise falls on all alike, at
# concurrency 1 and 16. Prints one JSON line per run (with the server process's CPU
# seconds during it) and a summary table that docs/SECURITY.md quotes: throughput and
# its loss against plaintext per round, and the server's CPU time per call, which a
# busy machine disturbs far less than throughput.
# Part of `make bench`; alone: `make bench-security`. Certificates come from openssl.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/tfenv.sh
SECONDS_PER_RUN=${BENCH_SECURITY_SECONDS:-5}
ROUNDS=${BENCH_SECURITY_ROUNDS:-3}
LEVELS=${BENCH_SECURITY_LEVELS:-1,16}
MODELS=${BENCH_SECURITY_MODEL_DIR:-$PWD/savedmodels}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
out=bench/security-results.jsonl
: > "$out"

echo "==> security bench 1/4: certificates (openssl), tokens, payloads"
cd "$work"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=bench-ca \
  -keyout ca.key -out ca.pem 2>/dev/null
for who in server client; do
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=$who -keyout $who.key -out $who.csr 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=%s\n' \
    "$([ $who = server ] && echo serverAuth || echo clientAuth)" > $who.ext
  openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile $who.ext -out $who.pem 2>/dev/null
done
token=$(openssl rand -hex 24)
echo "$token infer bench" > tokens
cd - >/dev/null
(cd savedmodels && ../.venv/bin/python -m atelier_train.image_folder --dest "$work/jpegs" --per-class 7 --size 28 --split test >/dev/null)

echo "==> security bench 2/4: build"
go build -o "$work/loadgen" ./bench/loadgen
go build -o "$work/atelierd" ./server/cmd/atelierd

echo "==> security bench 3/4: four servers"
declare -A addr=([plaintext]=127.0.0.1:18510 [tokens]=127.0.0.1:18511 [tls]=127.0.0.1:18512 [mtls+tokens]=127.0.0.1:18513)
declare -A srvflags=(
  [plaintext]=""
  [tokens]="--auth-tokens-file $work/tokens"
  [tls]="--tls-cert $work/server.pem --tls-key $work/server.key"
  [mtls+tokens]="--tls-cert $work/server.pem --tls-key $work/server.key --tls-client-ca $work/ca.pem --auth-tokens-file $work/tokens"
)
declare -A cliflags=(
  [plaintext]=""
  [tokens]="-token $token"
  [tls]="-tls-ca $work/ca.pem"
  [mtls+tokens]="-tls-ca $work/ca.pem -tls-cert $work/client.pem -tls-key $work/client.key -token $token"
)
configs=(plaintext tokens tls mtls+tokens)
declare -A pid
for c in "${configs[@]}"; do
  # shellcheck disable=SC2086
  "$work/atelierd" --listen "${addr[$c]}" --model-dir "$MODELS" --log-level warn ${srvflags[$c]} &
  pid[$c]=$!
done
# cpu_seconds PID: the process's user+system CPU time so far.
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
for c in "${configs[@]}"; do
  for _ in $(seq 1 300); do
    # shellcheck disable=SC2086
    "$work/loadgen" -addr "${addr[$c]}" -images "$work/jpegs" -concurrency 1 -duration 1ms -warmup 0s ${cliflags[$c]} >/dev/null 2>&1 && break
    sleep 0.2
  done
done

echo "==> security bench 4/4: $ROUNDS rounds x ${configs[*]} at concurrency $LEVELS, ${SECONDS_PER_RUN}s each"
for r in $(seq 1 "$ROUNDS"); do
  order=("${configs[@]}")
  if (( r % 2 == 0 )); then order=(mtls+tokens tls tokens plaintext); fi # cancel drift
  for c in "${order[@]}"; do
    for level in ${LEVELS//,/ }; do
      # shellcheck disable=SC2086
      "$work/loadgen" -addr "${addr[$c]}" -images "$work/jpegs" -concurrency "$level" -warmup 0s \
        -duration 1s -label warmup ${cliflags[$c]} >/dev/null
      before=$(cpu_seconds "${pid[$c]}")
      # shellcheck disable=SC2086
      line=$("$work/loadgen" -addr "${addr[$c]}" -images "$work/jpegs" -concurrency "$level" -warmup 0s \
        -duration "${SECONDS_PER_RUN}s" -label "$c" ${cliflags[$c]})
      after=$(cpu_seconds "${pid[$c]}")
      # The server's own CPU time per call: far steadier than throughput on a busy machine.
      echo "${line%\}},\"server_cpu_seconds\":$(awk -v a="$after" -v b="$before" 'BEGIN{printf "%.2f", a - b}')}" | tee -a "$out"
    done
  done
done
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(aes|avx2|avx512f|sha_ni|vaes|vpclmulqdq|amx_bf16)$' | xargs)
python3 - "$out" "$cpu" "$flags" "$(nproc)" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
labels = ["plaintext", "tokens", "tls", "mtls+tokens"]
runs = {}  # (label, concurrency) -> [throughput per round]
for r in rows:
    runs.setdefault((r["label"], r["concurrency"]), []).append((r["images_per_second"], r["p50_ms"], r["errors"],
                                                               1e6 * r["server_cpu_seconds"] / max(1, r["requests"])))
print(f"\nCPU: {sys.argv[2]} ({sys.argv[4]} cores visible); flags: {sys.argv[3]}")
print("| server | concurrency | calls/s (mean of rounds) | throughput loss vs plaintext, median of rounds [min, max] | server CPU µs/call (median) | vs plaintext | p50 ms (median) | errors |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for conc in sorted({k[1] for k in runs}):
    base = [t for t, *_ in runs[("plaintext", conc)]]
    base_cpu = statistics.median(c for *_, c in runs[("plaintext", conc)])
    for label in labels:
        rs = runs[(label, conc)]
        tput = [t for t, *_ in rs]
        loss = sorted(100 * (1 - t / b) for t, b in zip(tput, base))
        cpu = statistics.median(c for *_, c in rs)
        print(f"| {label} | {conc} | {statistics.mean(tput):.1f} | {statistics.median(loss):+.1f}% [{loss[0]:+.1f}, {loss[-1]:+.1f}] "
              f"| {cpu:.0f} | {100 * (cpu / base_cpu - 1):+.1f}% | {statistics.median(r[1] for r in rs):.2f} | {sum(r[2] for r in rs)} |")
PY
