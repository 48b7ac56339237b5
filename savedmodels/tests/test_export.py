"""Exported SavedModels load the way the server loads them: a TF1-style session."""

import numpy as np
import tensorflow as tf

from atelier_train import classifier


def test_classifier_export_runs_in_a_session(tmp_path):
    model = classifier.build_embedded()
    out = classifier.export_classifier(model, str(tmp_path / "1"), [f"c{i}" for i in range(10)],
                                       flip_average=True)
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)
    want = tf.saved_model.load(out).signatures["serving_default"](
        images=tf.constant(images))["probabilities"].numpy()
    with tf.compat.v1.Session(graph=tf.Graph()) as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], out)
        sig = meta.signature_def["serving_default"]
        got = sess.run(sig.outputs["probabilities"].name, {sig.inputs["images"].name: images})
        features = meta.signature_def["features"]
        assert features.outputs["features"].tensor_shape.dim[1].size == 256
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert open(tmp_path / "1" / "assets" / "labels.txt").read().split("\n")[:2] == ["c0", "c1"]
