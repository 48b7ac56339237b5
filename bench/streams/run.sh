#!/usr/bin/env bash
# `make bench-streams`: starts atelierd on the embedded models, runs the stream
# benchmark (1, 4 and 16 streams; block, unary and latest at 2x overload), keeps its
# JSON lines in bench/streams-results.jsonl and writes the tables into
# docs/BENCHMARKS.notes.md. About 3 minutes (BENCH_STREAMS_SECONDS per run, default 8).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/tfenv.sh
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/" ./bench/streams ./server/cmd/atelierd
"$work/atelierd" --listen 127.0.0.1:18550 --model-dir savedmodels --log-level warn &
"$work/streams" -addr 127.0.0.1:18550 -streams "${BENCH_STREAMS_LEVELS:-1,4,16}" \
  -duration "${BENCH_STREAMS_SECONDS:-8}s" -notes docs/BENCHMARKS.notes.md | tee bench/streams-results.jsonl
echo "==> wrote bench/streams-results.jsonl and the streams section of docs/BENCHMARKS.notes.md"
