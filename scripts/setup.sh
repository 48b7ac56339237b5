#!/usr/bin/env bash
# Installs everything Atelier needs to build, serve and test, idempotently:
# Debian packages, the Python virtual environment with the pinned TensorFlow wheel,
# the link folder for the TensorFlow C library, and the pinned Go tools.
# Each step says what it does and skips itself when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
skip() { printf '    %s (already done)\n' "$*"; }

# Pinned Go tools: name, package, version.
GO_TOOLS=(
  "buf github.com/bufbuild/buf/cmd/buf v1.75.0"
  "protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go v1.36.12"
  "protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc v1.6.2"
  "grpcurl github.com/fullstorydev/grpcurl/cmd/grpcurl v1.9.4"
  "kustomize sigs.k8s.io/kustomize/kustomize/v5 v5.8.1"
)
# haproxy: the L7 (and L4) proxy in front of the replicas of make test-cluster.
# apache2-utils: Apache's htpasswd, which writes the dashboard's --users-file in
# TestHtpasswdFile.
DEBIAN_PACKAGES=(dataset-fashion-mnist ffmpeg chromium haproxy apache2-utils)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

step "1/5 Debian packages: ${DEBIAN_PACKAGES[*]}"
missing=()
for p in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}"
else
  skip "installed"
fi

step "2/5 Python virtual environment (.venv) with the pinned TensorFlow wheel"
REQ=savedmodels/requirements.txt
TRITON_REQ=client/python/tests/requirements-triton.txt
req_hash=$(cat "$REQ" client/python/pyproject.toml "$TRITON_REQ" 2>/dev/null | sha256sum | cut -c1-16)
if [ "$(cat .venv/.requirements-hash 2>/dev/null)" != "$req_hash" ]; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install --progress-bar on --disable-pip-version-check -q --upgrade pip
  .venv/bin/pip install --progress-bar on --disable-pip-version-check -r "$REQ"
  .venv/bin/pip install --progress-bar on --disable-pip-version-check --no-deps -r "$TRITON_REQ"
  if [ -f client/python/pyproject.toml ]; then
    .venv/bin/pip install --disable-pip-version-check -q --no-deps -e client/python
  fi
  echo "$req_hash" > .venv/.requirements-hash
else
  skip "requirements unchanged"
fi

step "3/5 TensorFlow C library link folder (.build/tflib)"
TF_DIR=$(ls -d "$ROOT"/.venv/lib/python3*/site-packages/tensorflow | head -n 1)
mkdir -p .build/tflib
ln -sfn "$TF_DIR/libtensorflow_cc.so.2" .build/tflib/libtensorflow.so
ln -sfn "$TF_DIR/libtensorflow_framework.so.2" .build/tflib/libtensorflow_framework.so
echo "    libtensorflow -> $TF_DIR/libtensorflow_cc.so.2"

step "4/5 Go tools (.tools/bin)"
mkdir -p .tools/bin
for t in "${GO_TOOLS[@]}"; do
  read -r name pkg version <<<"$t"
  if [ "$(cat ".tools/bin/.$name.version" 2>/dev/null)" = "$version" ] && [ -x ".tools/bin/$name" ]; then
    skip "$name $version"
    continue
  fi
  echo "    go install $pkg@$version"
  GOBIN="$ROOT/.tools/bin" go install "$pkg@$version"
  echo "$version" > ".tools/bin/.$name.version"
done

step "5/5 Go modules"
go mod download
echo "    set-up complete"
