"""Loads Fashion-MNIST from its IDX files (Debian's dataset-fashion-mnist package)."""

import gzip
import os
import struct

import numpy as np

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
ENV_DIR = "ATELIER_FASHION_MNIST"

LABELS = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class DatasetMissing(FileNotFoundError):
    """Raised when a Fashion-MNIST file cannot be found in the data folder."""


def data_dir(folder=None):
    """Returns the folder to read: the argument, $ATELIER_FASHION_MNIST, or Debian's."""
    return folder or os.environ.get(ENV_DIR) or DEFAULT_DIR


def _find(folder, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return path
    raise DatasetMissing(
        f"Fashion-MNIST file {stem}(.gz) not found in {folder}. Install Debian's "
        f"dataset-fashion-mnist package (apt-get install dataset-fashion-mnist) or set "
        f"{ENV_DIR} to a folder holding the four IDX files.")


def _read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4:
        raise ValueError(f"{path}: too short to be an IDX file")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {data[:4].hex()})")
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} but holds {body.size} bytes")
    return body.reshape(shape)


def load(split, folder=None):
    """Returns (images uint8 [N, 28, 28], labels uint8 [N]) for split 'train' or 'test'."""
    if split not in FILES:
        raise ValueError(f"split must be one of {sorted(FILES)}, not {split!r}")
    folder = data_dir(folder)
    images_stem, labels_stem = FILES[split]
    images = _read_idx(_find(folder, images_stem))
    labels = _read_idx(_find(folder, labels_stem))
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{folder}: {images.shape[0]} images but {labels.shape[0]} labels")
    return images, labels
