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

EMBEDDED_WIDTHS = (24, 48, 96, 192, 192)
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


def serving_endpoints(model, flip_average=False):
    """Returns the classifier's signatures as {name: (function, input_signature)}.

    `serving_default` maps images to probabilities; with flip_average they are the mean
    of the model's answers on the image and on its mirror image (garments keep their
    category when mirrored), which the embedded classifier uses: about +0.4 points of
    test accuracy for twice the compute. `features` maps images to the penultimate dense
    layer, used to compare image distributions.
    """
    head = [l for l in model.layers if l.name.startswith("head_fc")][-1]
    feature_model = keras.Model(model.inputs, head.output)
    spec = [tf.TensorSpec([None] + list(model.input_shape[1:]), tf.uint8, name="images")]

    def serve(images):
        probabilities = model(images, training=False)
        if flip_average:
            mirrored = model(tf.reverse(images, axis=[2]), training=False)
            probabilities = (probabilities + mirrored) / 2
        return {"probabilities": probabilities}

    def features(images):
        return {"features": feature_model(images, training=False)}

    return {"serving_default": (serve, spec), "features": (features, spec)}


def export_classifier(model, out_dir, labels, flip_average=False):
    """Exports model to out_dir with the `serving_default` and `features` signatures."""
    return export.save(model, serving_endpoints(model, flip_average), out_dir, labels=labels)


def _augment(images, labels, pad=2, erase_probability=0.5):
    """Augments a batch of uint8 images [batch, H, W, C], each image independently:
    a random left-right flip, a random shift of up to `pad` pixels (crop of the
    zero-padded image) and random erasing (Zhong et al. 2017: with the given
    probability, one rectangle of 2-25% of the image, aspect 1:3..3:1, is filled with
    random grey levels). Vectorised over the batch so the input pipeline stays cheap."""
    shape = tf.shape(images)
    batch, h, w = shape[0], images.shape[1], images.shape[2]
    flip = tf.random.uniform([batch, 1, 1, 1]) < 0.5
    images = tf.where(flip, tf.reverse(images, axis=[2]), images)
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    rows = tf.random.uniform([batch, 1], 0, 2 * pad + 1, tf.int32) + tf.range(h)[None]
    cols = tf.random.uniform([batch, 1], 0, 2 * pad + 1, tf.int32) + tf.range(w)[None]
    images = tf.gather(padded, rows, axis=1, batch_dims=1)
    images = tf.gather(images, cols, axis=2, batch_dims=1)

    area = tf.random.uniform([batch], 0.02, 0.25) * h * w
    aspect = tf.exp(tf.random.uniform([batch], -np.log(3.0), np.log(3.0)))
    eh = tf.clip_by_value(tf.cast(tf.round(tf.sqrt(area * aspect)), tf.int32), 1, h)
    ew = tf.clip_by_value(tf.cast(tf.round(tf.sqrt(area / aspect)), tf.int32), 1, w)
    y0 = tf.cast(tf.random.uniform([batch]) * tf.cast(h - eh + 1, tf.float32), tf.int32)
    x0 = tf.cast(tf.random.uniform([batch]) * tf.cast(w - ew + 1, tf.float32), tf.int32)
    r, c = tf.range(h)[None, :, None], tf.range(w)[None, None, :]
    inside = ((r >= y0[:, None, None]) & (r < (y0 + eh)[:, None, None]) &
              (c >= x0[:, None, None]) & (c < (x0 + ew)[:, None, None]))
    erase = inside & (tf.random.uniform([batch, 1, 1]) < erase_probability)
    noise = tf.cast(tf.random.uniform(shape, 0, 256, tf.int32), images.dtype)
    return tf.where(erase[..., None], noise, images), labels


def train_embedded(out_dir, epochs, batch_size=128, data=None, seed=0):
    """Trains the embedded classifier on Fashion-MNIST, exports it, returns the exported
    model's accuracy on the official test split."""
    keras.utils.set_random_seed(seed)
    x_train, y_train = fashion_mnist.load("train", data)
    x_test, y_test = fashion_mnist.load("test", data)
    x_train, x_test = x_train[..., None], x_test[..., None]
    classes = len(fashion_mnist.LABELS)
    train = (tf.data.Dataset.from_tensor_slices((x_train, tf.one_hot(y_train, classes)))
             .shuffle(len(x_train), seed=seed).batch(batch_size)
             .map(_augment, num_parallel_calls=tf.data.AUTOTUNE)
             .prefetch(tf.data.AUTOTUNE))
    model = build_embedded()
    steps = epochs * int(np.ceil(len(x_train) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, steps - steps // 20, warmup_target=2e-3, warmup_steps=steps // 20)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=5e-4),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
                  metrics=["accuracy"])
    print(f"[classifier] training {model.count_params():,} parameters for {epochs} epochs "
          f"on {len(x_train):,} images", flush=True)
    start = time.time()
    model.fit(train, epochs=epochs, verbose=0,
              callbacks=[progress.EpochLog("classifier", epochs)])
    export_classifier(model, out_dir, fashion_mnist.LABELS, flip_average=True)
    serve = tf.saved_model.load(out_dir).signatures["serving_default"]
    predicted = np.concatenate([serve(images=tf.constant(x_test[i:i + 500]))["probabilities"]
                                .numpy().argmax(axis=1) for i in range(0, len(x_test), 500)])
    accuracy = float((predicted == y_test).mean())
    print(f"[classifier] exported model's test accuracy {accuracy:.4f} on {len(x_test):,} "
          f"images after {time.time() - start:.0f}s of training", flush=True)
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
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--data", help="folder with the Fashion-MNIST IDX files")
    args = parser.parse_args()
    if args.size == "full":
        export_full(args.out)
    else:
        train_embedded(args.out, args.epochs, data=args.data)


if __name__ == "__main__":
    main()
