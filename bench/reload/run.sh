#!/usr/bin/env bash
# `make bench-reload`: serves a copy of the embedded classifier, runs bench/reload
# (concurrency 16, 5 versions dropped in under load, 20 load/unload cycles), plots the
# timeline to docs/images/reload_timeline.png and writes the figures into docs/RELOAD.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/tfenv.sh
src=savedmodels/classifier/1
[ -f "$src/saved_model.pb" ] || { echo "bench-reload: $src is not built; run 'make models'" >&2; exit 1; }
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/atelierd" ./server/cmd/atelierd
go build -o "$work/reload" ./bench/reload
mkdir -p "$work/repo/classifier"
cp -rL "$src" "$work/repo/classifier/1"
token=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
echo "$token admin bench-reload" > "$work/tokens"
addr=127.0.0.1:18800
"$work/atelierd" --listen $addr --model-dir "$work/repo" --model-poll-interval 1s \
  --auth-tokens-file "$work/tokens" --log-level info 2> "$work/atelierd.log" &
server=$!
for _ in $(seq 1 300); do grep -q '"serving"\|msg=serving' "$work/atelierd.log" && break; sleep 0.2; done
echo "==> bench-reload: concurrency ${RELOAD_CONCURRENCY:-16}, ${RELOAD_SWAPS:-5} swaps, ${RELOAD_CYCLES:-20} cycles"
# It exits 1 when a target is missed (a failed call, a version going backwards, a p99
# around a switch over twice the steady one, RSS growing over 10%), after the summary:
# the plot and the figures are written either way, then the run fails.
rc=0
"$work/reload" -addr $addr -pid $server -repo "$work/repo" -src "$src" -token "$token" \
  -concurrency "${RELOAD_CONCURRENCY:-16}" -swaps "${RELOAD_SWAPS:-5}" -cycles "${RELOAD_CYCLES:-20}" \
  -calls bench/reload/calls.csv > bench/reload/summary.json || rc=$?
grep -E 'model version (available|unloaded|failed)' "$work/atelierd.log" | sed -E 's/ dir=[^ ]+//' > bench/reload/lifecycle.log || true
cat bench/reload/summary.json
.venv/bin/python bench/reload/plot.py bench/reload/calls.csv bench/reload/summary.json \
  docs/images/reload_timeline.png docs/RELOAD.md
exit $rc
