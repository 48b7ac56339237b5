#!/usr/bin/env bash
# `make bench-int8`: int8 for the embedded classifier (savedmodels/classifier/1),
# measured, not shipped. Nothing here changes the server, the training code or the
# shipped models; everything it makes goes under $INT8_WORK (default .build/int8/).
#
#   bench/int8/run.sh                     # or: make bench-int8
#   INT8_REPS=7 INT8_CAPI=1 bench/int8/run.sh
#
# Steps (each prints "==> int8 N/6"):
#   1 venv       .build/int8/venv: Intel Neural Compressor (neural-compressor-tf) on the
#                same tensorflow-cpu as .venv (bench/int8/requirements.txt); made once,
#                remade when that file changes. Needs python3 -m venv and the package
#                index (about 300 MB the first time).
#   2 single     make_single.py: the classifier's two flip branches (shared weights,
#                which INC quantizes wrongly without a word) rewritten as one branch
#                on concat(images, mirrored images), mean of the two halves: same
#                function, same fp32 arithmetic -> .build/int8/fp32_single
#   3 quantize   quantize.py: INC static post-training quantization, int8 weights per
#                channel, symmetric activations, calibrated on INT8_CALIB (1024)
#                random training images -> .build/int8/int8 (serving_default:
#                images -> probabilities). Refuses a graph with a float convolution
#                or matrix product left.
#   4 accuracy   bench.py (in .venv, the TensorFlow atelierd's C library comes from):
#                all 10,000 test images through fp32, bf16, fp32 single-branch, bf16
#                single-branch and int8, and the verdict of the project's bf16 gate
#                (savedmodels/atelier_train/precision.py) applied to int8: accuracy
#                within 0.3 points of fp32 and top-1 agreement at least 0.995
#   5 speed      the same process: images/s at batch INT8_BATCHES (1,16,64), the five
#                models timed in turn inside each of INT8_REPS (5) repeats, median
#                (min-max) over repeats; then a markdown table with the CPU flags
#                (avx512_vnni, avx512_bf16, amx_*) and the load average at start and
#                end. Raw numbers: .build/int8/results/<UTC stamp>.json
#   6 C API      only with INT8_CAPI=1: capi_check.c, linked against .build/tflib as
#                atelierd is, loads fp32 and int8 through TF_LoadSessionFromSavedModel
#                and prints their accuracy on the test images.
#
# Needs `make setup` (.venv, .build/tflib, dataset-fashion-mnist; gcc for step 6).
# Exits 1 when int8 fails the gate (after timing). Run on an idle machine: the
# medians move by 10-30% under load, and the table prints the load average.
# bf16 here is what atelierd runs (--precision bf16): grappler's
# auto_mixed_precision_onednn_bfloat16 with Softmax kept fp32 (internal/tf/model.go).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
HERE=bench/int8
WORK=${INT8_WORK:-$ROOT/.build/int8}
VENV=$WORK/venv
CALIB=${INT8_CALIB:-1024}
mkdir -p "$WORK"
[ -x .venv/bin/python ] && [ -d .build/tflib ] || { echo "run make setup first (.venv, .build/tflib)" >&2; exit 1; }
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ left in bench/ or savedmodels/
step() { printf '\033[1m==> int8 %s\033[0m\n' "$*"; }

step "1/6 venv with Intel Neural Compressor ($VENV)"
req_hash=$(sha256sum "$HERE/requirements.txt" | cut -c1-16)
marker=$VENV/.installed-$req_hash
if [ -f "$marker" ] && "$VENV/bin/python" -c 'import neural_compressor.tensorflow' 2>/dev/null; then
  echo "    installed ($(grep -v '^#' "$HERE/requirements.txt" | xargs)) (already done)"
else
  if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    echo "    making the venv"
    python3 -m venv --clear "$VENV"
  fi
  echo "    pip install -r $HERE/requirements.txt (about 300 MB the first time)"
  "$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar on -r "$HERE/requirements.txt" 2>&1 |
    { grep --line-buffered -v '^Requirement already satisfied' || true; }
  rm -f "$VENV"/.installed-*
  touch "$marker"
fi

step "2/6 single-branch fp32 graph ($WORK/fp32_single)"
# From $WORK: INC writes its scratch folder nc_workspace/ into the current directory.
(cd "$WORK" && "$VENV/bin/python" "$ROOT/$HERE/make_single.py" "$WORK/fp32_single")

step "3/6 int8, per-channel, calibrated on $CALIB training images ($WORK/int8)"
(cd "$WORK" && "$VENV/bin/python" "$ROOT/$HERE/quantize.py" --calib "$CALIB" "$WORK/fp32_single" "$WORK/int8")

step "4/6 accuracy on the 10,000 test images; 5/6 speed (reps ${INT8_REPS:-5}, batches ${INT8_BATCHES:-1,16,64})"
rc=0
.venv/bin/python "$HERE/bench.py" --reps "${INT8_REPS:-5}" --batches "${INT8_BATCHES:-1,16,64}" \
  --results "$WORK/results" --fp32-single "$WORK/fp32_single" --int8 "$WORK/int8" || rc=$?

if [ "${INT8_CAPI:-0}" = 1 ]; then
  step "6/6 through the TensorFlow C library (.build/tflib, as atelierd links it)"
  . scripts/tfenv.sh
  gcc -O2 -o "$WORK/capi_check" "$HERE/capi_check.c" $CGO_CFLAGS $CGO_LDFLAGS
  data=${ATELIER_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
  zcat -f "$data"/t10k-images-idx3-ubyte* | tail -c +17 >"$WORK/test_images.u8"
  zcat -f "$data"/t10k-labels-idx1-ubyte* | tail -c +9 >"$WORK/test_labels.u8"
  "$WORK/capi_check" savedmodels/classifier/1 serving_default_images StatefulPartitionedCall_1 \
    "$WORK/test_images.u8" "$WORK/test_labels.u8" 10000
  "$WORK/capi_check" "$WORK/int8" images_in probabilities "$WORK/test_images.u8" "$WORK/test_labels.u8" 10000
else
  step "6/6 C API check skipped (INT8_CAPI=1 runs it)"
fi
exit $rc
