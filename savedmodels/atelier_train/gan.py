"""The garment generator: a class-conditional DCGAN trained on Fashion-MNIST.

Generator: [z, label embedding] -> dense 7x7 map -> two stride-2 transposed convolutions
(batch norm, ReLU) -> 28x28x1 tanh. Discriminator: two stride-2 convolutions (leaky
ReLU) -> an adversarial logit with a class projection (Miyato & Koyama 2018) and an
auxiliary classifier head (AC-GAN, Odena et al. 2017). The auxiliary head learns from
real images only, and the generator is rewarded when its images are classified as the
requested category, which makes the conditioning hold after a few epochs. The exported
generator is an exponential moving average of the trained one's weights.

Signature `serving_default`: `z` float32 [batch, Z] and `labels` int32 [batch] ->
`images` uint8 [batch, 28, 28, 1] (tanh scaled to 0..255 and rounded in the graph).
Labels in assets/labels.txt.

Training prints one line per stage and writes a sample grid per stage (one row per
category, the same latent vectors every stage) so a person can watch it improve.

    python -m atelier_train.gan --out /tmp/generator/1 [--epochs 4]
"""

import argparse
import os
import time

import numpy as np
import tensorflow as tf
import keras
from keras import layers
from PIL import Image

from . import export, fashion_mnist


class Settings:
    """Sizes and schedule; the build passes its settings table through here."""

    def __init__(self, z_dim=64, g_width=64, d_width=32, epochs=4, batch_size=128,
                 stages=8, learning_rate=2e-4, ema=0.999, aux_weight=1.0, seed=0,
                 limit=None):
        self.z_dim, self.g_width, self.d_width = z_dim, g_width, d_width
        self.epochs, self.batch_size, self.stages = epochs, batch_size, stages
        self.learning_rate, self.ema, self.aux_weight = learning_rate, ema, aux_weight
        self.seed, self.limit = seed, limit


def build_generator(z_dim, classes, width):
    """Returns the generator: (z [b, z_dim], labels int32 [b]) -> tanh images [b, 28, 28, 1]."""
    z = keras.Input(shape=(z_dim,), name="z")
    labels = keras.Input(shape=(), dtype="int32", name="labels")
    embedded = layers.Embedding(classes, 32, name="g_label")(labels)
    x = layers.Concatenate(name="z_label")([z, embedded])
    x = layers.Dense(7 * 7 * 2 * width, use_bias=False, name="g_dense")(x)
    x = layers.BatchNormalization(name="g_bn0")(x)
    x = layers.ReLU(name="g_relu0")(x)
    x = layers.Reshape((7, 7, 2 * width), name="g_map")(x)
    x = layers.Conv2DTranspose(width, 4, strides=2, padding="same", use_bias=False,
                               name="g_up1")(x)
    x = layers.BatchNormalization(name="g_bn1")(x)
    x = layers.ReLU(name="g_relu1")(x)
    x = layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="tanh",
                               name="g_up2")(x)
    return keras.Model([z, labels], x, name="generator")


def build_discriminator(classes, width):
    """Returns the discriminator: (images in [-1, 1], labels) -> (adversarial logit
    [b], class logits [b, classes])."""
    images = keras.Input(shape=(28, 28, 1), name="images")
    labels = keras.Input(shape=(), dtype="int32", name="labels")
    x = layers.Conv2D(width, 4, strides=2, padding="same", name="d_conv1")(images)
    x = layers.LeakyReLU(0.2, name="d_lrelu1")(x)
    x = layers.Conv2D(2 * width, 4, strides=2, padding="same", name="d_conv2")(x)
    x = layers.LeakyReLU(0.2, name="d_lrelu2")(x)
    h = layers.Flatten(name="d_features")(x)
    h = layers.Dropout(0.3, name="d_dropout")(h)
    plain = layers.Dense(1, name="d_logit")(h)
    embedded = layers.Embedding(classes, h.shape[-1], name="d_projection")(labels)
    projection = layers.Dot(axes=1, name="d_project")([h, embedded])
    logit = layers.Add(name="d_adversarial")([plain, projection])
    logit = layers.Reshape((), name="d_squeeze")(logit)
    aux = layers.Dense(classes, name="d_classes")(h)
    return keras.Model([images, labels], [logit, aux], name="discriminator")


