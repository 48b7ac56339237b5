"""AsyncAtelierClient (atelier.aio) against the real atelierd: every RPC answers as
AtelierClient's does, many calls at once share one client, cancellation reaches the
server, and the checks, errors and options are the sync client's. Answers no working
server sends, and close() mid-call, use test_edges.py's fake server; TLS and tokens
test_security.py's server.

pytest-asyncio is not installed: each test is a coroutine run by asyncio.run."""

import asyncio
import contextlib
import functools
import glob
import itertools
import os
import threading
import time
from concurrent import futures

import grpc
import numpy as np
import pytest

from atelier import AsyncAtelierClient, AtelierClient, AtelierError, PlaintextError, stream_options
from atelier.v1 import (
    classify_service_pb2 as classify_pb,
    generate_service_pb2 as generate_pb,
    model_service_pb2 as model_pb,
    model_service_pb2_grpc as model_grpc,
)
from conftest import ADMIN_TOKEN, INFER_TOKEN, ROOT, missing
from test_edges import IMG, classified, echo, fake, hang, result  # noqa: F401 (fake: a fixture)
from test_retries import FakeModels
from test_rpcs import RPCS
from test_security import INFER, certs, secure, secure_server  # noqa: F401 (fixtures)

BOOT = os.path.join(ROOT, "docs", "images", "sample_boot.png")


def in_loop(test):
    """Runs an async test in its own event loop; one still running after 120 s fails
    instead of hanging the suite."""
    @functools.wraps(test)
    def run(*args, **kwargs):
        asyncio.run(asyncio.wait_for(test(*args, **kwargs), 120))
    return run


async def collect(iterator):
    return [x async for x in iterator]


async def results(messages):
    """The frame results of a stream's messages, in order."""
    return [m.result async for m in messages if m.WhichOneof("message") == "result"]


def assert_same(got, want):
    """got and want (lists of a list of predictions each) hold the same categories in
    the same order, with scores equal to 1e-5: the server may batch concurrent frames
    or calls together, which moves a score in its last bits."""
    assert [[p.label for p in ps] for ps in got] == [[p.label for p in ps] for ps in want]
    np.testing.assert_allclose([[p.score for p in ps] for ps in got],
                               [[p.score for p in ps] for ps in want], atol=1e-5)


async def frames_of(images, pulled=None):
    """The images as an async iterable, counting the pulls in pulled[0]."""
    for image in images:
        if pulled is not None:
            pulled[0] += 1
        await asyncio.sleep(0.01)
        yield image


# --- every RPC, answered as the sync client's ------------------------------------


async def _interpolate(c, s):
    got = await collect(c.interpolate("Dress", start=1, end=2, steps=4))
    assert got == list(s.interpolate("Dress", start=1, end=2, steps=4))
    assert [round(t, 3) for t, _ in got] == [0.0, 0.333, 0.667, 1.0]


async def _classify_stream(c, s):
    """A sync list and an async generator of frames give the sync client's results."""
    want = [m.result for m in s.classify_stream([BOOT] * 3, top_k=2, options=stream_options("door"))
            if m.WhichOneof("message") == "result"]
    for frames in ([BOOT] * 3, frames_of([BOOT] * 3)):
        got = await results(c.classify_stream(frames, top_k=2, options=stream_options("door")))
        assert [r.frame_id for r in got] == [1, 2, 3]
        assert_same([r.classification.predictions for r in got], [r.classification.predictions for r in want])


async def _detect_stream(c, s):
    got = await results(c.detect_stream(frames_of([BOOT] * 2)))
    assert [r.frame_id for r in got] == [1, 2]


async def _watch_alerts(c, s):
    """An alert raised by a stream on one camera reaches a watcher subscribed first
    (ready, here a coroutine function, is awaited); a watch with no alerts ends by its
    deadline, as the sync client's."""
    subscribed = asyncio.Event()

    async def ready():
        subscribed.set()

    async def watch():
        async for alert in c.watch_alerts(camera_ids=["aio-door"], timeout=30, ready=ready):
            return alert

    watcher = asyncio.create_task(watch())
    await asyncio.wait_for(subscribed.wait(), 10)
    opts = stream_options("aio-door", alerts={"boots": ["Ankle boot"]})
    await results(c.classify_stream([BOOT] * 2, options=opts))
    alert = await asyncio.wait_for(watcher, 30)
    assert (alert.rule, alert.label, alert.camera_id, alert.frame_id) == ("boots", "Ankle boot", "aio-door", 1)

    ready_calls = []
    with pytest.raises(AtelierError) as e:
        async for _ in c.watch_alerts(camera_ids=["nobody-streams-here"], timeout=1,
                                      ready=lambda: ready_calls.append(1)):
            pass
    assert e.value.code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED), e.value
    assert ready_calls == [1]


