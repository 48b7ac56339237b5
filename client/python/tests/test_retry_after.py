"""A call the server's rate limit refuses is retried after the wait the server asks for."""

import time

import grpc
import pytest

from atelier import AtelierClient, AtelierError
from conftest import atelierd, serving


@pytest.fixture(scope="module")
def limited_server(model_dir):
    """An atelierd that lets each caller start 4 calls a second, one at a time."""
    yield from atelierd(["--model-dir", model_dir, "--rate-limit", "4", "--rate-burst", "1"],
                        "pytest-atelierd-rate.log", serving)


def test_rate_limited_calls_wait_their_turn(limited_server):
    with AtelierClient(limited_server, timeout=10) as c:
        start = time.monotonic()
        for _ in range(6):
            assert c.list_models()
        took = time.monotonic() - start
    # 6 calls at 4 a second, one at a time: the last starts about 1.25 s after the first
    assert took >= 1.0, f"6 calls took {took:.2f}s; the rate limit was not waited out"


def test_a_wait_past_the_deadline_is_final(limited_server):
    with AtelierClient(limited_server, timeout=0.1) as c:
        with pytest.raises(AtelierError) as e:
            for _ in range(3):
                c.list_models()
    assert e.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "rate limit" in e.value.details
