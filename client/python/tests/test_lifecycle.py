"""The model lifecycle calls against the live server (started without admin tokens)."""

import grpc
import pytest

from atelier import AtelierError
from atelier.v1 import model_service_pb2 as model_pb


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