async def _model_status(c, s):
    got = await c.model_status("classifier")
    assert got[0].versions[0].state == model_pb.VERSION_STATE_AVAILABLE
    assert got == s.model_status("classifier")


# rpc: (method, args, kwargs): the same call on both clients has the same answer.
SAME = {
    "Classify": ("classify", [[BOOT, IMG]], {"top_k": 3}),
    "Detect": ("detect", [BOOT], {"min_score": 0.1, "top_k": 2}),
    "Generate": ("generate", ["Dress"], {"count": 2, "seed": 7}),
    "ListModels": ("list_models", [], {}),
    "GetModel": ("get_model", ["classifier"], {}),
    "Health": ("health", [], {}),
}
CHECKS = {"GetModelStatus": _model_status, "Interpolate": _interpolate, "ClassifyStream": _classify_stream,
          "DetectStream": _detect_stream, "WatchAlerts": _watch_alerts}


def test_every_rpc_has_a_row():
    assert sorted({**SAME, **CHECKS}) == sorted(RPCS)


@pytest.mark.parametrize("rpc", sorted(RPCS))
@in_loop
async def test_rpc_answers_as_the_sync_client(server, client, rpc):
    model = RPCS[rpc]["model"]
    if model and not glob.glob(os.path.join(ROOT, "savedmodels", model, "*", "saved_model.pb")):
        missing(f"the built model {model} (for {rpc})", "run `make models`")
    async with AsyncAtelierClient(server, timeout=60) as c:
        if rpc in SAME:
            method, args, kwargs = SAME[rpc]
            assert await getattr(c, method)(*args, **kwargs) == getattr(client, method)(*args, **kwargs)
        else:
            await CHECKS[rpc](c, client)


# --- many calls at once -----------------------------------------------------------


@in_loop
async def test_64_concurrent_calls_answer_as_the_sync_client(server, fashion_test):
    images, _ = fashion_test
    with AtelierClient(server, timeout=60) as s:
        want = [s.classify(i, top_k=3)[0] for i in images[:64]]
    async with AsyncAtelierClient(server, timeout=60) as c:
        got = await asyncio.gather(*(c.classify(i, top_k=3) for i in images[:64]))
        assert_same([g[0] for g in got], want)
        # streams and unary calls share the client too
        streamed, unary = await asyncio.gather(results(c.classify_stream(frames_of(images[:8]), top_k=3)),
                                               asyncio.gather(*(c.classify(i, top_k=3) for i in images[:8])))
    assert_same([r.classification.predictions for r in streamed], want[:8])
    assert_same([u[0] for u in unary], want[:8])


@in_loop
async def test_a_blocking_frame_source_does_not_stall_the_loop(server):
    """A sync generator that blocks (a camera's read) is pulled in a worker thread:
    the event loop keeps running other work meanwhile."""
    def camera():
        for _ in range(3):
            time.sleep(0.5)
            yield BOOT

    ticks = []

    async def ticker():
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.02)

    t = asyncio.create_task(ticker())
    async with AsyncAtelierClient(server, timeout=60) as c:
        got = await results(c.classify_stream(camera()))
    t.cancel()
    assert [r.frame_id for r in got] == [1, 2, 3]
    assert max(np.diff(ticks)) < 0.35, "the loop stalled while a frame was read"


# --- cancellation -----------------------------------------------------------------


@pytest.mark.parametrize("source", ["sync", "async"])
@in_loop
async def test_a_stream_cancelled_mid_way(server, source):
    """Cancelling the task that reads a stream cancels the RPC: the task ends with
    CancelledError, the frames stop being pulled, and the client goes on answering."""
    pulled, answered = [0], []

    def endless():
        for i in itertools.count(1):
            pulled[0] = i
            time.sleep(0.01)
            yield BOOT

    frames = endless() if source == "sync" else frames_of(itertools.repeat(BOOT), pulled)
    async with AsyncAtelierClient(server, timeout=60) as c:
        async def read():
            async for m in c.classify_stream(frames):
                if m.WhichOneof("message") == "result":
                    answered.append(m.result.frame_id)

        task = asyncio.create_task(read())
        while len(answered) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.3)
        n = pulled[0]
        await asyncio.sleep(0.5)
        assert pulled[0] == n, "frames are still pulled"
        assert answered[:3] == [1, 2, 3]
        assert await c.health() == "SERVING"


