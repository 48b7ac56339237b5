#!/usr/bin/env bash
# Admin: points version labels at loaded versions (VERSION 0 removes the label) and
# prints the model's labels afterwards; a call may then name the label in its
# ModelSpec ({"name": "classifier", "version_label": "stable"}).
#   examples/grpcurl/label.sh MODEL LABEL=VERSION...     # label.sh classifier stable=3 canary=4
# The admin token as reload.sh reads it: $ATELIER_ADMIN_TOKEN_FILE or $ATELIER_ADMIN_TOKEN.
set -euo pipefail
addr=${ATELIER_ADDR:-localhost:8500}
grpcurl=${GRPCURL:-grpcurl}
usage="usage: label.sh MODEL LABEL=VERSION..."
model=${1:?$usage}
shift
[ $# -gt 0 ] || { echo "$usage" >&2; exit 2; }
labels=""
for kv in "$@"; do
  [[ $kv =~ ^([a-z][a-z0-9_-]*)=([0-9]+)$ ]] || { echo "label.sh: $kv: want LABEL=VERSION, for example stable=3" >&2; exit 2; }
  labels+="${labels:+, }\"${BASH_REMATCH[1]}\": ${BASH_REMATCH[2]}"
done
token=${ATELIER_ADMIN_TOKEN:-$(head -n 1 "${ATELIER_ADMIN_TOKEN_FILE:?set ATELIER_ADMIN_TOKEN_FILE or ATELIER_ADMIN_TOKEN}")}
H="authorization: Bearer $token"
"$grpcurl" -plaintext -H "$H" -d "{\"name\": \"$model\", \"version_labels\": {$labels}}" \
  "$addr" atelier.v1.ModelService/SetVersionLabels
