"""The Python client against a live server: inputs it accepts, errors it raises."""

import grpc
import numpy as np
import pytest
from PIL import Image

from atelier import AtelierClient, AtelierError


def test_numpy_pil_and_bytes_agree(client, fashion_test):
    images, labels = fashion_test
    pixels = images[0]
    pil = Image.fromarray(pixels, mode="L")
    rgb = np.repeat(pixels[..., None], 3, axis=2)
    results = client.classify([pixels, rgb, pil], top_k=3)
    assert [r[0].label for r in results] == ["Ankle boot"] * 3
    for r in results[1:]:
        assert [p.class_index for p in r] == [p.class_index for p in results[0]]
        np.testing.assert_allclose([p.score for p in r], [p.score for p in results[0]], atol=1e-6)


def test_list_and_get_model(client):
    names = [m.name for m in client.list_models()]
    assert "classifier" in names
    info = client.get_model("classifier")
    assert list(info.versions[0].labels)[:2] == ["T-shirt/top", "Trouser"]
    assert client.health() == "SERVING"


@pytest.mark.parametrize("image,top_k,code,text", [
    (b"", None, grpc.StatusCode.INVALID_ARGUMENT, "no bytes"),
    (b"GIF89a not really", None, grpc.StatusCode.INVALID_ARGUMENT, "not a readable"),
    (np.zeros((28, 28), np.uint8), 0, grpc.StatusCode.INVALID_ARGUMENT, "top_k 0"),
])
def test_errors(client, image, top_k, code, text):
    with pytest.raises(AtelierError) as e:
        client.classify(image, top_k=top_k)
    assert e.value.code == code
    assert text in e.value.details


def test_unknown_model(client):
    with pytest.raises(AtelierError) as e:
        client.classify(np.zeros((28, 28), np.uint8), model="nope")
    assert e.value.code == grpc.StatusCode.NOT_FOUND


def test_detect_tiling(client, fashion_test):
    images, _ = fashion_test
    # A 28x28 picture is smaller than one tile: every mode searches the whole picture.
    answers = [client.detect(images[0], min_score=0.0, tiling=t) for t in ("auto", "on", "off")]
    assert answers[0] == answers[1] == answers[2]
    with pytest.raises(ValueError, match="tiling"):
        client.detect(images[0], tiling="sideways")


@pytest.mark.parametrize("call,field", [
    (lambda c: c.classify(b"png", top_k=2**40), "top_k"),
    (lambda c: c.classify(b"png", version="2"), "version"),
    (lambda c: c.detect(b"png", max_detections=2**40), "max_detections"),
    (lambda c: c.generate("Dress", count=-1), "count"),
    (lambda c: c.generate("Dress", seed=-1), "seed"),
    (lambda c: list(c.interpolate("Dress", 1, 2, steps=1.5)), "steps"),
])
def test_bad_arguments_name_their_field(call, field):
    """An argument the request cannot hold fails before any call, naming its field."""
    with AtelierClient("127.0.0.1:1", timeout=1) as c:
        with pytest.raises((ValueError, TypeError), match=field):
            call(c)