@pytest.mark.parametrize("how", ["cancel", "aclose", "break"])
@in_loop
async def test_the_server_sees_an_abandoned_stream_end(fake, how):
    """A cancelled reader, the stream's aclose(), or a loop's break (once the
    generator is collected) cancels the call."""
    f, addr = fake
    f.classify_stream = echo
    async with AsyncAtelierClient(addr, timeout=30) as c:
        stream = c.classify_stream(frames_of(itertools.repeat(IMG)))
        if how == "cancel":
            async def read():
                async for _ in stream:
                    pass
            task = asyncio.create_task(read())
            await asyncio.sleep(0.2)
            task.cancel()
        elif how == "aclose":
            await stream.__anext__()
            await stream.aclose()
        else:
            async for _ in stream:
                break
            del stream
        assert await asyncio.to_thread(f.stream_ended.wait, 5), "the server's stream did not end"


@in_loop
async def test_a_cancelled_unary_call_ends_on_the_server(fake):
    f, addr = fake
    ended = threading.Event()

    def handler(req, ctx):
        ctx.add_callback(ended.set)
        return hang(30)(req, ctx)
    f.classify = handler
    async with AsyncAtelierClient(addr, timeout=60) as c:
        task = asyncio.create_task(c.classify(IMG))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.to_thread(ended.wait, 5), "the server's call did not end"


def refuse_with_retry_after(ms, then=None):
    """A Classify handler refusing with a rate limit's retry-after-ms trailer; with
    then, only the first call is refused and the next ones get then()."""
    calls = [0]

    def handler(req, ctx):
        calls[0] += 1
        if then is not None and calls[0] > 1:
            return then()
        ctx.set_trailing_metadata((("retry-after-ms", str(ms)),))
        ctx.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "rate limit exceeded")
    return handler


@in_loop
async def test_close_ends_calls_waits_and_streams(fake):
    """close() (here, leaving async with) ends calls in flight, a retry-after wait and
    a stream at once with AtelierError CANCELLED, never a CancelledError in a task that
    was not cancelled; a later call raises ValueError, as the sync client's."""
    f, addr = fake
    f.classify_stream = echo
    async with AsyncAtelierClient(addr, timeout=60) as c:
        f.classify = hang(10)
        in_flight = [asyncio.create_task(c.classify(IMG)) for _ in range(8)]
        await asyncio.sleep(0.3)
        f.classify = refuse_with_retry_after(20_000)
        waiting = asyncio.create_task(c.classify(IMG))
        stream = c.classify_stream(frames_of(itertools.repeat(IMG)))
        await stream.__anext__()
        await asyncio.sleep(0.3)
        start = time.monotonic()
    outcomes = await asyncio.gather(*in_flight, waiting, results(stream), return_exceptions=True)
    assert time.monotonic() - start < 2
    assert [type(e) for e in outcomes] == [AtelierError] * 10, outcomes
    assert {e.code for e in outcomes} == {grpc.StatusCode.CANCELLED}
    assert "waited to be made again" in outcomes[8].details
    with pytest.raises(ValueError, match="closed channel"):
        await c.classify(IMG)


# --- the sync client's rules ------------------------------------------------------


@pytest.mark.parametrize("call,field", [
    (lambda c: c.classify(b"png", top_k=2**40), "top_k"),
    (lambda c: c.classify(b"png", version="2"), "version"),
    (lambda c: c.detect(b"png", max_detections=2**40), "max_detections"),
    (lambda c: c.detect(b"png", tiling="sideways"), "tiling"),
    (lambda c: c.generate("Dress", count=-1), "count"),
    (lambda c: c.generate("Dress", seed=-1), "seed"),
    (lambda c: collect(c.interpolate("Dress", 1, 2, steps=1.5)), "steps"),
    (lambda c: results(c.classify_stream([IMG], top_k=2**40)), "top_k"),
    (lambda c: results(c.classify_stream([IMG], timeout=-1)), "timeout"),
])
@in_loop
async def test_bad_arguments_name_their_field(call, field):
    """An argument the request cannot hold fails before any call, naming its field."""
    async with AsyncAtelierClient("127.0.0.1:1", timeout=1) as c:
        with pytest.raises((ValueError, TypeError), match=field):
            await call(c)


@in_loop
async def test_the_servers_errors_and_a_bad_frame(server):
    async with AsyncAtelierClient(server, timeout=60) as c:
        with pytest.raises(AtelierError) as e:
            await c.classify(IMG, model="nope")
        assert e.value.code == grpc.StatusCode.NOT_FOUND
        with pytest.raises(AtelierError, match="top_k 0") as e:
            await c.classify(IMG, top_k=0)
        assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(TypeError, match="frame 2: arrays must be uint8, not float64"):
            await results(c.classify_stream([IMG, IMG.astype(float), IMG]))

        async def camera():
            yield IMG
            raise RuntimeError("camera unplugged")
        with pytest.raises(RuntimeError, match="camera unplugged"):
            await results(c.classify_stream(camera()))


