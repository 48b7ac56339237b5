#!/usr/bin/env bash
# Measures what deploy/Containerfile's runtime stage adds to its base image: the two
# TensorFlow libraries from the pinned wheel (as the project's set-up installed
# them) and atelierd built with the image's flags. No container engine is needed.
#   deploy/image-size.sh            (after `make setup`)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/tfenv.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go build -trimpath -ldflags="-s -w" -o "$out/atelierd" ./server/cmd/atelierd
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
size() { stat -L -c %s "$1"; }
cc=$(size "$ATELIER_TF_DIR/libtensorflow_cc.so.2")
fw=$(size "$ATELIER_TF_DIR/libtensorflow_framework.so.2")
bin=$(size "$out/atelierd")
echo "libtensorflow_cc.so.2         $(mb "$cc")"
echo "libtensorflow_framework.so.2  $(mb "$fw")"
echo "atelierd (-s -w)              $(mb "$bin")"
echo "added to the base image       $(mb $((cc + fw + bin)))"
