#!/usr/bin/env bash
# Times a newcomer's first answer: a clean clone of this repository, with its own
# empty Go module cache, Go build cache, pip cache and no virtual environment or Go
# tools, runs `make serve`; the clock stops at the first successful Classify of
# docs/images/sample_boot.png. Debian packages already installed on the machine stay
# installed (the script says which). Prints the seconds taken and where they went.
#
#   bench/fresh-start.sh            # uses a temporary folder, removed afterwards
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
work=$(mktemp -d /tmp/atelier-fresh.XXXXXX)
port=${FRESH_PORT:-18700}
cleanup() { [ -n "${pid:-}" ] && kill -- -"$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
export GOMODCACHE=$work/gomod GOCACHE=$work/gocache PIP_CACHE_DIR=$work/pip ATELIER_CACHE=$work/atelier-cache
echo "==> Debian packages already here (not timed): $(dpkg-query -W -f='${Package} ' dataset-fashion-mnist ffmpeg 2>/dev/null)"
start=$(date +%s)
git clone -q "$src" "$work/atelier"
cd "$work/atelier"
# Every line of make serve's output, stamped with the seconds since the clone began.
setsid bash -c 'ATELIER_LISTEN=127.0.0.1:'"$port"' ATELIER_METRICS_LISTEN=127.0.0.1:0 make serve 2>&1 |
  while IFS= read -r line; do printf "%4ds %s\n" $(( $(date +%s) - '"$start"' )) "$line"; done' > "$work/serve.log" 2>&1 &
pid=$!
# The CLI is built by `make serve` itself, just before the server starts.
until [ -x bin/atelier ] && ATELIER_ADDR=127.0.0.1:$port bin/atelier classify docs/images/sample_boot.png >/dev/null 2>&1; do
  if ! kill -0 "$pid" 2>/dev/null; then echo "make serve exited:"; tail -20 "$work/serve.log"; exit 1; fi
  sleep 2
done
total=$(( $(date +%s) - start ))
ATELIER_ADDR=127.0.0.1:$port bin/atelier classify --top-k 1 docs/images/sample_boot.png
echo "==> where the time went (from make serve's own progress lines):"
grep -E '^ *[0-9]+s (==>|\s+go install|\s+set-up complete|\[build\])' "$work/serve.log" | sed 's/^/    /' | head -30
echo "first Classify answered ${total}s after git clone"
