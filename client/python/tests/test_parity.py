"""The server's probabilities equal TensorFlow in Python on the same SavedModel."""

import io
import os

import numpy as np
import tensorflow as tf
from PIL import Image

BATCH = 64
IMAGES = 512


def png(pixels):
    buf = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buf, format="PNG")
    return buf.getvalue()


def test_probabilities_match_tensorflow(client, model_dir, fashion_test):
    images, _ = fashion_test
    images = images[:IMAGES]
    model = tf.saved_model.load(os.path.join(model_dir, "classifier", "1"))
    serve = model.signatures["serving_default"]
    worst = 0.0
    for start in range(0, IMAGES, BATCH):
        batch = images[start:start + BATCH]
        want = serve(images=tf.constant(batch[..., None]))["probabilities"].numpy()
        got = np.zeros_like(want)
        for i, preds in enumerate(client.classify([png(p) for p in batch], top_k=10)):
            for p in preds:
                got[i, p.class_index] = p.score
        worst = max(worst, float(np.abs(got - want).max()))
    print(f"max |server - tensorflow| over {IMAGES} images: {worst:.3g}")
    assert worst <= 1e-5, f"server differs from TensorFlow by {worst}"
