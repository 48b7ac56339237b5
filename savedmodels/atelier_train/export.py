"""Writes SavedModels with explicit serving signatures and label assets."""

import os
import shutil
import tempfile

import tensorflow as tf


def write_labels(folder, labels):
    """Writes labels.txt (one label per line) into folder and returns its path."""
    path = os.path.join(folder, "labels.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(labels) + "\n")
    return path


def save(module, signatures, out_dir, labels=None):
    """Saves module with the given signatures to out_dir atomically.

    The model is written to a temporary folder beside out_dir and renamed into place, so
    a crash mid-export never leaves a half-written version for the server to load.
    """
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        if labels is not None:
            staging = tempfile.mkdtemp(prefix=".labels-", dir=parent)
            module.labels_asset = tf.saved_model.Asset(write_labels(staging, labels))
        tf.saved_model.save(module, tmp, signatures=signatures)
        if labels is not None:
            shutil.rmtree(staging)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; models are read by the server
        if os.path.exists(out_dir):
            shutil.rmtree(out_dir)
        os.rename(tmp, out_dir)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
    return out_dir
