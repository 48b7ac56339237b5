"""The model lifecycle calls against the live server (started without admin tokens),
and the admin calls against admin_server (started with tokens)."""

import asyncio

import grpc
import numpy as np
import pytest

from atelier import AsyncAtelierClient, AtelierClient, AtelierError
from atelier.v1 import model_service_pb2 as model_pb
from conftest import ADMIN_TOKEN, INFER_TOKEN


def test_model_status_reports_available_versions(client):
    models = {m.name: m for m in client.model_status()}
    assert "classifier" in models
    c = models["classifier"]
    assert c.policy == "latest 1"
    assert [v.state for v in c.versions] == [model_pb.VERSION_STATE_AVAILABLE]
    assert c.versions[0].available_time.seconds > 0


def test_unknown_model_status_is_not_found(client):
    with pytest.raises(AtelierError) as e:
        client.model_status("nope")
    assert e.value.code == grpc.StatusCode.NOT_FOUND and "classifier" in e.value.details


@pytest.mark.parametrize("call", [
    lambda c: c.reload(token="t"),
    lambda c: c.load_model("classifier", 1, token="t"),
    lambda c: c.unload_model("classifier", 1, token="t"),
    lambda c: c.set_version_labels("classifier", {"stable": 1}, token="t"),
])
def test_admin_calls_are_off_without_a_token_file(client, call):
    with pytest.raises(AtelierError) as e:
        call(client)
    assert e.value.code == grpc.StatusCode.UNIMPLEMENTED and "--auth-tokens-file" in e.value.details


# --- the admin calls' success paths, on a server of their own with tokens ----------

IMG = np.zeros((28, 28), np.uint8)


def _classifier(statuses):
    return next(m for m in statuses if m.name == "classifier")


def test_admin_calls_succeed_with_the_admin_token(admin_server):
    """reload, set_version_labels, unload_model then load_model with the admin token,
    on a client whose own token is the infer one (which alone is refused); each call's
    effect shows in model_status and in what a label or a classify call reaches."""
    with AtelierClient(admin_server, timeout=60, token=INFER_TOKEN) as c:
        with pytest.raises(AtelierError) as e:
            c.reload()
        assert e.value.code == grpc.StatusCode.PERMISSION_DENIED

        reloaded = _classifier(c.reload(token=ADMIN_TOKEN))
        assert [(v.version, v.state) for v in reloaded.versions] == [(1, model_pb.VERSION_STATE_AVAILABLE)]
        assert "classifier" in [m.name for m in c.reload(token=ADMIN_TOKEN, wait=False)]

        assert c.set_version_labels("classifier", {"stable": 1}, token=ADMIN_TOKEN) == {"stable": 1}
        assert dict(_classifier(c.model_status("classifier")).version_labels) == {"stable": 1}
        with pytest.raises(AtelierError) as e:  # a label naming a version not loaded
            c.set_version_labels("classifier", {"canary": 9}, token=ADMIN_TOKEN)
        assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION and "version 9" in e.value.details
        assert dict(_classifier(c.model_status()).version_labels) == {"stable": 1}
        assert c.set_version_labels("classifier", {"stable": 0}, token=ADMIN_TOKEN) == {}
        assert dict(_classifier(c.model_status("classifier")).version_labels) == {}

        assert c.unload_model("classifier", 1, token=ADMIN_TOKEN) is None
        with pytest.raises(AtelierError) as e:
            c.classify(IMG)
        assert e.value.code == grpc.StatusCode.NOT_FOUND
        version = c.load_model("classifier", 1, token=ADMIN_TOKEN)
        assert (version.version, version.state) == (1, model_pb.VERSION_STATE_AVAILABLE)
        assert len(c.classify(IMG, top_k=2)[0]) == 2
        assert [(v.version, v.state) for v in _classifier(c.model_status("classifier")).versions] == \
            [(1, model_pb.VERSION_STATE_AVAILABLE)]


def test_async_admin_calls_succeed_with_the_admin_token(admin_server):
    """AsyncAtelierClient's reload and set_version_labels with the admin token (its
    unload and load: test_aio.py's test_admin_calls)."""
    async def main():
        async with AsyncAtelierClient(admin_server, timeout=60, token=INFER_TOKEN) as c:
            assert "classifier" in [m.name for m in await c.reload(token=ADMIN_TOKEN)]
            assert await c.set_version_labels("classifier", {"stable": 1}, token=ADMIN_TOKEN) == {"stable": 1}
            labels = dict(_classifier(await c.model_status("classifier")).version_labels)
            assert await c.set_version_labels("classifier", {"stable": 0}, token=ADMIN_TOKEN) == {}
            return labels

    assert asyncio.run(asyncio.wait_for(main(), 120)) == {"stable": 1}
