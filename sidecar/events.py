"""Frozen event records and a bus that never raises.

Policies publish what they decided; logging, metrics, tracing, alerting and the status stream
subscribe. No policy knows who listens.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sidecar.vocabulary import BreakerState, GiveUpReason, Level, TransitionReason

_log = logging.getLogger("sidecar.events")


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event. `at` is wall-clock seconds."""

    at: float


@dataclass(frozen=True, slots=True)
class AttemptFinished(Event):
    """One attempt sent upstream, answered or failed."""

    method: str
    endpoint: str
    attempt: int  # 1-based
    duration_s: float
    status: int | None  # HTTP status, None when no answer came
    error_type: str | None  # None on an answer, else an ErrorKind
    request_id: str | None = None  # OANDA's RequestID header
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class RetryScheduled(Event):
    method: str
    endpoint: str
    attempt: int  # the attempt that failed
    delay_s: float
    reason: str  # "status_503", "timeout", ...


@dataclass(frozen=True, slots=True)
class RetryGivenUp(Event):
    method: str
    endpoint: str
    attempts: int
    reason: GiveUpReason


@dataclass(frozen=True, slots=True)
class BreakerTransition(Event):
    breaker: str
    from_state: BreakerState
    to_state: BreakerState
    reason: TransitionReason
    consecutive_failures: int = 0
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class BreakerRejected(Event):
    breaker: str
    endpoint: str
    retry_after_s: float


@dataclass(frozen=True, slots=True)
class RateLimitWaited(Event):
    endpoint: str
    wait_s: float
    lane: str  # a Lane


@dataclass(frozen=True, slots=True)
class RateLimitRejected(Event):
    endpoint: str
    waited_s: float
    retry_after_s: float


@dataclass(frozen=True, slots=True)
class SharedLimitChanged(Event):
    """The shared (Redis) rate limit became unusable or usable again (CONTRACT §10)."""

    backend: str  # "redis"
    healthy: bool  # False: each pod limits itself to rate_limit.shared.fallback_rate_per_s
    key_hash: str  # names the shared key; never the token
    reason: str  # "timeout", "connection_error", "error" when leaving; "recovered" on return
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SharedLimitFailed(Event):
    """One Redis call of the shared rate limit failed (a decision or a probe)."""

    operation: str  # "decide" or "probe"
    reason: str  # "timeout", "connection_error", "error"


@dataclass(frozen=True, slots=True)
class RateAdjusted(Event):
    rate_per_s: float
    configured_rate_per_s: float
    reason: str  # "upstream_429" or "recovery"


@dataclass(frozen=True, slots=True)
class DegradationChanged(Event):
    from_level: Level
    to_level: Level
    reason: str
    manual: bool


@dataclass(frozen=True, slots=True)
class CacheServed(Event):
    endpoint: str
    age_s: float


@dataclass(frozen=True, slots=True)
class CacheFailed(Event):
    operation: str
    error: str


@dataclass(frozen=True, slots=True)
class ExecuteFinished(Event):
    """One call answered (with a response or an error): an Execute, or a REST-listener call."""

    method: str
    endpoint: str
    outcome: str  # an Outcome, or a sidecar error's reason in lower case
    status: int | None
    attempts: int
    duration_s: float
    from_cache: bool = False
    request_id: str | None = None
    error: str | None = None
    front: str = "grpc"  # "grpc" (Execute) or "rest" (the REST listener)


@dataclass(frozen=True, slots=True)
class OrderResolved(Event):
    """An order write whose outcome was unknown, resolved from OANDA's records (sidecar.orders).

    `outcome` is "placed", "not_placed" or "unknown" (the caller was answered OUTCOME_UNKNOWN
    and resolution goes on in the background: a second event follows with the final outcome).
    """

    client_order_id: str
    account_id: str
    kind: str  # "create", "replace", "close_trade", "close_position", "cancel"
    outcome: str
    transaction_ids: tuple[str, ...]
    since_transaction_id: str | None
    duration_s: float  # from the unknown outcome to this decision
    background: bool = False
    lookups: int = 0


@dataclass(frozen=True, slots=True)
class ControlAction(Event):
    action: str
    peer: str
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StreamChanged(Event):
    """An upstream stream connection changed state (CONTRACT §8)."""

    stream: str  # "pricing" or "transactions"
    key: str  # the connection: stream, masked account, instruments
    state: str  # "connecting", "connected", "reconnecting", "closed"
    reason: str  # "connected", "end_of_stream", "heartbeat_timeout", "circuit_open", ...
    reconnects: int = 0
    down_since: float | None = None  # wall seconds: since when it has delivered nothing
    error: str | None = None


@dataclass(frozen=True, slots=True)
class StreamSubscribersChanged(Event):
    stream: str
    key: str
    subscribers: int  # of this connection


@dataclass(frozen=True, slots=True)
class StreamReplayed(Event):
    """Transactions read from transactions/sinceid to fill a gap (or a subscriber's resume)."""

    stream: str
    key: str
    count: int


E = TypeVar("E", bound=Event)
Subscriber = Callable[[Any], None]


class EventBus:
    """Synchronous publish/subscribe by event type (subclasses reach subscribers of bases).

    Subscribers must be quick and must not block; async work is queued by the subscriber itself.
    A failing subscriber is logged and never disturbs the publisher or the other subscribers.
    """

    def __init__(self) -> None:
        self._subs: dict[type[Event], list[Subscriber]] = defaultdict(list)
        self._resolved: dict[type[Event], tuple[Subscriber, ...]] = {}

    def subscribe(self, event_type: type[E], handler: Callable[[E], None]) -> Callable[[], None]:
        self._subs[event_type].append(handler)
        self._resolved.clear()

        def unsubscribe() -> None:
            if handler in self._subs[event_type]:
                self._subs[event_type].remove(handler)
                self._resolved.clear()

        return unsubscribe

    def publish(self, event: Event) -> None:
        cls = type(event)
        handlers = self._resolved.get(cls)
        if handlers is None:
            handlers = tuple(h for base in cls.__mro__ for h in self._subs.get(base, ()))
            self._resolved[cls] = handlers
        for handler in handlers:
            try:
                handler(event)
            except Exception:
                _log.exception("event subscriber failed for %s", cls.__name__)


@dataclass(frozen=True, slots=True)
class AlertSent(Event):
    """One alert delivery finished (published by alerting; metrics and logs subscribe)."""

    channel: str  # "pagerduty" or "slack"
    result: str  # "ok", "failed" (given up after retries), "dropped" (queue full)
    alert: str = ""  # the alert's dedup key, e.g. "breaker_open:rest"
    action: str = "trigger"  # "trigger" or "resolve"
    count: int = 1  # identical alerts aggregated into this delivery
    attempts: int = 1
    error: str | None = None
