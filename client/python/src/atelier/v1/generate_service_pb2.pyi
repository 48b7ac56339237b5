from atelier.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Latent(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class GenerateRequest(_message.Message):
    __slots__ = ("model", "category", "count", "seed", "latents")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    LATENTS_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelSpec
    category: str
    count: int
    seed: int
    latents: _containers.RepeatedCompositeFieldContainer[Latent]
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelSpec, _Mapping]] = ..., category: _Optional[str] = ..., count: _Optional[int] = ..., seed: _Optional[int] = ..., latents: _Optional[_Iterable[_Union[Latent, _Mapping]]] = ...) -> None: ...

class GeneratedImage(_message.Message):
    __slots__ = ("png", "category", "seed", "latent")
    PNG_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    LATENT_FIELD_NUMBER: _ClassVar[int]
    png: bytes
    category: str
    seed: int
    latent: Latent
    def __init__(self, png: _Optional[bytes] = ..., category: _Optional[str] = ..., seed: _Optional[int] = ..., latent: _Optional[_Union[Latent, _Mapping]] = ...) -> None: ...

class GenerateResponse(_message.Message):
    __slots__ = ("model", "images")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelSpec
    images: _containers.RepeatedCompositeFieldContainer[GeneratedImage]
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelSpec, _Mapping]] = ..., images: _Optional[_Iterable[_Union[GeneratedImage, _Mapping]]] = ...) -> None: ...

class LatentPoint(_message.Message):
    __slots__ = ("seed", "latent")
    SEED_FIELD_NUMBER: _ClassVar[int]
    LATENT_FIELD_NUMBER: _ClassVar[int]
    seed: int
    latent: Latent
    def __init__(self, seed: _Optional[int] = ..., latent: _Optional[_Union[Latent, _Mapping]] = ...) -> None: ...

class InterpolateRequest(_message.Message):
    __slots__ = ("model", "category", "start", "end", "steps")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelSpec
    category: str
    start: LatentPoint
    end: LatentPoint
    steps: int
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelSpec, _Mapping]] = ..., category: _Optional[str] = ..., start: _Optional[_Union[LatentPoint, _Mapping]] = ..., end: _Optional[_Union[LatentPoint, _Mapping]] = ..., steps: _Optional[int] = ...) -> None: ...

class InterpolateResponse(_message.Message):
    __slots__ = ("step", "t", "image")
    STEP_FIELD_NUMBER: _ClassVar[int]
    T_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    step: int
    t: float
    image: GeneratedImage
    def __init__(self, step: _Optional[int] = ..., t: _Optional[float] = ..., image: _Optional[_Union[GeneratedImage, _Mapping]] = ...) -> None: ...
