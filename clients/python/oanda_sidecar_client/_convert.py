"""Arguments → request messages, response messages → models. Shared by the sync and aio clients."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from oanda_sidecar_client._gen.oanda.sidecar.v1 import control_pb2 as cpb
from oanda_sidecar_client._gen.oanda.sidecar.v1 import proxy_pb2 as ppb
from oanda_sidecar_client.models import (
    BreakerStatus,
    Decision,
    DegradationStatus,
    EndpointLimitStatus,
    ExecuteResult,
    OrderOutcome,
    Priority,
    RateLimitStatus,
    SharedRateLimitStatus,
    SidecarStatus,
    StreamStatus,
    UpstreamStatus,
)

# Query values: strings as they are; bools as OANDA spells them; sequences comma-joined (OANDA's
# convention for instruments and ids); None dropped so optional parameters can be passed through.
QueryValue = str | int | float | bool | list[str] | tuple[str, ...] | None
Body = bytes | bytearray | memoryview | str | dict[str, Any] | list[Any] | None

_PRIORITY = {Priority.NORMAL: ppb.PRIORITY_NORMAL, Priority.CRITICAL: ppb.PRIORITY_CRITICAL}
_LEVEL = {
    "none": ppb.DEGRADATION_LEVEL_NONE,
    "cached_data": ppb.DEGRADATION_LEVEL_CACHED_DATA,
    "read_only": ppb.DEGRADATION_LEVEL_READ_ONLY,
    "automatic": ppb.DEGRADATION_LEVEL_AUTOMATIC,
}
_LEVEL_NAME: dict[int, str] = {v: k for k, v in _LEVEL.items()}
_OVERRIDE = {
    "none": cpb.BREAKER_OVERRIDE_NONE,
    "forced_open": cpb.BREAKER_OVERRIDE_FORCED_OPEN,
    "disabled": cpb.BREAKER_OVERRIDE_DISABLED,
}


def query_value(value: QueryValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(value)
    return str(value)


def encode_body(body: Body) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body, separators=(",", ":")).encode()


def execute_request(method: str, path: str, query: Mapping[str, QueryValue] | None, body: Body,
                    headers: Mapping[str, str] | None, priority: Priority
                    ) -> ppb.ExecuteRequest:
    request = ppb.ExecuteRequest(method=method.upper(), path=path, body=encode_body(body),
                                 priority=_PRIORITY[Priority(priority)])
    if query:
        request.query.update({k: query_value(v) for k, v in query.items() if v is not None})
    if headers:
        request.headers.update(headers)
    return request


def execute_result(response: ppb.ExecuteResponse) -> ExecuteResult:
    return ExecuteResult(
        status=response.status, body=response.body, headers=dict(response.headers),
        attempts=response.attempts, from_cache=response.from_cache,
        cache_age_ms=response.cache_age_ms, degradation=level_name(response.degradation),
        client_order_id=response.client_order_id, reconciled=response.reconciled)


def level_name(level: int) -> str:
    return _LEVEL_NAME.get(level, "unspecified")


def level_value(level: str) -> ppb.DegradationLevel:
    try:
        return _LEVEL[level]
    except KeyError:
        raise ValueError(f"level must be one of {', '.join(_LEVEL)}, not {level!r}") from None


def override_value(mode: str) -> cpb.BreakerOverride:
    try:
        return _OVERRIDE[mode]
    except KeyError:
        raise ValueError(f"mode must be one of {', '.join(_OVERRIDE)}, not {mode!r}") from None


def _enum_name(enum: Any, value: int, prefix: str) -> str:
    try:
        name: str = enum.Name(value)
    except ValueError:  # a value added by a newer server
        return "unspecified"
    return name.removeprefix(prefix).lower()


def _time(message: Any, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    stamp: Timestamp = getattr(message, field)
    return stamp.ToDatetime(tzinfo=UTC)


def breaker_status(msg: cpb.BreakerStatus) -> BreakerStatus:
    return BreakerStatus(
        name=msg.name, state=_enum_name(cpb.BreakerState, msg.state, "BREAKER_STATE_"),
        consecutive_failures=msg.consecutive_failures, opened_at=_time(msg, "opened_at"),
        next_probe_in_ms=msg.next_probe_in_ms, state_since=_time(msg, "state_since"),
        failure_threshold=msg.failure_threshold, recovery_timeout_ms=msg.recovery_timeout_ms,
        total_failures=msg.total_failures, total_successes=msg.total_successes,
        half_open_in_flight=msg.half_open_in_flight)


def breakers(messages: Any) -> tuple[BreakerStatus, ...]:
    return tuple(breaker_status(m) for m in messages)


def degradation_status(msg: Any) -> DegradationStatus:
    """From DegradationStatus, GetDegradationResponse or SetDegradationResponse (same fields)."""
    return DegradationStatus(level=level_name(msg.level), reason=msg.reason,
                             since=_time(msg, "since"), manual=msg.manual,
                             waiting_for=msg.waiting_for)


def _rate_limit(msg: cpb.RateLimitStatus) -> RateLimitStatus:
    return RateLimitStatus(
        rate_per_s=msg.rate_per_s, configured_rate_per_s=msg.configured_rate_per_s,
        burst=msg.burst, tokens=msg.tokens, queued_normal=msg.queued_normal,
        queued_critical=msg.queued_critical, rejected_total=msg.rejected_total,
        admitted_total=msg.admitted_total,
        endpoints=tuple(EndpointLimitStatus(pattern=e.pattern, rate_per_s=e.rate_per_s,
                                            burst=e.burst, tokens=e.tokens)
                        for e in msg.endpoints),
        shared=_shared(msg.shared) if msg.HasField("shared") else None)


def _shared(msg: cpb.SharedRateLimitStatus) -> SharedRateLimitStatus:
    return SharedRateLimitStatus(backend=msg.backend, healthy=msg.healthy,
                                 key_hash=msg.key_hash, errors_total=msg.errors_total,
                                 since=_time(msg, "since"))


def _upstream(msg: cpb.UpstreamStatus) -> UpstreamStatus:
    return UpstreamStatus(
        health=_enum_name(cpb.UpstreamHealth, msg.health, "UPSTREAM_HEALTH_"),
        last_success=_time(msg, "last_success"), last_error=_time(msg, "last_error"),
        last_error_message=msg.last_error_message, recent_error_rate=msg.recent_error_rate,
        base_url=msg.base_url)


def sidecar_status(msg: cpb.GetStatusResponse) -> SidecarStatus:
    return SidecarStatus(
        breakers=breakers(msg.breakers), rate_limit=_rate_limit(msg.rate_limit),
        degradation=degradation_status(msg.degradation), upstream=_upstream(msg.upstream),
        version=msg.version, ready=msg.ready, holds_kept=msg.holds_kept,
        recent_decisions=tuple(Decision(at=_time(d, "at"), method=d.method,
                                        endpoint=d.endpoint, outcome=d.outcome,
                                        detail=d.detail) for d in msg.recent_decisions),
        streams=tuple(stream_status(s) for s in msg.streams))


def order_outcome(msg: cpb.GetOrderOutcomeResponse) -> OrderOutcome:
    name = _enum_name(cpb.OrderOutcome, msg.outcome, "ORDER_OUTCOME_")
    return OrderOutcome(
        client_order_id=msg.client_order_id, outcome=name,  # type: ignore[arg-type]
        transaction_ids=tuple(msg.transaction_ids), decided_at=_time(msg, "decided_at"),
        account_id=msg.account_id)


def stream_status(msg: cpb.StreamStatus) -> StreamStatus:
    return StreamStatus(
        path_template=msg.path_template, account=msg.account,
        instruments=tuple(msg.instruments), subscribers=msg.subscribers,
        state=_enum_name(cpb.StreamState, msg.state, "STREAM_STATE_"),
        reconnects=msg.reconnects, last_message_at=_time(msg, "last_message_at"),
        last_transaction_id=msg.last_transaction_id, down_since=_time(msg, "down_since"),
        last_error=msg.last_error)
