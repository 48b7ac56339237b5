"""AsyncAtelierClient: AtelierClient for asyncio (FastAPI, aiohttp), on grpc.aio.

Every method of AtelierClient, with the same arguments, checks, errors, deadlines,
retries and options: the unary calls are coroutines (``await c.classify(...)``), the
streams async iterators (``async for m in c.classify_stream(frames)``), and
classify_stream and detect_stream take their frames from a sync or an async iterable.
What each method sends and accepts back is built and checked in atelier._protocol,
for both clients; only the waiting is here.

Cancellation is asyncio's: cancelling the task that awaits a call, or iterates a
stream, cancels the RPC (and a retry-after wait); close(), or leaving ``async with``,
ends every call still open with AtelierError CANCELLED.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Sequence
from contextlib import aclosing
from typing import TypeVar, Union

import grpc
from grpc_health.v1 import health_pb2  # type: ignore[import-untyped]

from atelier._channel import (
    _CLOSED_WHILE_WAITING, _MAX_TIMEOUT, _admin_metadata, _client_metadata, _Deadline,
    _merge_metadata, _open_channel, _Stubs, _timeout, _wants_tls)
from atelier._images import ImageLike
from atelier._protocol import (
    AtelierError, Detection, GeneratedImage, Prediction, _classifications, _classify_request,
    _design, _detect_request, _detections, _FrameStream, _generate_request,
    _interpolate_request, _spec, _step)
from atelier.v1 import (
    alert_service_pb2 as alert_pb,
    classify_service_pb2 as classify_pb,
    detect_service_pb2 as detect_pb,
    model_service_pb2 as model_pb,
    stream_pb2,
)

__all__ = ["AsyncAtelierClient"]

Frames = Union[Iterable[ImageLike], AsyncIterable[ImageLike]]
T = TypeVar("T")


async def _pull(frames: Frames, convert: Callable[[ImageLike], T]) -> AsyncIterator[T]:
    """convert(frame) for each of frames, run in a worker thread, as is each pull of a
    sync iterable: a camera's blocking read, a file read or a PIL image's encoding
    would otherwise stall the event loop, and every other call on it, for as long."""
    if isinstance(frames, AsyncIterable):
        async for image in frames:
            yield await asyncio.to_thread(convert, image)
        return
    it, end = iter(frames), object()

    def pull():
        image = next(it, end)
        return end if image is end else convert(image)

    while (converted := await asyncio.to_thread(pull)) is not end:
        yield converted


class _FirstStatus:
    """The status a streaming call ended with, as first reported, and not as grpc.aio
    may report it afterwards: when a request write fails because the server has just
    ended the call (a server refusing a stream's config while its frames are being
    sent), grpc.aio replaces the server's status with INTERNAL "Internal error from
    Core" (grpc/grpc#36066, still so in grpcio 1.85: 11 streams in 40 against atelierd
    with a queue_size out of range). A done callback keeps the first one."""

    _MASK = (grpc.StatusCode.INTERNAL, "Internal error from Core")

    def __init__(self, call, fail: Callable[[grpc.RpcError], AtelierError]):
        self._fail = fail  # the AtelierError of a status as grpc.aio reports it
        self._first: tuple[grpc.StatusCode, str] | None = None
        call.add_done_callback(self._keep)

    def _keep(self, call) -> None:
        if self._first is None:
            # code() and details() return at once on a call that is done; None (grpc's
            # error kept as it is) should they ever wait.
            self._first = (_at_once(call.code()), _at_once(call.details()))

    def error(self, e: grpc.RpcError) -> AtelierError | None:
        """e's AtelierError, with the server's status instead of grpc.aio's mask:
        None if that was OK (the server ended the stream as it should)."""
        if (e.code(), e.details()) != self._MASK or self._first is None or None in self._first:
            return self._fail(e)
        code, details = self._first
        return None if code == grpc.StatusCode.OK else AtelierError(code, details)


def _at_once(coroutine):
    """The value of a coroutine that returns without waiting, else None."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    finally:
        coroutine.close()
    return None


