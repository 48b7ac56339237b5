"""tritonclient's model repository calls (get_model_repository_index, load_model,
unload_model) against an atelierd of its own with an admin token: they drive the
model lifecycle and need the admin role."""

import os
import time

import numpy as np
import pytest

from conftest import ADMIN_TOKEN, INFER_TOKEN, missing

try:
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException
except ImportError as e:  # pragma: no cover - reported by missing()
    grpcclient = None
    IMPORT_ERROR = e

ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
INFER = {"authorization": f"Bearer {INFER_TOKEN}"}


@pytest.fixture(scope="module")
def triton(admin_server):
    if grpcclient is None:
        missing("tritonclient[grpc]", f"run `make setup` ({IMPORT_ERROR})")
    c = grpcclient.InferenceServerClient(url=admin_server)
    yield c
    c.close()


def on_disk(model_dir):
    """{(model, version)} of every complete version folder."""
    out = set()
    for name in os.listdir(model_dir):
        d = os.path.join(model_dir, name)
        for v in os.listdir(d) if os.path.isdir(d) else []:
            if v.isdigit() and os.path.exists(os.path.join(d, v, "saved_model.pb")):
                out.add((name, v))
    return out


def index(triton):
    return {(m["name"], m["version"]): (m["state"], m.get("reason", ""))
            for m in triton.get_model_repository_index(headers=ADMIN, as_json=True)["models"]}


def wait_state(triton, key, state, timeout=30):
    deadline = time.time() + timeout
    while (got := index(triton).get(key, ("absent", "")))[0] != state:
        assert time.time() < deadline, f"{key}: state {got}, want {state}"
        time.sleep(0.1)
    return got


def infer(triton):
    inp = grpcclient.InferInput("images", [1, 28, 28, 1], "UINT8")
    inp.set_data_from_numpy(np.arange(784, dtype=np.uint8).reshape(1, 28, 28, 1))
    return triton.infer("classifier", [inp], headers=INFER).as_numpy("probabilities")


def test_index_lists_every_version_on_disk(triton, model_dir):
    idx = index(triton)
    assert set(idx) == on_disk(model_dir)
    for name in {n for n, _ in idx}:
        newest = max((v for n, v in idx if n == name), key=int)
        assert idx[(name, newest)] == ("READY", ""), f"{name} {newest}: {idx[(name, newest)]}"


@pytest.mark.parametrize("headers,code", [(INFER, "PERMISSION_DENIED"), ({}, "UNAUTHENTICATED")])
def test_repository_calls_need_the_admin_role(triton, headers, code):
    for call in (lambda: triton.get_model_repository_index(headers=headers),
                 lambda: triton.load_model("classifier", headers=headers),
                 lambda: triton.unload_model("classifier", headers=headers)):
        with pytest.raises(InferenceServerException) as e:
            call()
        assert e.value.status() == f"StatusCode.{code}"
    assert triton.is_model_ready("classifier", headers=INFER)


def test_unload_then_load(triton):
    before = infer(triton)
    triton.unload_model("classifier", headers=ADMIN)
    assert not triton.is_model_ready("classifier", headers=INFER)
    assert not triton.is_model_ready("classifier_image", headers=INFER)
    with pytest.raises(InferenceServerException) as e:
        infer(triton)
    assert e.value.status() == "StatusCode.NOT_FOUND"
    assert wait_state(triton, ("classifier", "1"), "UNAVAILABLE") == ("UNAVAILABLE", "not loaded")
    triton.unload_model("classifier", headers=ADMIN)  # already unloaded: nothing to do

    triton.load_model("classifier", headers=ADMIN)  # answers once the version serves
    assert index(triton)[("classifier", "1")] == ("READY", "")
    assert triton.is_model_ready("classifier", headers=INFER)
    assert np.array_equal(infer(triton), before)


def test_load_refusals(triton):
    with pytest.raises(InferenceServerException) as e:
        triton.load_model("no_such_model", headers=ADMIN)
    assert e.value.status() == "StatusCode.NOT_FOUND" and "classifier" in e.value.message()
    with pytest.raises(InferenceServerException) as e:
        triton.load_model("classifier", headers=ADMIN, config='{"max_batch_size": 8}')
    assert e.value.status() == "StatusCode.INVALID_ARGUMENT" and "config" in e.value.message()
