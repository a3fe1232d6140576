"""proto ↔ domain. Only this module and the servicers import generated code."""

from __future__ import annotations

from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from sidecar._gen.oanda.sidecar.v1 import control_pb2 as cpb
from sidecar._gen.oanda.sidecar.v1 import proxy_pb2 as ppb
from sidecar.errors import InvalidRequest
from sidecar.pipeline import Call, Response
from sidecar.status import StatusSnapshot
from sidecar.streams.messages import StreamMessage
from sidecar.vocabulary import (
    AUTOMATIC,
    BreakerState,
    Level,
    OrderOutcome,
    Override,
    UpstreamHealth,
)

LEVEL_TO_PB = {
    Level.NONE: ppb.DEGRADATION_LEVEL_NONE,
    Level.CACHED_DATA: ppb.DEGRADATION_LEVEL_CACHED_DATA,
    Level.READ_ONLY: ppb.DEGRADATION_LEVEL_READ_ONLY,
}
PB_TO_LEVEL: dict[int, str] = {v: k for k, v in LEVEL_TO_PB.items()}
PB_TO_LEVEL[ppb.DEGRADATION_LEVEL_AUTOMATIC] = AUTOMATIC
BREAKER_STATE_TO_PB = {
    BreakerState.CLOSED: cpb.BREAKER_STATE_CLOSED,
    BreakerState.OPEN: cpb.BREAKER_STATE_OPEN,
    BreakerState.HALF_OPEN: cpb.BREAKER_STATE_HALF_OPEN,
    BreakerState.FORCED_OPEN: cpb.BREAKER_STATE_FORCED_OPEN,
    BreakerState.DISABLED: cpb.BREAKER_STATE_DISABLED,
}
PB_TO_OVERRIDE = {
    cpb.BREAKER_OVERRIDE_NONE: Override.NONE,
    cpb.BREAKER_OVERRIDE_FORCED_OPEN: Override.FORCED_OPEN,
    cpb.BREAKER_OVERRIDE_DISABLED: Override.DISABLED,
}
HEALTH_TO_PB = {
    UpstreamHealth.HEALTHY: cpb.UPSTREAM_HEALTH_HEALTHY,
    UpstreamHealth.DEGRADED: cpb.UPSTREAM_HEALTH_DEGRADED,
    UpstreamHealth.DOWN: cpb.UPSTREAM_HEALTH_DOWN,
}
ORDER_OUTCOME_TO_PB = {
    OrderOutcome.PENDING: cpb.ORDER_OUTCOME_PENDING,
    OrderOutcome.PLACED: cpb.ORDER_OUTCOME_PLACED,
    OrderOutcome.NOT_PLACED: cpb.ORDER_OUTCOME_NOT_PLACED,
    OrderOutcome.NOT_SEEN: cpb.ORDER_OUTCOME_NOT_SEEN,
}
STREAM_STATE_TO_PB = {
    "connecting": cpb.STREAM_STATE_CONNECTING,
    "connected": cpb.STREAM_STATE_CONNECTED,
    "reconnecting": cpb.STREAM_STATE_RECONNECTING,
    "closed": cpb.STREAM_STATE_CLOSING,
}
CRITICAL = ppb.PRIORITY_CRITICAL
_PRIORITIES = frozenset({ppb.PRIORITY_UNSPECIFIED, ppb.PRIORITY_NORMAL, ppb.PRIORITY_CRITICAL})


def call_from_request(request: ppb.ExecuteRequest, call: Call) -> None:
    """Fill in `call` from what the caller sent (method, path and deadline are already set).
    Only the enum check happens here; every other rule is the validator's."""
    if request.priority not in _PRIORITIES:
        raise InvalidRequest(f"priority {request.priority} is not a Priority value",
                             field="priority")
    call.prioritised = request.priority == CRITICAL
    call.body = request.body
    if request.query:
        call.query = dict(request.query)
    if request.headers:
        call.headers = dict(request.headers)


def execute_response(response: Response) -> ppb.ExecuteResponse:
    return ppb.ExecuteResponse(
        status=response.status, body=response.body, headers=response.headers,
        attempts=response.attempts, from_cache=response.from_cache,
        cache_age_ms=response.cache_age_ms,
        degradation=LEVEL_TO_PB[response.degradation],
        client_order_id=response.client_order_id, reconciled=response.reconciled)


def timestamp(wall: float | None) -> Timestamp | None:
    if wall is None:
        return None
    ts = Timestamp()
    ts.FromNanoseconds(int(wall * 1e9))
    return ts


