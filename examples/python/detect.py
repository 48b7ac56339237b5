"""Prints every garment found in an image (DetectService/Detect): type, score, box
and fine category.

    python examples/python/detect.py scene.png
"""

import argparse

from _common import ADDR, run
from atelier import AtelierClient


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("image")
    p.add_argument("--addr", default=ADDR)
    p.add_argument("--min-score", type=float, default=0.5)
    args = p.parse_args()
    with AtelierClient(args.addr) as c:
        found = c.detect(args.image, min_score=args.min_score)
        print(f"{len(found)} garments")
        for d in found:
            label = d.predictions[0].label if d.predictions else ""
            x0, y0, x1, y1 = d.box
            print(f"{d.garment_type} {d.score:.3f} [{x0:.0f} {y0:.0f} {x1:.0f} {y1:.0f}] {label}")


run(main)
