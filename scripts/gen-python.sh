#!/usr/bin/env bash
# Generates the Python stubs of proto/atelier/v1 into ${1:-client/python/src}.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-client/python/src}
mkdir -p "$out"
.venv/bin/python -m grpc_tools.protoc -Iproto \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" proto/atelier/v1/*.proto
