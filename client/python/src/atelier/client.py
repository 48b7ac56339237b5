"""AtelierClient: classify images and describe models with a few typed calls."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Iterable, Sequence, Union

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-not-found]

from atelier.v1 import (
    classify_service_pb2 as classify_pb,
    classify_service_pb2_grpc as classify_grpc,
    common_pb2,
    model_service_pb2 as model_pb,
    model_service_pb2_grpc as model_grpc,
)

ImageLike = Union[str, os.PathLike, bytes, np.ndarray, "PIL.Image.Image"]  # noqa: F821


class AtelierError(Exception):
    """A failed call: code is the gRPC status code, details the server's message."""

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(f"{code.name}: {details}")
        self.code, self.details = code, details


@dataclass(frozen=True)
class Prediction:
    """One category and its probability."""

    label: str
    class_index: int
    score: float


def to_image(image: ImageLike) -> common_pb2.Image:
    """Converts a path, encoded bytes, a PIL image or an HxWx3 / HxW uint8 array."""
    if isinstance(image, (str, os.PathLike)):
        with open(image, "rb") as f:
            return common_pb2.Image(encoded=f.read())
    if isinstance(image, bytes):
        return common_pb2.Image(encoded=image)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise TypeError(f"arrays must be uint8, not {image.dtype}")
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"arrays must be HxW or HxWx3, not {image.shape}")
        h, w, _ = image.shape
        return common_pb2.Image(raw=common_pb2.RawImage(
            rgb=np.ascontiguousarray(image).tobytes(), width=w, height=h))
    if hasattr(image, "save"):  # PIL.Image.Image
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        return common_pb2.Image(encoded=buf.getvalue())
    raise TypeError(f"cannot send {type(image).__name__} as an image")


class AtelierClient:
    """A connection to an Atelier server. Every call has a deadline (timeout seconds)."""

    def __init__(self, target: str = "localhost:8500", timeout: float = 30.0,
                 channel: grpc.Channel | None = None):
        self.channel = channel or grpc.insecure_channel(
            target, options=[("grpc.max_send_message_length", 64 << 20),
                             ("grpc.max_receive_message_length", 64 << 20)])
        self.timeout = timeout
        self._classify = classify_grpc.ClassifyServiceStub(self.channel)
        self._models = model_grpc.ModelServiceStub(self.channel)
        self._health = health_pb2_grpc.HealthStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "AtelierClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, method, request):
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as e:
            raise AtelierError(e.code(), e.details()) from None

    def classify(self, images: Sequence[ImageLike] | ImageLike, top_k: int | None = None,
                 model: str = "", version: int = 0) -> list[list[Prediction]]:
        """Returns the top categories of each image, best first."""
        if not isinstance(images, (list, tuple)):
            images = [images]
        req = classify_pb.ClassifyRequest(
            model=common_pb2.ModelSpec(name=model, version=version),
            images=[to_image(i) for i in images])
        if top_k is not None:
            req.top_k = top_k
        resp = self._call(self._classify.Classify, req)
        return [[Prediction(p.label, p.class_index, p.score) for p in c.predictions]
                for c in resp.classifications]

    def list_models(self) -> Iterable[model_pb.ModelInfo]:
        """Returns every loaded model's description."""
        return list(self._call(self._models.ListModels, model_pb.ListModelsRequest()).models)

    def get_model(self, name: str, version: int = 0) -> model_pb.ModelInfo:
        """Returns one model's description: versions, signatures, labels."""
        req = model_pb.GetModelRequest(model=common_pb2.ModelSpec(name=name, version=version))
        return self._call(self._models.GetModel, req).model

    def health(self, service: str = "") -> str:
        """Returns the server's health status name, for example "SERVING"."""
        resp = self._call(self._health.Check, health_pb2.HealthCheckRequest(service=service))
        return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
