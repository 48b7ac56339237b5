"""AtelierClient: every Atelier RPC as one typed call.

Unary calls have a deadline (``timeout`` seconds, 30 by default); the read-only and
idempotent ones (Classify, Detect, Generate, ModelService's reads, Health) are retried
on UNAVAILABLE through the gRPC service config, and a call the server's rate limit
refuses is made again once the wait it asks for (its retry-after) is over, within the
timeout. Several addresses ("127.0.0.1:8500,127.0.0.1:8501") are balanced
round-robin, as in the Go client.
Streams take frames from any iterator and yield the server's messages as they come.
"""

from __future__ import annotations

import collections
import errno
import io
import ipaddress
import json
import numbers
import os
import random
import stat
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence, Union

import grpc
import numpy as np
from google.protobuf import duration_pb2, timestamp_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]

from atelier.v1 import (
    alert_service_pb2 as alert_pb,
    alert_service_pb2_grpc as alert_grpc,
    classify_service_pb2 as classify_pb,
    classify_service_pb2_grpc as classify_grpc,
    common_pb2,
    detect_service_pb2 as detect_pb,
    detect_service_pb2_grpc as detect_grpc,
    generate_service_pb2 as generate_pb,
    generate_service_pb2_grpc as generate_grpc,
    model_service_pb2 as model_pb,
    model_service_pb2_grpc as model_grpc,
    stream_pb2,
)

if TYPE_CHECKING:
    import PIL.Image

ImageLike = Union[str, os.PathLike, bytes, np.ndarray, "PIL.Image.Image", common_pb2.Image]

MAX_MESSAGE_BYTES = 64 << 20

# One image: a request's limit less room for the rest of it, as the Go CLI's. A file
# larger than that fails by its size, before it is read.
MAX_IMAGE_BYTES = MAX_MESSAGE_BYTES - (1 << 20)
_OVER = (f"over the {MAX_IMAGE_BYTES}-byte limit of one image (the 64 MiB request limit, "
         "less room for the rest of the request)")

# gRPC Python turns a deadline past 2**63 ns since 1970 (a timeout of about 7e9 s, or
# inf) into one already past, so that the call fails at once with DEADLINE_EXCEEDED: a
# longer timeout is taken as this one, 31 years, as good as none.
_MAX_TIMEOUT = 1e9

# What the protocol allows an answer to hold (top_k 1..1000, max_detections 1..100):
# more is a broken server's, refused before it becomes Python objects (16 MB of
# predictions took 880 MB and 12 s as Prediction objects).
_MAX_TOP_K, _MAX_DETECTIONS = 1000, 100

# The methods a retry cannot harm: read-only or idempotent. The admin calls
# (ReloadRepository, LoadModel, UnloadModel, SetVersionLabels) are not: an attempt may
# have run before its answer was lost, and a second would report a false error
# (UnloadModel's NOT_FOUND).
_RETRYABLE = [
    {"service": "atelier.v1.ClassifyService", "method": "Classify"},
    {"service": "atelier.v1.DetectService", "method": "Detect"},
    {"service": "atelier.v1.GenerateService", "method": "Generate"},
    {"service": "atelier.v1.ModelService", "method": "ListModels"},
    {"service": "atelier.v1.ModelService", "method": "GetModel"},
    {"service": "atelier.v1.ModelService", "method": "GetModelStatus"},
    {"service": "grpc.health.v1.Health", "method": "Check"},
]

_SERVICE_CONFIG = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [{
        "name": _RETRYABLE,
        "retryPolicy": {
            "maxAttempts": 5, "initialBackoff": "0.05s", "maxBackoff": "1s",
            "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"],
        },
    }],
}
SERVICE_CONFIG = json.dumps(_SERVICE_CONFIG)

# For several servers (a list, or a dns: name with several addresses): only those
# whose grpc.health.v1 status is SERVING get calls, so a starting or draining replica
# is skipped before it closes its connections.
BALANCED_SERVICE_CONFIG = json.dumps({**_SERVICE_CONFIG, "healthCheckConfig": {"serviceName": ""}})