@in_loop
async def test_a_stream_refused_while_its_frames_are_sent_reports_the_servers_status(server):
    """grpc.aio reports INTERNAL "Internal error from Core" instead of the server's
    status when a frame's write fails because the server has just ended the stream
    (grpc/grpc#36066): about one stream in four, before the client kept the first
    status. Each of these streams has a config the server refuses, and endless frames."""
    def endless():
        while True:
            yield IMG

    async with AsyncAtelierClient(server, timeout=60) as c:
        codes = []
        for _ in range(30):
            with pytest.raises(AtelierError) as e:
                await results(c.classify_stream(endless(), options=stream_options(queue_size=1000)))
            codes.append((e.value.code, "queue_size 1000 is out of range" in e.value.details))
    assert codes == [(grpc.StatusCode.INVALID_ARGUMENT, True)] * 30


@pytest.mark.parametrize("timeout,error", [(0, ValueError), (float("nan"), ValueError), ("3", TypeError)])
@in_loop
async def test_bad_timeouts_name_themselves(timeout, error):
    with pytest.raises(error, match="timeout"):
        AsyncAtelierClient("127.0.0.1:1", timeout=timeout)


@in_loop
async def test_plaintext_only_to_loopback():
    with pytest.raises(PlaintextError, match="10.0.0.7:8500 is not a loopback address"):
        AsyncAtelierClient("127.0.0.1:1,10.0.0.7:8500", token="secret")
    await AsyncAtelierClient("10.0.0.7:8500", insecure=True).close()
    await AsyncAtelierClient("10.0.0.7:8500", tls=True).close()


def test_made_outside_an_event_loop_is_refused():
    with pytest.raises(RuntimeError, match="inside the event loop"):
        AsyncAtelierClient("127.0.0.1:1")


@contextlib.contextmanager
def model_service(servicer):
    """Serves servicer's ModelService on a loopback port; yields its address."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    model_grpc.add_ModelServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None)


@pytest.mark.parametrize("rpc,call,attempts", [
    ("ListModels", lambda c: c.list_models(), 2),
    ("GetModelStatus", lambda c: c.model_status(), 2),
    ("UnloadModel", lambda c: c.unload_model("classifier", 2), 1),
    ("SetVersionLabels", lambda c: c.set_version_labels("classifier", {"stable": 2}), 1),
])
@in_loop
async def test_reads_are_retried_and_admin_calls_are_not(rpc, call, attempts):
    """The sync client's service config: UNAVAILABLE is retried for the reads only."""
    models = FakeModels()
    with model_service(models) as addr:
        async with AsyncAtelierClient(addr, timeout=10) as c:
            if attempts == 1:
                with pytest.raises(AtelierError) as e:
                    await call(c)
                assert e.value.code == grpc.StatusCode.UNAVAILABLE
            else:
                await call(c)
    assert models.calls[rpc] == attempts


@in_loop
async def test_a_rate_limited_call_waits_its_turn(fake):
    f, addr = fake
    f.classify = refuse_with_retry_after(300, then=lambda: classified("a"))
    async with AsyncAtelierClient(addr, timeout=10) as c:
        start = time.monotonic()
        assert (await c.classify(IMG))[0][0].label == "a"
        assert time.monotonic() - start >= 0.3 and f.calls == 2
        f.classify = refuse_with_retry_after(60_000)  # past the deadline: final at once
        with pytest.raises(AtelierError, match="rate limit") as e:
            await c.classify(IMG)
        assert e.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and f.calls == 3


class Recorder(model_grpc.ModelServiceServicer):
    """Keeps the metadata of each call."""

    def __init__(self):
        self.seen = []

    def _keep(self, ctx):
        self.seen.append([(k, v) for k, v in ctx.invocation_metadata()
                          if k in ("authorization", "x-atelier-priority")])

    def ListModels(self, request, context):
        self._keep(context)
        return model_pb.ListModelsResponse()

    def ReloadRepository(self, request, context):
        self._keep(context)
        return model_pb.ReloadRepositoryResponse()


