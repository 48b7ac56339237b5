#!/usr/bin/env bash
# Admin: re-reads the model config and rescans the model folder (as SIGHUP does), and
# answers once the loads it started have ended, with every model's status.
#   ATELIER_ADMIN_TOKEN_FILE=/etc/atelier/admin-token examples/grpcurl/reload.sh
# Needs atelierd --auth-tokens-file FILE and one of its admin tokens: the first line of
# $ATELIER_ADMIN_TOKEN_FILE, or $ATELIER_ADMIN_TOKEN itself (as `atelier reload` reads it).
set -euo pipefail
addr=${ATELIER_ADDR:-localhost:8500}
grpcurl=${GRPCURL:-grpcurl}
token=${ATELIER_ADMIN_TOKEN:-$(head -n 1 "${ATELIER_ADMIN_TOKEN_FILE:?set ATELIER_ADMIN_TOKEN_FILE or ATELIER_ADMIN_TOKEN}")}
H="authorization: Bearer $token"
"$grpcurl" -plaintext -H "$H" -d '{"wait": true}' "$addr" atelier.v1.ModelService/ReloadRepository
