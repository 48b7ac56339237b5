#!/usr/bin/env bash
# `make bench-cpu-options`: which TensorFlow CPU settings help on this machine. Runs
# internal/tf's BenchmarkSessionOptions (thread pools x precision x batch, on the
# embedded classifier and the full VGG19) in three processes, because TensorFlow
# reads these settings once per process:
#   default   oneDNN on (TensorFlow's default on x86), no XLA
#   xla       XLA auto-clustering on CPU: TF_XLA_FLAGS="--tf_xla_auto_jit=2 --tf_xla_cpu_global_jit"
#   no-onednn TF_ENABLE_ONEDNN_OPTS=0 (fp32 only: the bf16 rewrite needs oneDNN)
# and prints a table of images/s, one column per setting. Run on an idle machine.
#   BENCH_OPTIONS_TIME=3s bench/cpu-options.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/tfenv.sh
TIME=${BENCH_OPTIONS_TIME:-3s}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "==> cpu-options 1/4: models (the full VGG19 is built on demand)"
(cd savedmodels && ../.venv/bin/python -m atelier_train.build --only classifier --only classifier-full)
go test -c -o "$work/tf.test" ./internal/tf
flags=$(grep -o -w -E 'avx512_bf16|amx_bf16|amx_tile|avx512f|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, flags: $flags"

run() { # label, env...
  local label=$1; shift
  echo "==> cpu-options: $label"
  (cd internal/tf && env "$@" TF_CPP_MIN_LOG_LEVEL=2 "$work/tf.test" -test.run '^$' \
    -test.bench BenchmarkSessionOptions -test.benchtime "$TIME") | tee "$work/$label.txt"
}
run default
run xla TF_XLA_FLAGS="--tf_xla_auto_jit=2 --tf_xla_cpu_global_jit"
run no-onednn TF_ENABLE_ONEDNN_OPTS=0 ATELIER_BENCH_OPTIONS_PRECISIONS=fp32

echo "==> cpu-options 4/4: table (images/s)"
.venv/bin/python - "$work" <<'PY'
import re, sys, os
work = sys.argv[1]
cols = ["default", "xla", "no-onednn"]
rows = {}
for c in cols:
    for line in open(os.path.join(work, c + ".txt")):
        m = re.match(r"BenchmarkSessionOptions/(\S+?)(-\d+)?\s+\d+\s+.*?([\d.]+) images/s", line)
        if m:
            rows.setdefault(m.group(1), {})[c] = float(m.group(3))
print("| model | precision | intra | inter | batch | " + " | ".join(cols) + " |")
print("| --- | --- | ---: | ---: | ---: | " + " | ".join("---:" for _ in cols) + " |")
for key, v in rows.items():
    f = dict(kv.split("=") for kv in key.split("/"))
    cells = [f"{v[c]:.1f}" if c in v else "" for c in cols]
    print(f"| {f['model']} | {f['precision']} | {f['intra']} | {f['inter']} | {f['batch']} | " + " | ".join(cells) + " |")
PY
