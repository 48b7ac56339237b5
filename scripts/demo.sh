#!/usr/bin/env bash
# The store demo (make demo): atelierd with the embedded models, and the dashboard
# with three cameras looping held-out outfit scenes. Prints the URL; Ctrl-C stops both.
#   ATELIER_DEMO_GRPC   atelierd's address        (default 127.0.0.1:8500)
#   ATELIER_DEMO_LISTEN the dashboard's address   (default :8080)
#   ATELIER_DEMO_FPS    frames a second per camera (default 10)
#   ATELIER_DEMO_DIR    where the footage and logs go (default .build/demo)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/tfenv.sh
grpc=${ATELIER_DEMO_GRPC:-127.0.0.1:8500}
listen=${ATELIER_DEMO_LISTEN:-:8080}
fps=${ATELIER_DEMO_FPS:-10}
out=${ATELIER_DEMO_DIR:-.build/demo}

echo "==> demo footage: held-out scenes rendered with ffmpeg ($out)"
scripts/demo-videos.sh "$out" 3 8 1.5 "$fps"

pids=()
stop() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap stop EXIT INT TERM

echo "==> atelierd on $grpc (log: $out/atelierd.log)"
bin/atelierd --listen "$grpc" --model-dir savedmodels >"$out/atelierd.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do
  bin/atelier health --addr "$grpc" --timeout 1s >/dev/null 2>&1 && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$out/atelierd.log"; echo "atelierd exited"; exit 1; }
  sleep 0.5
done

echo "==> dashboard on $listen (log: $out/dashboard.log)"
bin/atelier dashboard --addr "$grpc" --listen "$listen" --fps "$fps" \
  --camera "entrance=$out/cam1.mp4" --camera "aisle=$out/cam2.mjpeg" --camera "fitting-rooms=$out/cam3.mp4" \
  >"$out/dashboard.out" 2>"$out/dashboard.log" &
pids+=($!)
for _ in $(seq 1 50); do
  grep -q '^dashboard: ' "$out/dashboard.out" 2>/dev/null && break
  kill -0 "${pids[1]}" 2>/dev/null || { cat "$out/dashboard.log"; echo "the dashboard exited"; exit 1; }
  sleep 0.2
done
echo
echo "    Store dashboard: $(sed -n 's/^dashboard: //p' "$out/dashboard.out")   (Ctrl-C stops the demo)"
echo
wait -n "${pids[@]}"
