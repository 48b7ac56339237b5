"""Triton's own Python client (tritonclient[grpc], pinned in requirements-triton.txt)
works against Atelier unchanged, and its answers equal Atelier's Classify."""

import io
import queue

import numpy as np
import pytest
from PIL import Image

from conftest import missing

try:
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException
except ImportError as e:  # pragma: no cover - reported by missing()
    grpcclient = None
    IMPORT_ERROR = e

N = 16


def encode(pixels, fmt):
    buf = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buf, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


@pytest.fixture(scope="module")
def triton(server):
    if grpcclient is None:
        missing("tritonclient[grpc]", f"run `make setup` ({IMPORT_ERROR})")
    c = grpcclient.InferenceServerClient(url=server)
    yield c
    c.close()


def classify_probs(client, files):
    """Atelier's own Classify, as a [n, classes] array."""
    out = []
    for start in range(0, len(files), 50):  # Classify takes at most 64 images
        for preds in client.classify(files[start:start + 50], top_k=10):
            row = np.zeros(len(preds), np.float32)
            for p in preds:
                row[p.class_index] = p.score
            out.append(row)
    return np.stack(out)


def test_server_and_model_rpcs(triton):
    assert triton.is_server_live()
    assert triton.is_server_ready()
    assert triton.is_model_ready("classifier")
    assert triton.is_model_ready("classifier_image")
    assert not triton.is_model_ready("no_such_model")
    meta = triton.get_server_metadata(as_json=True)
    assert meta["name"] == "atelier" and "parameters" in meta["extensions"]
    md = triton.get_model_metadata("classifier", as_json=True)
    inp, out = md["inputs"][0], md["outputs"][0]
    assert (inp["name"], inp["datatype"], out["name"], out["datatype"]) == ("images", "UINT8", "probabilities", "FP32")
    assert [int(d) for d in inp["shape"]][1:] == [28, 28, 1] and int(inp["shape"][0]) == -1
    img = triton.get_model_metadata("classifier_image", as_json=True)
    assert [(t["name"], t["datatype"]) for t in img["inputs"]] == [("image", "BYTES")]
    with pytest.raises(InferenceServerException, match="NOT_FOUND|not found"):
        triton.get_model_metadata("no_such_model")


def test_infer_uint8_tensor_equals_classify(triton, client, fashion_test):
    images, _ = fashion_test
    batch = images[:N]
    inp = grpcclient.InferInput("images", [N, 28, 28, 1], "UINT8")
    inp.set_data_from_numpy(batch[..., None])
    want = classify_probs(client, [encode(p, "PNG") for p in batch])
    # tritonclient sends a priority as a uint64 parameter; 1 and 3 are Atelier's high
    # and low (server/inference_errors_test.go checks they reach the batcher).
    for priority in (0, 1, 3):
        got = triton.infer("classifier", [inp], priority=priority).as_numpy("probabilities")
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= 1e-6


def test_infer_jpeg_batch_equals_classify(triton, client, fashion_test):
    images, _ = fashion_test
    files = [encode(p, "JPEG") for p in images[N:2 * N]]
    inp = grpcclient.InferInput("image", [N], "BYTES")
    inp.set_data_from_numpy(np.array(files, dtype=np.object_))
    res = triton.infer("classifier_image", [inp], outputs=[
        grpcclient.InferRequestedOutput("probabilities"), grpcclient.InferRequestedOutput("label")])
    got = res.as_numpy("probabilities")
    want = classify_probs(client, files)
    assert np.abs(got - want).max() <= 1e-6
    labels = [l.decode() for l in res.as_numpy("label")]
    top1 = [p[0].label for p in client.classify(files, top_k=1)]
    assert labels == top1


def test_bad_input_is_invalid_argument(triton):
    inp = grpcclient.InferInput("images", [1, 14, 56, 1], "UINT8")
    inp.set_data_from_numpy(np.zeros((1, 14, 56, 1), np.uint8))
    with pytest.raises(InferenceServerException, match="images") as e:
        triton.infer("classifier", [inp])
    assert e.value.status() == "StatusCode.INVALID_ARGUMENT"


def test_async_stream_infer_100_requests(triton, client, fashion_test):
    images, _ = fashion_test
    batch = images[:100]
    results = queue.Queue()
    triton.start_stream(callback=lambda result, error: results.put((result, error)))
    try:
        for i, pixels in enumerate(batch):
            inp = grpcclient.InferInput("images", [1, 28, 28, 1], "UINT8")
            inp.set_data_from_numpy(pixels[None, ..., None])
            triton.async_stream_infer("classifier", [inp], request_id=str(i))
        got = []
        for _ in range(100):
            result, error = results.get(timeout=120)
            assert error is None, error
            got.append((int(result.get_response().id), result.as_numpy("probabilities")[0]))
    finally:
        triton.stop_stream()
    assert [i for i, _ in got] == list(range(100)), "answers must come in request order"
    want = classify_probs(client, [encode(p, "PNG") for p in batch])
    assert np.abs(np.stack([p for _, p in got]) - want).max() <= 1e-6
