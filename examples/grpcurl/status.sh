#!/usr/bin/env bash
# The lifecycle state of every version (LOADING, WARMING, AVAILABLE, UNLOADING,
# FAILED with its error), the policy and the version labels; of one model or all.
#   examples/grpcurl/status.sh [NAME]
# Admin calls need the server's --auth-tokens-file and a token with the admin role:
#   grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{"wait": true}' \
#     localhost:8500 atelier.v1.ModelService/ReloadRepository
set -euo pipefail
addr=${ATELIER_ADDR:-localhost:8500}
grpcurl=${GRPCURL:-grpcurl}
"$grpcurl" -plaintext -d "{\"name\": \"${1:-}\"}" "$addr" atelier.v1.ModelService/GetModelStatus
