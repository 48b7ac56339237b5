"""atelier_train.swa: weight averaging on a built classifier, and what it relies on."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from atelier_train import classifier, swa


def _images(n, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)


def test_recompute_batch_norm_averages_the_batches():
    keras.utils.set_random_seed(0)
    model = classifier.build_embedded()
    base, scale = model.get_layer("vgg19"), model.get_layer("scale")
    bn = base.get_layer("block1_bn1")
    before = bn.momentum
    batches = [_images(16, 1), _images(16, 2), _images(16, 3)]
    conv = base.get_layer("block1_conv1")
    want = np.mean([conv(scale(b)).numpy().mean(axis=(0, 1, 2)) for b in batches], axis=0)

    swa.recompute_batch_norm(model, iter(batches))

    np.testing.assert_allclose(bn.moving_mean.numpy(), want, rtol=1e-4, atol=1e-6)
    assert bn.momentum == before, "the layer's own momentum is restored"


def test_average_weights_ends_at_the_mean_of_the_epoch_ends():
    keras.utils.set_random_seed(0)
    model = classifier.build_embedded()
    labels = tf.one_hot(np.arange(64) % 10, 10)
    train = tf.data.Dataset.from_tensor_slices((_images(64, 4), labels)).batch(32)
    ends = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            ends.append([v.numpy().copy() for v in model.trainable_variables])

    swa.average_weights(model, train, epochs=3, learning_rate=1e-3, callbacks=[Record()])

    assert len(ends) == 3
    assert not np.allclose(ends[0][0], ends[2][0]), "training moved the weights"
    for i, v in enumerate(model.trainable_variables):
        np.testing.assert_allclose(v.numpy(), np.mean([e[i] for e in ends], axis=0),
                                   rtol=1e-5, atol=1e-6)


def test_load_exported_weights_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    exported = classifier.build_embedded()
    classifier.export_classifier(exported, str(tmp_path / "m"), ["c"] * 10)
    keras.utils.set_random_seed(1)
    model = classifier.build_embedded()
    assert not np.array_equal(model.variables[0].numpy(), exported.variables[0].numpy())

    swa.load_exported_weights(model, str(tmp_path / "m"))

    for mine, theirs in zip(model.variables, exported.variables):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_load_exported_weights_refuses_another_architecture(tmp_path):
    keras.utils.set_random_seed(0)
    classifier.export_classifier(classifier.build_embedded(), str(tmp_path / "m"), ["c"] * 10)
    other = classifier.build_embedded(classes=5)
    with pytest.raises(ValueError, match="does not match"):
        swa.load_exported_weights(other, str(tmp_path / "m"))
