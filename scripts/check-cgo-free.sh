#!/usr/bin/env bash
# Checks that internal/tf is the only cgo package: with CGO_ENABLED=0 and no
# TensorFlow anywhere on the paths, every package that does not depend on internal/tf
# builds and vets (tests included), and its unit tests pass. The packages whose tests
# also drive a real atelierd (they import internal/servertest) run in the cgo-free
# pass, ATELIER_TEST_PASS=cgo-free: their unit tests on fakes run, their live tests
# skip themselves (testenv.Live; even under CI=true, only in this pass) and their live
# examples, which cannot skip, are left out here by name. deploy/clustertest, the
# cluster integration test (make test-cluster), is only vetted.
set -euo pipefail
cd "$(dirname "$0")/.."
unset CGO_CFLAGS CGO_LDFLAGS LD_LIBRARY_PATH
export CGO_ENABLED=0 ATELIER_TEST_PASS=cgo-free
mod=$(go list -m)
vet=() unit=() live=() skipped=()
for pkg in $(go list ./...); do
  deps=$(go list -deps -test "$pkg")
  if grep -qx "$mod/internal/tf" <<<"$deps"; then
    skipped+=("$pkg")
  elif [[ "$pkg" == "$mod/deploy/clustertest" ]]; then
    vet+=("$pkg")
  elif grep -qx "$mod/internal/servertest" <<<"$deps"; then
    vet+=("$pkg") live+=("$pkg")
  else
    vet+=("$pkg") unit+=("$pkg")
  fi
done
echo "    cgo-free: vet ${#vet[@]} packages, unit-test $((${#unit[@]} + ${#live[@]})) (${#live[@]} with live tests skipped); TensorFlow's own: ${skipped[*]#"$mod/"}"
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
go test -count=1 -skip '^Example' "${live[@]}"
