#!/usr/bin/env bash
# Generates the Python stubs of proto/atelier/v1 into ${1:-client/python/src}, and of
# the vendored Open Inference Protocol (proto/triton) into ${2:-client/python/oip}.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-client/python/src}
oip=${2:-client/python/oip}
mkdir -p "$out" "$oip"
.venv/bin/python -m grpc_tools.protoc -Iproto \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" proto/atelier/v1/*.proto
.venv/bin/python -m grpc_tools.protoc -Iproto/triton \
  --python_out="$oip" --pyi_out="$oip" --grpc_python_out="$oip" proto/triton/*.proto
