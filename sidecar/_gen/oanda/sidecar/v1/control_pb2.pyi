import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from sidecar._gen.oanda.sidecar.v1 import proxy_pb2 as _proxy_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BreakerState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BREAKER_STATE_UNSPECIFIED: _ClassVar[BreakerState]
    BREAKER_STATE_CLOSED: _ClassVar[BreakerState]
    BREAKER_STATE_OPEN: _ClassVar[BreakerState]
    BREAKER_STATE_HALF_OPEN: _ClassVar[BreakerState]
    BREAKER_STATE_FORCED_OPEN: _ClassVar[BreakerState]
    BREAKER_STATE_DISABLED: _ClassVar[BreakerState]

class BreakerOverride(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BREAKER_OVERRIDE_UNSPECIFIED: _ClassVar[BreakerOverride]
    BREAKER_OVERRIDE_NONE: _ClassVar[BreakerOverride]
    BREAKER_OVERRIDE_FORCED_OPEN: _ClassVar[BreakerOverride]
    BREAKER_OVERRIDE_DISABLED: _ClassVar[BreakerOverride]

class UpstreamHealth(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    UPSTREAM_HEALTH_UNSPECIFIED: _ClassVar[UpstreamHealth]
    UPSTREAM_HEALTH_HEALTHY: _ClassVar[UpstreamHealth]
    UPSTREAM_HEALTH_DEGRADED: _ClassVar[UpstreamHealth]
    UPSTREAM_HEALTH_DOWN: _ClassVar[UpstreamHealth]

class StreamState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STREAM_STATE_UNSPECIFIED: _ClassVar[StreamState]
    STREAM_STATE_CONNECTING: _ClassVar[StreamState]
    STREAM_STATE_CONNECTED: _ClassVar[StreamState]
    STREAM_STATE_RECONNECTING: _ClassVar[StreamState]
    STREAM_STATE_CLOSING: _ClassVar[StreamState]

class OrderOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_OUTCOME_UNSPECIFIED: _ClassVar[OrderOutcome]
    ORDER_OUTCOME_PENDING: _ClassVar[OrderOutcome]
    ORDER_OUTCOME_PLACED: _ClassVar[OrderOutcome]
    ORDER_OUTCOME_NOT_PLACED: _ClassVar[OrderOutcome]
    ORDER_OUTCOME_NOT_SEEN: _ClassVar[OrderOutcome]
BREAKER_STATE_UNSPECIFIED: BreakerState
BREAKER_STATE_CLOSED: BreakerState
BREAKER_STATE_OPEN: BreakerState
BREAKER_STATE_HALF_OPEN: BreakerState
BREAKER_STATE_FORCED_OPEN: BreakerState
BREAKER_STATE_DISABLED: BreakerState
BREAKER_OVERRIDE_UNSPECIFIED: BreakerOverride
BREAKER_OVERRIDE_NONE: BreakerOverride
BREAKER_OVERRIDE_FORCED_OPEN: BreakerOverride
BREAKER_OVERRIDE_DISABLED: BreakerOverride
UPSTREAM_HEALTH_UNSPECIFIED: UpstreamHealth
UPSTREAM_HEALTH_HEALTHY: UpstreamHealth
UPSTREAM_HEALTH_DEGRADED: UpstreamHealth
UPSTREAM_HEALTH_DOWN: UpstreamHealth
STREAM_STATE_UNSPECIFIED: StreamState
STREAM_STATE_CONNECTING: StreamState
STREAM_STATE_CONNECTED: StreamState
STREAM_STATE_RECONNECTING: StreamState
STREAM_STATE_CLOSING: StreamState
ORDER_OUTCOME_UNSPECIFIED: OrderOutcome
ORDER_OUTCOME_PENDING: OrderOutcome
ORDER_OUTCOME_PLACED: OrderOutcome
ORDER_OUTCOME_NOT_PLACED: OrderOutcome
ORDER_OUTCOME_NOT_SEEN: OrderOutcome

class BreakerStatus(_message.Message):
    __slots__ = ("name", "state", "consecutive_failures", "opened_at", "next_probe_in_ms", "state_since", "failure_threshold", "recovery_timeout_ms", "total_failures", "total_successes", "half_open_in_flight")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    OPENED_AT_FIELD_NUMBER: _ClassVar[int]
    NEXT_PROBE_IN_MS_FIELD_NUMBER: _ClassVar[int]
    STATE_SINCE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    RECOVERY_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FAILURES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SUCCESSES_FIELD_NUMBER: _ClassVar[int]
    HALF_OPEN_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: BreakerState
    consecutive_failures: int
    opened_at: _timestamp_pb2.Timestamp
    next_probe_in_ms: int
    state_since: _timestamp_pb2.Timestamp
    failure_threshold: int
    recovery_timeout_ms: int
    total_failures: int
    total_successes: int
    half_open_in_flight: int
    def __init__(self, name: _Optional[str] = ..., state: _Optional[_Union[BreakerState, str]] = ..., consecutive_failures: _Optional[int] = ..., opened_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_probe_in_ms: _Optional[int] = ..., state_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., failure_threshold: _Optional[int] = ..., recovery_timeout_ms: _Optional[int] = ..., total_failures: _Optional[int] = ..., total_successes: _Optional[int] = ..., half_open_in_flight: _Optional[int] = ...) -> None: ...

class EndpointLimitStatus(_message.Message):
    __slots__ = ("pattern", "rate_per_s", "burst", "tokens")
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    RATE_PER_S_FIELD_NUMBER: _ClassVar[int]
    BURST_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    pattern: str
    rate_per_s: float
    burst: float
    tokens: float
    def __init__(self, pattern: _Optional[str] = ..., rate_per_s: _Optional[float] = ..., burst: _Optional[float] = ..., tokens: _Optional[float] = ...) -> None: ...

class RateLimitStatus(_message.Message):
    __slots__ = ("rate_per_s", "configured_rate_per_s", "burst", "tokens", "queued_normal", "queued_critical", "rejected_total", "admitted_total", "endpoints", "shared")
    RATE_PER_S_FIELD_NUMBER: _ClassVar[int]
    CONFIGURED_RATE_PER_S_FIELD_NUMBER: _ClassVar[int]
    BURST_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    QUEUED_NORMAL_FIELD_NUMBER: _ClassVar[int]
    QUEUED_CRITICAL_FIELD_NUMBER: _ClassVar[int]
    REJECTED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ADMITTED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    SHARED_FIELD_NUMBER: _ClassVar[int]
    rate_per_s: float
    configured_rate_per_s: float
    burst: float
    tokens: float
    queued_normal: int
    queued_critical: int
    rejected_total: int
    admitted_total: int
    endpoints: _containers.RepeatedCompositeFieldContainer[EndpointLimitStatus]
    shared: SharedRateLimitStatus
    def __init__(self, rate_per_s: _Optional[float] = ..., configured_rate_per_s: _Optional[float] = ..., burst: _Optional[float] = ..., tokens: _Optional[float] = ..., queued_normal: _Optional[int] = ..., queued_critical: _Optional[int] = ..., rejected_total: _Optional[int] = ..., admitted_total: _Optional[int] = ..., endpoints: _Optional[_Iterable[_Union[EndpointLimitStatus, _Mapping]]] = ..., shared: _Optional[_Union[SharedRateLimitStatus, _Mapping]] = ...) -> None: ...

class SharedRateLimitStatus(_message.Message):
    __slots__ = ("backend", "healthy", "key_hash", "errors_total", "since")
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    KEY_HASH_FIELD_NUMBER: _ClassVar[int]
    ERRORS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    backend: str
    healthy: bool
    key_hash: str
    errors_total: int
    since: _timestamp_pb2.Timestamp
    def __init__(self, backend: _Optional[str] = ..., healthy: _Optional[bool] = ..., key_hash: _Optional[str] = ..., errors_total: _Optional[int] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class UpstreamStatus(_message.Message):
    __slots__ = ("health", "last_success", "last_error", "last_error_message", "recent_error_rate", "base_url")
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    LAST_SUCCESS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RECENT_ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    health: UpstreamHealth
    last_success: _timestamp_pb2.Timestamp
    last_error: _timestamp_pb2.Timestamp
    last_error_message: str
    recent_error_rate: float
    base_url: str
    def __init__(self, health: _Optional[_Union[UpstreamHealth, str]] = ..., last_success: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_error: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_error_message: _Optional[str] = ..., recent_error_rate: _Optional[float] = ..., base_url: _Optional[str] = ...) -> None: ...

class DegradationStatus(_message.Message):
    __slots__ = ("level", "reason", "since", "manual", "waiting_for")
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    MANUAL_FIELD_NUMBER: _ClassVar[int]
    WAITING_FOR_FIELD_NUMBER: _ClassVar[int]
    level: _proxy_pb2.DegradationLevel
    reason: str
    since: _timestamp_pb2.Timestamp
    manual: bool
    waiting_for: str
    def __init__(self, level: _Optional[_Union[_proxy_pb2.DegradationLevel, str]] = ..., reason: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., manual: _Optional[bool] = ..., waiting_for: _Optional[str] = ...) -> None: ...

class Decision(_message.Message):
    __slots__ = ("at", "method", "endpoint", "outcome", "detail")
    AT_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    method: str
    endpoint: str
    outcome: str
    detail: str
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., method: _Optional[str] = ..., endpoint: _Optional[str] = ..., outcome: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("breakers", "rate_limit", "degradation", "upstream", "version", "ready", "streams", "holds_kept", "recent_decisions")
    BREAKERS_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    DEGRADATION_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    HOLDS_KEPT_FIELD_NUMBER: _ClassVar[int]
    RECENT_DECISIONS_FIELD_NUMBER: _ClassVar[int]
    breakers: _containers.RepeatedCompositeFieldContainer[BreakerStatus]
    rate_limit: RateLimitStatus
    degradation: DegradationStatus
    upstream: UpstreamStatus
    version: str
    ready: bool
    streams: _containers.RepeatedCompositeFieldContainer[StreamStatus]
    holds_kept: bool
    recent_decisions: _containers.RepeatedCompositeFieldContainer[Decision]
    def __init__(self, breakers: _Optional[_Iterable[_Union[BreakerStatus, _Mapping]]] = ..., rate_limit: _Optional[_Union[RateLimitStatus, _Mapping]] = ..., degradation: _Optional[_Union[DegradationStatus, _Mapping]] = ..., upstream: _Optional[_Union[UpstreamStatus, _Mapping]] = ..., version: _Optional[str] = ..., ready: _Optional[bool] = ..., streams: _Optional[_Iterable[_Union[StreamStatus, _Mapping]]] = ..., holds_kept: _Optional[bool] = ..., recent_decisions: _Optional[_Iterable[_Union[Decision, _Mapping]]] = ...) -> None: ...

class StreamStatus(_message.Message):
    __slots__ = ("path_template", "instruments", "subscribers", "state", "reconnects", "last_message_at", "last_transaction_id", "account", "down_since", "last_error")
    PATH_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENTS_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBERS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RECONNECTS_FIELD_NUMBER: _ClassVar[int]
    LAST_MESSAGE_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    DOWN_SINCE_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    path_template: str
    instruments: _containers.RepeatedScalarFieldContainer[str]
    subscribers: int
    state: StreamState
    reconnects: int
    last_message_at: _timestamp_pb2.Timestamp
    last_transaction_id: str
    account: str
    down_since: _timestamp_pb2.Timestamp
    last_error: str
    def __init__(self, path_template: _Optional[str] = ..., instruments: _Optional[_Iterable[str]] = ..., subscribers: _Optional[int] = ..., state: _Optional[_Union[StreamState, str]] = ..., reconnects: _Optional[int] = ..., last_message_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_transaction_id: _Optional[str] = ..., account: _Optional[str] = ..., down_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_error: _Optional[str] = ...) -> None: ...

class ResetBreakerRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ResetBreakerResponse(_message.Message):
    __slots__ = ("breakers",)
    BREAKERS_FIELD_NUMBER: _ClassVar[int]
    breakers: _containers.RepeatedCompositeFieldContainer[BreakerStatus]
    def __init__(self, breakers: _Optional[_Iterable[_Union[BreakerStatus, _Mapping]]] = ...) -> None: ...

class SetBreakerOverrideRequest(_message.Message):
    __slots__ = ("name", "override")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OVERRIDE_FIELD_NUMBER: _ClassVar[int]
    name: str
    override: BreakerOverride
    def __init__(self, name: _Optional[str] = ..., override: _Optional[_Union[BreakerOverride, str]] = ...) -> None: ...

class SetBreakerOverrideResponse(_message.Message):
    __slots__ = ("breakers",)
    BREAKERS_FIELD_NUMBER: _ClassVar[int]
    breakers: _containers.RepeatedCompositeFieldContainer[BreakerStatus]
    def __init__(self, breakers: _Optional[_Iterable[_Union[BreakerStatus, _Mapping]]] = ...) -> None: ...

class GetDegradationRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetDegradationResponse(_message.Message):
    __slots__ = ("level", "reason", "since", "manual", "waiting_for")
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    MANUAL_FIELD_NUMBER: _ClassVar[int]
    WAITING_FOR_FIELD_NUMBER: _ClassVar[int]
    level: _proxy_pb2.DegradationLevel
    reason: str
    since: _timestamp_pb2.Timestamp
    manual: bool
    waiting_for: str
    def __init__(self, level: _Optional[_Union[_proxy_pb2.DegradationLevel, str]] = ..., reason: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., manual: _Optional[bool] = ..., waiting_for: _Optional[str] = ...) -> None: ...

class SetDegradationRequest(_message.Message):
    __slots__ = ("level", "reason")
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    level: _proxy_pb2.DegradationLevel
    reason: str
    def __init__(self, level: _Optional[_Union[_proxy_pb2.DegradationLevel, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class SetDegradationResponse(_message.Message):
    __slots__ = ("level", "reason", "since", "manual", "waiting_for")
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    MANUAL_FIELD_NUMBER: _ClassVar[int]
    WAITING_FOR_FIELD_NUMBER: _ClassVar[int]
    level: _proxy_pb2.DegradationLevel
    reason: str
    since: _timestamp_pb2.Timestamp
    manual: bool
    waiting_for: str
    def __init__(self, level: _Optional[_Union[_proxy_pb2.DegradationLevel, str]] = ..., reason: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., manual: _Optional[bool] = ..., waiting_for: _Optional[str] = ...) -> None: ...

class WatchStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetOrderOutcomeRequest(_message.Message):
    __slots__ = ("client_order_id",)
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    client_order_id: str
    def __init__(self, client_order_id: _Optional[str] = ...) -> None: ...

class GetOrderOutcomeResponse(_message.Message):
    __slots__ = ("client_order_id", "outcome", "transaction_ids", "decided_at", "account_id")
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_IDS_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    client_order_id: str
    outcome: OrderOutcome
    transaction_ids: _containers.RepeatedScalarFieldContainer[str]
    decided_at: _timestamp_pb2.Timestamp
    account_id: str
    def __init__(self, client_order_id: _Optional[str] = ..., outcome: _Optional[_Union[OrderOutcome, str]] = ..., transaction_ids: _Optional[_Iterable[str]] = ..., decided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., account_id: _Optional[str] = ...) -> None: ...
