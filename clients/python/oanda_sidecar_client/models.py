"""What the client returns: plain, typed, immutable values (no protobuf in the caller's code)."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

__all__ = [
    "BreakerOverride",
    "BreakerStatus",
    "DegradationLevel",
    "DegradationSetting",
    "DegradationStatus",
    "EndpointLimitStatus",
    "ExecuteResult",
    "OrderOutcome",
    "OrderOutcomeName",
    "Priority",
    "RateLimitStatus",
    "SharedRateLimitStatus",
    "SidecarStatus",
    "StreamStatus",
    "UpstreamStatus",
]

# The degradation level an answer was given at; "unspecified" only from an older/newer server.
DegradationLevel = Literal["none", "cached_data", "read_only", "unspecified"]
# What set_degradation accepts: a level held manually, or "automatic" to hand control back.
DegradationSetting = Literal["none", "cached_data", "read_only", "automatic"]
# What became of an order (GetOrderOutcome); "unspecified" only from an older/newer server.
OrderOutcomeName = Literal["pending", "placed", "not_placed", "not_seen", "unspecified"]
# What set_breaker_override accepts.
BreakerOverride = Literal["none", "forced_open", "disabled"]


class Priority(enum.IntEnum):
    """The rate limiter lane. CRITICAL is for risk-reducing calls (close, cancel): no queueing."""

    NORMAL = 1
    CRITICAL = 2


@dataclass(frozen=True, slots=True)
class ExecuteResult:
    """OANDA's answer (or a cached one). 4xx and 5xx are answers too: check `ok` or `status`."""

    status: int
    body: bytes
    headers: Mapping[str, str]
    attempts: int
    from_cache: bool
    cache_age_ms: int
    degradation: str
    # Order create and replace: the order's clientExtensions.id (yours, or the sidecar's osc-…).
    client_order_id: str = ""
    # True when OANDA's answer was lost and this one was rebuilt from OANDA's transactions.
    reconciled: bool = False

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def request_id(self) -> str | None:
        """OANDA's `RequestID` header: quote it when asking OANDA about a call."""
        return self.headers.get("RequestID")

    def json(self) -> Any:
        """The body decoded as JSON (raises `ValueError` when it is not JSON)."""
        return json.loads(self.body)


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    """What became of an order sent through the sidecar (`order_outcome(client_order_id)`).

    `outcome`: "pending" (still being resolved: ask again), "placed" (OANDA has it; its
    transactions are `transaction_ids`), "not_placed" (OANDA's records prove it never took
    effect, or OANDA rejected it: safe to send again with the same client ID), "not_seen" (no
    order of that ID went through this sidecar, or it was forgotten after `orders.remember_s`).
    """

    client_order_id: str
    outcome: OrderOutcomeName
    transaction_ids: tuple[str, ...]
    decided_at: datetime | None
    account_id: str

    @property
    def decided(self) -> bool:
        return self.outcome in ("placed", "not_placed")


@dataclass(frozen=True, slots=True)
class BreakerStatus:
    name: str
    state: str  # closed, open, half_open, forced_open, disabled
    consecutive_failures: int
    opened_at: datetime | None
    next_probe_in_ms: int
    state_since: datetime | None
    failure_threshold: int
    recovery_timeout_ms: int
    total_failures: int
    total_successes: int
    half_open_in_flight: int


@dataclass(frozen=True, slots=True)
class EndpointLimitStatus:
    pattern: str
    rate_per_s: float
    burst: float
    tokens: float


@dataclass(frozen=True, slots=True)
class RateLimitStatus:
    rate_per_s: float
    configured_rate_per_s: float
    burst: float
    tokens: float
    queued_normal: int
    queued_critical: int
    rejected_total: int
    admitted_total: int
    endpoints: tuple[EndpointLimitStatus, ...]
    shared: SharedRateLimitStatus | None = None  # set when the limit is shared through Redis


@dataclass(frozen=True, slots=True)
class SharedRateLimitStatus:
    backend: str  # "redis"
    healthy: bool  # False: the sidecar limits itself to its fallback rate
    key_hash: str  # names the shared key; never the token
    errors_total: int
    since: datetime | None


@dataclass(frozen=True, slots=True)
class UpstreamStatus:
    health: str  # healthy, degraded, down
    last_success: datetime | None
    last_error: datetime | None
    last_error_message: str
    recent_error_rate: float
    base_url: str


@dataclass(frozen=True, slots=True)
class DegradationStatus:
    level: str  # none, cached_data, read_only
    reason: str
    since: datetime | None
    manual: bool
    waiting_for: str = ""  # what the level waits for before it comes down; empty at none


@dataclass(frozen=True, slots=True)
class Decision:
    """A call the sidecar refused or degraded, or a change of level (`outcome` "degradation")."""

    at: datetime | None
    method: str
    endpoint: str
    outcome: str
    detail: str


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """One upstream stream connection, shared by `subscribers` local subscribers."""

    path_template: str
    account: str  # masked
    instruments: tuple[str, ...]
    subscribers: int
    state: str  # connecting, connected, reconnecting, closing
    reconnects: int
    last_message_at: datetime | None
    last_transaction_id: str
    down_since: datetime | None
    last_error: str

    @property
    def stream(self) -> str:
        """`pricing` or `transactions`."""
        return self.path_template.rsplit("/", 2)[-2]


@dataclass(frozen=True, slots=True)
class SidecarStatus:
    """Everything an operator needs at a glance (GetStatus / WatchStatus)."""

    breakers: tuple[BreakerStatus, ...]
    rate_limit: RateLimitStatus
    degradation: DegradationStatus
    upstream: UpstreamStatus
    version: str
    ready: bool
    holds_kept: bool = False  # operator holds survive a restart (server.state_dir set)
    recent_decisions: tuple[Decision, ...] = ()  # newest first
    streams: tuple[StreamStatus, ...] = ()

    def breaker(self, name: str = "rest") -> BreakerStatus | None:
        """One breaker by name (`rest` is the one for REST calls), or None."""
        for breaker in self.breakers:
            if breaker.name == name:
                return breaker
        return None
