from __future__ import annotations

import io
import json
import logging
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider

from sidecar.config import LoggingConfig
from sidecar.events import (
    AlertSent,
    BreakerTransition,
    CacheFailed,
    ControlAction,
    DegradationChanged,
    Event,
    EventBus,
    ExecuteFinished,
    RateAdjusted,
    RetryGivenUp,
    RetryScheduled,
)
from sidecar.observability.logging import EventLogger, configure_logging

ORDERS = "/v3/accounts/{accountID}/orders"
TOKEN = "a1b2c3d4e5f60718-293a4b5c6d7e8f90a1b2c3d4e5f60718"
CONTROL = "control-secret-42"
WEBHOOK = "https://hooks.slack.com/services/T0001/B0002/XXXXXXXXXXXXXXXXXXXX"
ROUTING = "R0UT1NGKEY0123456789abcdefABCDEF"
SECRETS = [TOKEN, CONTROL, WEBHOOK, ROUTING]
ACCOUNT = "101-004-1435156-001"


@pytest.fixture
def configure() -> Iterator[Callable[..., io.StringIO]]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)

    def run(fmt: str = "json", level: str = "info") -> io.StringIO:
        stream = io.StringIO()
        config = LoggingConfig.model_validate({"format": fmt, "level": level})
        configure_logging(config, SECRETS, stream)
        return stream

    yield run
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)
    structlog.reset_defaults()


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def execute(**overrides: Any) -> ExecuteFinished:
    fields: dict[str, Any] = dict(at=1.0, method="POST", endpoint=ORDERS, outcome="ok",
                                  status=201, attempts=1, duration_s=0.0421,
                                  request_id="179834225409868544")
    fields.update(overrides)
    return ExecuteFinished(**fields)


def test_one_json_line_per_execute_with_the_agreed_fields(configure: Any) -> None:
    stream = configure()
    bus = EventBus()
    EventLogger(bus)
    bus.publish(execute())
    [line] = lines(stream)
    assert line["event"] == "execute" and line["level"] == "info"
    assert line["timestamp"].endswith("Z")
    assert {k: line[k] for k in ("method", "endpoint", "outcome", "status", "attempts",
                                 "latency_ms", "request_id")} == {
        "method": "POST", "endpoint": ORDERS, "outcome": "ok", "status": 201, "attempts": 1,
        "latency_ms": 42.1, "request_id": "179834225409868544"}
    assert "trace_id" not in line and "breaker_state" not in line


def test_execute_lines_carry_the_current_trace_and_known_breaker_state(configure: Any) -> None:
    stream = configure()
    bus = EventBus()
    EventLogger(bus)
    bus.publish(BreakerTransition(1.0, "rest", "closed", "open", "5 failures", 5, "status_503"))
    bus.publish(DegradationChanged(1.0, "none", "cached_data", "breaker open", False))
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("execute") as span:
        bus.publish(execute(outcome="circuit_open", status=None, attempts=0,
                            error="breaker rest is open"))
    line = lines(stream)[-1]
    ctx = span.get_span_context()
    assert line["trace_id"] == f"{ctx.trace_id:032x}" and line["span_id"] == f"{ctx.span_id:016x}"
    assert line["level"] == "warning"
    assert line["breaker_state"] == "open" and line["degradation"] == "cached_data"
    assert line["error"] == "breaker rest is open"


@pytest.mark.parametrize(("event", "name", "level"), [
    (RetryScheduled(1.0, "GET", ORDERS, 1, 0.25, "status_503"), "retry.scheduled", "info"),
    (RetryGivenUp(1.0, "POST", ORDERS, 1, "unsafe_write"), "retry.given_up", "warning"),
    (BreakerTransition(1.0, "rest", "open", "half_open", "timeout"), "breaker.transition", "info"),
    (DegradationChanged(1.0, "none", "read_only", "401", False), "degradation.changed",
     "warning"),
    (RateAdjusted(1.0, 50.0, 100.0, "upstream_429"), "ratelimit.adjusted", "warning"),
    (CacheFailed(1.0, "set", "connection refused"), "cache.failed", "warning"),
    (ControlAction(1.0, "reset_breaker", "ipv4:127.0.0.1:5000", {"state": "open"},
                   {"state": "closed"}), "control.action", "info"),
    (AlertSent(1.0, "slack", "failed", "breaker_open:rest", error="HTTP 500"), "alert.failed",
     "error"),
])
def test_each_event_kind_becomes_one_line(configure: Any, event: Event, name: str,
                                          level: str) -> None:
    stream = configure()
    bus = EventBus()
    EventLogger(bus)
    bus.publish(event)
    [line] = lines(stream)
    assert (line["event"], line["level"]) == (name, level)


