"""Writes the small SavedModels and expected outputs that internal/tf's tests use.

Usage: python make_models.py OUT_DIR

OUT_DIR/affine/      images uint8 [None,4,4,1]:
                       serving_default -> probabilities float32 [None,3], logits float32 [None,3]
                       total           -> total float32 [], count int64 []
OUT_DIR/generator/   z float32 [None,8], labels int32 [None]:
                       serving_default -> images uint8 [None,4,4,1], scores float32 [None]
OUT_DIR/expected.json  fixed inputs, TensorFlow's outputs for them (run through the
                       reloaded SavedModels), and resize cases for tf.Resizer.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


class Affine(tf.Module):
    def __init__(self):
        super().__init__()
        w = (np.arange(48, dtype=np.float32).reshape(16, 3) % 7 - 3.0) / 4.0
        self.w = tf.Variable(w)
        self.b = tf.Variable(np.array([0.1, -0.2, 0.3], dtype=np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, 4, 4, 1], tf.uint8, name="images")])
    def classify(self, images):
        x = tf.reshape(tf.cast(images, tf.float32) / 255.0, [-1, 16])
        logits = tf.matmul(x, self.w) + self.b
        return {"probabilities": tf.nn.softmax(logits), "logits": logits}

    @tf.function(input_signature=[tf.TensorSpec([None, 4, 4, 1], tf.uint8, name="images")])
    def total(self, images):
        return {
            "total": tf.reduce_sum(tf.cast(images, tf.float32)),
            "count": tf.cast(tf.shape(images)[0], tf.int64),
        }


class Generator(tf.Module):
    def __init__(self):
        super().__init__()
        w = (np.arange(128, dtype=np.float32).reshape(8, 16) % 5 - 2.0) / 3.0
        e = (np.arange(160, dtype=np.float32).reshape(10, 16) % 9 - 4.0) / 5.0
        self.w = tf.Variable(w)
        self.e = tf.Variable(e)

    @tf.function(input_signature=[
        tf.TensorSpec([None, 8], tf.float32, name="z"),
        tf.TensorSpec([None], tf.int32, name="labels"),
    ])
    def generate(self, z, labels):
        h = tf.matmul(z, self.w) + tf.gather(self.e, labels)
        pix = tf.round(tf.clip_by_value(tf.sigmoid(h) * 255.0, 0.0, 255.0))
        return {
            "images": tf.reshape(tf.cast(pix, tf.uint8), [-1, 4, 4, 1]),
            "scores": tf.reduce_mean(h, axis=1),
        }


def resize(img, out_h, out_w):
    """The expression tf.Resizer matches."""
    return tf.cast(tf.round(tf.clip_by_value(
        tf.image.resize(img, [out_h, out_w], method="bilinear", antialias=False), 0, 255)), tf.uint8)


def main(out):
    rng = np.random.default_rng(0)
    affine, gen = Affine(), Generator()
    tf.saved_model.save(affine, os.path.join(out, "affine"), signatures={
        "serving_default": affine.classify.get_concrete_function(),
        "total": affine.total.get_concrete_function(),
    })
    tf.saved_model.save(gen, os.path.join(out, "generator"), signatures={
        "serving_default": gen.generate.get_concrete_function(),
    })

    # Expected outputs come from the reloaded SavedModels, as a Python server would run them.
    a = tf.saved_model.load(os.path.join(out, "affine"))
    g = tf.saved_model.load(os.path.join(out, "generator"))
    images = rng.integers(0, 256, size=(3, 4, 4, 1), dtype=np.uint8)
    z = rng.standard_normal((5, 8)).astype(np.float32)
    labels = np.array([0, 3, 9, 1, 5], dtype=np.int32)
    cls = a.signatures["serving_default"](images=tf.constant(images))
    tot = a.signatures["total"](images=tf.constant(images))
    gen_out = g.signatures["serving_default"](z=tf.constant(z), labels=tf.constant(labels))

    def tensor(x):
        x = np.asarray(x)
        return {"dtype": str(x.dtype), "shape": list(x.shape), "data": x.reshape(-1).tolist()}

    resizes = []
    for h, w, c, oh, ow in [(5, 7, 1, 3, 4), (4, 4, 3, 9, 11), (6, 10, 3, 6, 10),
                            (1, 1, 1, 3, 3), (16, 12, 1, 5, 7), (3, 5, 3, 32, 2)]:
        pix = rng.integers(0, 256, size=(h, w, c), dtype=np.uint8)
        resizes.append({"in": tensor(pix), "out": tensor(resize(pix, oh, ow).numpy())})

    expected = {
        "affine": {
            "serving_default": {"inputs": {"images": tensor(images)},
                                "outputs": {k: tensor(v.numpy()) for k, v in cls.items()}},
            "total": {"inputs": {"images": tensor(images)},
                      "outputs": {k: tensor(v.numpy()) for k, v in tot.items()}},
        },
        "generator": {
            "serving_default": {"inputs": {"z": tensor(z), "labels": tensor(labels)},
                                "outputs": {k: tensor(v.numpy()) for k, v in gen_out.items()}},
        },
        "resize": resizes,
    }
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_models.py OUT_DIR")
    main(sys.argv[1])
