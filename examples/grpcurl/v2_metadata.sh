#!/usr/bin/env bash
# The Open Inference Protocol (KServe V2) on Atelier's port: server metadata, then a
# model's inputs and outputs as its signature defines them.
#   examples/grpcurl/v2_metadata.sh [MODEL]
set -euo pipefail
addr=${ATELIER_ADDR:-localhost:8500}
grpcurl=${GRPCURL:-grpcurl}
model=${1:-classifier}
"$grpcurl" -plaintext "$addr" inference.GRPCInferenceService/ServerMetadata
"$grpcurl" -plaintext -d "{\"name\": \"$model\"}" "$addr" inference.GRPCInferenceService/ModelMetadata
