"""Writes the first N Fashion-MNIST test images as 28x28 PNGs: the small-model payloads
of bench/run.sh and bench/overhead.sh.

Usage (from savedmodels/): ../.venv/bin/python ../bench/small_pngs.py DIR [N]
"""

import os
import sys

from PIL import Image

from atelier_train import fashion_mnist

out, count = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 64
images, _ = fashion_mnist.load("test")
os.makedirs(out, exist_ok=True)
for i in range(count):
    Image.fromarray(images[i]).save(os.path.join(out, f"{i:03d}.png"))
