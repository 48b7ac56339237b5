#!/usr/bin/env bash
# Installs everything Atelier needs to build, serve and test, idempotently:
# Debian packages, the Python virtual environment with the pinned TensorFlow wheel,
# the link folder for the TensorFlow C library, and the pinned Go tools.
# Each step says what it does and skips itself when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

step() { current=$* hint=""; printf '\033[1m==> %s\033[0m\n' "$*"; }
skip() { printf '    %s (already done)\n' "$*"; }

# A step that fails says which one it was, what usually causes it ($hint, set before
# each command that reaches outside) and that rerunning resumes: each step checks what
# is installed rather than trusting that it finished. Ctrl-C says only the latter (pip
# exits 1 on it, which would otherwise read as a failure with the wrong hint).
current="" hint=""
trap 'rc=$?; printf "\033[1;31msetup failed (exit %s) at step %s\033[0m\n" "$rc" "$current" >&2
  [ -z "$hint" ] || printf "    %s\n" "$hint" >&2
  printf "    Fix that and run make setup again: it resumes where it stopped.\n" >&2' ERR
trap 'trap - ERR; printf "\nsetup interrupted at step %s: make setup resumes where it stopped.\n" "$current" >&2
  exit 130' INT

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
hint="apt-get could not install them: check the network and /etc/apt/sources.list, and run as root or with sudo."
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
# A venv cut short while being made (Ctrl-C, a kill, Debian's python3 without
# python3-venv) has a python but no pip, and pip could never be run in it again.
if ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  [ ! -e .venv ] || echo "    .venv has no working pip (made by a set-up that failed or was cut short): making it anew"
  hint="python3 -m venv could not make .venv with pip: on Debian, apt-get install python3-venv."
  python3 -m venv --clear .venv
  hint=""
fi
# What is installed is checked, not only the marker: a pip install cut short can leave
# a package whose metadata is in place but whose files are not (tensorflow-cpu with 4
# of its 14,000 files, which pip then reports "already satisfied"), and a package can
# go missing after the marker was written. One line per problem; none when every pinned
# requirement is installed at its version and every installed file has its size (~0.5 s).
venv_problems() {
  .venv/bin/python - "$REQ" "$TRITON_REQ" <<'PY'
import os, re, sys
from importlib import metadata
for req in sys.argv[1:]:
    for line in open(req):
        m = re.match(r"\s*([A-Za-z0-9_.-]+)(\[[^]]*\])?==(\S+)", line)
        if not m:
            continue
        name, want = m.group(1), m.group(3)
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            print(f"missing {name}=={want}")
            continue
        if have != want:
            print(f"missing {name}=={want} (found {have})")
for dist in metadata.distributions():
    for f in dist.files or ():
        if f.size is None or "__pycache__" in f.parts:
            continue
        try:
            if os.stat(dist.locate_file(f)).st_size == f.size:
                continue
        except OSError:
            pass
        print(f"incomplete {dist.metadata['Name']}=={dist.version} ({f} missing or cut short)")
        break
PY
}
problems=$(venv_problems)
if [ "$(cat .venv/.requirements-hash 2>/dev/null)" = "$req_hash" ] && [ -z "$problems" ]; then
  skip "requirements unchanged, every pinned package installed and complete"
else
  hint="pip could not install from the package index: check the network and any PIP_INDEX_URL, PIP_EXTRA_INDEX_URL or proxy settings."
  # Worth saying only of a venv set-up once called done; a new one misses everything.
  if [ -f .venv/.requirements-hash ] && [ -n "$problems" ]; then
    sed 's/^/    /' <<<"$problems"
  fi
  rm -f .venv/.requirements-hash
  .venv/bin/pip install --progress-bar on --disable-pip-version-check -q --upgrade pip
  # pip takes a package whose metadata is there as installed: reinstall the incomplete.
  incomplete=$(sed -n 's/^incomplete \([^ ]*\) .*/\1/p' <<<"$problems")
  if [ -n "$incomplete" ]; then
    echo "    reinstalling what was cut short: ${incomplete//$'\n'/ }"
    # shellcheck disable=SC2086
    .venv/bin/pip install --progress-bar on --disable-pip-version-check --force-reinstall --no-deps $incomplete
  fi
  .venv/bin/pip install --progress-bar on --disable-pip-version-check -r "$REQ"
  .venv/bin/pip install --progress-bar on --disable-pip-version-check --no-deps -r "$TRITON_REQ"
  if [ -f client/python/pyproject.toml ]; then
    .venv/bin/pip install --disable-pip-version-check -q --no-deps -e client/python
  fi
  echo "$req_hash" > .venv/.requirements-hash
fi

step "3/5 TensorFlow C library link folder (.build/tflib)"
TF_DIR=$(ls -d "$ROOT"/.venv/lib/python3*/site-packages/tensorflow 2>/dev/null | head -n 1) || true
if [ ! -f "$TF_DIR/libtensorflow_cc.so.2" ]; then
  hint="no libtensorflow_cc.so.2 in .venv's tensorflow package (${TF_DIR:-not found}): does $REQ still pin tensorflow-cpu?"
  false
fi
mkdir -p .build/tflib
ln -sfn "$TF_DIR/libtensorflow_cc.so.2" .build/tflib/libtensorflow.so
ln -sfn "$TF_DIR/libtensorflow_framework.so.2" .build/tflib/libtensorflow_framework.so
echo "    libtensorflow -> $TF_DIR/libtensorflow_cc.so.2"

step "4/5 Go tools (.tools/bin)"
hint="go install could not fetch or build the tool: check the network and GOPROXY; go on PATH must be Go $(sed -n 's/^go //p' go.mod) or newer."
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
hint="go mod download could not fetch the modules go.mod needs: check the network and GOPROXY."
go mod download
echo "    set-up complete"
