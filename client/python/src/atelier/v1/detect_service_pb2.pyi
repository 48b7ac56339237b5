from atelier.v1 import common_pb2 as _common_pb2
from atelier.v1 import stream_pb2 as _stream_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Tiling(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TILING_UNSPECIFIED: _ClassVar[Tiling]
    TILING_AUTO: _ClassVar[Tiling]
    TILING_OFF: _ClassVar[Tiling]
    TILING_ON: _ClassVar[Tiling]
TILING_UNSPECIFIED: Tiling
TILING_AUTO: Tiling
TILING_OFF: Tiling
TILING_ON: Tiling

class DetectRequest(_message.Message):
    __slots__ = ("model", "image", "min_score", "max_detections", "skip_classification", "classifier", "top_k", "tiling")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    MAX_DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    SKIP_CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
    CLASSIFIER_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    TILING_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelSpec
    image: _common_pb2.Image
    min_score: float
    max_detections: int
    skip_classification: bool
    classifier: _common_pb2.ModelSpec
    top_k: int
    tiling: Tiling
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelSpec, _Mapping]] = ..., image: _Optional[_Union[_common_pb2.Image, _Mapping]] = ..., min_score: _Optional[float] = ..., max_detections: _Optional[int] = ..., skip_classification: _Optional[bool] = ..., classifier: _Optional[_Union[_common_pb2.ModelSpec, _Mapping]] = ..., top_k: _Optional[int] = ..., tiling: _Optional[_Union[Tiling, str]] = ...) -> None: ...

class BoundingBox(_message.Message):
    __slots__ = ("x_min", "y_min", "x_max", "y_max")
    X_MIN_FIELD_NUMBER: _ClassVar[int]
    Y_MIN_FIELD_NUMBER: _ClassVar[int]
    X_MAX_FIELD_NUMBER: _ClassVar[int]
    Y_MAX_FIELD_NUMBER: _ClassVar[int]
    x_min: float
    y_min: float
    x_max: float
    y_max: float
    def __init__(self, x_min: _Optional[float] = ..., y_min: _Optional[float] = ..., x_max: _Optional[float] = ..., y_max: _Optional[float] = ...) -> None: ...

class Detection(_message.Message):
    __slots__ = ("box", "garment_type", "score", "classification")
    BOX_FIELD_NUMBER: _ClassVar[int]
    GARMENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
    box: BoundingBox
    garment_type: str
    score: float
    classification: _common_pb2.Classification
    def __init__(self, box: _Optional[_Union[BoundingBox, _Mapping]] = ..., garment_type: _Optional[str] = ..., score: _Optional[float] = ..., classification: _Optional[_Union[_common_pb2.Classification, _Mapping]] = ...) -> None: ...

class DetectResponse(_message.Message):
    __slots__ = ("detector", "classifier", "detections", "image_width", "image_height")
    DETECTOR_FIELD_NUMBER: _ClassVar[int]
    CLASSIFIER_FIELD_NUMBER: _ClassVar[int]
    DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_WIDTH_FIELD_NUMBER: _ClassVar[int]
    IMAGE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    detector: _common_pb2.ModelSpec
    classifier: _common_pb2.ModelSpec
    detections: _containers.RepeatedCompositeFieldContainer[Detection]
    image_width: int
    image_height: int
    def __init__(self, detector: _Optional[_Union[_common_pb2.ModelSpec, _Mapping]] = ..., classifier: _Optional[_Union[_common_pb2.ModelSpec, _Mapping]] = ..., detections: _Optional[_Iterable[_Union[Detection, _Mapping]]] = ..., image_width: _Optional[int] = ..., image_height: _Optional[int] = ...) -> None: ...

class DetectStreamConfig(_message.Message):
    __slots__ = ("model", "min_score", "max_detections", "skip_classification", "classifier", "options", "tiling")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    MAX_DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    SKIP_CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
    CLASSIFIER_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    TILING_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelSpec
    min_score: float
    max_detections: int
    skip_classification: bool
    classifier: _common_pb2.ModelSpec
    options: _stream_pb2.StreamOptions
    tiling: Tiling
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelSpec, _Mapping]] = ..., min_score: _Optional[float] = ..., max_detections: _Optional[int] = ..., skip_classification: _Optional[bool] = ..., classifier: _Optional[_Union[_common_pb2.ModelSpec, _Mapping]] = ..., options: _Optional[_Union[_stream_pb2.StreamOptions, _Mapping]] = ..., tiling: _Optional[_Union[Tiling, str]] = ...) -> None: ...

class DetectStreamRequest(_message.Message):
    __slots__ = ("config", "frame")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    config: DetectStreamConfig
    frame: _stream_pb2.StreamFrame
    def __init__(self, config: _Optional[_Union[DetectStreamConfig, _Mapping]] = ..., frame: _Optional[_Union[_stream_pb2.StreamFrame, _Mapping]] = ...) -> None: ...

class DetectFrameResult(_message.Message):
    __slots__ = ("frame_id", "detections", "error", "skipped")
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    frame_id: int
    detections: _containers.RepeatedCompositeFieldContainer[Detection]
    error: _stream_pb2.FrameError
    skipped: bool
    def __init__(self, frame_id: _Optional[int] = ..., detections: _Optional[_Iterable[_Union[Detection, _Mapping]]] = ..., error: _Optional[_Union[_stream_pb2.FrameError, _Mapping]] = ..., skipped: _Optional[bool] = ...) -> None: ...

class DetectStreamResponse(_message.Message):
    __slots__ = ("result", "summary", "alert")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    ALERT_FIELD_NUMBER: _ClassVar[int]
    result: DetectFrameResult
    summary: _stream_pb2.TallySummary
    alert: _stream_pb2.Alert
    def __init__(self, result: _Optional[_Union[DetectFrameResult, _Mapping]] = ..., summary: _Optional[_Union[_stream_pb2.TallySummary, _Mapping]] = ..., alert: _Optional[_Union[_stream_pb2.Alert, _Mapping]] = ...) -> None: ...
