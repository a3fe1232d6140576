from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

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
    RateAdjusted,
    RateLimitRejected,
    RateLimitWaited,
    RetryGivenUp,
    RetryScheduled,
)
from sidecar.observability.metrics import Metrics
from sidecar.upstream.endpoints import resolve

ORDERS = "/v3/accounts/{accountID}/orders"
CONTRACT_NAMES = [
    "oanda_sidecar_requests_total", "oanda_sidecar_attempts_total",
    "oanda_sidecar_retries_total", "oanda_sidecar_breaker_state",
    "oanda_sidecar_breaker_transitions_total", "oanda_sidecar_ratelimit_wait_seconds",
    "oanda_sidecar_ratelimit_rejected_total", "oanda_sidecar_degradation_level",
    "oanda_sidecar_upstream_latency_seconds", "oanda_sidecar_alerts_sent_total",
]


def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    body, _ = metrics.render()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(body.decode())
            for s in family.samples}


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, frozenset(labels.items())))


def attempt(status: int | None, error: str | None = None, n: int = 1,
            endpoint: str = ORDERS) -> AttemptFinished:
    return AttemptFinished(1.0, "GET", endpoint, n, 0.04, status, error)


def test_render_exposes_every_contract_name_as_prometheus_text() -> None:
    metrics = Metrics(EventBus())
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    text = body.decode()
    for name in CONTRACT_NAMES:
        assert f"# TYPE {name} " in text, name
    assert "_created" not in text


def test_execute_and_attempt_events_count_by_template_outcome_and_result() -> None:
    bus = EventBus()
    metrics = Metrics(bus)
    bus.publish(ExecuteFinished(1.0, "POST", ORDERS, "ok", 201, 1, 0.2))
    bus.publish(ExecuteFinished(1.0, "POST", ORDERS, "circuit_open", None, 0, 0.001))
    for event in (attempt(503), attempt(503, n=2), attempt(200, n=3), attempt(None, "timeout"),
                  attempt(429)):
        bus.publish(event)
    assert value(metrics, "oanda_sidecar_requests_total", method="POST", endpoint=ORDERS,
                 outcome="ok", front="grpc") == 1
    assert value(metrics, "oanda_sidecar_requests_total", method="POST", endpoint=ORDERS,
                 outcome="circuit_open", front="grpc") == 1
    assert value(metrics, "oanda_sidecar_attempts_total", endpoint=ORDERS, result="5xx") == 2
    assert value(metrics, "oanda_sidecar_attempts_total", endpoint=ORDERS, result="2xx") == 1
    assert value(metrics, "oanda_sidecar_attempts_total", endpoint=ORDERS, result="4xx") == 1
    assert value(metrics, "oanda_sidecar_attempts_total", endpoint=ORDERS,
                 result="timeout") == 1
    assert value(metrics, "oanda_sidecar_upstream_latency_seconds_count", endpoint=ORDERS) == 5
    assert value(metrics, "oanda_sidecar_upstream_latency_seconds_bucket", endpoint=ORDERS,
                 le="0.05") == 5
    assert value(metrics, "oanda_sidecar_execute_duration_seconds_sum",
                 endpoint=ORDERS, front="grpc") == 0.201
    bus.publish(ExecuteFinished(1.0, "POST", ORDERS, "ok", 201, 1, 0.3, front="rest"))
    assert value(metrics, "oanda_sidecar_requests_total", method="POST", endpoint=ORDERS,
                 outcome="ok", front="rest") == 1
    assert value(metrics, "oanda_sidecar_requests_total", method="POST", endpoint=ORDERS,
                 outcome="ok", front="grpc") == 1


def test_breaker_gauge_starts_closed_for_each_breaker_and_follows_transitions() -> None:
    bus = EventBus()
    metrics = Metrics(bus, breakers=("rest", "stream"))
    assert value(metrics, "oanda_sidecar_breaker_state", breaker="rest") == 0
    assert value(metrics, "oanda_sidecar_breaker_state", breaker="stream") == 0
    expected = {"open": 1, "half_open": 2, "forced_open": 3, "disabled": 4, "closed": 0}
    previous = "closed"
    for state, code in expected.items():
        bus.publish(BreakerTransition(1.0, "rest", previous, state, "test"))
        assert value(metrics, "oanda_sidecar_breaker_state", breaker="rest") == code
        previous = state
    assert value(metrics, "oanda_sidecar_breaker_transitions_total", breaker="rest",
                 **{"from": "closed", "to": "open"}) == 1
    bus.publish(BreakerRejected(1.0, "rest", ORDERS, 3.0))
    assert value(metrics, "oanda_sidecar_breaker_rejected_total", breaker="rest",
                 endpoint=ORDERS) == 1