class AsyncAtelierClient(_Stubs):
    """A connection to one Atelier server, or several balanced round-robin, for
    asyncio: ``async with AsyncAtelierClient(addr) as c: await c.classify(img)``.

    The images of a unary call are converted on the event loop, before the call (bytes
    and arrays cost a copy, a path is read, a PIL image encoded to PNG); a stream's
    frames are pulled and converted in worker threads. The stubs (classify_stub, ...)
    are grpc.aio's: a call made on one directly carries only the metadata given to it,
    not the client's token or priority."""

    def __init__(self, target: str = "localhost:8500", timeout: float | None = 30.0,
                 channel: grpc.aio.Channel | None = None,
                 root_certificates: bytes | None = None, tls: bool = False,
                 certificate_chain: bytes | None = None, private_key: bytes | None = None,
                 token: str | None = None, priority: str | None = None,
                 insecure: bool = False):
        """Takes AtelierClient's options, which mean the same here (target, TLS,
        plaintext only to loopback unless insecure, token or $ATELIER_TOKEN, priority,
        timeout=None for no deadline); channel, if given, is a grpc.aio.Channel.

        Make the client inside the event loop that uses it (in a coroutine, or an
        app's startup hook): a grpc.aio channel belongs to the loop it is made in, and
        one made outside it fails every call with "attached to a different loop", so
        this raises RuntimeError at once instead."""
        self.timeout = _timeout("timeout", timeout) or _MAX_TIMEOUT
        plaintext = channel is None and not _wants_tls(tls, root_certificates, certificate_chain)
        if channel is None:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                raise RuntimeError("make AsyncAtelierClient inside the event loop that uses it "
                                   "(in a coroutine): its grpc.aio channel belongs to that loop") from None
            channel = _open_channel(grpc.aio, target, tls=tls, root_certificates=root_certificates,
                                    certificate_chain=certificate_chain, private_key=private_key,
                                    insecure=insecure)
        self.channel = channel
        self._metadata = _client_metadata(token, priority)
        self._closed = asyncio.Event()  # ends the waits of retry-after
        _Stubs.__init__(self, channel, plaintext)

    async def close(self) -> None:
        """Closes the channel: calls in flight, waiting to be made again, or
        streaming fail with AtelierError CANCELLED; a call made afterwards raises
        ValueError."""
        self._closed.set()
        await self.channel.close()

    async def __aenter__(self) -> "AsyncAtelierClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _open(self, own: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
        """The metadata of a call about to be made (own, then the client's token and
        priority); ValueError, as the sync client's closed channel raises, once the
        client is closed."""
        if self._closed.is_set():
            raise ValueError("Cannot invoke RPC on closed channel!")
        return _merge_metadata(own, self._metadata)

    def _raise_if_closed(self) -> None:
        """Called on a CancelledError from inside a call: raises AtelierError
        CANCELLED if close() cancelled the call. The caller's task was not cancelled
        then, and would take a CancelledError for its own cancellation (gather would
        cancel its siblings); a cancelled task's error is left to propagate."""
        cancelling = getattr(asyncio.current_task(), "cancelling", None)  # Python 3.11+
        if self._closed.is_set() and not (cancelling and cancelling()):
            raise AtelierError(grpc.StatusCode.CANCELLED, "the client was closed during the call") from None

    async def _call(self, method, request, metadata=None):
        """Makes one unary call as AtelierClient._call does: within the client's
        timeout, made again once a rate limit's retry-after is waited out while the
        timeout allows. close() ends the wait at once."""
        metadata = self._open(metadata)
        deadline = _Deadline(self.timeout, self._plaintext)
        while True:
            try:
                return await method(request, timeout=deadline.left(), metadata=metadata)
            except grpc.RpcError as e:
                wait = deadline.wait_after(e)
            except asyncio.CancelledError:
                self._raise_if_closed()
                raise
            try:
                await asyncio.wait_for(self._closed.wait(), wait)
            except asyncio.TimeoutError:
                continue
            raise AtelierError(grpc.StatusCode.CANCELLED, _CLOSED_WHILE_WAITING)

    async def _messages(self, call, ready: Callable[[], object] | None = None) -> AsyncIterator:
        """Yields a streaming call's messages, after calling ready (and awaiting what
        it returns, if awaitable) once the server has sent its headers. However this
        generator ends (its aclose, the task's cancellation, close(), an error), the
        call is cancelled."""
        status = _FirstStatus(call, self._fail)
        try:
            if ready is not None:
                await call.initial_metadata()
                if inspect.isawaitable(pending := ready()):
                    await pending
            async for m in call:
                yield m
        except grpc.RpcError as e:
            if (error := status.error(e)) is not None:
                raise error from None
        except asyncio.CancelledError:
            self._raise_if_closed()
            raise
        finally:
            call.cancel()  # nothing once the call has ended

    async def _frame_stream(self, method, stream: _FrameStream, frames: Frames,
                            timeout: float | None) -> AsyncIterator:
        """Runs a ClassifyStream or DetectStream (see _FrameStream), as
        AtelierClient._frame_stream does, within timeout (checked: None or seconds);
        frames are pulled as _pull says."""
        async def requests():
            yield stream.first()
            try:
                async for request in _pull(frames, stream.frame):
                    yield request
            except Exception as e:  # raised in grpc.aio's task, which would only log it
                stream.failed = e

        call = method(requests(), timeout=timeout, metadata=self._open())
        async with aclosing(self._messages(call)) as messages:
            with stream.reading():
                async for m in messages:
                    if not stream.admit(m):
                        break
                    yield m

    async def classify(self, images: Sequence[ImageLike] | ImageLike, top_k: int | None = None,
                       model: str = "", version: int = 0) -> list[list[Prediction]]:
        """The top categories of each image, best first (AtelierClient.classify)."""
        req = _classify_request(images, top_k, model, version)
        return _classifications(req, await self._call(self.classify_stub.Classify, req))

    async def detect(self, image: ImageLike, min_score: float | None = None,
                     max_detections: int | None = None, top_k: int | None = None,
                     skip_classification: bool = False, model: str = "",
                     classifier: str = "", tiling: str = "auto") -> list[Detection]:
        """The garments in one image, best first, each with its categories; tiling
        "auto", "on" or "off" (AtelierClient.detect)."""
        req = _detect_request(image, min_score, max_detections, top_k, skip_classification,
                              model, classifier, tiling)
        return _detections(req, await self._call(self.detect_stub.Detect, req))

    async def generate(self, category: str, count: int = 1, seed: int = 0, model: str = "",
                       latents: Sequence[Sequence[float]] = ()) -> list[GeneratedImage]:
        """count designs of a category; the same request draws the same PNGs."""
        req = _generate_request(category, count, seed, model, latents)
        return [_design(i) for i in (await self._call(self.generate_stub.Generate, req)).images]

    async def interpolate(self, category: str, start: int | Sequence[float],
                          end: int | Sequence[float], steps: int,
                          model: str = "") -> AsyncIterator[tuple[float, GeneratedImage]]:
        """Yields (t, design) for each step of a morph from start to end (seeds or
        latent vectors), as the server draws them."""
        req = _interpolate_request(category, start, end, steps, model)
        call = self.generate_stub.Interpolate(req, timeout=self.timeout, metadata=self._open())
        n = 0
        async with aclosing(self._messages(call)) as messages:
            async for m in messages:
                yield _step(req, n, m)
                n += 1

    def classify_stream(self, frames: Frames, top_k: int | None = None,
                        model: str = "", options: stream_pb2.StreamOptions | None = None,
                        timeout: float | None = None,
                        ) -> AsyncIterator[classify_pb.ClassifyStreamResponse]:
        """Sends frames (a sync or async iterable of images, numbered from 1) on one
        ClassifyStream and yields every message the server sends, as
        AtelierClient.classify_stream does. The arguments are checked here, before the
        stream starts, rather than when it is first read."""
        return self._frame_stream(self.classify_stub.ClassifyStream, _FrameStream.classify(
            top_k, model, options), frames, _timeout("timeout", timeout))

    def detect_stream(self, frames: Frames, model: str = "",
                      options: stream_pb2.StreamOptions | None = None,
                      timeout: float | None = None,
                      ) -> AsyncIterator[detect_pb.DetectStreamResponse]:
        """Runs Detect on frames with the same protocol as classify_stream."""
        return self._frame_stream(self.detect_stub.DetectStream, _FrameStream.detect(
            model, options), frames, _timeout("timeout", timeout))

    async def watch_alerts(self, camera_ids: Sequence[str] = (), rules: Sequence[str] = (),
                           timeout: float | None = None,
                           ready: Callable[[], object] | None = None) -> AsyncIterator[stream_pb2.Alert]:
        """Yields every alert raised from now on, until timeout or the caller stops.
        ready, if given, is called (and awaited, if it returns an awaitable) once the
        subscription is in place: every alert raised after that is yielded."""
        req = alert_pb.WatchAlertsRequest(camera_ids=camera_ids, rules=rules)
        call = self.alert_stub.WatchAlerts(req, timeout=_timeout("timeout", timeout), metadata=self._open())
        async with aclosing(self._messages(call, ready)) as messages:
            async for m in messages:
                yield m.alert

    async def list_models(self) -> list[model_pb.ModelInfo]:
        """Every loaded model's description."""
        return list((await self._call(self.model_stub.ListModels, model_pb.ListModelsRequest())).models)

    async def get_model(self, name: str, version: int = 0) -> model_pb.ModelInfo:
        """One model's description: versions, signatures, labels."""
        req = model_pb.GetModelRequest(model=_spec(name, version))
        return (await self._call(self.model_stub.GetModel, req)).model

    async def model_status(self, name: str = "") -> list[model_pb.ModelStatus]:
        """Every version's lifecycle state of one model, or of every model."""
        req = model_pb.GetModelStatusRequest(name=name)
        return list((await self._call(self.model_stub.GetModelStatus, req)).models)

    async def reload(self, token: str | None = None, wait: bool = True) -> list[model_pb.ModelStatus]:
        """Admin: re-reads the model config and rescans the model folder; with wait,
        returns once the loads it started have ended."""
        req = model_pb.ReloadRepositoryRequest(wait=wait)
        return list((await self._call(self.model_stub.ReloadRepository, req, _admin_metadata(token))).models)

    async def load_model(self, name: str, version: int, token: str | None = None) -> model_pb.VersionStatus:
        """Admin: pins one version; returns its status once AVAILABLE or FAILED."""
        req = model_pb.LoadModelRequest(model=_spec(name, version))
        return (await self._call(self.model_stub.LoadModel, req, _admin_metadata(token))).version

    async def unload_model(self, name: str, version: int, token: str | None = None) -> None:
        """Admin: evicts one version; its in-flight calls finish on it."""
        req = model_pb.UnloadModelRequest(model=_spec(name, version))
        await self._call(self.model_stub.UnloadModel, req, _admin_metadata(token))

    async def set_version_labels(self, name: str, labels: dict[str, int],
                                 token: str | None = None) -> dict[str, int]:
        """Admin: points labels at versions (0 removes one); returns the model's
        labels afterwards."""
        req = model_pb.SetVersionLabelsRequest(name=name, version_labels=labels)
        resp = await self._call(self.model_stub.SetVersionLabels, req, _admin_metadata(token))
        return dict(resp.version_labels)

    async def health(self, service: str = "") -> str:
        """The server's health status name, for example "SERVING"."""
        resp = await self._call(self.health_stub.Check, health_pb2.HealthCheckRequest(service=service))
        return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
