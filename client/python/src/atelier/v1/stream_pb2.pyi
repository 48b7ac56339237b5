import datetime

from atelier.v1 import common_pb2 as _common_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FramePolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FRAME_POLICY_UNSPECIFIED: _ClassVar[FramePolicy]
    FRAME_POLICY_BLOCK: _ClassVar[FramePolicy]
    FRAME_POLICY_LATEST: _ClassVar[FramePolicy]
FRAME_POLICY_UNSPECIFIED: FramePolicy
FRAME_POLICY_BLOCK: FramePolicy
FRAME_POLICY_LATEST: FramePolicy

class StreamFrame(_message.Message):
    __slots__ = ("frame_id", "capture_time", "image")
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_TIME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    frame_id: int
    capture_time: _timestamp_pb2.Timestamp
    image: _common_pb2.Image
    def __init__(self, frame_id: _Optional[int] = ..., capture_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., image: _Optional[_Union[_common_pb2.Image, _Mapping]] = ...) -> None: ...

class StreamOptions(_message.Message):
    __slots__ = ("camera_id", "policy", "queue_size", "tally_window", "summary_interval", "alert_rules")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    QUEUE_SIZE_FIELD_NUMBER: _ClassVar[int]
    TALLY_WINDOW_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    ALERT_RULES_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    policy: FramePolicy
    queue_size: int
    tally_window: _duration_pb2.Duration
    summary_interval: _duration_pb2.Duration
    alert_rules: _containers.RepeatedCompositeFieldContainer[AlertRule]
    def __init__(self, camera_id: _Optional[str] = ..., policy: _Optional[_Union[FramePolicy, str]] = ..., queue_size: _Optional[int] = ..., tally_window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., summary_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., alert_rules: _Optional[_Iterable[_Union[AlertRule, _Mapping]]] = ...) -> None: ...

class AlertRule(_message.Message):
    __slots__ = ("name", "categories", "min_score", "min_consecutive_frames", "cooldown")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    MIN_CONSECUTIVE_FRAMES_FIELD_NUMBER: _ClassVar[int]
    COOLDOWN_FIELD_NUMBER: _ClassVar[int]
    name: str
    categories: _containers.RepeatedScalarFieldContainer[str]
    min_score: float
    min_consecutive_frames: int
    cooldown: _duration_pb2.Duration
    def __init__(self, name: _Optional[str] = ..., categories: _Optional[_Iterable[str]] = ..., min_score: _Optional[float] = ..., min_consecutive_frames: _Optional[int] = ..., cooldown: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class FrameError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class CategoryCount(_message.Message):
    __slots__ = ("label", "count")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    label: str
    count: int
    def __init__(self, label: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class TallySummary(_message.Message):
    __slots__ = ("camera_id", "window_start", "window_end", "frames", "counts")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    window_start: _timestamp_pb2.Timestamp
    window_end: _timestamp_pb2.Timestamp
    frames: int
    counts: _containers.RepeatedCompositeFieldContainer[CategoryCount]
    def __init__(self, camera_id: _Optional[str] = ..., window_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., frames: _Optional[int] = ..., counts: _Optional[_Iterable[_Union[CategoryCount, _Mapping]]] = ...) -> None: ...

class Alert(_message.Message):
    __slots__ = ("camera_id", "rule", "label", "score", "frame_id", "capture_time")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_TIME_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    rule: str
    label: str
    score: float
    frame_id: int
    capture_time: _timestamp_pb2.Timestamp
    def __init__(self, camera_id: _Optional[str] = ..., rule: _Optional[str] = ..., label: _Optional[str] = ..., score: _Optional[float] = ..., frame_id: _Optional[int] = ..., capture_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
