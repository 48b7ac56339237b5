# Source this file to build and test Go code against the TensorFlow C library that the
# pinned tensorflow-cpu wheel put in the project's virtual environment:
#   . scripts/tfenv.sh
# `make setup` (scripts/setup.sh) must have run once.
ATELIER_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)
export ATELIER_ROOT
ATELIER_TF_DIR=$(ls -d "$ATELIER_ROOT"/.venv/lib/python3*/site-packages/tensorflow 2>/dev/null | head -n 1)
export ATELIER_TF_DIR
export ATELIER_TF_LINK_DIR="$ATELIER_ROOT/.build/tflib"
export CGO_ENABLED=1
export CGO_CFLAGS="-I$ATELIER_TF_DIR/include"
export CGO_LDFLAGS="-L$ATELIER_TF_LINK_DIR -ltensorflow -ltensorflow_framework -Wl,-rpath,$ATELIER_TF_DIR"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
export ATELIER_PYTHON="$ATELIER_ROOT/.venv/bin/python"
export PATH="$ATELIER_ROOT/.tools/bin:$ATELIER_ROOT/.venv/bin:$PATH"
