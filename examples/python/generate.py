"""Draws new designs of a category (GenerateService/Generate) and writes them as PNG
files; the same seed draws the same designs.

    python examples/python/generate.py --category Dress --count 4 --out /tmp/designs
"""

import argparse
import os

from _common import ADDR, run
from atelier import AtelierClient


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--addr", default=ADDR)
    p.add_argument("--category", default="Dress")
    p.add_argument("--count", type=int, default=4)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", default=".")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    with AtelierClient(args.addr) as c:
        for design in c.generate(args.category, count=args.count, seed=args.seed):
            path = os.path.join(args.out, f"design-{design.seed}.png")
            with open(path, "wb") as f:
                f.write(design.png)
            print(path)


run(main)
