"""The detector: training targets, in-graph decoding and NMS, export, a tiny training run."""

import numpy as np
import pytest
import tensorflow as tf

from atelier_train import detector, detector_eval, scenes

TINY = {"size": 64, "channels": 1, "widths": (4, 4, 8, 8, 8), "neck": 8, "head": 4}


def test_targets_peak_at_the_centre():
    # One bottom (class 1) spanning rows 4..12 and columns 2..6 of a 16-cell grid.
    boxes = tf.constant([[[4 / 16, 2 / 16, 12 / 16, 6 / 16], [0, 0, 0, 0]]], tf.float32)
    heat, box, weight = detector.targets(boxes, tf.constant([[1, 0]]), tf.constant([[True, False]]), 16)
    heat, box, weight = heat.numpy()[0], box.numpy()[0], weight.numpy()[0]
    assert heat[8, 4, 1] == 1.0 and (heat >= 1).sum() == 1 and heat[..., 0].max() == 0
    # From the centre cell (8.5, 4.5): left 2.5, top 4.5, right 1.5, bottom 3.5 cells.
    np.testing.assert_allclose(box[8, 4], [2.5, 4.5, 1.5, 3.5], atol=1e-6)
    assert weight[8, 4] == 1.0 and (weight > 0).sum() == 9 and weight[0, 0] == 0


def test_flip_mirrors_targets():
    boxes = tf.constant([[[0.25, 0.1, 0.75, 0.3]]], tf.float32)
    heat, box, weight = detector.targets(boxes, tf.constant([[2]]), tf.constant([[True]]), 8)
    mirrored = tf.constant([[[0.25, 0.7, 0.75, 0.9]]], tf.float32)
    want = detector.targets(mirrored, tf.constant([[2]]), tf.constant([[True]]), 8)
    tf.random.set_seed(1)
    images = tf.zeros([16, 32, 32, 1], tf.uint8)
    _, h, b, w = detector._flip(images, *(tf.repeat(x, 16, axis=0) for x in (heat, box, weight)))
    flipped = [i for i in range(16) if not np.array_equal(h[i].numpy(), heat[0].numpy())]
    assert 0 < len(flipped) < 16
    i = flipped[0]
    np.testing.assert_allclose(h[i], want[0][0], atol=1e-6)
    np.testing.assert_allclose(b[i][w[i] > 0], want[1][0][want[2][0] > 0], atol=1e-6)


def _logits(grid, peaks):
    """Heatmap logits (-10 everywhere) with the given (y, x, class, score) peaks and box
    log-distances of 1 cell everywhere."""
    heat = np.full((1, grid, grid, len(scenes.COARSE)), -10.0, np.float32)
    for y, x, c, s in peaks:
        heat[0, y, x, c] = np.log(s / (1 - s))
    return tf.constant(heat), tf.zeros((1, grid, grid, 4))


def test_decode_and_nms():
    # Two tops in neighbouring cells (the same garment twice: the weaker is not a peak),
    # a top and a bottom on the same cell (both kept), one peak below the score floor.
    heat, box = _logits(20, [(5, 5, 0, 0.9), (5, 6, 0, 0.8), (10, 10, 0, 0.7), (10, 10, 1, 0.6),
                             (15, 3, 3, 0.03)])
    out = {k: v.numpy()[0] for k, v in detector.decode(heat, box).items()}
    assert out["detection_boxes"].shape == (detector.MAX_DETECTIONS, 4)
    assert int(out["num_detections"]) == 3
    np.testing.assert_allclose(out["detection_scores"][:4], [0.9, 0.7, 0.6, 0], atol=1e-6)
    assert out["detection_classes"][:3].tolist() == [0, 0, 1]
    # Cell (5, 5) has its centre at (5.5, 5.5) / 20; the box reaches 1 cell each way.
    np.testing.assert_allclose(out["detection_boxes"][0], [4.5 / 20, 4.5 / 20, 6.5 / 20, 6.5 / 20], atol=1e-6)


def test_overlapping_boxes_of_one_class_are_suppressed():
    heat, _ = _logits(20, [(5, 5, 0, 0.9), (5, 8, 0, 0.8)])
    # Big boxes (8 cells each way) from both peaks overlap almost entirely.
    box = tf.fill((1, 20, 20, 4), float(np.log(8.0)))
    out = detector.decode(heat, box)
    assert int(out["num_detections"][0]) == 1


def test_fit_platt_recovers_a_logistic_model():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, 20000)
    correct = rng.random(20000) < 1 / (1 + np.exp(-(1.5 * logits + 1.0)))
    a, b = detector.fit_platt(logits, correct)
    assert a == pytest.approx(1.5, abs=0.1) and b == pytest.approx(1.0, abs=0.1)


def test_calibration_is_in_the_graph():
    heat, box = _logits(20, [(5, 5, 0, 0.5)])
    out = detector.decode(heat, box, calibration=(2.0, 1.0))
    assert out["detection_scores"][0, 0].numpy() == pytest.approx(1 / (1 + np.exp(-1.0)))


def test_export_runs_in_a_session(tmp_path):
    model = detector.build(**TINY)
    out = detector.export_detector(model, str(tmp_path / "1"), calibration=(1.3, 0.2))
    images = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 1), dtype=np.uint8)
    want = detector.predict(out, images)
    with tf.compat.v1.Session(graph=tf.Graph()) as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], out)
        sig = meta.signature_def["serving_default"]
        assert set(sig.outputs) == {"detection_boxes", "detection_scores", "detection_classes", "num_detections"}
        got = sess.run({k: v.name for k, v in sig.outputs.items()}, {sig.inputs["images"].name: images})
    for key, value in want.items():
        assert value.dtype == np.float32 and value.shape[0] == 2
        np.testing.assert_allclose(got[key], value, atol=1e-6)
    assert want["detection_boxes"].shape == (2, detector.MAX_DETECTIONS, 4)
    assert open(tmp_path / "1" / "assets" / "labels.txt").read().split() == scenes.COARSE


def test_tiny_training_run(tmp_path):
    report = detector.train_embedded(str(tmp_path / "1"), scene_count=32, epochs=1, batch_size=16,
                                     settings=TINY, heldout=2)
    assert report["train_seconds"] > 0 and 0 <= report["map50"] <= 1 and report["garments"] > 0


@pytest.mark.parametrize("dets, want_ap, want_recall", [
    ([], 0.0, 0.0),
    ([{"box": (0, 0, 10, 10), "coarse": 0, "score": 0.9}], 0.5, 0.5),
    ([{"box": (0, 0, 10, 10), "coarse": 0, "score": 0.9}, {"box": (0, 0, 10, 10), "coarse": 0, "score": 0.8},
      {"box": (20, 20, 30, 31), "coarse": 0, "score": 0.4}], 5 / 6, 0.5),
    ([{"box": (50, 50, 60, 60), "coarse": 0, "score": 0.9}], 0.0, 0.0),  # on the difficult one: ignored
])
def test_score_rules(dets, want_ap, want_recall):
    truth = [{"box": (0, 0, 10, 10), "coarse": 0, "difficult": False},
             {"box": (20, 20, 30, 30), "coarse": 0, "difficult": False},
             {"box": (50, 50, 60, 60), "coarse": 0, "difficult": True}]
    got = detector_eval.score([truth], [dets])
    assert got["map50"] == pytest.approx(want_ap) and got["recall"] == pytest.approx(want_recall)
