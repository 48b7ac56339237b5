#!/usr/bin/env bash
# Renders the store demo's camera footage: held-out outfit scenes (garments from the
# Fashion-MNIST test split only, which no model trained on) as short looping videos,
# one per camera, with ffmpeg. Each camera alternates a scene with a dress and one
# without, so the "dress" rule fires on every lap.
#
#   scripts/demo-videos.sh OUT_DIR [CAMERAS=3] [SCENES_PER_CAMERA=8] [SECONDS_PER_SCENE=1.5] [FPS=10]
#
# Writes OUT_DIR/scenes/ (the PNGs and ground_truth.json), OUT_DIR/cam1.mp4,
# OUT_DIR/cam2.mjpeg (an MJPEG file, as IP cameras record), OUT_DIR/cam3.mp4, ...
# and OUT_DIR/cameras.json: each camera's file, frame rate, frames per scene and its
# scenes in order, with the categories in each (for tests).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: scripts/demo-videos.sh OUT_DIR [CAMERAS] [SCENES_PER_CAMERA] [SECONDS_PER_SCENE] [FPS]}
cams=${2:-3}
per=${3:-8}
secs=${4:-1.5}
fps=${5:-10}
py=${ATELIER_PYTHON:-$ROOT/.venv/bin/python}
mkdir -p "$out"
out=$(cd "$out" && pwd)

candidates=$((cams * per * 4))
if [ "$(cat "$out/scenes/.count" 2>/dev/null)" != "$candidates" ]; then
  (cd "$ROOT/savedmodels" && TF_CPP_MIN_LOG_LEVEL=2 "$py" -m atelier_train.scenes \
    --heldout "$candidates" --size 640x480 --out "$out/scenes")
  echo "$candidates" > "$out/scenes/.count"
fi

# Choose each camera's scenes and write an ffmpeg concat list per camera.
"$py" - "$out" "$cams" "$per" "$secs" "$fps" <<'EOF'
import json, sys
out, cams, per, secs, fps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
truth = json.load(open(f"{out}/scenes/ground_truth.json"))
labels = lambda s: sorted({o["label"] for o in s["objects"] if not o["difficult"]})
dress = [s for s in truth["scenes"] if "Dress" in labels(s)]
plain = [s for s in truth["scenes"] if not any(o["label"] == "Dress" for o in s["objects"])]
need = cams * ((per + 1) // 2)
if len(dress) < need or len(plain) < cams * (per // 2):
    sys.exit(f"demo-videos: only {len(dress)} scenes with a dress and {len(plain)} without; want {need} and {cams * (per // 2)}")
frames = round(secs * fps)
cameras = []
for c in range(cams):
    scenes = []
    for i in range(per):
        pool = dress if i % 2 == 0 else plain
        scenes.append(pool.pop(0))
    ext = "mjpeg" if c == 1 else "mp4"
    with open(f"{out}/cam{c + 1}.txt", "w") as f:
        for s in scenes:
            f.write(f"file 'scenes/{s['file']}'\nduration {frames / fps}\n")
        f.write(f"file 'scenes/{scenes[-1]['file']}'\n")  # the concat demuxer drops the last duration otherwise
    cameras.append({"name": f"cam{c + 1}", "file": f"cam{c + 1}.{ext}", "fps": fps, "frames_per_scene": frames,
                    "scenes": [{"file": s["file"], "labels": labels(s)} for s in scenes]})
json.dump({"cameras": cameras}, open(f"{out}/cameras.json", "w"), indent=1)
EOF

for c in $(seq 1 "$cams"); do
  frames=$("$py" -c "import json,sys; c=json.load(open('$out/cameras.json'))['cameras'][$c-1]; print(c['frames_per_scene']*len(c['scenes']), c['file'])")
  read -r n file <<<"$frames"
  args=(-hide_banner -loglevel error -nostdin -y -f concat -safe 0 -i "$out/cam$c.txt" -vf "fps=$fps" -frames:v "$n")
  if [[ $file == *.mjpeg ]]; then
    args+=(-c:v mjpeg -q:v 3 -f mjpeg)
  else
    args+=(-c:v libx264 -preset veryfast -crf 18 -pix_fmt yuv420p)
  fi
  (cd "$out" && ffmpeg "${args[@]}" "$file")
  echo "    $out/$file: $n frames at $fps frames/s"
done