class AtelierError(Exception):
    """A failed call: code is the gRPC status code, details the server's message.
    The exception's text shows the message's control and format characters (ESC, a
    newline, a bidi override) escaped, so that a traceback cannot drive the terminal;
    details holds it exactly."""

    def __init__(self, code: grpc.StatusCode, details: str | None):
        details = details or ""  # gRPC's None for a status without a message
        super().__init__(f"{code.name}: {_printable(details)}")
        self.code, self.details = code, details


def _printable(text: str) -> str:
    """text with every character that is not printable escaped as in a Python string
    literal (\\x1b, \\n, \\u202e)."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class PlaintextError(ValueError):
    """AtelierClient's refusal to send plaintext (and a token with it) to an address
    that is not loopback when neither TLS nor insecure=True is asked for."""

    def __init__(self, address: str):
        super().__init__(f"{address} is not a loopback address: use TLS (tls=True or "
                         "root_certificates=...), or insecure=True to send plaintext on purpose")
        self.address = address


@dataclass(frozen=True)
class Prediction:
    """One category and its probability."""

    label: str
    class_index: int
    score: float


@dataclass(frozen=True)
class Detection:
    """One garment: its box in pixels (x_min, y_min, x_max, y_max), coarse type,
    detector score and, unless skipped, its fine categories."""

    box: tuple[float, float, float, float]
    garment_type: str
    score: float
    predictions: list[Prediction] = field(default_factory=list)


@dataclass(frozen=True)
class GeneratedImage:
    """One generated design: a PNG and what made it."""

    png: bytes
    category: str
    seed: int
    latent: list[float]

    def image(self) -> "PIL.Image.Image":
        """Decodes the PNG."""
        from PIL import Image

        return Image.open(io.BytesIO(self.png))


def to_image(image: ImageLike) -> common_pb2.Image:
    """Converts a path, encoded bytes, a PIL image or an HxWx3 / HxW uint8 array.

    An image over MAX_IMAGE_BYTES raises ValueError before it is read or copied (a
    file by its size); so does a path that is not a regular file (a FIFO would wait
    for a writer, /dev/zero never end): read it and pass the bytes."""
    if isinstance(image, common_pb2.Image):
        return image
    if isinstance(image, (str, os.PathLike)):
        return common_pb2.Image(encoded=_read_file(image))
    if isinstance(image, bytes):
        if len(image) > MAX_IMAGE_BYTES:
            raise ValueError(f"the image is {len(image)} bytes, {_OVER}")
        return common_pb2.Image(encoded=image)
    if isinstance(image, np.ndarray):
        image = np.asarray(image)  # a np.matrix stays 2-D through np.repeat
        if image.dtype != np.uint8:
            raise TypeError(f"arrays must be uint8, not {image.dtype}")
        if image.ndim not in (2, 3) or image.ndim == 3 and image.shape[2] != 3:
            raise ValueError(f"arrays must be HxW or HxWx3, not {image.shape}")
        h, w = image.shape[:2]
        if h * w == 0:
            raise ValueError(f"arrays must hold at least one pixel, not {image.shape}")
        if h * w * 3 > MAX_IMAGE_BYTES:  # before the copy: a broadcast array takes no memory
            raise ValueError(f"a {h}x{w} array is {h * w * 3} bytes as RGB, {_OVER}")
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        return common_pb2.Image(raw=common_pb2.RawImage(
            rgb=np.ascontiguousarray(image).tobytes(), width=w, height=h))
    if hasattr(image, "save"):  # PIL.Image.Image
        mode = getattr(image, "mode", "")
        if mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX", "PA"):  # no PNG holds them
            image = image.convert("RGBA" if mode == "PA" else "RGB")
        buf = io.BytesIO()
        try:
            image.save(buf, format="PNG")
        except OSError as e:  # "cannot write mode F as PNG"
            raise ValueError(f"cannot send a PIL image in mode {mode} ({e}): "
                             "convert it to RGB or L first") from None
        if buf.tell() > MAX_IMAGE_BYTES:
            raise ValueError(f"the PIL image is {buf.tell()} bytes as PNG, {_OVER}")
        return common_pb2.Image(encoded=buf.getvalue())
    raise TypeError(f"cannot send {type(image).__name__} as an image")


def _read_file(path: str | os.PathLike) -> bytes:
    """The bytes of an image file, read only if it is a regular file of at most
    MAX_IMAGE_BYTES."""
    # O_NONBLOCK: the open of a FIFO would otherwise wait for a writer.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        st = os.fstat(fd)  # of what was opened, not of what the name points to now
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"image {os.fspath(path)!r} is not a regular file (a FIFO, a "
                             "device or a socket): read it and pass the bytes")
        if st.st_size > MAX_IMAGE_BYTES:
            raise ValueError(f"image {os.fspath(path)!r} is {st.st_size} bytes, {_OVER}")
        with open(fd, "rb", closefd=False) as f:
            data = f.read(MAX_IMAGE_BYTES + 1)  # the file may have grown since
    finally:
        os.close(fd)
    if len(data) > MAX_IMAGE_BYTES:
        raise ValueError(f"image {os.fspath(path)!r} is {_OVER}")
    return data


def _build(cls, **fields):
    """cls(**fields), the fields that are None left unset; a value the field cannot
    hold raises a ValueError or TypeError that names the field."""
    fields = {k: v for k, v in fields.items() if v is not None}
    try:
        return cls(**fields)
    except (ValueError, TypeError) as e:
        for name, value in fields.items():
            try:
                cls(**{name: value})
            except (ValueError, TypeError):
                raise type(e)(f"{name}={value!r}: {e}") from None
        raise


def _spec(name: str, version: int = 0) -> common_pb2.ModelSpec:
    return _build(common_pb2.ModelSpec, name=name, version=version)


def _predictions(c: common_pb2.Classification, top_k: int | None) -> list[Prediction]:
    if len(c.predictions) > (top_k or _MAX_TOP_K):
        raise _broken(f"the server sent {len(c.predictions)} predictions for one image, "
                      f"more than the {top_k or _MAX_TOP_K} asked for")
    return [Prediction(p.label, p.class_index, p.score) for p in c.predictions]


def _broken(what: str) -> AtelierError:
    """The error of an answer no working server sends (as the Go CLI's, INTERNAL)."""
    return AtelierError(grpc.StatusCode.INTERNAL, what)


def _timeout(name: str, seconds: float | None) -> float | None:
    """A call's timeout as gRPC takes it: None (no deadline) or a positive number of
    seconds, at most _MAX_TIMEOUT (a longer one, inf included, would be no time at all)."""
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, numbers.Real):
        raise TypeError(f"{name} must be a number of seconds or None, not {type(seconds).__name__}")
    if not seconds > 0:  # NaN too
        raise ValueError(f"{name} must be positive, not {seconds!r}")
    return min(float(seconds), _MAX_TIMEOUT)


