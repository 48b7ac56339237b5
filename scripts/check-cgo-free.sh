#!/usr/bin/env bash
# Checks that internal/tf is the only cgo package: with CGO_ENABLED=0 and no
# TensorFlow anywhere on the paths, every package that does not depend on internal/tf
# builds and vets (tests included), and its unit tests pass. Test files that drive a
# real atelierd (through internal/servertest) carry `//go:build cgo`, so this pass
# compiles the unit tests on fakes beside them and leaves the live ones out, rather
# than skipping them; a package whose tests are all live (deploy/kserve, examples)
# has nothing to test here. deploy/clustertest, the cluster integration test (make
# test-cluster), is only vetted.
set -euo pipefail
cd "$(dirname "$0")/.."
unset CGO_CFLAGS CGO_LDFLAGS LD_LIBRARY_PATH
export CGO_ENABLED=0
mod=$(go list -m)
vet=() unit=() skipped=()
# A package whose files all carry `//go:build cgo` (deploy/kserve, examples) is not
# listed here: it has nothing to build without cgo.
for pkg in $(go list ./...); do
  deps=$(go list -deps -test "$pkg")
  if grep -qx "$mod/internal/tf" <<<"$deps"; then
    skipped+=("$pkg")
  elif [[ "$pkg" == "$mod/deploy/clustertest" ]]; then
    vet+=("$pkg")
  elif [[ "$pkg" != "$mod/internal/servertest" ]] && grep -qx "$mod/internal/servertest" <<<"$deps"; then
    echo "cgo-free: $pkg uses internal/servertest in a file without //go:build cgo; live tests need TensorFlow" >&2
    exit 1
  else
    vet+=("$pkg") unit+=("$pkg")
  fi
done
echo "    cgo-free: vet ${#vet[@]} packages, unit-test ${#unit[@]}; TensorFlow's own: ${skipped[*]#"$mod/"}"
# The packages above are found from their imports, so a core package that came to
# import internal/tf would drop out of this check without a word: only these may.
allowed=" internal/tf server/cmd/atelierd bench/loadgen "
for pkg in "${skipped[@]#"$mod/"}"; do
  if [[ "$allowed" != *" $pkg "* ]]; then
    echo "cgo-free: $pkg depends on internal/tf; only${allowed% } may (keep TensorFlow behind internal/tensor's Engine)" >&2
    exit 1
  fi
done
go vet "${vet[@]}"
go test -count=1 "${unit[@]}"
