#!/usr/bin/env bash
# Classifies a PNG or JPEG file: the file travels base64-encoded in the JSON request,
# which goes to grpcurl on stdin (-d @) so large images do not hit argument limits.
#   examples/grpcurl/classify.sh IMAGE [TOP_K]
set -euo pipefail
addr=${ATELIER_ADDR:-localhost:8500}
grpcurl=${GRPCURL:-grpcurl}
image=${1:?usage: classify.sh IMAGE [TOP_K]}
top_k=${2:-3}
printf '{"images": [{"encoded": "%s"}], "top_k": %d}' "$(base64 -w0 "$image")" "$top_k" |
  "$grpcurl" -plaintext -d @ "$addr" atelier.v1.ClassifyService/Classify
