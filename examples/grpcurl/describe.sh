#!/usr/bin/env bash
# Describes a service, method or message through reflection (default: ClassifyService).
#   examples/grpcurl/describe.sh [SYMBOL]     e.g. atelier.v1.ClassifyRequest
set -euo pipefail
addr=${ATELIER_ADDR:-localhost:8500}
grpcurl=${GRPCURL:-grpcurl}
"$grpcurl" -plaintext "$addr" describe "${1:-atelier.v1.ClassifyService}"
