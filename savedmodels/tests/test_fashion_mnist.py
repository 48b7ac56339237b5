"""The Fashion-MNIST loader on Debian's files, plain copies, missing and corrupt files."""

import gzip
import os
import shutil

import numpy as np
import pytest

from atelier_train import fashion_mnist

SIZES = {"train": 60000, "test": 10000}


@pytest.mark.parametrize("split", ["train", "test"])
def test_debian_files(split):
    images, labels = fashion_mnist.load(split)
    assert images.shape == (SIZES[split], 28, 28) and images.dtype == np.uint8
    assert labels.shape == (SIZES[split],) and labels.dtype == np.uint8
    assert np.bincount(labels).tolist() == [SIZES[split] // 10] * 10


def test_empty_folder_is_dataset_missing(tmp_path):
    with pytest.raises(fashion_mnist.DatasetMissing, match="dataset-fashion-mnist"):
        fashion_mnist.load("test", str(tmp_path))


def test_unknown_split():
    with pytest.raises(ValueError, match="split"):
        fashion_mnist.load("validation")


def _plain_copy(folder, split):
    """Writes the split's IDX files uncompressed into folder."""
    for stem in fashion_mnist.FILES[split]:
        source = os.path.join(fashion_mnist.DEFAULT_DIR, stem + ".gz")
        with gzip.open(source, "rb") as src, open(os.path.join(folder, stem), "wb") as dst:
            shutil.copyfileobj(src, dst)


def test_plain_copy_matches_debian(tmp_path):
    _plain_copy(tmp_path, "test")
    images, labels = fashion_mnist.load("test", str(tmp_path))
    debian_images, debian_labels = fashion_mnist.load("test")
    np.testing.assert_array_equal(images, debian_images)
    np.testing.assert_array_equal(labels, debian_labels)


def test_environment_variable_names_the_folder(tmp_path, monkeypatch):
    _plain_copy(tmp_path, "test")
    monkeypatch.setenv(fashion_mnist.ENV_DIR, str(tmp_path))
    assert fashion_mnist.data_dir() == str(tmp_path)
    assert fashion_mnist.load("test")[0].shape == (10000, 28, 28)


@pytest.mark.parametrize("corrupt", [
    lambda data: b"\x00",                      # too short
    lambda data: b"\x08\x03" + data[2:],       # bad magic
    lambda data: data[:-100],                  # truncated body
], ids=["short", "magic", "truncated"])
def test_corrupt_file_raises_value_error(tmp_path, corrupt):
    _plain_copy(tmp_path, "test")
    path = os.path.join(tmp_path, fashion_mnist.FILES["test"][0])
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(corrupt(data))
    with pytest.raises(ValueError):
        fashion_mnist.load("test", str(tmp_path))