def _target(addrs: str) -> str:
    """One address as is; a list of IP:port addresses as an ipv4:/ipv6: target.

    gRPC's ipv4:/ipv6: targets take addresses only: an entry naming a host raises
    ValueError, which says so, rather than a channel that never connects; localhost is
    taken as the loopback address of the list's family."""
    parts = [a.strip() for a in addrs.split(",") if a.strip()]
    if len(parts) < 2:
        return parts[0] if parts else addrs
    v6 = all(p.startswith("[") or p.startswith("localhost:") for p in parts) and \
        any(p.startswith("[") for p in parts)
    entries = []
    for p in parts:
        host = _split_host_port(p)
        port = p.rsplit(":", 1)[1] if host is not None else ""
        if host is None or not port.isdigit():
            raise ValueError(f"address list entry {p!r} is not host:port")
        if host == "localhost":
            host = "::1" if v6 else "127.0.0.1"
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(
                f"address list entry {p!r} names a host; a list takes IP:port addresses "
                f"(for every address of a name, use the target dns:///{p})") from None
        if (ip.version == 6) != v6:
            raise ValueError(f"address list {addrs!r} mixes IPv4 and IPv6 addresses; "
                             "gRPC's address lists take one family")
        entries.append(f"[{ip}]:{port}" if v6 else f"{ip}:{port}")
    return f"{'ipv6' if v6 else 'ipv4'}:{','.join(entries)}"


def _split_host_port(addr: str) -> str | None:
    """The host of "host:port" or "[v6]:port" (as Go's net.SplitHostPort), or None."""
    if addr.startswith("["):
        end = addr.find("]")
        return addr[1:end] if end > 0 and addr[end + 1:end + 2] == ":" else None
    host, sep, _ = addr.rpartition(":")
    return host if sep and ":" not in host else None


