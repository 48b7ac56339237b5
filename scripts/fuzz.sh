#!/usr/bin/env bash
# Runs every Go fuzz target for $FUZZTIME each (default 15s), one after another, with
# CGO_ENABLED=0 (none of them needs TensorFlow). A crash, a hang (an input that runs
# over 10 s), an input over a limit the target checks or a decode that allocates more
# than its input could legitimately decode to (FuzzDecodeMemory, FuzzRequests'
# stream frames, FuzzModelInferRequest) fails the run; the failing
# input lands in the package's testdata/fuzz/<Target>/ to be committed as a seed.
# The committed seeds in those folders run in every plain `go test` too.
#
# The fuzzing runs on Go 1.27.3, fetched once from the module proxy like any module
# (about 76 MB). Go 1.26's fuzz coordinator can fail a clean run with a bare
# "context deadline exceeded" when -fuzztime ends while a worker is mid-input
# (go.dev/issue/75804: ctx's deadline is set but its child fuzzCtx is not yet
# cancelled); 1.27 filters that as a normal stop. The rest of the build stays on the
# machine's Go; FUZZ_GOTOOLCHAIN=local runs the fuzzing on it too.
set -euo pipefail
cd "$(dirname "$0")/.."
unset CGO_CFLAGS CGO_LDFLAGS
export CGO_ENABLED=0
export GOTOOLCHAIN=${FUZZ_GOTOOLCHAIN:-go1.27.3}
echo "    fuzz toolchain: $(go version)"
time=${FUZZTIME:-15s}
# package target
targets=(
  "./internal/imageio FuzzDecode"
  "./internal/imageio FuzzRaw"
  "./internal/imageio FuzzPNG"
  "./internal/imageio FuzzDecodeMemory"
  "./server FuzzRequests"
  "./server FuzzStreamOptions"
  "./server FuzzModelInferRequest"
  "./internal/inference FuzzDecodeBytes"
  "./internal/generate FuzzValidate"
  "./internal/auth FuzzParse"
  "./internal/models FuzzParseConfig"
)
for t in "${targets[@]}"; do
  read -r pkg name <<<"$t"
  echo "    fuzz $name ($pkg) for $time"
  # -parallel 1: the machines are small and shared; a bounded run, not a race.
  # -timeout 0: -fuzztime bounds the run; go test's default 10m would fail FUZZTIME=10m
  # at its very end (a hung input is still caught by the fuzzer's own 10 s limit).
  go test -run '^$' -fuzz "^$name\$" -fuzztime "$time" -timeout 0 -parallel 1 "$pkg" 2>&1 | grep -v '^fuzz: elapsed'
done
echo "    fuzz: ${#targets[@]} targets, $time each, no failure"
