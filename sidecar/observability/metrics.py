"""Prometheus metrics, fed by events. A private registry: nothing global, tests stay isolated.

Labels are bounded by construction: endpoints are templates (a raw path that slips through is
resolved to its template), methods are the five REST verbs or OTHER, results are status classes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from sidecar.events import (
    AlertSent,
    AttemptFinished,
    BreakerRejected,
    BreakerTransition,
    CacheFailed,
    CacheServed,
    DegradationChanged,
    EventBus,
    ExecuteFinished,
    OrderResolved,
    RateAdjusted,
    RateLimitRejected,
    RateLimitWaited,
    RetryGivenUp,
    RetryScheduled,
    SharedLimitChanged,
    SharedLimitFailed,
)
from sidecar.observability.runtime import RuntimeGauges
from sidecar.observability.stream_metrics import StreamGauges
from sidecar.pipeline import METHODS
from sidecar.upstream.endpoints import TEMPLATES, UNKNOWN_TEMPLATE, resolve
from sidecar.vocabulary import LEVEL_RANK, BreakerState, ErrorKind, Lane, OrderOutcome, Outcome

# The gauge values of CONTRACT §4.
BREAKER_STATES = {BreakerState.CLOSED: 0, BreakerState.OPEN: 1, BreakerState.HALF_OPEN: 2,
                  BreakerState.FORCED_OPEN: 3, BreakerState.DISABLED: 4}
DEGRADATION_LEVELS = {level: rank for level, rank in LEVEL_RANK.items()}
_ERROR_KINDS = frozenset(ErrorKind)
_TEMPLATES = frozenset((*TEMPLATES, UNKNOWN_TEMPLATE))

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_RESOLVE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
_WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


_L, _W = _LATENCY_BUCKETS, _WAIT_BUCKETS
# (attribute, type, name after `oanda_sidecar_`, help, labels, buckets): CONTRACT §4 and more.
METRICS: tuple[tuple[str, Any, str, str, tuple[str, ...], tuple[float, ...] | None], ...] = (
    ("requests", Counter, "requests", "Calls answered (Execute: front grpc; the REST "
     "listener: front rest), by outcome (ok, http_4xx, http_5xx or the error reason)",
     ("method", "endpoint", "outcome", "front"), None),
    ("execute_duration", Histogram, "execute_duration_seconds", "Call duration inside the "
     "sidecar, all attempts and waits included, by front", ("endpoint", "front"), _L),
    ("attempts", Counter, "attempts", "Attempts sent upstream, by status class (2xx..5xx) or "
     "error kind", ("endpoint", "result"), None),
    ("upstream_latency", Histogram, "upstream_latency_seconds", "Duration of one upstream "
     "attempt", ("endpoint",), _L),
    ("retries", Counter, "retries", "Retries scheduled, by the failure that caused them",
     ("endpoint", "reason"), None),
    ("retry_succeeded", Counter, "retry_succeeded", "Calls answered with a 2xx/3xx after more "
     "than one attempt", ("endpoint",), None),
    ("retry_given_up", Counter, "retry_given_up", "Calls the retry policy stopped retrying, by "
     "reason", ("endpoint", "reason"), None),
    ("breaker_state", Gauge, "breaker_state", "Breaker state: 0 closed, 1 open, 2 half-open, "
     "3 forced open, 4 disabled", ("breaker",), None),
    ("breaker_transitions", Counter, "breaker_transitions", "Breaker state changes",
     ("breaker", "from", "to"), None),
    ("breaker_rejected", Counter, "breaker_rejected", "Calls refused by an open breaker",
     ("breaker", "endpoint"), None),
    ("ratelimit_wait", Histogram, "ratelimit_wait_seconds", "Time a request waited for a "
     "rate-limit token; one observation per wait the limiter reports (calls admitted at once "
     "may be absent)", ("lane",), _W),
    ("ratelimit_rejected", Counter, "ratelimit_rejected", "Requests refused for lack of a "
     "token in time", ("endpoint",), None),
    ("ratelimit_rate", Gauge, "ratelimit_rate_per_s", "Current sustained rate of the global "
     "bucket (lowered after an upstream 429)", (), None),
    ("ratelimit_queue", Gauge, "ratelimit_queue_length", "Requests waiting for a token",
     ("lane",), None),
    ("degradation_level", Gauge, "degradation_level", "Degradation: 0 none, 1 cached data, "
     "2 read-only", (), None),
    ("cache_served", Counter, "cache_served", "Answers served from the degradation cache",
     ("endpoint",), None),
    ("shared_errors", Counter, "ratelimit_shared_errors", "Failed Redis calls of the shared "
     "rate limit (decisions and probes), by reason", ("reason",), None),
    ("shared_fallback", Gauge, "ratelimit_shared_fallback", "1 while the shared rate limit "
     "is in its local fallback, else 0", (), None),
    ("cache_errors", Counter, "cache_errors", "Cache backend failures", ("operation",), None),
    ("alerts_sent", Counter, "alerts_sent", "Alert deliveries by channel and result (ok, "
     "failed, dropped)", ("channel", "result"), None),
    ("orders_resolved", Counter, "orders_resolved", "Order writes whose unknown outcome was "
     "resolved from OANDA's records, by outcome (placed, not_placed; unknown: the caller was "
     "answered OUTCOME_UNKNOWN and resolution goes on)", ("outcome",), None),
    ("orders_resolve_seconds", Histogram, "orders_resolve_seconds", "From an order's unknown "
     "outcome to its decision (placed or not_placed)", (), _RESOLVE_BUCKETS),
    ("stream_connected", Gauge, "stream_connected", "Upstream stream connections open and "
     "delivering", ("stream",), None),
    ("stream_subscribers", Gauge, "stream_subscribers", "Local subscribers of the upstream "
     "streams", ("stream",), None),
    ("stream_reconnects", Counter, "stream_reconnects", "Upstream stream reconnects, by what "
     "ended the previous connection", ("stream", "reason"), None),
    ("stream_replayed", Counter, "stream_replayed", "Transactions read from "
     "transactions/sinceid to fill a gap or a resume", ("stream",), None),
)


def endpoint_label(endpoint: str) -> str:
    """A template stays as it is; anything else (a raw path) becomes its template."""
    return endpoint if endpoint in _TEMPLATES else resolve(endpoint).template


def method_label(method: str) -> str:
    return method if method in METHODS else "OTHER"


def attempt_result(status: int | None, error_type: str | None) -> str:
    """`2xx`..`5xx` for an answer, the error kind otherwise."""
    if status is not None:
        return f"{status // 100}xx" if 100 <= status < 600 else "other"
    return error_type if error_type in _ERROR_KINDS else "error"


_CHILD_CACHE_LIMIT = 4096


class Metrics:
    """Every metric of CONTRACT §4 and a few extras, updated by bus events."""

    requests: Counter
    execute_duration: Histogram
    attempts: Counter
    upstream_latency: Histogram
    retries: Counter
    retry_succeeded: Counter
    retry_given_up: Counter
    breaker_state: Gauge
    breaker_transitions: Counter
    breaker_rejected: Counter
    ratelimit_wait: Histogram
    ratelimit_rejected: Counter
    ratelimit_rate: Gauge
    ratelimit_queue: Gauge
    degradation_level: Gauge
    shared_errors: Counter
    shared_fallback: Gauge
    cache_served: Counter
    cache_errors: Counter
    alerts_sent: Counter
    orders_resolved: Counter
    orders_resolve_seconds: Histogram
    stream_connected: Gauge
    stream_subscribers: Gauge
    stream_reconnects: Counter
    stream_replayed: Counter

    def __init__(self, bus: EventBus, *, breakers: Sequence[str] = ("rest",),
                 rate_per_s: float | None = None) -> None:
        # `*_created` series double the scrape size and no dashboard here reads them. The switch
        # is process-wide in prometheus_client; nothing else in the process uses that library.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        self._execute_children: dict[tuple[str, str, str, str], tuple[Any, Any]] = {}
        self._attempt_children: dict[tuple[str, int | None, str | None], tuple[Any, Any]] = {}
        self._define()
        self.runtime = RuntimeGauges(self.registry)  # event-loop lag and tasks (soak, issue 18)
        for name in breakers:
            self.breaker_state.labels(breaker=name).set(0)
        self.degradation_level.set(0)
        if rate_per_s is not None:
            self.ratelimit_rate.set(rate_per_s)
        self._unsubscribe = [
            bus.subscribe(ExecuteFinished, self._on_execute),
            bus.subscribe(AttemptFinished, self._on_attempt),
            bus.subscribe(RetryScheduled, self._on_retry),
            bus.subscribe(RetryGivenUp, self._on_given_up),
            bus.subscribe(BreakerTransition, self._on_breaker),
            bus.subscribe(BreakerRejected, self._on_breaker_rejected),
            bus.subscribe(RateLimitWaited, self._on_wait),
            bus.subscribe(RateLimitRejected, self._on_rejected),
            bus.subscribe(RateAdjusted, self._on_rate),
            bus.subscribe(SharedLimitFailed, lambda e: self.shared_errors.labels(e.reason).inc()),
            bus.subscribe(SharedLimitChanged,
                          lambda e: self.shared_fallback.set(0 if e.healthy else 1)),
            bus.subscribe(DegradationChanged, self._on_degradation),
            bus.subscribe(CacheServed, self._on_cache_served),
            bus.subscribe(CacheFailed, self._on_cache_failed),
            bus.subscribe(AlertSent, self._on_alert),
            bus.subscribe(OrderResolved, self._on_order_resolved),
        ]
        self._unsubscribe += StreamGauges(bus, self).unsubscribe  # streams (issue 13)

    def _define(self) -> None:
        for attr, kind, name, help_text, labels, buckets in METRICS:
            extra = {"buckets": buckets} if buckets else {}
            setattr(self, attr, kind(f"oanda_sidecar_{name}", help_text, labels,
                                     registry=self.registry, **extra))

    def render(self) -> tuple[bytes, str]:
        """Body and content type for GET /metrics (text format 0.0.4: every scraper reads it)."""
        return generate_latest(self.registry), CONTENT_TYPE_PLAIN_0_0_4

    def set_queue_length(self, provider: Callable[[], tuple[int, int]]) -> None:
        """Read (normal, critical) queue lengths from `provider` at every scrape."""
        self.ratelimit_queue.labels(lane=Lane.NORMAL).set_function(lambda: provider()[0])
        self.ratelimit_queue.labels(lane=Lane.CRITICAL).set_function(lambda: provider()[1])

    def alert_sent(self, channel: str, result: str) -> None:
        """Count one alert delivery. Alerting publishes AlertSent, which lands here."""
        self.alerts_sent.labels(channel=channel, result=result).inc()

    def close(self) -> None:
        """Stop listening to the bus."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()

    def _on_execute(self, e: ExecuteFinished) -> None:
        # The two series of one (method, endpoint, outcome) are looked up once and kept:
        # prometheus_client's labels() validates and locks on every call.
        key = (e.method, e.endpoint, e.outcome, e.front)
        children = self._execute_children.get(key)
        if children is None:
            endpoint = endpoint_label(e.endpoint)
            children = (self.requests.labels(method_label(e.method), endpoint, e.outcome,
                                             e.front),
                        self.execute_duration.labels(endpoint, e.front))
            if len(self._execute_children) < _CHILD_CACHE_LIMIT:
                self._execute_children[key] = children
        children[0].inc()
        children[1].observe(e.duration_s)
        if e.attempts > 1 and e.outcome == Outcome.OK:
            self.retry_succeeded.labels(endpoint_label(e.endpoint)).inc()

    def _on_attempt(self, e: AttemptFinished) -> None:
        key = (e.endpoint, e.status, e.error_type)
        children = self._attempt_children.get(key)
        if children is None:
            endpoint = endpoint_label(e.endpoint)
            children = (self.attempts.labels(endpoint, attempt_result(e.status, e.error_type)),
                        self.upstream_latency.labels(endpoint))
            if len(self._attempt_children) < _CHILD_CACHE_LIMIT:
                self._attempt_children[key] = children
        children[0].inc()
        children[1].observe(e.duration_s)

    def _on_retry(self, e: RetryScheduled) -> None:
        self.retries.labels(endpoint_label(e.endpoint), e.reason).inc()

    def _on_given_up(self, e: RetryGivenUp) -> None:
        self.retry_given_up.labels(endpoint_label(e.endpoint), e.reason).inc()

    def _on_breaker(self, e: BreakerTransition) -> None:
        self.breaker_state.labels(e.breaker).set(BREAKER_STATES.get(e.to_state, -1))
        self.breaker_transitions.labels(e.breaker, e.from_state, e.to_state).inc()

    def _on_breaker_rejected(self, e: BreakerRejected) -> None:
        self.breaker_rejected.labels(e.breaker, endpoint_label(e.endpoint)).inc()

    def _on_wait(self, e: RateLimitWaited) -> None:
        self.ratelimit_wait.labels(e.lane).observe(e.wait_s)

    def _on_rejected(self, e: RateLimitRejected) -> None:
        self.ratelimit_rejected.labels(endpoint_label(e.endpoint)).inc()

    def _on_rate(self, e: RateAdjusted) -> None:
        self.ratelimit_rate.set(e.rate_per_s)

    def _on_degradation(self, e: DegradationChanged) -> None:
        self.degradation_level.set(DEGRADATION_LEVELS.get(e.to_level, -1))

    def _on_cache_served(self, e: CacheServed) -> None:
        self.cache_served.labels(endpoint_label(e.endpoint)).inc()

    def _on_cache_failed(self, e: CacheFailed) -> None:
        self.cache_errors.labels(e.operation).inc()

    def _on_alert(self, e: AlertSent) -> None:
        self.alert_sent(e.channel, e.result)

    def _on_order_resolved(self, e: OrderResolved) -> None:
        self.orders_resolved.labels(e.outcome).inc()
        if e.outcome != OrderOutcome.UNKNOWN:
            self.orders_resolve_seconds.observe(e.duration_s)