def test_retry_ratelimit_degradation_cache_and_alert_events() -> None:
    bus = EventBus()
    metrics = Metrics(bus, rate_per_s=100)
    bus.publish(RetryScheduled(1.0, "GET", ORDERS, 1, 0.5, "status_503"))
    bus.publish(RetryGivenUp(1.0, "POST", ORDERS, 1, "unsafe_write"))
    bus.publish(RateLimitWaited(1.0, ORDERS, 0.3, "normal"))
    bus.publish(RateLimitRejected(1.0, ORDERS, 5.0, 0.2))
    bus.publish(RateAdjusted(1.0, 50.0, 100.0, "upstream_429"))
    bus.publish(DegradationChanged(1.0, "none", "read_only", "auth", False))
    bus.publish(CacheServed(1.0, ORDERS, 2.0))
    bus.publish(CacheFailed(1.0, "get", "redis down"))
    bus.publish(AlertSent(1.0, "slack", "failed"))
    metrics.alert_sent("pagerduty", "ok")
    assert value(metrics, "oanda_sidecar_retries_total", endpoint=ORDERS,
                 reason="status_503") == 1
    assert value(metrics, "oanda_sidecar_retry_given_up_total", endpoint=ORDERS,
                 reason="unsafe_write") == 1
    assert value(metrics, "oanda_sidecar_ratelimit_wait_seconds_bucket", lane="normal",
                 le="0.25") == 0
    assert value(metrics, "oanda_sidecar_ratelimit_wait_seconds_bucket", lane="normal",
                 le="0.5") == 1
    assert value(metrics, "oanda_sidecar_ratelimit_rejected_total", endpoint=ORDERS) == 1
    assert value(metrics, "oanda_sidecar_ratelimit_rate_per_s") == 50
    assert value(metrics, "oanda_sidecar_degradation_level") == 2
    assert value(metrics, "oanda_sidecar_cache_served_total", endpoint=ORDERS) == 1
    assert value(metrics, "oanda_sidecar_cache_errors_total", operation="get") == 1
    assert value(metrics, "oanda_sidecar_alerts_sent_total", channel="slack",
                 result="failed") == 1
    assert value(metrics, "oanda_sidecar_alerts_sent_total", channel="pagerduty",
                 result="ok") == 1


def test_queue_length_is_read_from_the_provider_at_each_scrape() -> None:
    metrics = Metrics(EventBus())
    lengths = [(3, 1)]
    metrics.set_queue_length(lambda: lengths[0])
    assert value(metrics, "oanda_sidecar_ratelimit_queue_length", lane="normal") == 3
    assert value(metrics, "oanda_sidecar_ratelimit_queue_length", lane="critical") == 1
    lengths[0] = (0, 7)
    assert value(metrics, "oanda_sidecar_ratelimit_queue_length", lane="critical") == 7


def test_labels_stay_bounded_over_a_thousand_account_ids() -> None:
    bus = EventBus()
    metrics = Metrics(bus)
    before = len(samples(metrics))
    for n in range(1000):
        path = f"/v3/accounts/101-004-{1_000_000 + n}-001/orders"
        template = resolve(path).template
        bus.publish(ExecuteFinished(1.0, "GET", template, "ok", 200, 1, 0.01))
        bus.publish(AttemptFinished(1.0, "GET", template, 1, 0.01, 200, None))
        # A raw path slipping into an event still lands on its template.
        bus.publish(RetryScheduled(1.0, "GET", path, 1, 0.1, "timeout"))
    grown = len(samples(metrics)) - before
    # requests (1) + execute histogram (12 buckets + inf + sum + count) + attempts (1)
    # + latency histogram (15) + retries (1).
    assert grown == 1 + 15 + 1 + 15 + 1
    assert value(metrics, "oanda_sidecar_retries_total", endpoint=ORDERS, reason="timeout") == 1000
    assert "101-004" not in metrics.render()[0].decode()


def test_unknown_methods_collapse_and_registries_are_private() -> None:
    bus = EventBus()
    first, second = Metrics(bus), Metrics(EventBus())
    bus.publish(ExecuteFinished(1.0, "BREW", "/v3/{unknown}", "invalid_request", None, 0, 0.0))
    assert value(first, "oanda_sidecar_requests_total", method="OTHER", endpoint="/v3/{unknown}",
                 outcome="invalid_request", front="grpc") == 1
    assert value(second, "oanda_sidecar_requests_total", method="OTHER",
                 endpoint="/v3/{unknown}", outcome="invalid_request", front="grpc") is None
    first.close()
    bus.publish(ExecuteFinished(1.0, "BREW", "/v3/{unknown}", "invalid_request", None, 0, 0.0))
    assert value(first, "oanda_sidecar_requests_total", method="OTHER", endpoint="/v3/{unknown}",
                 outcome="invalid_request", front="grpc") == 1


def test_a_success_after_retries_is_counted_once_per_call() -> None:
    bus = EventBus()
    metrics = Metrics(bus)
    bus.publish(ExecuteFinished(1.0, "GET", ORDERS, "ok", 200, 3, 0.2))
    bus.publish(ExecuteFinished(1.0, "GET", ORDERS, "ok", 200, 1, 0.2))
    bus.publish(ExecuteFinished(1.0, "GET", ORDERS, "http_5xx", 503, 3, 0.2))
    assert value(metrics, "oanda_sidecar_retry_succeeded_total", endpoint=ORDERS) == 1
