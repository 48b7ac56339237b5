#!/usr/bin/env bash
# Draws COUNT designs of CATEGORY; each PNG comes back base64-encoded in "png".
#   examples/grpcurl/generate.sh CATEGORY [COUNT] [SEED]
set -euo pipefail
addr=${ATELIER_ADDR:-localhost:8500}
grpcurl=${GRPCURL:-grpcurl}
category=${1:?usage: generate.sh CATEGORY [COUNT] [SEED]}
"$grpcurl" -plaintext -d "{\"category\": \"$category\", \"count\": ${2:-2}, \"seed\": \"${3:-42}\"}" \
  "$addr" atelier.v1.GenerateService/Generate