@in_loop
async def test_a_call_sends_one_token(monkeypatch):
    """The client's token ($ATELIER_TOKEN here) and priority go on every call; an
    admin call's own token replaces the client's."""
    monkeypatch.setenv("ATELIER_TOKEN", "infer")
    recorder = Recorder()
    with model_service(recorder) as addr:
        async with AsyncAtelierClient(addr, priority="high") as c:
            await c.list_models()
            await c.reload(token="admin")
    assert recorder.seen == [[("authorization", "Bearer infer"), ("x-atelier-priority", "high")],
                             [("authorization", "Bearer admin"), ("x-atelier-priority", "high")]]


# --- answers no working server sends (test_edges.py's fake) -----------------------


@in_loop
async def test_broken_answers_are_internal(fake):
    f, addr = fake
    sent = []

    def endless_steps(req, ctx):
        for i in itertools.count():
            sent.append(i)
            yield generate_pb.InterpolateResponse(step=i, image=generate_pb.GeneratedImage(png=b"png"))

    def one_then_end(frames, ctx):
        yield result(next(frames).frame_id)
        next(frames)

    f.classify = lambda req, ctx: classify_pb.ClassifyResponse()
    f.interpolate = endless_steps
    async with AsyncAtelierClient(addr, timeout=10) as c:
        for call, match in [
            (lambda: c.classify([IMG, IMG]), "answered 0 classifications for 2 images"),
            (lambda: collect(c.interpolate("Dress", 1, 2, steps=3)), "more than the 3 steps asked for"),
        ]:
            with pytest.raises(AtelierError, match=match) as e:
                await call()
            assert e.value.code == grpc.StatusCode.INTERNAL
        await asyncio.sleep(0.5)
        n = len(sent)
        await asyncio.sleep(0.5)
        assert len(sent) == n, "the server still streams: the call was not cancelled"

        for handler, match in [
            (lambda frames, ctx: (result(99) for _ in frames), "result for frame 99 after frame 0's"),
            (lambda frames, ctx: (result(1) for _ in frames), "result for frame 1 after frame 1's"),
            (one_then_end, r"ended the stream without answering frames 2\.\.[23]"),
        ]:
            f.classify_stream = handler
            with pytest.raises(AtelierError, match=match) as e:
                await results(c.classify_stream([IMG] * 3))
            assert e.value.code == grpc.StatusCode.INTERNAL


# --- TLS, tokens and admin calls --------------------------------------------------


@in_loop
async def test_mtls_and_token(secure_server, certs):
    pem = {name: (certs / name).read_bytes() for name in ("ca.pem", "client.pem", "client.key")}

    def client(**kw):
        return AsyncAtelierClient(secure_server, timeout=30, root_certificates=pem["ca.pem"],
                                  certificate_chain=pem["client.pem"], private_key=pem["client.key"], **kw)

    async with client(token=INFER, priority="high") as c:
        assert "classifier" in [m.name for m in await c.list_models()]
        with secure(secure_server, certs, INFER) as s:
            assert await c.classify(IMG, top_k=2) == s.classify(IMG, top_k=2)
    async with client(token="py-wrong-0123456789abcdef") as c:
        with pytest.raises(AtelierError) as e:
            await c.list_models()
        assert e.value.code == grpc.StatusCode.UNAUTHENTICATED
    async with AsyncAtelierClient(secure_server, timeout=5, token=INFER) as c:  # plaintext to TLS
        with pytest.raises(AtelierError) as e:
            await c.list_models()
        assert e.value.code == grpc.StatusCode.UNAVAILABLE


@in_loop
async def test_admin_calls(admin_server):
    """Labels, unload and load of a version with the admin token, on a client whose own
    token is the infer one; the infer token alone is refused."""
    async with AsyncAtelierClient(admin_server, timeout=60, token=INFER_TOKEN) as c:
        with pytest.raises(AtelierError) as e:
            await c.unload_model("classifier", 1)
        assert e.value.code == grpc.StatusCode.PERMISSION_DENIED
        assert "classifier" in [m.name for m in await c.reload(token=ADMIN_TOKEN)]
        assert await c.set_version_labels("classifier", {"stable": 1}, token=ADMIN_TOKEN) == {"stable": 1}
        assert await c.set_version_labels("classifier", {"stable": 0}, token=ADMIN_TOKEN) == {}
        await c.unload_model("classifier", 1, token=ADMIN_TOKEN)
        with pytest.raises(AtelierError) as e:
            await c.classify(IMG)
        assert e.value.code == grpc.StatusCode.NOT_FOUND
        version = await c.load_model("classifier", 1, token=ADMIN_TOKEN)
        assert (version.version, version.state) == (1, model_pb.VERSION_STATE_AVAILABLE)
        assert len((await c.classify(IMG, top_k=2))[0]) == 2
