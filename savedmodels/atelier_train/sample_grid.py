"""Draws a labelled grid of the ten Fashion-MNIST classes for the docs.

One row per class, the first examples of that class in the test split (so the picture is
the same on every run), upscaled with nearest neighbour, the class name beside the row.

    python -m atelier_train.sample_grid [--out docs/images/fashion_mnist_classes.png]
"""

import argparse
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import fashion_mnist

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(REPO, "docs", "images", "fashion_mnist_classes.png")
LABEL_WIDTH = 100
GAP = 4
MARGIN = 10
FONT_SIZE = 16
BACKGROUND = (255, 255, 255)
TEXT = (30, 30, 30)


def class_examples(images, labels, per_class):
    """Returns [classes, per_class, 28, 28]: the first per_class items of every class."""
    return np.stack([images[np.flatnonzero(labels == c)[:per_class]]
                     for c in range(len(fashion_mnist.LABELS))])


def _cell(image, scale):
    side = image.shape[0] * scale
    return Image.fromarray(image).resize((side, side), Image.Resampling.NEAREST).convert("RGB")


def draw_grid(examples, scale):
    """Returns the grid as a PIL image: a row of examples per class, its name on the left."""
    rows, columns, side = examples.shape[0], examples.shape[1], examples.shape[2] * scale
    width = 2 * MARGIN + LABEL_WIDTH + columns * (side + GAP) - GAP
    height = 2 * MARGIN + rows * (side + GAP) - GAP
    grid = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default(size=FONT_SIZE)
    for r, (name, row) in enumerate(zip(fashion_mnist.LABELS, examples)):
        top = MARGIN + r * (side + GAP)
        draw.text((MARGIN, top + side // 2), name, fill=TEXT, font=font, anchor="lm")
        for c, image in enumerate(row):
            grid.paste(_cell(image, scale), (MARGIN + LABEL_WIDTH + c * (side + GAP), top))
    return grid


def write_grid(out=DEFAULT_OUT, per_class=8, scale=3, data=None):
    """Writes the grid PNG of the test split to out, and beside it sample_boot.png (the
    first test item, an ankle boot, as a 28x28 grey PNG for the README's tour)."""
    images, labels = fashion_mnist.load("test", data)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    draw_grid(class_examples(images, labels, per_class), scale).save(out, optimize=True)
    Image.fromarray(images[0]).save(os.path.join(os.path.dirname(out), "sample_boot.png"))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=DEFAULT_OUT, help="PNG file to write")
    parser.add_argument("--per-class", type=int, default=8, help="examples in each row")
    parser.add_argument("--scale", type=int, default=3, help="nearest-neighbour upscaling")
    parser.add_argument("--data", help="folder with the Fashion-MNIST IDX files")
    args = parser.parse_args()
    print(f"wrote {write_grid(args.out, args.per_class, args.scale, args.data)}")


if __name__ == "__main__":
    main()
