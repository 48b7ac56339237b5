#!/usr/bin/env bash
# Lists the loaded models, or describes one: versions, signatures, labels.
#   examples/grpcurl/models.sh [NAME]
set -euo pipefail
addr=${ATELIER_ADDR:-localhost:8500}
grpcurl=${GRPCURL:-grpcurl}
if [ $# -eq 0 ]; then
  "$grpcurl" -plaintext "$addr" atelier.v1.ModelService/ListModels
else
  "$grpcurl" -plaintext -d "{\"model\": {\"name\": \"$1\"}}" "$addr" atelier.v1.ModelService/GetModel
fi
