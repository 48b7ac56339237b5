"""Writes Fashion-MNIST items as an image folder: dest/<category>/<n>.jpg, RGB JPEGs.

This is the layout of the seed's real data (a retailer's DeepFashion subset, one
sub-folder per category), so the folder training path (atelier_train.folder) can be
exercised here without that data.

    python -m atelier_train.image_folder --dest /tmp/garments --per-class 50 --size 64
"""

import argparse
import os
import re

import numpy as np
from PIL import Image

from . import fashion_mnist


def folder_name(label):
    """Returns a folder-safe form of a label: "T-shirt/top" -> "T-shirt_top"."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label)


def _class_indices(classes):
    if classes is None:
        return list(range(len(fashion_mnist.LABELS)))
    unknown = [c for c in classes if c not in fashion_mnist.LABELS]
    if unknown:
        raise ValueError(f"unknown Fashion-MNIST classes {unknown}; "
                         f"choose from {fashion_mnist.LABELS}")
    return [fashion_mnist.LABELS.index(c) for c in classes]


def _write_class(folder, images, size):
    os.makedirs(folder, exist_ok=True)
    for n, image in enumerate(images):
        picture = Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC)
        picture.convert("RGB").save(os.path.join(folder, f"{n:05d}.jpg"), quality=95)


def write_image_folder(dest, per_class, size, classes=None, split="train"):
    """Writes the first per_class items of each class of split, upscaled to size x size.

    classes: Fashion-MNIST label names (default: all ten). Returns the category folder
    names written, sorted as Keras will order them.
    """
    images, labels = fashion_mnist.load(split)
    names = []
    for index in _class_indices(classes):
        chosen = images[np.flatnonzero(labels == index)[:per_class]]
        if len(chosen) < per_class:
            raise ValueError(f"{split} split holds only {len(chosen)} items of "
                             f"{fashion_mnist.LABELS[index]!r}, {per_class} asked")
        name = folder_name(fashion_mnist.LABELS[index])
        _write_class(os.path.join(dest, name), chosen, size)
        names.append(name)
    return sorted(names)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dest", required=True, help="folder to write the categories into")
    parser.add_argument("--per-class", type=int, default=100, help="images per category")
    parser.add_argument("--size", type=int, default=224, help="side of the written images")
    parser.add_argument("--classes", nargs="+", choices=fashion_mnist.LABELS, metavar="LABEL",
                        help="Fashion-MNIST label names (default: all ten)")
    parser.add_argument("--split", choices=sorted(fashion_mnist.FILES), default="train")
    args = parser.parse_args()
    try:
        names = write_image_folder(args.dest, args.per_class, args.size, args.classes,
                                   args.split)
    except (fashion_mnist.DatasetMissing, ValueError) as err:
        parser.error(str(err))
    print(f"wrote {args.per_class} images of {args.size}x{args.size} for each of "
          f"{len(names)} categories into {args.dest}: {', '.join(names)}")


if __name__ == "__main__":
    main()
