"""The conditional GAN: its training path on tiny settings, its export as the server loads
it, the evaluation's measures, and the built generator's quality."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from atelier_train import fashion_mnist, gan, gan_eval

SAVEDMODELS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(z_dim=8, g_width=8, d_width=8, epochs=1, batch_size=16, stages=2, limit=64)


def built(name):
    """Returns the built model's folder; fails under CI=true when it is missing."""
    path = os.path.join(SAVEDMODELS, name, "1")
    if not os.path.exists(os.path.join(path, "saved_model.pb")):
        message = f"built model {name} is missing (run `make models`)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("generator") / "1")
    lines = []
    report = gan.train(out, gan.Settings(**TINY), log=lines.append)
    return out, report, lines


def test_training_shows_progress_and_writes_a_grid_per_stage(tiny_model):
    out, report, lines = tiny_model
    assert report["steps"] == 4 and report["train_seconds"] > 0
    assert [line.split()[2] for line in lines if " stage " in line] == ["1/2", "2/2"]
    assert sorted(os.listdir(os.path.join(out, "samples"))) == ["stage-01.png", "stage-02.png"]
    from PIL import Image
    grid = Image.open(os.path.join(out, "samples", "stage-02.png"))
    assert grid.size == (10 * 56, 10 * 56)  # ten latents across, one row per category
    assert open(os.path.join(out, "assets", "labels.txt")).read().split("\n")[:10] == fashion_mnist.LABELS


def test_export_runs_in_a_session_like_the_server(tiny_model):
    out, _, _ = tiny_model
    z = np.random.default_rng(1).standard_normal((3, TINY["z_dim"])).astype(np.float32)
    labels = np.array([0, 5, 9], np.int32)
    want = tf.saved_model.load(out).signatures["serving_default"](
        z=tf.constant(z), labels=tf.constant(labels))["images"].numpy()
    with tf.compat.v1.Session(graph=tf.Graph()) as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], out)
        sig = meta.signature_def["serving_default"]
        assert [d.size for d in sig.inputs["z"].tensor_shape.dim] == [-1, TINY["z_dim"]]
        assert [d.size for d in sig.inputs["labels"].tensor_shape.dim] == [-1]
        assert sig.inputs["labels"].dtype == tf.int32.as_datatype_enum
        assert sig.outputs["images"].dtype == tf.uint8.as_datatype_enum
        feed = {sig.inputs["z"].name: z, sig.inputs["labels"].name: labels}
        got = sess.run(sig.outputs["images"].name, feed)
        again = sess.run(sig.outputs["images"].name, feed)
    assert got.shape == (3, 28, 28, 1) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, again)


def test_to_uint8_scales_and_rounds_in_the_graph():
    x = tf.constant([-1.5, -1.0, 0.0, 0.999, 1.0, 2.0])
    assert gan.to_uint8(x).numpy().tolist() == [0, 0, 128, 255, 255, 255]


def test_frechet_distance():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4000, 3))
    assert gan_eval.frechet(a, a) == pytest.approx(0, abs=1e-6)
    # Gaussians N(0, I) and N(m, 4I): |m|^2 + 3 * (1 + 4 - 2 * 2) = |m|^2 + 3.
    b = rng.standard_normal((4000, 3)) * 2 + np.array([1.0, 2.0, 0.0])
    assert gan_eval.frechet(a, b) == pytest.approx(5 + 3, rel=0.1)


def test_diversity_is_mean_pairwise_distance():
    x = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]])
    assert gan_eval.diversity(x) == pytest.approx((5 + 4 + 3) / 3)
    same = np.zeros((5, 28, 28, 1), np.uint8)
    assert gan_eval.pixel_diversity(same) == 0
    black_white = np.stack([np.zeros((28, 28, 1)), np.full((28, 28, 1), 255)]).astype(np.uint8)
    assert gan_eval.pixel_diversity(black_white) == pytest.approx(1.0)


def test_built_generator_quality(tmp_path):
    """The built generator: the conditional accuracy and diversity floors the Go server
    test also asserts, on a smaller sample to stay fast."""
    report = gan_eval.evaluate(built("generator"), built("classifier"), per_class=100)
    (tmp_path / "report.json").write_text(json.dumps(report))
    print(gan_eval.format_report(report))
    assert report["conditional_accuracy"] >= 0.80
    assert report["pixel_diversity_ratio_min"] >= gan_eval.MIN_DIVERSITY_RATIO
    assert report["frechet_generated_vs_real"] > report["frechet_real_vs_real"]


def test_training_leaves_grappler_as_it_found_it(tiny_model):
    assert tf.config.optimizer.get_experimental_options().get("remapping", True) is True
