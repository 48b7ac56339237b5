#!/usr/bin/env bash
# `make dashboard-cost`: what the store dashboard costs with three cameras at 10
# frames/s and one page open in headless chromium. Runs atelierd and `atelier
# dashboard` on the demo footage, waits WARMUP seconds, then measures for SECONDS:
# CPU (user+system time over wall time, 100% = one core) and memory (RSS) of the
# dashboard process, of the ffmpeg processes decoding its cameras, of the browser
# showing the page, and of atelierd for scale. Writes bench/dashboard-cost.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/tfenv.sh
seconds=${SECONDS_MEASURED:-60}
warmup=${WARMUP:-20}
fps=10
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
demo=${ATELIER_DEMO_DIR:-.build/demo}
scripts/demo-videos.sh "$demo" 3 8 1.5 "$fps" >/dev/null
tck=$(getconf CLK_TCK)

bin/atelierd --listen 127.0.0.1:18750 --model-dir savedmodels --log-level warn >"$work/atelierd.log" 2>&1 &
server=$!
for _ in $(seq 1 240); do bin/atelier health --addr 127.0.0.1:18750 --timeout 1s >/dev/null 2>&1 && break; sleep 0.5; done
bin/atelier dashboard --addr 127.0.0.1:18750 --listen 127.0.0.1:18751 --fps "$fps" \
  --camera entrance="$demo/cam1.mp4" --camera aisle="$demo/cam2.mjpeg" --camera fitting-rooms="$demo/cam3.mp4" \
  >"$work/dashboard.out" 2>"$work/dashboard.log" &
dash=$!
sleep 2
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --mute-audio --user-data-dir="$work/chrome" --window-size=1280,800 \
  http://127.0.0.1:18751/ >"$work/chromium.log" 2>&1 &
echo "==> warming up for ${warmup}s, then measuring for ${seconds}s"
sleep "$warmup"

ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
child_ticks() { awk '{print $16 + $17}' "/proc/$1/stat"; }
ffmpeg_live() { local s=0; for p in $(pgrep -P "$dash" ffmpeg); do s=$((s + $(ticks "$p"))); done; echo $s; }
chrome_ticks() { local s=0; for p in $(pgrep -f "user-data-dir=$work/chrome"); do s=$((s + $(ticks "$p"))); done; echo $s; }
chrome_rss() { local s=0; for p in $(pgrep -f "user-data-dir=$work/chrome"); do s=$((s + $(awk '/VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0))); done; echo $s; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

frame_bytes() { curl -sf http://127.0.0.1:18751/api/state | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"]["frame_bytes"])'; }
d0=$(ticks $dash); c0=$(child_ticks $dash); f0=$(ffmpeg_live); b0=$(chrome_ticks); s0=$(ticks $server); j0=$(frame_bytes)
t0=$(date +%s.%N)
rss_sum=0 rss_max=0 brss_max=0 n=0
for _ in $(seq 1 "$seconds"); do
  sleep 1
  r=$(rss $dash); rss_sum=$((rss_sum + r)); n=$((n + 1)); [ "$r" -gt "$rss_max" ] && rss_max=$r
  b=$(chrome_rss); [ "$b" -gt "$brss_max" ] && brss_max=$b
done
t1=$(date +%s.%N)
d1=$(ticks $dash); c1=$(child_ticks $dash); f1=$(ffmpeg_live); b1=$(chrome_ticks); s1=$(ticks $server)
state=$(curl -sf http://127.0.0.1:18751/api/state)
j1=$(frame_bytes)

python3 - "$t0" "$t1" "$tck" "$d0" "$d1" "$c0" "$c1" "$f0" "$f1" "$b0" "$b1" "$s0" "$s1" "$rss_sum" "$n" "$rss_max" "$brss_max" "$state" "$j0" "$j1" <<'PY' | tee bench/dashboard-cost.txt
import json, sys
a = sys.argv[1:]
t0, t1, tck = float(a[0]), float(a[1]), int(a[2])
d0, d1, c0, c1, f0, f1, b0, b1, s0, s1 = map(int, a[3:13])
rss_sum, n, rss_max, brss_max = int(a[13]), int(a[14]), int(a[15]), int(a[16])
state = json.loads(a[17])["state"]
j0, j1 = int(a[18]), int(a[19])
wall = t1 - t0
pct = lambda ticks: 100.0 * ticks / tck / wall
print(f"dashboard cost: 3 cameras at 10 frames/s, one page open, {wall:.0f} s measured")
print(f"  dashboard process     CPU {pct(d1 - d0):5.1f}% of a core   RSS mean {rss_sum / n / 1024:.1f} MiB, max {rss_max / 1024:.1f} MiB")
print(f"  frames to the page    {(j1 - j0) / wall / 1024:.0f} KiB/s of JPEG (at most 5 frames/s per camera)")
print(f"  its ffmpeg decoders   CPU {pct((c1 - c0) + (f1 - f0)):5.1f}% of a core (3 processes)")
print(f"  chromium (the page)   CPU {pct(b1 - b0):5.1f}% of a core   RSS max {brss_max / 1024:.1f} MiB (all its processes)")
print(f"  atelierd (for scale)  CPU {pct(s1 - s0):5.1f}% of a core")
for name, cam in sorted(state["cameras"].items()):
    print(f"  camera {name:14s} {cam['state']:6s} {cam['fps']:4.1f} frames/s answered, lag {cam['lag_ms']} ms, "
          f"{cam['sent']} sent, {cam['skipped']} skipped, {cam['failed']} failed")
PY
