#!/usr/bin/env bash
# Classifies a PNG or JPEG file through the V2 image model classifier_image: the file
# is one BYTES element (typed contents, base64 in JSON). The answer is in
# raw_output_contents, base64 in JSON: probabilities (FP32 little-endian), label
# (BYTES: a 4-byte little-endian length, then the text), score, class_index.
#   examples/grpcurl/v2_infer_image.sh IMAGE
set -euo pipefail
addr=${ATELIER_ADDR:-localhost:8500}
grpcurl=${GRPCURL:-grpcurl}
image=${1:?usage: v2_infer_image.sh IMAGE}
printf '{"model_name": "classifier_image", "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "contents": {"bytes_contents": ["%s"]}}], "outputs": [{"name": "label"}, {"name": "score"}]}' \
  "$(base64 -w0 "$image")" |
  "$grpcurl" -plaintext -d @ "$addr" inference.GRPCInferenceService/ModelInfer
