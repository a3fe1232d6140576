from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_UNSPECIFIED: _ClassVar[Priority]
    PRIORITY_NORMAL: _ClassVar[Priority]
    PRIORITY_CRITICAL: _ClassVar[Priority]

class DegradationLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEGRADATION_LEVEL_UNSPECIFIED: _ClassVar[DegradationLevel]
    DEGRADATION_LEVEL_NONE: _ClassVar[DegradationLevel]
    DEGRADATION_LEVEL_CACHED_DATA: _ClassVar[DegradationLevel]
    DEGRADATION_LEVEL_READ_ONLY: _ClassVar[DegradationLevel]
    DEGRADATION_LEVEL_AUTOMATIC: _ClassVar[DegradationLevel]
PRIORITY_UNSPECIFIED: Priority
PRIORITY_NORMAL: Priority
PRIORITY_CRITICAL: Priority
DEGRADATION_LEVEL_UNSPECIFIED: DegradationLevel
DEGRADATION_LEVEL_NONE: DegradationLevel
DEGRADATION_LEVEL_CACHED_DATA: DegradationLevel
DEGRADATION_LEVEL_READ_ONLY: DegradationLevel
DEGRADATION_LEVEL_AUTOMATIC: DegradationLevel

class ExecuteRequest(_message.Message):
    __slots__ = ("method", "path", "query", "body", "headers", "priority")
    class QueryEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    method: str
    path: str
    query: _containers.ScalarMap[str, str]
    body: bytes
    headers: _containers.ScalarMap[str, str]
    priority: Priority
    def __init__(self, method: _Optional[str] = ..., path: _Optional[str] = ..., query: _Optional[_Mapping[str, str]] = ..., body: _Optional[bytes] = ..., headers: _Optional[_Mapping[str, str]] = ..., priority: _Optional[_Union[Priority, str]] = ...) -> None: ...

class ExecuteResponse(_message.Message):
    __slots__ = ("status", "body", "headers", "attempts", "from_cache", "cache_age_ms", "degradation", "client_order_id", "reconciled")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    STATUS_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    FROM_CACHE_FIELD_NUMBER: _ClassVar[int]
    CACHE_AGE_MS_FIELD_NUMBER: _ClassVar[int]
    DEGRADATION_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    RECONCILED_FIELD_NUMBER: _ClassVar[int]
    status: int
    body: bytes
    headers: _containers.ScalarMap[str, str]
    attempts: int
    from_cache: bool
    cache_age_ms: int
    degradation: DegradationLevel
    client_order_id: str
    reconciled: bool
    def __init__(self, status: _Optional[int] = ..., body: _Optional[bytes] = ..., headers: _Optional[_Mapping[str, str]] = ..., attempts: _Optional[int] = ..., from_cache: _Optional[bool] = ..., cache_age_ms: _Optional[int] = ..., degradation: _Optional[_Union[DegradationLevel, str]] = ..., client_order_id: _Optional[str] = ..., reconciled: _Optional[bool] = ...) -> None: ...

class StreamRequest(_message.Message):
    __slots__ = ("path", "query", "since_transaction_id")
    class QueryEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PATH_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    SINCE_TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    path: str
    query: _containers.ScalarMap[str, str]
    since_transaction_id: str
    def __init__(self, path: _Optional[str] = ..., query: _Optional[_Mapping[str, str]] = ..., since_transaction_id: _Optional[str] = ...) -> None: ...

class StreamMessage(_message.Message):
    __slots__ = ("line", "type", "transaction_id", "replayed")
    LINE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    line: bytes
    type: str
    transaction_id: str
    replayed: bool
    def __init__(self, line: _Optional[bytes] = ..., type: _Optional[str] = ..., transaction_id: _Optional[str] = ..., replayed: _Optional[bool] = ...) -> None: ...