def test_control_action_lines_show_peer_before_and_after(configure: Any) -> None:
    stream = configure()
    bus = EventBus()
    EventLogger(bus)
    bus.publish(ControlAction(1.0, "set_degradation", "ipv4:10.0.0.9:4242",
                              {"level": "none"}, {"level": "read_only"}))
    [line] = lines(stream)
    assert line["peer"] == "ipv4:10.0.0.9:4242"
    assert line["before"] == {"level": "none"} and line["after"] == {"level": "read_only"}


def test_stdlib_logging_and_warnings_use_the_same_json_renderer(configure: Any) -> None:
    stream = configure()
    logging.getLogger("aiohttp.client").warning("pool %s is full", "upstream")
    try:
        raise RuntimeError("kaboom")
    except RuntimeError:
        logging.getLogger("sidecar.app").exception("unexpected failure")
    warnings.warn("old API", DeprecationWarning, stacklevel=1)
    first, second, third = lines(stream)
    assert first["event"] == "pool upstream is full" and first["logger"] == "aiohttp.client"
    assert first["level"] == "warning" and "timestamp" in first
    assert second["level"] == "error" and "RuntimeError: kaboom" in second["exception"]
    assert third["logger"] == "py.warnings" and "old API" in third["event"]


def test_level_filters_both_structlog_and_stdlib_lines(configure: Any) -> None:
    stream = configure(level="warning")
    bus = EventBus()
    EventLogger(bus)
    bus.publish(execute())
    logging.getLogger("lib").info("chatty")
    bus.publish(execute(outcome="http_5xx", status=503))
    assert [line["outcome"] for line in lines(stream)] == ["http_5xx"]


def test_reconfiguring_replaces_the_handler_instead_of_adding_one(configure: Any) -> None:
    first = configure()
    second = configure()
    logging.getLogger("lib").warning("once")
    assert first.getvalue() == "" and len(lines(second)) == 1


def test_console_format_is_human_readable(configure: Any) -> None:
    stream = configure(fmt="console")
    bus = EventBus()
    EventLogger(bus)
    bus.publish(execute(endpoint=f"/v3/accounts/{ACCOUNT}/orders"))
    text = stream.getvalue()
    assert "execute" in text and "latency_ms" in text and not text.startswith("{")
    assert ACCOUNT not in text and "***-***-****-001" in text


def test_no_secret_survives_messages_fields_exceptions_or_stdlib_logs(configure: Any) -> None:
    stream = configure()
    log = structlog.get_logger()
    log.info(f"calling OANDA with token {TOKEN}", account=ACCOUNT)
    log.info("headers", headers={"Authorization": f"Bearer {TOKEN}", "Accept": "json"})
    log.warning("slack post failed", url=WEBHOOK, token="anything", routing_key=ROUTING,
                nested=[{"webhook": WEBHOOK}, (CONTROL, 3)])
    log.info("object", thing=RuntimeError(f"object holding {CONTROL}"))
    logging.getLogger("aiohttp.client").error("POST %s: %s", WEBHOOK, "500")
    logging.getLogger("grpc").warning("metadata authorization: Bearer %s", CONTROL)
    logging.getLogger("x").info("path only /services/T0001/B0002/XXXXXXXXXXXXXXXXXXXX")
    try:
        raise ValueError(f"bad key {ROUTING} for account {ACCOUNT}")
    except ValueError:
        log.exception("failed")
        logging.getLogger("sidecar.alerting").exception("stdlib %s", TOKEN)
    bus = EventBus()
    EventLogger(bus)
    bus.publish(ControlAction(1.0, "reset", "peer", {"token": CONTROL}, {"note": TOKEN}))
    bus.publish(AlertSent(1.0, "slack", "failed", error=f"POST {WEBHOOK} timed out"))
    out = stream.getvalue()
    assert len(out.splitlines()) == 11
    for secret in [*SECRETS, ACCOUNT, "1435156", "B0002/XXXX"]:
        assert secret not in out, secret
    assert "***-***-****-001" in out and "Bearer [REDACTED]" in out
    assert out.count("[REDACTED]") >= 12


def test_a_dead_collector_does_not_flood_the_log(configure: Any) -> None:
    stream = configure()
    sdk = logging.getLogger("opentelemetry.sdk._shared_internal")
    for _ in range(500):
        sdk.warning(f"Queue full, dropping %s (test {id(stream)}).", "Span")
    assert len(lines(stream)) == 1