def breaker_status(snap: Any) -> cpb.BreakerStatus:
    return cpb.BreakerStatus(
        name=snap.name, state=BREAKER_STATE_TO_PB[snap.state],
        consecutive_failures=snap.consecutive_failures, opened_at=timestamp(snap.opened_at),
        next_probe_in_ms=int((snap.next_probe_in_s or 0.0) * 1000),
        state_since=timestamp(snap.state_since), failure_threshold=snap.failure_threshold,
        recovery_timeout_ms=int(snap.recovery_timeout_s * 1000),
        total_failures=snap.total_failures, total_successes=snap.total_successes,
        half_open_in_flight=snap.half_open_in_flight)


def degradation_fields(snap: Any | None) -> dict[str, Any]:
    if snap is None:
        return {"level": ppb.DEGRADATION_LEVEL_NONE, "reason": "", "manual": False}
    return {"level": LEVEL_TO_PB[snap.level], "reason": snap.reason,
            "waiting_for": getattr(snap, "waiting_for", ""),
            "since": timestamp(snap.since), "manual": snap.manual}


def rate_limit_status(snap: Any | None) -> cpb.RateLimitStatus | None:
    if snap is None:
        return None
    return cpb.RateLimitStatus(
        rate_per_s=snap.rate_per_s, configured_rate_per_s=snap.configured_rate_per_s,
        burst=snap.burst, tokens=snap.tokens, queued_normal=snap.queued_normal,
        queued_critical=snap.queued_critical, rejected_total=snap.rejected_total,
        admitted_total=snap.admitted_total,
        endpoints=[cpb.EndpointLimitStatus(pattern=str(e.pattern), rate_per_s=e.rate_per_s,
                                           burst=e.burst, tokens=e.tokens)
                   for e in snap.endpoints],
        shared=_shared_limit(getattr(snap, "shared", None)))


def _shared_limit(snap: Any | None) -> cpb.SharedRateLimitStatus | None:
    if snap is None:
        return None
    return cpb.SharedRateLimitStatus(backend=snap.backend, healthy=snap.healthy,
                                     key_hash=snap.key_hash, errors_total=snap.errors_total,
                                     since=timestamp(snap.since))


def upstream_status(snap: Any | None) -> cpb.UpstreamStatus | None:
    if snap is None:
        return None
    return cpb.UpstreamStatus(
        health=HEALTH_TO_PB[snap.health], last_success=timestamp(snap.last_success),
        last_error=timestamp(snap.last_error), last_error_message=snap.last_error_message,
        recent_error_rate=snap.recent_error_rate, base_url=snap.base_url)


def stream_message(message: StreamMessage) -> ppb.StreamMessage:
    return ppb.StreamMessage(line=message.line, type=message.type,
                             transaction_id=message.transaction_id, replayed=message.replayed)


def stream_status(snap: Any) -> cpb.StreamStatus:
    return cpb.StreamStatus(
        path_template=snap.path_template, instruments=list(snap.instruments),
        subscribers=snap.subscribers,
        state=STREAM_STATE_TO_PB.get(snap.state, cpb.STREAM_STATE_UNSPECIFIED),
        reconnects=snap.reconnects, last_message_at=timestamp(snap.last_message_at),
        last_transaction_id=snap.last_transaction_id, account=snap.account,
        down_since=timestamp(snap.down_since), last_error=snap.last_error or "")


def status_response(snap: StatusSnapshot, version: str) -> cpb.GetStatusResponse:
    return cpb.GetStatusResponse(
        breakers=[breaker_status(b) for b in snap.breakers],
        rate_limit=rate_limit_status(snap.rate_limit),
        degradation=cpb.DegradationStatus(**degradation_fields(snap.degradation)),
        upstream=upstream_status(snap.upstream), version=version, ready=snap.ready,
        holds_kept=snap.holds_kept,
        recent_decisions=[cpb.Decision(at=timestamp(d.at), method=d.method,
                                       endpoint=d.endpoint, outcome=d.outcome, detail=d.detail)
                          for d in snap.decisions or ()],
        streams=[stream_status(s) for s in snap.streams])


def order_outcome_response(client_order_id: str, record: Any | None
                           ) -> cpb.GetOrderOutcomeResponse:
    """An OrderRecord (sidecar.orders.records), or None: never seen."""
    if record is None:
        return cpb.GetOrderOutcomeResponse(client_order_id=client_order_id,
                                           outcome=cpb.ORDER_OUTCOME_NOT_SEEN)
    return cpb.GetOrderOutcomeResponse(
        client_order_id=client_order_id,
        outcome=ORDER_OUTCOME_TO_PB.get(record.outcome, cpb.ORDER_OUTCOME_UNSPECIFIED),
        transaction_ids=list(record.transaction_ids), decided_at=timestamp(record.decided_at),
        account_id=record.account_id)
