"""What both clients send and what they accept back, whatever carries the call: the
requests each method builds from its arguments (refusing, before any call, a value a
field cannot hold, by the field's name), the checks on the server's answers (an
answer no working server sends is AtelierError INTERNAL, as on the CLI) and the
Python types they become.

AtelierClient and atelier.aio.AsyncAtelierClient differ only in how they wait; a
method of either is: build the request here, make the call, read the answer here."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator, Sequence

import grpc
from google.protobuf import duration_pb2, timestamp_pb2

from atelier._images import ImageLike, to_image
from atelier.v1 import (
    classify_service_pb2 as classify_pb,
    common_pb2,
    detect_service_pb2 as detect_pb,
    generate_service_pb2 as generate_pb,
    stream_pb2,
)

if TYPE_CHECKING:
    import PIL.Image

# What the protocol allows an answer to hold (top_k 1..1000, max_detections 1..100):
# more is a broken server's, refused before it becomes Python objects (16 MB of
# predictions took 880 MB and 12 s as Prediction objects).
_MAX_TOP_K, _MAX_DETECTIONS = 1000, 100


class AtelierError(Exception):
    """A failed call: code is the gRPC status code, details the server's message
    (or gRPC's, for a call that never reached it), hint the client's guess at the
    cause of a failed connection ("" when it has none), shown after the message.
    The exception's text shows the message's control and format characters (ESC, a
    newline, a bidi override) escaped, so that a traceback cannot drive the terminal;
    details holds it exactly."""

    def __init__(self, code: grpc.StatusCode, details: str | None, hint: str = ""):
        details = details or ""  # gRPC's None for a status without a message
        text = f"{code.name}: {_printable(details)}"
        super().__init__(f"{text} ({hint})" if hint else text)
        self.code, self.details, self.hint = code, details, hint


def _printable(text: str) -> str:
    """text with every character that is not printable escaped as in a Python string
    literal (\\x1b, \\n, \\u202e)."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


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


def _error(e: grpc.RpcError, hint: str = "") -> AtelierError:
    """The AtelierError of a failed call (grpc's sync or grpc.aio's error)."""
    return AtelierError(e.code(), e.details(), hint)


# --- one request builder and one answer reader a method --------------------------


def _classify_request(images: Sequence[ImageLike] | ImageLike, top_k: int | None,
                      model: str, version: int) -> classify_pb.ClassifyRequest:
    if not isinstance(images, (list, tuple)):
        images = [images]
    return _build(classify_pb.ClassifyRequest, model=_spec(model, version),
                  images=[to_image(i) for i in images], top_k=top_k)


def _classifications(req: classify_pb.ClassifyRequest,
                     resp: classify_pb.ClassifyResponse) -> list[list[Prediction]]:
    """One list of predictions an image of req, checked against what req asked for
    (an unset top_k reads 0: the protocol's limit then)."""
    if len(resp.classifications) != len(req.images):
        raise _broken(f"the server answered {len(resp.classifications)} classifications "
                      f"for {len(req.images)} images")
    return [_predictions(c, req.top_k) for c in resp.classifications]


def _detect_request(image: ImageLike, min_score: float | None, max_detections: int | None,
                    top_k: int | None, skip_classification: bool, model: str,
                    classifier: str, tiling: str) -> detect_pb.DetectRequest:
    if tiling not in ("auto", "on", "off"):
        raise ValueError(f"tiling must be 'auto', 'on' or 'off', not {tiling!r}")
    return _build(detect_pb.DetectRequest,
                  model=_spec(model), image=to_image(image),
                  skip_classification=skip_classification, classifier=_spec(classifier),
                  tiling=detect_pb.Tiling.Value("TILING_" + tiling.upper()),
                  min_score=min_score, max_detections=max_detections, top_k=top_k)


def _detections(req: detect_pb.DetectRequest, resp: detect_pb.DetectResponse) -> list[Detection]:
    limit = req.max_detections or _MAX_DETECTIONS
    if len(resp.detections) > limit:
        raise _broken(f"the server sent {len(resp.detections)} detections, more than "
                      f"the {limit} asked for")
    return [Detection((d.box.x_min, d.box.y_min, d.box.x_max, d.box.y_max),
                      d.garment_type, d.score, _predictions(d.classification, req.top_k))
            for d in resp.detections]


def _generate_request(category: str, count: int, seed: int, model: str,
                      latents: Sequence[Sequence[float]]) -> generate_pb.GenerateRequest:
    return _build(generate_pb.GenerateRequest,
                  model=_spec(model), category=category, count=count, seed=seed,
                  latents=[_build(generate_pb.Latent, values=v) for v in latents])


def _design(i: generate_pb.GeneratedImage) -> GeneratedImage:
    return GeneratedImage(i.png, i.category, i.seed, list(i.latent.values))


def _interpolate_request(category: str, start: int | Sequence[float], end: int | Sequence[float],
                         steps: int, model: str) -> generate_pb.InterpolateRequest:
    def point(p: int | Sequence[float]) -> generate_pb.LatentPoint:
        if isinstance(p, int):
            return _build(generate_pb.LatentPoint, seed=p)
        return generate_pb.LatentPoint(latent=_build(generate_pb.Latent, values=p))

    return _build(generate_pb.InterpolateRequest,
                  model=_spec(model), category=category,
                  start=point(start), end=point(end), steps=steps)


def _step(req: generate_pb.InterpolateRequest, n: int,
          m: generate_pb.InterpolateResponse) -> tuple[float, GeneratedImage]:
    """(t, design) of the server's message number n (from 0) of an Interpolate."""
    if n == req.steps:
        raise _broken(f"the server sent more than the {req.steps} steps asked for")
    if not m.HasField("image"):
        raise _broken(f"the server sent step {m.step} without an image")
    return m.t, _design(m.image)


class _FrameStream:
    """The protocol of one ClassifyStream or DetectStream, whichever client carries
    it: the config first, then one request a frame, numbered from 1; results come in
    frame order, one for every frame sent. A result for a frame never sent, or a
    stream that ends before every frame sent has its result, is a broken server's.

    failed holds the error the caller's frames raised (or a frame to_image refused):
    the client stops sending, and raises it, as it is, instead of what the stream
    then does."""

    def __init__(self, request: type, config: object):
        self.request, self.config = request, config
        self.sent = self.answered = 0
        self.failed: Exception | None = None

    @classmethod
    def classify(cls, top_k: int | None, model: str,
                 options: stream_pb2.StreamOptions | None) -> _FrameStream:
        return cls(classify_pb.ClassifyStreamRequest, _build(
            classify_pb.ClassifyStreamConfig, model=_spec(model), options=options, top_k=top_k))

    @classmethod
    def detect(cls, model: str, options: stream_pb2.StreamOptions | None) -> _FrameStream:
        return cls(detect_pb.DetectStreamRequest, detect_pb.DetectStreamConfig(model=_spec(model), options=options))

    def first(self):
        """The request that opens the stream: its config."""
        return self.request(config=self.config)

    def frame(self, image: ImageLike):
        """The request of the next frame, stamped now; an image to_image refuses
        raises its error with the frame's number."""
        n = self.sent + 1
        now = timestamp_pb2.Timestamp()
        now.GetCurrentTime()
        try:
            img = to_image(image)
        except (ValueError, TypeError) as e:
            raise type(e)(f"frame {n}: {e}") from None
        self.sent = n
        return self.request(frame=stream_pb2.StreamFrame(frame_id=n, capture_time=now, image=img))

    def admit(self, m) -> bool:
        """Whether to pass on one message of the server's: not once the frames
        failed (reading stops, and reading() raises their error); a result must be for
        a frame after the last answered, at most the last sent."""
        if self.failed is not None:
            return False
        if m.WhichOneof("message") == "result":
            if not self.answered < m.result.frame_id <= self.sent:
                raise _broken(f"the server sent a result for frame {m.result.frame_id} "
                              f"after frame {self.answered}'s, with {self.sent} sent")
            self.answered = m.result.frame_id
        return True

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Holds the reading of the server's messages. When it stops (the stream's
        end, or a break on admit's False) or fails with AtelierError, raises the
        frames' own error if they failed, else that AtelierError, else a broken
        server's if a frame sent has no result. A generator closed while it reads
        (GeneratorExit) is left to close."""
        try:
            yield
        except AtelierError:
            if self.failed is None:
                raise
        if self.failed is not None:
            raise self.failed
        if self.answered < self.sent:
            raise _broken(f"the server ended the stream without answering frames "
                          f"{self.answered + 1}..{self.sent}")


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