def to_uint8(x):
    """Maps tanh output in [-1, 1] to uint8 pixels 0..255 (rounded), inside the graph."""
    return tf.cast(tf.round(tf.clip_by_value((x + 1.0) * 127.5, 0.0, 255.0)), tf.uint8)


def serving_endpoints(generator, z_dim):
    """Returns the generator's `serving_default` signature as {name: (fn, spec)}."""
    spec = [tf.TensorSpec([None, z_dim], tf.float32, name="z"),
            tf.TensorSpec([None], tf.int32, name="labels")]

    def serve(z, labels):
        return {"images": to_uint8(generator([z, labels], training=False))}

    return {"serving_default": (serve, spec)}


def export_generator(generator, out_dir, labels):
    """Exports the generator to out_dir with its signature and assets/labels.txt."""
    z_dim = generator.inputs[0].shape[-1]
    return export.save(generator, serving_endpoints(generator, z_dim), out_dir, labels=labels)


class Trainer:
    """Holds the networks, optimisers and the compiled training step."""

    def __init__(self, s, classes):
        self.s, self.classes = s, classes
        self.generator = build_generator(s.z_dim, classes, s.g_width)
        self.ema = build_generator(s.z_dim, classes, s.g_width)
        self.ema.set_weights(self.generator.get_weights())
        self.discriminator = build_discriminator(classes, s.d_width)
        self.g_opt = keras.optimizers.Adam(s.learning_rate, beta_1=0.5)
        self.d_opt = keras.optimizers.Adam(s.learning_rate, beta_1=0.5)
        self.bce = keras.losses.BinaryCrossentropy(from_logits=True)
        self.ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.step = tf.function(self._step)

    def _step(self, real, labels):
        # One forward pass serves both players' losses (as in TensorFlow's DCGAN
        # tutorial): about a fifth faster than a second pass for the generator.
        s, batch = self.s, tf.shape(real)[0]
        z = tf.random.normal([batch, s.z_dim])
        fake_labels = tf.random.uniform([batch], 0, self.classes, dtype=tf.int32)
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self.generator([z, fake_labels], training=True)
            real_logit, real_aux = self.discriminator([real, labels], training=True)
            fake_logit, fake_aux = self.discriminator([fake, fake_labels], training=True)
            d_aux = self.ce(labels, real_aux)  # the class head learns from real images only
            d_loss = (self.bce(tf.ones_like(real_logit), real_logit)
                      + self.bce(tf.zeros_like(fake_logit), fake_logit) + s.aux_weight * d_aux)
            g_loss = (self.bce(tf.ones_like(fake_logit), fake_logit)
                      + s.aux_weight * self.ce(fake_labels, fake_aux))
        d_vars = self.discriminator.trainable_variables
        g_vars = self.generator.trainable_variables
        d_grads, g_grads = d_tape.gradient(d_loss, d_vars), g_tape.gradient(g_loss, g_vars)
        self.d_opt.apply_gradients(zip(d_grads, d_vars))
        self.g_opt.apply_gradients(zip(g_grads, g_vars))

        # The average warms up so that early stages show the generator's progress.
        t = tf.cast(self.g_opt.iterations, tf.float32)
        decay = tf.minimum(s.ema, (1.0 + t) / (10.0 + t))
        for e, w in zip(self.ema.weights, self.generator.weights):
            e.assign(decay * e + (1.0 - decay) * w if w.trainable else w)  # copy BN statistics
        fake_acc = tf.reduce_mean(tf.cast(
            tf.equal(tf.argmax(fake_aux, axis=1, output_type=tf.int32), fake_labels), tf.float32))
        return {"d_loss": d_loss, "g_loss": g_loss, "d_aux": d_aux, "fake_class_acc": fake_acc}


