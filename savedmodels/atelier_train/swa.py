"""Stochastic weight averaging on top of a built classifier: a measured experiment.

    python -m atelier_train.swa [--start-from classifier/1] [--epochs 14] \
        [--learning-rate 5e-4] [--erase-probability 0.5] [--label-smoothing 0.1] \
        [--plain-batch-norm] --out DIR

Loads the weights of a built embedded classifier, trains --epochs more epochs on the
same augmented training split at a constant learning rate, averages the weights
reached at the end of each epoch (Izmailov et al. 2018), recomputes the batch-norm
statistics for the averaged weights, exports the result to --out and prints its test
accuracy beside the starting model's. It is a tool, not part of the build: the
shipped classifier does not use it (docs/MODELS.md, "Towards 0.95", has the figure
it measured and why).
"""

import argparse
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from . import classifier, fashion_mnist, gan_eval, progress

HERE = os.path.dirname(os.path.abspath(__file__))


def load_exported_weights(model, export_dir):
    """Sets model's variables from an export of the same architecture (ExportArchive
    tracks them in the model's own order); fails on any mismatch."""
    exported = tf.saved_model.load(export_dir).variables
    if len(exported) != len(model.variables):
        raise ValueError(f"{export_dir} has {len(exported)} variables, the model {len(model.variables)}")
    for mine, theirs in zip(model.variables, exported):
        name = theirs.name.split(":")[0]
        # Dropout's random-seed states are numbered per process; only their shape counts.
        same = name == mine.path or ("seed_generator" in name and "seed_generator" in mine.path)
        if not same or tuple(theirs.shape) != tuple(mine.shape):
            raise ValueError(f"{export_dir}: {theirs.name} {theirs.shape} does not match "
                             f"{mine.path} {mine.shape}")
        mine.assign(theirs.numpy())


def recompute_batch_norm(model, batches):
    """Sets every batch-norm layer's moving statistics to their average over batches
    (one pass in training mode, each batch weighted equally), as weight averaging
    needs: the averaged weights' activations have statistics of their own. The batches
    should be augmented as in training: the shipped model's statistics recomputed on
    the plain training images lose 0.2 points of test accuracy, on augmented ones none."""
    scale, base = model.get_layer("scale"), model.get_layer("vgg19")
    batch_norms = [l for l in base.layers if isinstance(l, layers.BatchNormalization)]
    momentum = [l.momentum for l in batch_norms]
    for i, images in enumerate(batches):
        for l in batch_norms:
            l.momentum = i / (i + 1)  # the running mean of the batches seen so far
        base(scale(images), training=True)
    for l, m in zip(batch_norms, momentum):
        l.momentum = m


def average_weights(model, train, epochs, learning_rate, batch_norm_batches=None, callbacks=(),
                    label_smoothing=0.1):
    """Trains `epochs` epochs at a constant learning rate, sets the model to the mean
    of the weights reached at the end of each and recomputes its batch-norm statistics
    on batch_norm_batches (default: train's images). The loss and optimizer are the
    classifier's own (label_smoothing its 0.1 by default); with 0 epochs only the
    statistics are recomputed."""
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=5e-4),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
                  metrics=["accuracy"])
    average = [v.numpy() for v in model.trainable_variables]

    class Accumulate(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            for a, v in zip(average, model.trainable_variables):
                a += (v.numpy() - a) / (epoch + 1)  # the first epoch's weights replace the start

    if epochs:
        model.fit(train, epochs=epochs, verbose=0,
                  callbacks=[Accumulate(), progress.EpochLog("swa", epochs), *callbacks])
    for v, a in zip(model.trainable_variables, average):
        v.assign(a)
    recompute_batch_norm(model, batch_norm_batches or (images for images, _ in train))


def accuracy(export_dir, x_test, y_test):
    """The exported classifier's accuracy (its flip-averaged serving signature)."""
    serve = gan_eval.load(export_dir)["serving_default"]
    return float((gan_eval.run_classifier(serve, "probabilities", x_test).argmax(axis=1) == y_test).mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start-from", default=os.path.join(os.path.dirname(HERE), "classifier", "1"))
    parser.add_argument("--epochs", type=int, default=14)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--erase-probability", type=float, default=0.5,
                        help="random erasing's share of training images (the classifier's 0.5)")
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--plain-batch-norm", action="store_true",
                        help="recompute batch-norm statistics on the training images as they "
                             "are, not augmented")
    parser.add_argument("--out", required=True, help="SavedModel folder to write")
    parser.add_argument("--data", help="folder with the Fashion-MNIST IDX files")
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    x_train, y_train = fashion_mnist.load("train", args.data)
    x_test, y_test = fashion_mnist.load("test", args.data)
    x_train, x_test = x_train[..., None], x_test[..., None]
    classes = len(fashion_mnist.LABELS)
    train = (tf.data.Dataset.from_tensor_slices((x_train, tf.one_hot(y_train, classes)))
             .shuffle(len(x_train), seed=0).batch(args.batch_size)
             .map(lambda x, y: classifier._augment(x, y, erase_probability=args.erase_probability),
                  num_parallel_calls=tf.data.AUTOTUNE)
             .prefetch(tf.data.AUTOTUNE))
    model = classifier.build_embedded()
    load_exported_weights(model, args.start_from)
    start = time.time()
    plain = (x_train[i:i + 500] for i in range(0, len(x_train), 500)) if args.plain_batch_norm else None
    average_weights(model, train, args.epochs, args.learning_rate, plain,
                    label_smoothing=args.label_smoothing)
    classifier.export_classifier(model, args.out, fashion_mnist.LABELS, flip_average=True)
    report = {**vars(args), "seconds": round(time.time() - start, 1),
              "start_test_accuracy": accuracy(args.start_from, x_test, y_test),
              "test_accuracy": accuracy(args.out, x_test, y_test)}
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
