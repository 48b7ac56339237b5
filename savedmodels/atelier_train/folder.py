"""Trains the full VGG19 classifier on an image folder: the seed's real-data path.

The data is a folder with one sub-folder of images per category (the retailer's
DeepFashion subset); labels are the sorted sub-folder names. The VGG19 conv base starts
from ImageNet weights the user supplies (nothing is downloaded): it is frozen while a
new dense head trains, then block5 is unfrozen and fine-tuned with a low learning rate.
VGG preprocessing is in the graph, so the exported model takes uint8 images.

    python -m atelier_train.folder --data DIR \\
        --base-weights vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 \\
        --out savedmodels/deepfashion/1
"""

import argparse
import os
import sys
import time

import numpy as np
import tensorflow as tf
import keras

from . import classifier, progress

# The formats keras.utils.image_dataset_from_directory reads.
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
WEIGHTS_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
               + WEIGHTS_FILE)
FINETUNE_LAYERS = ("block5_conv1", "block5_conv2", "block5_conv3", "block5_conv4")
MIN_IMAGE_SIZE = 32  # VGG19's five max-pools need at least 32x32.


class FolderError(ValueError):
    """Raised when the image folder is missing or not one sub-folder per category."""


class WeightsMissing(FileNotFoundError):
    """Raised when the user's VGG19 ImageNet weights file does not exist."""


def _has_images(folder):
    return any(name.lower().endswith(IMAGE_EXTENSIONS)
               for _, _, names in os.walk(folder) for name in names)


def categories(data):
    """Returns the sorted category (sub-folder) names of data, checking each has images."""
    if not os.path.isdir(data):
        raise FolderError(f"image folder {data} does not exist; expected a folder with "
                          f"one sub-folder of images per category")
    names = sorted(e.name for e in os.scandir(data)
                   if e.is_dir() and not e.name.startswith("."))
    if len(names) < 2:
        raise FolderError(f"image folder {data} has {len(names)} category sub-folder(s) "
                          f"{names}; a classifier needs at least 2")
    empty = [name for name in names if not _has_images(os.path.join(data, name))]
    if empty:
        raise FolderError(f"category folders in {data} without images "
                          f"({', '.join(IMAGE_EXTENSIONS)}): {', '.join(empty)}")
    return names


def _as_uint8(dataset):
    """Rounds the resized float pixels back to uint8, the model's serving input type."""
    def cast(images, labels):
        return tf.cast(tf.clip_by_value(tf.round(images), 0, 255), tf.uint8), labels
    return dataset.map(cast, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def load_datasets(data, size, batch_size, val_split, seed):
    """Returns (categories, train, val) with uint8 RGB images; val is None if no split."""
    names = categories(data)
    options = dict(labels="inferred", label_mode="int", class_names=names, color_mode="rgb",
                   batch_size=batch_size, image_size=(size, size), seed=seed)
    if not val_split:
        return names, _as_uint8(keras.utils.image_dataset_from_directory(data, **options)), None
    train, val = keras.utils.image_dataset_from_directory(
        data, validation_split=val_split, subset="both", **options)
    return names, _as_uint8(train), _as_uint8(val)


def load_base(weights, size):
    """Returns the VGG19 conv base (keras.applications) loaded from the user's weights."""
    if not os.path.isfile(weights):
        raise WeightsMissing(
            f"VGG19 base weights {weights} not found. Nothing is downloaded at run time: "
            f"get the ImageNet weights without the top layers, {WEIGHTS_FILE}, from "
            f"{WEIGHTS_URL} (Keras also caches it in ~/.keras/models/) and pass its path.")
    return keras.applications.VGG19(include_top=False, weights=weights,
                                    input_shape=(size, size, 3))


def set_trainable(base, layer_names):
    """Freezes every layer of base except those named in layer_names."""
    base.trainable = True
    for layer in base.layers:
        layer.trainable = layer.name in layer_names


def _fit(model, phase, optimizer, train, val, epochs):
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    print(f"[folder] {phase}: {epochs} epochs, {trainable:,} trainable parameters",
          flush=True)
    # A live bar on a terminal (epochs at 224x224 are long), EpochLog's line otherwise;
    # the dataset shuffles itself each epoch.
    model.fit(train, validation_data=val, epochs=epochs, shuffle=False,
              verbose=int(sys.stdout.isatty()),
              callbacks=[progress.EpochLog(f"folder {phase}", epochs)])


def train_head(model, base, train, val, epochs, learning_rate=1e-4):
    """Trains the dense head with the whole conv base frozen."""
    set_trainable(base, ())
    _fit(model, "head", keras.optimizers.Adam(learning_rate), train, val, epochs)


def fine_tune(model, base, train, val, epochs, learning_rate=1e-5):
    """Trains block5 of the conv base and the head together with a low learning rate."""
    set_trainable(base, FINETUNE_LAYERS)
    _fit(model, "fine-tune", keras.optimizers.Adam(learning_rate), train, val, epochs)


def train(data, weights, out, size=224, head_epochs=5, finetune_epochs=5, batch_size=32,
          val_split=0.2, seed=0):
    """Trains on the image folder data, exports to out; returns validation accuracy or None."""
    keras.utils.set_random_seed(seed)
    names, train_set, val_set = load_datasets(data, size, batch_size, val_split, seed)
    base = load_base(weights, size)
    model = classifier.build_full(len(names), input_shape=(size, size, 3), base=base)
    print(f"[folder] {len(names)} categories: {', '.join(names)}", flush=True)
    start = time.time()
    if head_epochs:
        train_head(model, base, train_set, val_set, head_epochs)
    if finetune_epochs:
        fine_tune(model, base, train_set, val_set, finetune_epochs)
    accuracy = None
    if val_set is not None:
        _, accuracy = model.evaluate(val_set, verbose=0)
        print(f"[folder] validation accuracy {accuracy:.4f} after {time.time() - start:.0f}s",
              flush=True)
    classifier.export_classifier(model, out, labels=names)
    print(f"[folder] exported {out}", flush=True)
    return accuracy


def _parser():
    parser = argparse.ArgumentParser(prog="python -m atelier_train.folder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="image folder, one sub-folder per category")
    parser.add_argument("--base-weights", required=True, metavar="FILE",
                        help=f"VGG19 ImageNet weights without top ({WEIGHTS_FILE})")
    parser.add_argument("--out", required=True, help="SavedModel folder: savedmodels/NAME/VERSION")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--head-epochs", type=int, default=5)
    parser.add_argument("--finetune-epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--val-split", type=float, default=0.2,
                        help="fraction held out for validation (0: train on everything)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    if args.image_size < MIN_IMAGE_SIZE:
        parser.error(f"--image-size must be at least {MIN_IMAGE_SIZE} for VGG19")
    if not 0 <= args.val_split < 1:
        parser.error("--val-split must be in [0, 1)")
    try:
        train(args.data, args.base_weights, args.out, args.image_size, args.head_epochs,
              args.finetune_epochs, args.batch_size, args.val_split, args.seed)
    except (FolderError, WeightsMissing) as err:
        parser.error(str(err))


if __name__ == "__main__":
    main()
