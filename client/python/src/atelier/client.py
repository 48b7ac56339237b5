"""AtelierClient: every Atelier RPC as one typed call.

Unary calls have a deadline (``timeout`` seconds, 30 by default); the read-only and
idempotent ones (Classify, Detect, Generate, ModelService's reads, Health) are retried
on UNAVAILABLE through the gRPC service config, and a call the server's rate limit
refuses is made again once the wait it asks for (its retry-after) is over, within the
timeout. Several addresses ("127.0.0.1:8500,127.0.0.1:8501") are balanced
round-robin, as in the Go client.
Streams take frames from any iterator and yield the server's messages as they come.

atelier.aio.AsyncAtelierClient is the same client for asyncio. What both send and
check is in atelier._protocol, where their calls go and how in atelier._channel, what
an image may be in atelier._images; this module only waits.
"""

from __future__ import annotations

import collections
import contextlib
import threading
from typing import Callable, Iterable, Iterator, Sequence

import grpc
from grpc_health.v1 import health_pb2  # type: ignore[import-untyped]

# Besides what this module uses, what callers import from atelier.client, which held
# it all before the async client came to share it: the public types, to_image, the
# limits, the service configs.
from atelier._channel import (
    _CLOSED_WHILE_WAITING,
    _MAX_TIMEOUT,
    BALANCED_SERVICE_CONFIG,
    SERVICE_CONFIG,
    PlaintextError,
    _admin_metadata,
    _client_metadata,
    _Deadline,
    _merge_metadata,
    _open_channel,
    _service_config,
    _Stubs,
    _target,
    _timeout,
    _wants_tls,
)
from atelier._images import MAX_IMAGE_BYTES, MAX_MESSAGE_BYTES, ImageLike, to_image
from atelier._protocol import (
    AtelierError,
    Detection,
    GeneratedImage,
    Prediction,
    _classifications,
    _classify_request,
    _design,
    _detect_request,
    _detections,
    _FrameStream,
    _generate_request,
    _interpolate_request,
    _spec,
    _step,
    stream_options,
)
from atelier.v1 import (
    alert_service_pb2 as alert_pb,
    classify_service_pb2 as classify_pb,
    detect_service_pb2 as detect_pb,
    model_service_pb2 as model_pb,
    stream_pb2,
)

# Tracebacks, reprs and pickles name the public types by this module, as before.
for _public in (AtelierError, Detection, GeneratedImage, PlaintextError, Prediction, stream_options, to_image):
    _public.__module__ = __name__
del _public


class _CallDetails(collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")),
        grpc.ClientCallDetails):
    """A call's details with the metadata replaced."""


