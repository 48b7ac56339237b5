"""Client-side health checking: a client given several servers (here a list, as a
dns: name with several addresses is) watches each one's grpc.health.v1 status and
sends calls only to those SERVING, against two fake servers whose status the test
sets. The cluster test (deploy/clustertest) shows the same through DNS with real
replicas; this one isolates the health check from draining and DNS."""

import collections
import threading
import time
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from atelier import AtelierClient
from atelier.v1 import model_service_pb2 as model_pb, model_service_pb2_grpc as model_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Counted(model_grpc.ModelServiceServicer):
    """Counts the ListModels calls each server answers."""

    def __init__(self, name, counts, lock):
        self.name, self.counts, self.lock = name, counts, lock

    def ListModels(self, request, context):
        with self.lock:
            self.counts[self.name] += 1
        return model_pb.ListModelsResponse()


@pytest.fixture
def servers():
    """Two servers, A and B, each with a health service (status "" settable); yields
    their addresses, their health servicers and the calls each answered."""
    counts, lock = collections.Counter(), threading.Lock()
    started, addrs, healths = [], {}, {}
    for name in "AB":
        s = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        h = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(h, s)
        model_grpc.add_ModelServiceServicer_to_server(Counted(name, counts, lock), s)
        addrs[name] = f"127.0.0.1:{s.add_insecure_port('127.0.0.1:0')}"
        s.start()
        h.set("", SERVING)
        started.append(s)
        healths[name] = h
    yield addrs, healths, counts
    for s in started:
        s.stop(None)


def calls(c, counts, n):
    """Makes n calls; returns how many each server answered."""
    counts.clear()
    for _ in range(n):
        c.list_models()
    return dict(counts)


def until(c, counts, want, limit=10.0):
    """Calls until want(answered by each over the last 20 calls) holds, for up to
    limit seconds; returns the last count."""
    deadline = time.monotonic() + limit
    while True:
        got = calls(c, counts, 20)
        if want(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_calls_avoid_a_not_serving_server_and_spread_once_it_serves(servers):
    addrs, healths, counts = servers
    healths["B"].set("", NOT_SERVING)  # starting: not ready for calls
    with AtelierClient(f"{addrs['A']},{addrs['B']}", timeout=5) as c:
        c.list_models()  # connected (to A: B is not ready)
        time.sleep(0.3)  # both health watches have answered
        got = calls(c, counts, 40)
        assert got == {"A": 40}, f"with B NOT_SERVING, calls went {got}, want all on A"

        healths["B"].set("", SERVING)
        got = until(c, counts, lambda g: g.get("B", 0) > 0)
        assert got.get("B", 0) > 0, f"B SERVING again, but after 10 s calls still went {got}"
        got = calls(c, counts, 60)
        assert set(got) == {"A", "B"} and all(27 <= n <= 33 for n in got.values()), \
            f"with both SERVING, 60 calls went {got}, want 30 each ±10%"

        healths["A"].set("", NOT_SERVING)  # draining: its calls go elsewhere
        got = until(c, counts, lambda g: "A" not in g)
        assert got == {"B": 20}, f"A NOT_SERVING, but after 10 s calls still went {got}"
        got = calls(c, counts, 40)
        assert got == {"B": 40}, f"with A NOT_SERVING, calls went {got}, want all on B"
