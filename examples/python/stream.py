"""Sends images as one camera's frames on a ClassifyStream (frames come from any
iterator) and prints every result in frame order, with the tally summary.

    python examples/python/stream.py docs/images/*.png
"""

import argparse
import itertools

from _common import ADDR, run
from atelier import AtelierClient, stream_options


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("images", nargs="+")
    p.add_argument("--addr", default=ADDR)
    p.add_argument("--camera", default="door")
    p.add_argument("--repeat", type=int, default=1)
    args = p.parse_args()
    frames = itertools.chain.from_iterable(itertools.repeat(args.images, args.repeat))
    with AtelierClient(args.addr) as c:
        opts = stream_options(args.camera, summary_every=0.05)
        for m in c.classify_stream(frames, top_k=1, options=opts):
            kind = m.WhichOneof("message")
            if kind == "result" and m.result.HasField("error"):
                print(f"frame {m.result.frame_id} error {m.result.error.message}")
            elif kind == "result" and m.result.classification.predictions:
                best = m.result.classification.predictions[0]
                print(f"frame {m.result.frame_id} {best.label} {best.score:.6f}")
            elif kind == "summary":
                print(f"summary {m.summary.camera_id} {m.summary.frames} frames")
            elif kind == "alert":
                print(f"alert {m.alert.rule} {m.alert.label}")


run(main)