class _MetadataInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                           grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds fixed metadata (the bearer token, the priority) to every call, except the
    keys a call sets itself: an admin call's token replaces the client's, so that the
    call sends one token, the one it was given."""

    def __init__(self, metadata: list[tuple[str, str]]):
        self._metadata = metadata

    def _details(self, d):
        md = _merge_metadata(d.metadata, self._metadata)
        return _CallDetails(d.method, d.timeout, md, d.credentials, d.wait_for_ready, d.compression)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, requests):
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._details(details), requests)


class AtelierClient(_Stubs):
    """A connection to one Atelier server, or several balanced round-robin."""

    def __init__(self, target: str = "localhost:8500", timeout: float = 30.0,
                 channel: grpc.Channel | None = None,
                 root_certificates: bytes | None = None, tls: bool = False,
                 certificate_chain: bytes | None = None, private_key: bytes | None = None,
                 token: str | None = None, priority: str | None = None,
                 insecure: bool = False):
        """target is "host:port", a comma-separated list of IP:port addresses, or a
        dns: target ("dns:///atelier-headless:8500", "dns://10.96.0.10/name:8500")
        whose every address is used. root_certificates (PEM) or tls=True (system
        roots) connect with TLS; certificate_chain and private_key (PEM) add a client
        certificate (mTLS). Without TLS, a target that is not loopback (localhost,
        127.0.0.0/8, ::1, unix:) raises PlaintextError unless insecure=True sends
        plaintext on purpose. token is sent as "authorization: Bearer <token>" on
        every call (default: $ATELIER_TOKEN); priority ("high", "normal", "low") as
        x-atelier-priority. timeout=None sets no deadline."""
        timeout = _timeout("timeout", timeout) or _MAX_TIMEOUT
        plaintext = channel is None and not _wants_tls(tls, root_certificates, certificate_chain)
        if channel is None:
            channel = _open_channel(grpc, target, tls=tls, root_certificates=root_certificates,
                                    certificate_chain=certificate_chain, private_key=private_key,
                                    insecure=insecure)
        metadata = _client_metadata(token, priority)
        if metadata:  # on the stubs' calls too
            channel = grpc.intercept_channel(channel, _MetadataInterceptor(metadata))
        self.channel = channel
        self.timeout = timeout
        self._closed = threading.Event()  # ends the waits of retry-after
        _Stubs.__init__(self, self.channel, plaintext)

    def close(self) -> None:
        """Closes the channel: calls in flight, or waiting to be made again, fail with
        CANCELLED, streams too; a call made afterwards raises ValueError."""
        self._closed.set()
        self.channel.close()

    def __enter__(self) -> "AtelierClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method, request, metadata=None):
        """Makes one unary call within the client's timeout. A call the server's rate
        limit refuses (RESOURCE_EXHAUSTED with a retry-after trailer) is made again
        once the wait the server asks for is over, while the timeout allows."""
        deadline = _Deadline(self.timeout, self._plaintext)
        while True:
            try:
                return method(request, timeout=deadline.left(), metadata=metadata)
            except grpc.RpcError as e:
                if self._closed.wait(deadline.wait_after(e)):
                    raise AtelierError(grpc.StatusCode.CANCELLED, _CLOSED_WHILE_WAITING) from None

    def _stream(self, call) -> Iterator:
        """Yields a streaming call's messages. Closing the generator (a loop's break,
        or its garbage collection) cancels the call."""
        try:
            yield from call
        except grpc.RpcError as e:
            raise self._fail(e) from None
        finally:
            call.cancel()  # nothing once the call has ended

    def _frame_stream(self, method, stream: _FrameStream, frames: Iterable[ImageLike],
                      timeout: float | None) -> Iterator:
        """Runs a ClassifyStream or DetectStream (see _FrameStream): sends its config,
        then each of frames, and yields the server's messages. An error that frames
        raises (or a frame to_image refuses) ends the stream and is raised as it is."""
        def requests():
            yield stream.first()
            try:
                for image in frames:
                    yield stream.frame(image)
            except Exception as e:  # raised in gRPC's thread, which would only log it
                stream.failed = e

        responses = self._stream(method(requests(), timeout=_timeout("timeout", timeout)))
        # closing cancels the call, however this generator ends
        with contextlib.closing(responses), stream.reading():
            for m in responses:
                if not stream.admit(m):
                    break
                yield m

    def classify(self, images: Sequence[ImageLike] | ImageLike, top_k: int | None = None,
                 model: str = "", version: int = 0) -> list[list[Prediction]]:
        """Returns the top categories of each image, best first."""
        req = _classify_request(images, top_k, model, version)
        return _classifications(req, self._call(self.classify_stub.Classify, req))

    def detect(self, image: ImageLike, min_score: float | None = None,
               max_detections: int | None = None, top_k: int | None = None,
               skip_classification: bool = False, model: str = "",
               classifier: str = "", tiling: str = "auto") -> list[Detection]:
        """Returns the garments in one image, best first, each with its categories.

        tiling is "auto" (the server also searches overlapping tiles of a picture more
        than 2.5 times the detector's input), "on" or "off".
        """
        req = _detect_request(image, min_score, max_detections, top_k, skip_classification,
                              model, classifier, tiling)
        return _detections(req, self._call(self.detect_stub.Detect, req))

    def generate(self, category: str, count: int = 1, seed: int = 0, model: str = "",
                 latents: Sequence[Sequence[float]] = ()) -> list[GeneratedImage]:
        """Draws count designs of a category; the same request draws the same PNGs."""
        req = _generate_request(category, count, seed, model, latents)
        return [_design(i) for i in self._call(self.generate_stub.Generate, req).images]

    def interpolate(self, category: str, start: int | Sequence[float],
                    end: int | Sequence[float], steps: int,
                    model: str = "") -> Iterator[tuple[float, GeneratedImage]]:
        """Yields (t, design) for each step of a morph from start to end (seeds or
        latent vectors), as the server draws them."""
        req = _interpolate_request(category, start, end, steps, model)
        for n, m in enumerate(self._stream(self.generate_stub.Interpolate(req, timeout=self.timeout))):
            yield _step(req, n, m)

    def classify_stream(self, frames: Iterable[ImageLike], top_k: int | None = None,
                        model: str = "", options: stream_pb2.StreamOptions | None = None,
                        timeout: float | None = None,
                        ) -> Iterator[classify_pb.ClassifyStreamResponse]:
        """Sends frames (any iterator of images, numbered from 1) on one
        ClassifyStream and yields every message the server sends: frame results in
        frame order, tally summaries and alerts (see WhichOneof("message"))."""
        yield from self._frame_stream(self.classify_stub.ClassifyStream,
                                      _FrameStream.classify(top_k, model, options), frames, timeout)

    def detect_stream(self, frames: Iterable[ImageLike], model: str = "",
                      options: stream_pb2.StreamOptions | None = None,
                      timeout: float | None = None,
                      ) -> Iterator[detect_pb.DetectStreamResponse]:
        """Runs Detect on frames with the same protocol as classify_stream."""
        yield from self._frame_stream(self.detect_stub.DetectStream,
                                      _FrameStream.detect(model, options), frames, timeout)

    def watch_alerts(self, camera_ids: Sequence[str] = (), rules: Sequence[str] = (),
                     timeout: float | None = None,
                     ready: Callable[[], None] | None = None) -> Iterator[stream_pb2.Alert]:
        """Yields every alert raised from now on, until timeout or the caller stops.
        ready, if given, is called once the server has answered the call (the
        subscription is in place): every alert raised after that is yielded."""
        req = alert_pb.WatchAlertsRequest(camera_ids=camera_ids, rules=rules)
        call = self.alert_stub.WatchAlerts(req, timeout=_timeout("timeout", timeout))
        if ready is not None:
            call.initial_metadata()  # the server sends its headers once subscribed
            ready()
        for m in self._stream(call):
            yield m.alert

    def list_models(self) -> list[model_pb.ModelInfo]:
        """Returns every loaded model's description."""
        return list(self._call(self.model_stub.ListModels, model_pb.ListModelsRequest()).models)

    def get_model(self, name: str, version: int = 0) -> model_pb.ModelInfo:
        """Returns one model's description: versions, signatures, labels."""
        req = model_pb.GetModelRequest(model=_spec(name, version))
        return self._call(self.model_stub.GetModel, req).model

    def model_status(self, name: str = "") -> list[model_pb.ModelStatus]:
        """Returns every version's lifecycle state (LOADING, WARMING, AVAILABLE,
        UNLOADING, FAILED with its error) of one model, or of every model."""
        req = model_pb.GetModelStatusRequest(name=name)
        return list(self._call(self.model_stub.GetModelStatus, req).models)

    _admin = staticmethod(_admin_metadata)

    def reload(self, token: str | None = None, wait: bool = True) -> list[model_pb.ModelStatus]:
        """Admin: re-reads the model config and rescans the model folder (as SIGHUP
        does); with wait, returns once the loads it started have ended."""
        req = model_pb.ReloadRepositoryRequest(wait=wait)
        return list(self._call(self.model_stub.ReloadRepository, req, self._admin(token)).models)

    def load_model(self, name: str, version: int, token: str | None = None) -> model_pb.VersionStatus:
        """Admin: pins one version; returns its status once AVAILABLE or FAILED."""
        req = model_pb.LoadModelRequest(model=_spec(name, version))
        return self._call(self.model_stub.LoadModel, req, self._admin(token)).version

    def unload_model(self, name: str, version: int, token: str | None = None) -> None:
        """Admin: evicts one version; its in-flight calls finish on it."""
        req = model_pb.UnloadModelRequest(model=_spec(name, version))
        self._call(self.model_stub.UnloadModel, req, self._admin(token))

    def set_version_labels(self, name: str, labels: dict[str, int],
                           token: str | None = None) -> dict[str, int]:
        """Admin: points labels (e.g. {"stable": 3}) at versions; 0 removes a label.
        Returns the model's labels afterwards."""
        req = model_pb.SetVersionLabelsRequest(name=name, version_labels=labels)
        return dict(self._call(self.model_stub.SetVersionLabels, req, self._admin(token)).version_labels)

    def health(self, service: str = "") -> str:
        """Returns the server's health status name, for example "SERVING"."""
        resp = self._call(self.health_stub.Check, health_pb2.HealthCheckRequest(service=service))
        return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)

