"""The garment classifier: VGG19 topology on Fashion-MNIST (embedded) or 224x224x3 (full).

Signature `serving_default`: `images` uint8 [batch, H, W, C] -> `probabilities`
float32 [batch, classes]. Signature `features`: the same input -> `features`, the
penultimate dense layer, used to compare image distributions. Preprocessing (cast and
scaling, or VGG mean subtraction) lives inside the graph. Labels in assets/labels.txt.
"""

import argparse
import os
import time

import numpy as np
import tensorflow as tf
import keras
from keras import layers

from . import export, fashion_mnist, progress, vgg

EMBEDDED_WIDTHS = (16, 32, 64, 128, 128)
EMBEDDED_HIDDEN = (256, 256)
FULL_HIDDEN = (4096, 4096)
# ImageNet channel means (RGB) that VGG19 subtracts, in the 0..255 scale.
VGG_MEAN_RGB = (123.68, 116.779, 103.939)


def build_embedded(classes=10, input_shape=(28, 28, 1)):
    """Returns the embedded classifier: narrow VGG19 with batch norm, scaling in-graph."""
    inputs = keras.Input(shape=input_shape, name="images", dtype="uint8")
    x = layers.Rescaling(1.0 / 255, name="scale")(inputs)
    features_model = vgg.conv_base(input_shape, EMBEDDED_WIDTHS, batch_norm=True)
    x = features_model(x)
    outputs = vgg.dense_head(x, classes, EMBEDDED_HIDDEN, dropout=0.4)
    return keras.Model(inputs, outputs, name="vgg19_embedded")


def vgg_preprocess(x):
    """VGG's own preprocessing: RGB -> BGR and ImageNet mean subtraction."""
    x = tf.cast(x, tf.float32)
    return tf.reverse(x, axis=[-1]) - tf.constant(VGG_MEAN_RGB[::-1], tf.float32)


def build_full(classes, input_shape=(224, 224, 3), base=None, dropout=0.5):
    """Returns full-width VGG19 (16 conv + 3 dense) with VGG preprocessing in-graph."""
    inputs = keras.Input(shape=input_shape, name="images", dtype="uint8")
    x = layers.Lambda(vgg_preprocess, name="vgg_preprocess")(inputs)
    base = base or vgg.conv_base(input_shape, vgg.FULL_WIDTHS, batch_norm=False)
    outputs = vgg.dense_head(base(x), classes, FULL_HIDDEN, dropout=dropout)
    return keras.Model(inputs, outputs, name="vgg19_full")


class ServingModule(tf.Module):
    """Wraps a Keras classifier with the serving signatures of the model contract."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        head = [l for l in model.layers if l.name.startswith("head_fc")][-1]
        self.feature_model = keras.Model(model.inputs, head.output)
        shape = [None] + list(model.input_shape[1:])
        spec = tf.TensorSpec(shape, tf.uint8, name="images")
        self.serve = tf.function(self._serve, input_signature=[spec])
        self.features = tf.function(self._features, input_signature=[spec])

    def _serve(self, images):
        return {"probabilities": self.model(images, training=False)}

    def _features(self, images):
        return {"features": self.feature_model(images, training=False)}


def export_classifier(model, out_dir, labels):
    """Exports model to out_dir with the `serving_default` and `features` signatures."""
    module = ServingModule(model)
    return export.save(module, {"serving_default": module.serve, "features": module.features},
                       out_dir, labels=labels)


def _augment(images, labels):
    images = tf.image.random_flip_left_right(images)
    padded = tf.pad(images, [[0, 0], [2, 2], [2, 2], [0, 0]])
    images = tf.image.random_crop(padded, tf.shape(images))
    return images, labels


def _batched_augment(images, labels):
    # Random crop needs one call per image for independent offsets.
    images = tf.map_fn(lambda im: _augment(im[None], 0)[0][0], images)
    return images, labels


def train_embedded(out_dir, epochs, batch_size=128, data=None, seed=0):
    """Trains the embedded classifier on Fashion-MNIST, exports it, returns test accuracy."""
    keras.utils.set_random_seed(seed)
    x_train, y_train = fashion_mnist.load("train", data)
    x_test, y_test = fashion_mnist.load("test", data)
    x_train, x_test = x_train[..., None], x_test[..., None]
    train = (tf.data.Dataset.from_tensor_slices((x_train, y_train.astype(np.int32)))
             .shuffle(len(x_train), seed=seed).batch(batch_size)
             .map(_batched_augment, num_parallel_calls=tf.data.AUTOTUNE)
             .prefetch(tf.data.AUTOTUNE))
    model = build_embedded()
    steps = epochs * int(np.ceil(len(x_train) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, steps - steps // 20, warmup_target=2e-3, warmup_steps=steps // 20)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=5e-4),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    print(f"[classifier] training {model.count_params():,} parameters for {epochs} epochs "
          f"on {len(x_train):,} images", flush=True)
    start = time.time()
    model.fit(train, epochs=epochs, verbose=0,
              callbacks=[progress.EpochLog("classifier", epochs)])
    _, accuracy = model.evaluate(x_test, y_test, batch_size=500, verbose=0)
    print(f"[classifier] test accuracy {accuracy:.4f} on {len(x_test):,} images "
          f"after {time.time() - start:.0f}s", flush=True)
    export_classifier(model, out_dir, fashion_mnist.LABELS)
    return accuracy


def export_full(out_dir, classes=15):
    """Exports the untrained full 224x224x3 VGG19 (the benchmark model)."""
    labels = [f"class_{i:02d}" for i in range(classes)]
    keras.utils.set_random_seed(0)
    return export_classifier(build_full(classes), out_dir, labels)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="SavedModel folder to write")
    parser.add_argument("--size", choices=["embedded", "full"], default="embedded")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--data", help="folder with the Fashion-MNIST IDX files")
    args = parser.parse_args()
    if args.size == "full":
        export_full(args.out)
    else:
        train_embedded(args.out, args.epochs, data=args.data)


if __name__ == "__main__":
    main()