def _is_loopback(addr: str) -> bool:
    """Whether a target names this machine: localhost, 127.0.0.0/8, ::1 or a unix
    socket; a dns: target by the name it looks up. The Go client's rule."""
    if addr.startswith(("unix:", "unix-abstract:")):
        return True
    if "://" in addr:  # dns:///host:port, dns://server/host:port
        _, rest = addr.split("://", 1)
        if "/" in rest:
            addr = rest.split("/", 1)[1]
    host = _split_host_port(addr)
    if host is None:
        host = addr
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _non_loopback(addrs: str) -> str | None:
    """The first address of a target or a list that is not loopback, or None."""
    return next((a for a in (p.strip() for p in addrs.split(",")) if a and not _is_loopback(a)), None)


def _service_config(target: str) -> str:
    """Health-checked balancing for several servers (a list or a dns: name); one
    address goes without, so that health() can report its NOT_SERVING."""
    return BALANCED_SERVICE_CONFIG if "," in target or target.startswith("dns:") else SERVICE_CONFIG


def _retry_after(e: grpc.RpcError) -> float | None:
    """The seconds a call refused by the server's rate limit should wait (its
    retry-after-ms or retry-after trailer, plus up to 20% so that callers refused
    together do not return together), or None for any other failure."""
    if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
        return None
    trailer = dict(e.trailing_metadata() or ())
    try:
        if "retry-after-ms" in trailer:
            wait = int(trailer["retry-after-ms"]) / 1000
        elif "retry-after" in trailer:
            wait = float(trailer["retry-after"])
        else:
            return None
    except ValueError:
        return None
    if not 0 <= wait < 1e6:
        return None
    return max(wait, 0.01) * random.uniform(1.0, 1.2)


def _frames(images: Iterable[ImageLike]) -> Iterator[stream_pb2.StreamFrame]:
    for i, img in enumerate(images, start=1):
        now = timestamp_pb2.Timestamp()
        now.GetCurrentTime()
        try:
            image = to_image(img)
        except (ValueError, TypeError) as e:
            raise type(e)(f"frame {i}: {e}") from None
        yield stream_pb2.StreamFrame(frame_id=i, capture_time=now, image=image)


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
        own = list(d.metadata or [])
        keys = {k for k, _ in own}
        md = own + [(k, v) for k, v in self._metadata if k not in keys]
        return _CallDetails(d.method, d.timeout, md, d.credentials, d.wait_for_ready, d.compression)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, requests):
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._details(details), requests)


