"""Every RPC through AtelierClient against the live server. The RPCs, and the model
each needs, come from internal/servertest/rpcs.json, the table the Go tests read
too."""

import glob
import json
import os

import grpc
import numpy as np
import pytest

from atelier import AtelierClient, AtelierError, GeneratedImage, stream_options
from atelier.v1 import model_service_pb2 as model_pb
from conftest import ROOT, missing

with open(os.path.join(ROOT, "internal", "servertest", "rpcs.json")) as f:
    RPCS = {k: v for k, v in json.load(f).items() if not k.startswith("_")}

BOOT = os.path.join(ROOT, "docs", "images", "sample_boot.png")


def _frames(n):
    for _ in range(n):
        yield BOOT


def _check_generate(c):
    designs = c.generate("Dress", count=2, seed=7)
    assert [d.seed for d in designs] == [7, 8]
    assert all(isinstance(d, GeneratedImage) and d.png.startswith(b"\x89PNG") for d in designs)
    again = c.generate("Dress", count=2, seed=7)
    assert [d.png for d in again] == [d.png for d in designs], "same request, same PNGs"


def _check_interpolate(c):
    steps = list(c.interpolate("Dress", start=1, end=2, steps=4))
    assert [round(t, 3) for t, _ in steps] == [0.0, 0.333, 0.667, 1.0]


def _check_classify_stream(c):
    results = [m.result for m in c.classify_stream(_frames(3), top_k=2,
                                                   options=stream_options("door"))
               if m.WhichOneof("message") == "result"]
    assert [r.frame_id for r in results] == [1, 2, 3]


def _check_detect_stream(c):
    results = [m.result for m in c.detect_stream(_frames(2)) if m.WhichOneof("message") == "result"]
    assert [r.frame_id for r in results] == [1, 2]


def _check_watch_alerts(c):
    ready = []
    with pytest.raises(AtelierError) as e:
        list(c.watch_alerts(camera_ids=["nobody-streams-here"], timeout=1, ready=lambda: ready.append(1)))
    # Alerts never end by themselves, so the deadline ends the call; when the server
    # notices the deadline first it resets the stream, which gRPC Python reports as
    # CANCELLED.
    assert e.value.code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED), e.value
    assert ready == [1], "ready was not called once the subscription was in place"


CALLS = {
    "Classify": lambda c: c.classify(BOOT, top_k=2)[0][1].score >= 0,
    "ListModels": lambda c: any(m.name == "classifier" for m in c.list_models()),
    "GetModel": lambda c: len(c.get_model("classifier").versions[0].labels) == 10,
    "GetModelStatus": lambda c: c.model_status("classifier")[0].versions[0].state
    == model_pb.VERSION_STATE_AVAILABLE,
    "Health": lambda c: c.health() == "SERVING",
    "Detect": lambda c: all(d.box[0] <= d.box[2] for d in c.detect(BOOT, min_score=0.1)),
    "Generate": _check_generate,
    "Interpolate": _check_interpolate,
    "ClassifyStream": _check_classify_stream,
    "DetectStream": _check_detect_stream,
    "WatchAlerts": _check_watch_alerts,
}


def test_every_rpc_has_a_row():
    assert sorted(CALLS) == sorted(RPCS)


@pytest.mark.parametrize("rpc", sorted(CALLS))
def test_rpc(client, rpc):
    want = RPCS[rpc]
    if want["model"] and not glob.glob(os.path.join(ROOT, "savedmodels", want["model"], "*", "saved_model.pb")):
        missing(f"the built model {want['model']} (for {rpc})", "run `make models`")
    assert CALLS[rpc](client) is not False


def test_round_robin_list(server):
    """A comma-separated list of addresses is balanced, and every call answers."""
    from atelier import AtelierClient

    with AtelierClient(f"{server},{server}", timeout=30) as c:
        got = [c.classify(np.zeros((28, 28), np.uint8), top_k=1)[0][0].class_index for _ in range(4)]
    assert len(set(got)) == 1


def test_service_config_retries_only_safe_methods():
    from atelier.client import SERVICE_CONFIG

    cfg = json.loads(SERVICE_CONFIG)
    policy = cfg["methodConfig"][0]
    names = {(n["service"], n.get("method", "*")) for n in policy["name"]}
    assert names == {("atelier.v1.ClassifyService", "Classify"), ("atelier.v1.DetectService", "Detect"),
                     ("atelier.v1.GenerateService", "Generate"), ("atelier.v1.ModelService", "ListModels"),
                     ("atelier.v1.ModelService", "GetModel"), ("atelier.v1.ModelService", "GetModelStatus"),
                     ("grpc.health.v1.Health", "Check")}
    assert policy["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert cfg["loadBalancingConfig"] == [{"round_robin": {}}]


@pytest.mark.parametrize("target,checked", [
    ("localhost:8500", False), ("127.0.0.1:1,127.0.0.1:2", True),
    ("dns:///atelier-headless.shop.svc.cluster.local:8500", True), ("dns://10.96.0.10/name:8500", True)])
def test_service_config_health_checks_several_servers(target, checked):
    from atelier.client import _service_config

    cfg = json.loads(_service_config(target))
    assert ("healthCheckConfig" in cfg) == checked
    assert cfg["loadBalancingConfig"] == [{"round_robin": {}}]
    assert cfg["methodConfig"][0]["retryPolicy"]["maxAttempts"] == 5


@pytest.mark.parametrize("policy,ok", [("block", True), ("latest", True), ("newest", False)])
def test_stream_options(policy, ok):
    if not ok:
        with pytest.raises(ValueError):
            stream_options(policy=policy)
        return
    o = stream_options("door", policy, queue_size=4, summary_every=2.5, alerts={"dresses": ["Dress"]})
    assert (o.camera_id, o.queue_size, o.summary_interval.seconds, o.summary_interval.nanos) == ("door", 4, 2, 500_000_000)
    assert [(r.name, list(r.categories), r.min_score) for r in o.alert_rules] == [("dresses", ["Dress"], 0.5)]


def test_a_call_sends_one_token():
    """The client's token goes on every call, but an admin call's own token replaces it
    (and the priority stays), so the server sees one authorization header."""
    from atelier.client import _CallDetails, _MetadataInterceptor
    i = _MetadataInterceptor([("authorization", "Bearer infer"), ("x-atelier-priority", "high")])
    plain = i._details(_CallDetails("/m", None, None, None, None, None)).metadata
    admin = i._details(_CallDetails("/m", None, AtelierClient._admin("admin"), None, None, None)).metadata
    assert plain == [("authorization", "Bearer infer"), ("x-atelier-priority", "high")]
    assert admin == [("authorization", "Bearer admin"), ("x-atelier-priority", "high")]
