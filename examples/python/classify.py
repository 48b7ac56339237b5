"""Prints the top categories of an image (ClassifyService/Classify), best first.

    python examples/python/classify.py docs/images/sample_boot.png
"""

import argparse

from _common import ADDR, run
from atelier import AtelierClient


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("image")
    p.add_argument("--addr", default=ADDR)
    p.add_argument("--top-k", type=int, default=3)
    args = p.parse_args()
    with AtelierClient(args.addr) as c:
        for pred in c.classify(args.image, top_k=args.top_k)[0]:
            print(f"{pred.label} {pred.score:.6f}")


run(main)
