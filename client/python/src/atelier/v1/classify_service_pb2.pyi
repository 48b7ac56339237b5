from atelier.v1 import common_pb2 as _common_pb2
from atelier.v1 import stream_pb2 as _stream_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ClassifyRequest(_message.Message):
    __slots__ = ("model", "images", "top_k")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelSpec
    images: _containers.RepeatedCompositeFieldContainer[_common_pb2.Image]
    top_k: int
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelSpec, _Mapping]] = ..., images: _Optional[_Iterable[_Union[_common_pb2.Image, _Mapping]]] = ..., top_k: _Optional[int] = ...) -> None: ...

class ClassifyResponse(_message.Message):
    __slots__ = ("model", "classifications")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelSpec
    classifications: _containers.RepeatedCompositeFieldContainer[_common_pb2.Classification]
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelSpec, _Mapping]] = ..., classifications: _Optional[_Iterable[_Union[_common_pb2.Classification, _Mapping]]] = ...) -> None: ...

class ClassifyStreamConfig(_message.Message):
    __slots__ = ("model", "top_k", "options")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelSpec
    top_k: int
    options: _stream_pb2.StreamOptions
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelSpec, _Mapping]] = ..., top_k: _Optional[int] = ..., options: _Optional[_Union[_stream_pb2.StreamOptions, _Mapping]] = ...) -> None: ...

class ClassifyStreamRequest(_message.Message):
    __slots__ = ("config", "frame")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    config: ClassifyStreamConfig
    frame: _stream_pb2.StreamFrame
    def __init__(self, config: _Optional[_Union[ClassifyStreamConfig, _Mapping]] = ..., frame: _Optional[_Union[_stream_pb2.StreamFrame, _Mapping]] = ...) -> None: ...

class ClassifyFrameResult(_message.Message):
    __slots__ = ("frame_id", "classification", "error", "skipped")
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    frame_id: int
    classification: _common_pb2.Classification
    error: _stream_pb2.FrameError
    skipped: bool
    def __init__(self, frame_id: _Optional[int] = ..., classification: _Optional[_Union[_common_pb2.Classification, _Mapping]] = ..., error: _Optional[_Union[_stream_pb2.FrameError, _Mapping]] = ..., skipped: _Optional[bool] = ...) -> None: ...

class ClassifyStreamResponse(_message.Message):
    __slots__ = ("result", "summary", "alert")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    ALERT_FIELD_NUMBER: _ClassVar[int]
    result: ClassifyFrameResult
    summary: _stream_pb2.TallySummary
    alert: _stream_pb2.Alert
    def __init__(self, result: _Optional[_Union[ClassifyFrameResult, _Mapping]] = ..., summary: _Optional[_Union[_stream_pb2.TallySummary, _Mapping]] = ..., alert: _Optional[_Union[_stream_pb2.Alert, _Mapping]] = ...) -> None: ...
