"""The classifiers keep VGG19's topology: 16 conv layers, 3 dense layers, uint8 input."""

import gc

import keras
import pytest

from atelier_train import classifier

VGG19_PARAMS = 143_667_240  # keras.applications.VGG19(weights=None), 1000 classes


def _leaf_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(layer)
        else:
            yield layer


def _count(model, layer_type):
    return sum(isinstance(layer, layer_type) for layer in _leaf_layers(model))


@pytest.fixture(scope="module")
def embedded():
    return classifier.build_embedded()


def test_embedded_has_vgg19_layers(embedded):
    assert _count(embedded, keras.layers.Conv2D) == 16
    assert _count(embedded, keras.layers.Dense) == 3


def test_embedded_input_is_uint8_28x28x1(embedded):
    (spec,) = embedded.inputs
    assert spec.dtype == "uint8"
    assert tuple(spec.shape) == (None, 28, 28, 1)


def test_full_matches_keras_vgg19():
    full = classifier.build_full(1000)
    assert _count(full, keras.layers.Conv2D) == 16
    assert _count(full, keras.layers.Dense) == 3
    assert full.count_params() == VGG19_PARAMS
    del full
    gc.collect()
    assert keras.applications.VGG19(weights=None).count_params() == VGG19_PARAMS