def sample_grid(generator, z, classes, path):
    """Draws one row per category from the fixed latents z and writes a PNG."""
    per_row = z.shape[0]
    labels = np.repeat(np.arange(classes, dtype=np.int32), per_row)
    images = to_uint8(generator([np.tile(z, (classes, 1)), labels], training=False)).numpy()
    rows = [np.concatenate(list(images[c * per_row:(c + 1) * per_row, :, :, 0]), axis=1)
            for c in range(classes)]
    Image.fromarray(np.concatenate(rows, axis=0)).resize(
        (per_row * 56, classes * 56), Image.Resampling.NEAREST).save(path)
    return path


def train(out_dir, settings=None, data=None, samples_dir=None, log=print):
    """Trains the generator on the training split, exports it to out_dir and returns a
    report. A sample grid is written to samples_dir after each stage; by default they
    go to out_dir + ".samples" during training and are moved to out_dir/samples."""
    # Grappler's remapper cannot fuse this training graph and logs an error saying
    # so; it is off while this trains and back on for whatever the process does next.
    before = tf.config.optimizer.get_experimental_options().get("remapping", True)
    tf.config.optimizer.set_experimental_options({"remapping": False})
    try:
        return _train(out_dir, settings or Settings(), data, samples_dir, log)
    finally:
        tf.config.optimizer.set_experimental_options({"remapping": before})


def _train(out_dir, s, data, samples_dir, log):
    keras.utils.set_random_seed(s.seed)
    images, labels = fashion_mnist.load("train", data)
    if s.limit:
        images, labels = images[:s.limit], labels[:s.limit]
    classes = len(fashion_mnist.LABELS)
    x = (images.astype(np.float32)[..., None] - 127.5) / 127.5
    steps_per_epoch = len(x) // s.batch_size
    total = max(1, int(s.epochs * steps_per_epoch))
    dataset = iter(tf.data.Dataset.from_tensor_slices((x, labels.astype(np.int32)))
                   .shuffle(len(x), seed=s.seed).repeat()
                   .batch(s.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))
    t = Trainer(s, classes)
    grid_z = np.random.default_rng(s.seed).standard_normal((10, s.z_dim)).astype(np.float32)
    pending = samples_dir or out_dir.rstrip("/") + ".samples"
    os.makedirs(pending, exist_ok=True)
    log(f"[generator] training {t.generator.count_params():,} + "
        f"{t.discriminator.count_params():,} parameters for {s.epochs} epochs "
        f"({total} steps of {s.batch_size}) on {len(x):,} images; sample grids in {pending}")
    start, stages, metrics = time.time(), max(1, min(s.stages, total)), {}
    for stage in range(1, stages + 1):
        sums, n = {}, 0
        for _ in range((stage - 1) * total // stages, stage * total // stages):
            real, y = next(dataset)
            for k, v in t.step(real, y).items():
                sums[k] = sums.get(k, 0.0) + float(v)
            n += 1
        metrics = {k: v / max(n, 1) for k, v in sums.items()}
        grid = sample_grid(t.ema, grid_z, classes, os.path.join(pending, f"stage-{stage:02d}.png"))
        spent = time.time() - start
        log(f"[generator] stage {stage}/{stages} step {stage * total // stages}/{total} "
            + " ".join(f"{k}={v:.3f}" for k, v in sorted(metrics.items()))
            + f" elapsed {spent:.0f}s eta {spent / stage * (stages - stage):.0f}s grid {grid}")
    export_generator(t.ema, out_dir, fashion_mnist.LABELS)
    if samples_dir is None:
        os.rename(pending, os.path.join(out_dir, "samples"))
    seconds = time.time() - start
    log(f"[generator] exported to {out_dir} after {seconds:.0f}s of training")
    return {"train_seconds": round(seconds, 1), "steps": total,
            **{k: round(v, 4) for k, v in metrics.items()}}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="SavedModel folder to write")
    parser.add_argument("--epochs", type=float, default=Settings().epochs)
    parser.add_argument("--data", help="folder with the Fashion-MNIST IDX files")
    args = parser.parse_args()
    print(train(args.out, Settings(epochs=args.epochs), data=args.data))


if __name__ == "__main__":
    main()
