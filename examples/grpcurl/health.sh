#!/usr/bin/env bash
# Checks the server's health (or one service's); grpcurl exits non-zero on an error,
# and this script exits 1 unless the status is SERVING.
#   examples/grpcurl/health.sh [SERVICE]
set -euo pipefail
addr=${ATELIER_ADDR:-localhost:8500}
grpcurl=${GRPCURL:-grpcurl}
out=$("$grpcurl" -plaintext -d "{\"service\": \"${1:-}\"}" "$addr" grpc.health.v1.Health/Check)
echo "$out"
grep -q '"status": "SERVING"' <<<"$out"
