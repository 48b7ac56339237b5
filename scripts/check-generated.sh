#!/usr/bin/env bash
# Fails when the committed Go or Python stubs differ from what the protos generate now.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/tfenv.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
buf generate -o "$tmp"
scripts/gen-python.sh "$tmp/python" "$tmp/oip"
stale=0
for f in proto/atelier/v1/*.pb.go proto/triton/*.pb.go; do cmp -s "$f" "$tmp/$f" || { echo "stale: $f"; stale=1; }; done
for f in "$tmp"/proto/atelier/v1/*.pb.go "$tmp"/proto/triton/*.pb.go; do [ -f "${f#"$tmp"/}" ] || { echo "missing: ${f#"$tmp"/}"; stale=1; }; done
for f in "$tmp"/python/atelier/v1/*; do
  rel=client/python/src/atelier/v1/$(basename "$f")
  cmp -s "$f" "$rel" || { echo "stale: $rel"; stale=1; }
done
for f in "$tmp"/oip/*; do
  rel=client/python/oip/$(basename "$f")
  cmp -s "$f" "$rel" || { echo "stale: $rel"; stale=1; }
done
if [ $stale -ne 0 ]; then
  echo "generated code is stale: run 'make proto' and commit the result"
  exit 1
fi
echo "    generated Go and Python stubs are current"