class AtelierClient:
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
        options = [("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                   ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                   ("grpc.service_config", _service_config(target)),
                   ("grpc.enable_retries", 1),
                   # look the name up again soon after a connection fails (default 30 s)
                   ("grpc.dns_min_time_between_resolutions_ms", 1000)]
        if channel is None and (tls or root_certificates or certificate_chain):
            creds = grpc.ssl_channel_credentials(root_certificates=root_certificates,
                                                 private_key=private_key,
                                                 certificate_chain=certificate_chain)
            channel = grpc.secure_channel(_target(target), creds, options=options)
        if channel is None:
            remote = _non_loopback(target)
            if remote is not None and not insecure:
                raise PlaintextError(remote)
            channel = grpc.insecure_channel(_target(target), options=options)
        if token is None:
            token = os.environ.get("ATELIER_TOKEN") or None
        metadata = []
        if token:
            metadata.append(("authorization", "Bearer " + token))
        if priority:
            metadata.append(("x-atelier-priority", priority))
        if metadata:
            channel = grpc.intercept_channel(channel, _MetadataInterceptor(metadata))
        self.channel = channel
        self.timeout = timeout
        self._closed = threading.Event()  # ends the waits of retry-after
        self.classify_stub = classify_grpc.ClassifyServiceStub(self.channel)
        self.detect_stub = detect_grpc.DetectServiceStub(self.channel)
        self.generate_stub = generate_grpc.GenerateServiceStub(self.channel)
        self.model_stub = model_grpc.ModelServiceStub(self.channel)
        self.alert_stub = alert_grpc.AlertServiceStub(self.channel)
        self.health_stub = health_pb2_grpc.HealthStub(self.channel)

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
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return method(request, timeout=max(deadline - time.monotonic(), 0.001), metadata=metadata)
            except grpc.RpcError as e:
                wait = _retry_after(e)
                if wait is None or time.monotonic() + wait >= deadline:
                    raise AtelierError(e.code(), e.details()) from None
                if self._closed.wait(wait):
                    raise AtelierError(grpc.StatusCode.CANCELLED,
                                       "the client was closed while the call waited to be made again") from None

    def _stream(self, call) -> Iterator:
        """Yields a streaming call's messages. Closing the generator (a loop's break,
        or its garbage collection) cancels the call."""
        try:
            yield from call
        except grpc.RpcError as e:
            raise AtelierError(e.code(), e.details()) from None
        finally:
            call.cancel()  # nothing once the call has ended

    def _frame_stream(self, method, config, request, frames: Iterable[ImageLike],
                      timeout: float | None) -> Iterator:
        """Runs a ClassifyStream or DetectStream: sends config, then request(frame=...)
        for each of frames, and yields the server's messages. An error that frames
        raises (or a frame to_image refuses) ends the stream and is raised as it is; a
        result for a frame never sent, or a stream that ends before every frame sent
        has its result, is a broken server's (AtelierError INTERNAL)."""
        sent, failed = [0], []

        def requests():
            yield request(config=config)
            try:
                for f in _frames(frames):
                    sent[0] = f.frame_id
                    yield request(frame=f)
            except Exception as e:  # raised in gRPC's thread, which would only log it
                failed.append(e)

        answered = 0
        responses = self._stream(method(requests(), timeout=_timeout("timeout", timeout)))
        try:
            for m in responses:
                if failed:
                    break
                if m.WhichOneof("message") == "result":
                    if not answered < m.result.frame_id <= sent[0]:  # results come in frame order
                        raise _broken(f"the server sent a result for frame {m.result.frame_id} "
                                      f"after frame {answered}'s, with {sent[0]} sent")
                    answered = m.result.frame_id
                yield m
        except AtelierError:
            if not failed:
                raise
        finally:
            responses.close()  # cancels the call, however this generator ends
        if failed:
            raise failed[0]
        if answered < sent[0]:
            raise _broken(f"the server ended the stream without answering frames {answered + 1}..{sent[0]}")

    def classify(self, images: Sequence[ImageLike] | ImageLike, top_k: int | None = None,
                 model: str = "", version: int = 0) -> list[list[Prediction]]:
        """Returns the top categories of each image, best first."""
        if not isinstance(images, (list, tuple)):
            images = [images]
        req = _build(classify_pb.ClassifyRequest, model=_spec(model, version),
                     images=[to_image(i) for i in images], top_k=top_k)
        resp = self._call(self.classify_stub.Classify, req)
        if len(resp.classifications) != len(images):
            raise _broken(f"the server answered {len(resp.classifications)} classifications "
                          f"for {len(images)} images")
        return [_predictions(c, top_k) for c in resp.classifications]

    def detect(self, image: ImageLike, min_score: float | None = None,
               max_detections: int | None = None, top_k: int | None = None,
               skip_classification: bool = False, model: str = "",
               classifier: str = "", tiling: str = "auto") -> list[Detection]:
        """Returns the garments in one image, best first, each with its categories.

        tiling is "auto" (the server also searches overlapping tiles of a picture more
        than 2.5 times the detector's input), "on" or "off".
        """
        if tiling not in ("auto", "on", "off"):
            raise ValueError(f"tiling must be 'auto', 'on' or 'off', not {tiling!r}")
        req = _build(detect_pb.DetectRequest,
                     model=_spec(model), image=to_image(image),
                     skip_classification=skip_classification, classifier=_spec(classifier),
                     tiling=detect_pb.Tiling.Value("TILING_" + tiling.upper()),
                     min_score=min_score, max_detections=max_detections, top_k=top_k)
        resp = self._call(self.detect_stub.Detect, req)
        if len(resp.detections) > (max_detections or _MAX_DETECTIONS):
            raise _broken(f"the server sent {len(resp.detections)} detections, more than "
                          f"the {max_detections or _MAX_DETECTIONS} asked for")
        return [Detection((d.box.x_min, d.box.y_min, d.box.x_max, d.box.y_max),
                          d.garment_type, d.score, _predictions(d.classification, top_k))
                for d in resp.detections]

    def generate(self, category: str, count: int = 1, seed: int = 0, model: str = "",
                 latents: Sequence[Sequence[float]] = ()) -> list[GeneratedImage]:
        """Draws count designs of a category; the same request draws the same PNGs."""
        req = _build(generate_pb.GenerateRequest,
                     model=_spec(model), category=category, count=count, seed=seed,
                     latents=[_build(generate_pb.Latent, values=v) for v in latents])
        resp = self._call(self.generate_stub.Generate, req)
        return [GeneratedImage(i.png, i.category, i.seed, list(i.latent.values))
                for i in resp.images]

    def interpolate(self, category: str, start: int | Sequence[float],
                    end: int | Sequence[float], steps: int,
                    model: str = "") -> Iterator[tuple[float, GeneratedImage]]:
        """Yields (t, design) for each step of a morph from start to end (seeds or
        latent vectors), as the server draws them."""
        def point(p: int | Sequence[float]) -> generate_pb.LatentPoint:
            if isinstance(p, int):
                return _build(generate_pb.LatentPoint, seed=p)
            return generate_pb.LatentPoint(latent=_build(generate_pb.Latent, values=p))

        req = _build(generate_pb.InterpolateRequest,
                     model=_spec(model), category=category,
                     start=point(start), end=point(end), steps=steps)
        for n, m in enumerate(self._stream(self.generate_stub.Interpolate(req, timeout=self.timeout))):
            if n == steps:
                raise _broken(f"the server sent more than the {steps} steps asked for")
            if not m.HasField("image"):
                raise _broken(f"the server sent step {m.step} without an image")
            i = m.image
            yield m.t, GeneratedImage(i.png, i.category, i.seed, list(i.latent.values))

    def classify_stream(self, frames: Iterable[ImageLike], top_k: int | None = None,
                        model: str = "", options: stream_pb2.StreamOptions | None = None,
                        timeout: float | None = None,
                        ) -> Iterator[classify_pb.ClassifyStreamResponse]:
        """Sends frames (any iterator of images, numbered from 1) on one
        ClassifyStream and yields every message the server sends: frame results in
        frame order, tally summaries and alerts (see WhichOneof("message"))."""
        config = _build(classify_pb.ClassifyStreamConfig, model=_spec(model), options=options,
                        top_k=top_k)
        yield from self._frame_stream(self.classify_stub.ClassifyStream, config,
                                      classify_pb.ClassifyStreamRequest, frames, timeout)

    def detect_stream(self, frames: Iterable[ImageLike], model: str = "",
                      options: stream_pb2.StreamOptions | None = None,
                      timeout: float | None = None,
                      ) -> Iterator[detect_pb.DetectStreamResponse]:
        """Runs Detect on frames with the same protocol as classify_stream."""
        config = detect_pb.DetectStreamConfig(model=_spec(model), options=options)
        yield from self._frame_stream(self.detect_stub.DetectStream, config,
                                      detect_pb.DetectStreamRequest, frames, timeout)

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

    @staticmethod
    def _admin(token: str | None):
        return [("authorization", f"Bearer {token}")] if token else None

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


def stream_options(camera_id: str = "", policy: str = "block", queue_size: int = 0,
                   summary_every: float | None = None,
                   alerts: dict[str, Sequence[str]] | None = None,
                   alert_score: float = 0.5) -> stream_pb2.StreamOptions:
    """Builds StreamOptions: policy "block" or "latest", summary_every in seconds,
    alerts mapping a rule name to the categories it watches."""
    policies = {"block": stream_pb2.FRAME_POLICY_BLOCK, "latest": stream_pb2.FRAME_POLICY_LATEST}
    if policy not in policies:
        raise ValueError(f"policy must be block or latest, not {policy!r}")
    opts = stream_pb2.StreamOptions(camera_id=camera_id, policy=policies[policy],
                                    queue_size=queue_size)
    if summary_every is not None:
        opts.summary_interval.CopyFrom(duration_pb2.Duration(
            seconds=int(summary_every), nanos=int(summary_every % 1 * 1e9)))
    for name, cats in (alerts or {}).items():
        opts.alert_rules.add(name=name, categories=cats, min_score=alert_score)
    return opts
