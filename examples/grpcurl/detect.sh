#!/usr/bin/env bash
# Finds the garments in a PNG or JPEG file, each classified.
#   examples/grpcurl/detect.sh IMAGE [MIN_SCORE]
set -euo pipefail
addr=${ATELIER_ADDR:-localhost:8500}
grpcurl=${GRPCURL:-grpcurl}
image=${1:?usage: detect.sh IMAGE [MIN_SCORE]}
printf '{"image": {"encoded": "%s"}, "min_score": %s}' "$(base64 -w0 "$image")" "${2:-0.5}" |
  "$grpcurl" -plaintext -d @ "$addr" atelier.v1.DetectService/Detect
