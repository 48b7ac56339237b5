"""Streams a camera's frames on ClassifyStream with the generated stubs alone
(atelier.v1), showing the protocol itself: a config message first, then frames, each
with an id and a capture time; the server answers every frame in order and mixes in
tally summaries and alerts.

Frames come from a folder of JPEG/PNG files (name order) or from a video file, which
ffmpeg decodes into raw RGB frames.

    python examples/python/stream_frames.py --watch Dress --min-frames 3 FOLDER_OR_VIDEO
"""

import argparse
import os
import subprocess
import sys
import time

import grpc
from google.protobuf import duration_pb2, timestamp_pb2

from atelier.v1 import (classify_service_pb2, classify_service_pb2_grpc, common_pb2,
                        stream_pb2)

ADDR = os.environ.get("ATELIER_ADDR", "localhost:8500")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
CODE_NAMES = {c.value[0]: c.name for c in grpc.StatusCode}  # FrameError.code -> INVALID_ARGUMENT ...


def folder_frames(folder):
    """Yields each image file of folder, in name order, as an encoded Image."""
    for name in sorted(os.listdir(folder)):
        if name.lower().endswith(IMAGE_EXTENSIONS):
            with open(os.path.join(folder, name), "rb") as f:
                yield common_pb2.Image(encoded=f.read())


def video_frames(path):
    """Yields a video's frames as raw RGB Images, decoded by ffmpeg."""
    size = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height", "-of", "csv=s=x:p=0", path],
        check=True, capture_output=True, text=True).stdout.strip()
    width, height = (int(v) for v in size.split("x"))
    ffmpeg = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i", path,
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], stdout=subprocess.PIPE)
    try:
        while frame := ffmpeg.stdout.read(width * height * 3):
            if len(frame) < width * height * 3:
                raise SystemExit(f"{path}: ffmpeg's output ends inside a frame")
            yield common_pb2.Image(raw=common_pb2.RawImage(rgb=frame, width=width, height=height))
    finally:
        ffmpeg.kill()
        ffmpeg.wait()


def requests(config, images, fps):
    """The stream's messages: the config, then one StreamFrame per image."""
    yield classify_service_pb2.ClassifyStreamRequest(config=config)
    for frame_id, image in enumerate(images, start=1):
        captured = timestamp_pb2.Timestamp()
        captured.GetCurrentTime()
        yield classify_service_pb2.ClassifyStreamRequest(
            frame=stream_pb2.StreamFrame(frame_id=frame_id, capture_time=captured, image=image))
        if fps:
            time.sleep(1 / fps)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="a folder of JPEG/PNG files, or a video file (needs ffmpeg)")
    p.add_argument("--addr", default=ADDR)
    p.add_argument("--camera", default="python-camera")
    p.add_argument("--policy", choices=["block", "latest"], default="block")
    p.add_argument("--fps", type=float, default=0, help="frames per second to send (0: as fast as possible)")
    p.add_argument("--watch", action="append", default=[], help="a category to alert on (repeatable)")
    p.add_argument("--min-score", type=float, default=0.6)
    p.add_argument("--min-frames", type=int, default=3)
    args = p.parse_args()

    summary_every = duration_pb2.Duration()
    summary_every.FromSeconds(3600)  # in effect: only the summary at the end
    options = stream_pb2.StreamOptions(
        camera_id=args.camera,
        policy=stream_pb2.FRAME_POLICY_LATEST if args.policy == "latest" else stream_pb2.FRAME_POLICY_BLOCK,
        summary_interval=summary_every)
    if args.watch:
        options.alert_rules.append(stream_pb2.AlertRule(
            name="watch", categories=args.watch, min_score=args.min_score,
            min_consecutive_frames=args.min_frames))
    config = classify_service_pb2.ClassifyStreamConfig(top_k=1, options=options)
    images = folder_frames(args.source) if os.path.isdir(args.source) else video_frames(args.source)

    with grpc.insecure_channel(args.addr) as channel:
        stub = classify_service_pb2_grpc.ClassifyServiceStub(channel)
        try:
            for m in stub.ClassifyStream(requests(config, images, args.fps)):
                kind = m.WhichOneof("message")
                if kind == "result":
                    r = m.result
                    if r.skipped:
                        print(f"frame {r.frame_id} skipped")
                    elif r.HasField("error"):
                        print(f"frame {r.frame_id} error {CODE_NAMES.get(r.error.code)}: {r.error.message}")
                    else:
                        best = r.classification.predictions[0]
                        print(f"frame {r.frame_id} {best.label} {best.score:.4f}")
                elif kind == "summary":
                    counts = ", ".join(f"{c.label}={c.count}" for c in m.summary.counts)
                    print(f"summary {m.summary.camera_id} {m.summary.frames} frames: {counts}")
                elif kind == "alert":
                    a = m.alert
                    print(f"alert {a.rule} {a.label} {a.score:.4f} on {a.camera_id} frame {a.frame_id}")
        except grpc.RpcError as e:
            print(f"stream_frames.py: {e.code().name}: {e.details()}", file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()
