from __future__ import annotations

import socket
import time
from collections.abc import Iterator, Sequence

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as PbStatus
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import sidecar
from sidecar.clock import FakeClock
from sidecar.config import TelemetryConfig
from sidecar.errors import CircuitOpen, InvalidRequest
from sidecar.events import (
    AttemptFinished,
    BreakerTransition,
    CacheServed,
    DegradationChanged,
    EventBus,
    ExecuteFinished,
    RateLimitWaited,
    RetryScheduled,
)
from sidecar.observability.tracing import Tracing
from sidecar.pipeline import Call, Handler, Response, compose
from sidecar.upstream.endpoints import resolve
from tests.observability.otlp_receiver import OtlpReceiver

ORDERS = "/v3/accounts/{accountID}/orders"
PATH = "/v3/accounts/101-004-1435156-001/orders"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
INCOMING = [("traceparent", f"00-{TRACE_ID}-{PARENT_ID}-01"), ("user-agent", "grpc-python")]


class RetryOn503:
    """A stand-in for the retry policy: up to three attempts while OANDA answers 503."""

    def __init__(self, bus: EventBus, clock: FakeClock) -> None:
        self.bus, self.clock = bus, clock

    async def handle(self, call: Call, next: Handler) -> Response:
        for attempt in (1, 2, 3):
            call.attempt = attempt
            response = await next(call)
            if response.status != 503 or attempt == 3:
                return response
            self.bus.publish(RetryScheduled(self.clock.wall(), call.method,
                                            call.endpoint.template, attempt, 0.5, "status_503"))
            await self.clock.sleep(0.5)
        raise AssertionError("unreachable")


def scripted_transport(bus: EventBus, clock: FakeClock, statuses: list[int]) -> Handler:
    answers = iter(statuses)

    async def transport(call: Call) -> Response:
        await clock.sleep(0.02)  # the attempt takes 20 ms of fake time
        status = next(answers)
        bus.publish(AttemptFinished(clock.wall(), call.method, call.endpoint.template,
                                    call.attempt, 0.02, status, None,
                                    request_id=f"70{call.attempt}"))
        return Response(status, b"{}", headers={"RequestID": f"70{call.attempt}"},
                        attempts=call.attempt)

    return transport


async def run_execute(tracing: Tracing, bus: EventBus, clock: FakeClock, statuses: list[int],
                      metadata: Sequence[tuple[str, str | bytes]] | None = INCOMING) -> Response:
    handler = compose([RetryOn503(bus, clock)], scripted_transport(bus, clock, statuses))
    with tracing.execute_span(metadata, "GET", ORDERS):
        response = await handler(Call("GET", PATH, resolve(PATH)))
        bus.publish(ExecuteFinished(clock.wall(), "GET", ORDERS, "ok", response.status,
                                    response.attempts, 0.5))
    return response


@pytest.fixture
def memory() -> Iterator[InMemorySpanExporter]:
    yield InMemorySpanExporter()


def ended(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in exporter.get_finished_spans()}


async def test_spans_reach_a_real_otlp_receiver_in_the_callers_trace() -> None:
    bus, clock = EventBus(), FakeClock(wall_start=time.time())
    async with OtlpReceiver() as receiver:
        tracing = Tracing(TelemetryConfig(service_name="sidecar-under-test"), bus,
                          exporter=OTLPSpanExporter(endpoint=receiver.endpoint, insecure=True),
                          upstream_url="https://api-fxpractice.oanda.com")
        response = await run_execute(tracing, bus, clock, [503, 503, 200])
        assert response.status == 200
        assert await tracing.force_flush()
        spans = await receiver.wait_for_spans(4)
        await tracing.shutdown()
    [server] = [s for s in spans if s.span.kind == PbSpan.SPAN_KIND_SERVER]
    assert server.name == f"Execute GET {ORDERS}"
    assert (server.trace_id, server.parent_span_id) == (TRACE_ID, PARENT_ID)
    assert server.resource["service.name"] == "sidecar-under-test"
    assert server.resource["service.version"] == sidecar.__version__
    assert [name for name, _ in server.events] == ["retry", "retry"]
    attempts = sorted((s for s in spans if s.span.kind == PbSpan.SPAN_KIND_CLIENT),
                      key=lambda s: s.span.start_time_unix_nano)
    assert len(attempts) == 3
    for span in attempts:
        assert (span.trace_id, span.parent_span_id) == (TRACE_ID, server.span_id)
        assert span.name == f"GET {ORDERS}"
        assert span.span.end_time_unix_nano - span.span.start_time_unix_nano == 20_000_000
    attrs = [s.attributes for s in attempts]
    assert [a.get("http.request.resend_count") for a in attrs] == [None, 1, 2]
    assert [a["http.response.status_code"] for a in attrs] == [503, 503, 200]
    assert [a.get("error.type") for a in attrs] == ["503", "503", None]
    assert [a["oanda.request_id"] for a in attrs] == ["701", "702", "703"]
    assert {a["url.template"] for a in attrs} == {ORDERS}
    assert {a["server.address"] for a in attrs} == {"api-fxpractice.oanda.com"}
    assert [s.span.status.code for s in attempts] == [
        PbStatus.STATUS_CODE_ERROR, PbStatus.STATUS_CODE_ERROR, PbStatus.STATUS_CODE_UNSET]


async def test_sidecar_events_become_span_events_on_the_server_span(
        memory: InMemorySpanExporter) -> None:
    bus = EventBus()
    tracing = Tracing(TelemetryConfig(), bus, exporter=memory)
    with tracing.execute_span(None, "GET", ORDERS):
        bus.publish(RateLimitWaited(1000.0, ORDERS, 0.25, "normal"))
        bus.publish(BreakerTransition(1000.1, "rest", "half_open", "closed", "probe ok"))
        bus.publish(DegradationChanged(1000.2, "cached_data", "none", "recovered", False))
        bus.publish(CacheServed(1000.3, ORDERS, 2.5))
        bus.publish(ExecuteFinished(1000.4, "GET", ORDERS, "http_5xx", 503, 3, 3.1))
    await tracing.force_flush()
    await tracing.shutdown()
    server = ended(memory)[f"Execute GET {ORDERS}"]
    assert server.kind == SpanKind.SERVER and server.parent is None
    events = {e.name: dict(e.attributes or {}) for e in server.events}
    assert events["ratelimit.wait"] == {"duration_ms": 250.0, "lane": "normal"}
    assert events["breaker.transition"]["to"] == "closed"
    assert events["degradation.change"]["from"] == "cached_data"
    assert events["cache.served"] == {"age_ms": 2500.0}
    assert server.events[0].timestamp == 1000 * 10**9
    assert server.attributes is not None
    assert server.attributes["oanda.attempts"] == 3
    assert server.attributes["http.response.status_code"] == 503
    assert server.status.status_code == StatusCode.ERROR


@pytest.mark.parametrize(("error", "status"), [
    (CircuitOpen("breaker rest is open"), StatusCode.ERROR),
    (InvalidRequest("bad path", field="path"), StatusCode.UNSET),
])
async def test_errors_raised_through_the_span_set_its_status_by_grpc_code(
        memory: InMemorySpanExporter, error: Exception, status: StatusCode) -> None:
    tracing = Tracing(TelemetryConfig(), EventBus(), exporter=memory)
    with pytest.raises(type(error)), tracing.execute_span(None, "POST", ORDERS):
        raise error
    await tracing.shutdown()
    [span] = memory.get_finished_spans()
    assert span.status.status_code == status
    assert span.attributes is not None
    assert span.attributes["error.type"] == getattr(error, "reason", None)
    assert trace.get_current_span() is trace.INVALID_SPAN


async def test_an_unsampled_caller_trace_records_nothing(memory: InMemorySpanExporter) -> None:
    bus = EventBus()
    tracing = Tracing(TelemetryConfig(), bus, exporter=memory)
    unsampled = [("traceparent", f"00-{TRACE_ID}-{PARENT_ID}-00")]
    await run_execute(tracing, bus, FakeClock(), [200], metadata=unsampled)
    await tracing.shutdown()
    assert memory.get_finished_spans() == ()


async def test_resource_names_the_pod_and_namespace_from_the_environment(
        memory: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAME", "sidecar-7d9f-abc")
    monkeypatch.setenv("POD_NAMESPACE", "trading")
    tracing = Tracing(TelemetryConfig(), EventBus(), exporter=memory,
                      resource_attrs={"deployment.environment.name": "test"})
    with tracing.execute_span([], "GET", ORDERS):
        pass
    await tracing.shutdown()
    [span] = memory.get_finished_spans()
    assert {"service.name": "oanda-sidecar", "k8s.pod.name": "sidecar-7d9f-abc",
            "k8s.namespace.name": "trading",
            "deployment.environment.name": "test"}.items() <= dict(span.resource.attributes).items()


async def test_disabled_tracing_is_a_no_op(memory: InMemorySpanExporter) -> None:
    bus = EventBus()
    tracing = Tracing(TelemetryConfig(tracing_enabled=False), bus, exporter=memory)
    await run_execute(tracing, bus, FakeClock(), [503, 200])
    with tracing.execute_span(INCOMING, "GET", ORDERS) as span:
        assert not span.is_recording()
    await tracing.shutdown()
    assert memory.get_finished_spans() == ()
    assert not bus._subs.get(AttemptFinished)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_an_unreachable_collector_never_slows_requests_and_shutdown_is_bounded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")  # the exporter keeps trying meanwhile
    bus, clock = EventBus(), FakeClock(wall_start=time.time())
    exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{closed_port()}", insecure=True, timeout=5)
    tracing = Tracing(TelemetryConfig(), bus, exporter=exporter)
    timings = []
    started = time.perf_counter()
    for _ in range(200):
        one = time.perf_counter()
        await run_execute(tracing, bus, clock, [200])
        timings.append(time.perf_counter() - one)
    elapsed = time.perf_counter() - started
    slowest, median = max(timings), sorted(timings)[100]
    stop = time.perf_counter()
    await tracing.shutdown()
    stopped_in = time.perf_counter() - stop
    # A request that waited for the export would take the exporter's 5 s timeout; scheduling
    # noise on a loaded 2-core machine is tens of milliseconds at worst.
    assert elapsed < 2.0, f"200 traced Executes took {elapsed:.3f}s"
    assert median < 0.005, f"median Execute took {median * 1000:.1f}ms"
    assert slowest < 0.5, f"slowest Execute took {slowest * 1000:.1f}ms"
    assert stopped_in < 2.2, f"shutdown took {stopped_in:.2f}s"


async def test_a_failed_attempt_names_its_error_and_masks_account_ids(
        memory: InMemorySpanExporter) -> None:
    bus = EventBus()
    tracing = Tracing(TelemetryConfig(), bus, exporter=memory)
    with tracing.execute_span(None, "GET", ORDERS):
        bus.publish(AttemptFinished(1000.0, "GET", ORDERS, 2, 10.0, None, "timeout",
                                    error_message=f"no answer for {PATH} in 10s"))
    await tracing.shutdown()
    attempt = ended(memory)[f"GET {ORDERS}"]
    assert attempt.kind == SpanKind.CLIENT
    assert attempt.attributes is not None
    assert attempt.attributes["error.type"] == "timeout"
    assert attempt.attributes["http.request.resend_count"] == 1
    assert "http.response.status_code" not in attempt.attributes
    assert attempt.status.status_code == StatusCode.ERROR
    assert attempt.status.description == \
        "no answer for /v3/accounts/***-***-****-001/orders in 10s"
    assert (attempt.start_time, attempt.end_time) == (990 * 10**9, 1000 * 10**9)


async def test_an_unexpected_exception_marks_the_span_without_leaking_details(
        memory: InMemorySpanExporter) -> None:
    tracing = Tracing(TelemetryConfig(), EventBus(), exporter=memory)
    with pytest.raises(KeyError), tracing.execute_span(None, "GET", ORDERS):
        raise KeyError(f"account {PATH}")
    await tracing.shutdown()
    [span] = memory.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    [event] = span.events
    assert event.name == "exception" and event.attributes is not None
    assert "1435156" not in str(event.attributes["exception.message"])


def test_no_collector_configured_means_tracing_off_with_one_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15: before, tracing was on and the log filled with export errors to
    localhost:4317."""
    from sidecar.config import TelemetryConfig
    from sidecar.events import EventBus

    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    tracing = Tracing(TelemetryConfig(tracing_enabled=True), EventBus())
    assert not tracing.enabled
    assert tracing.off_reason.startswith("tracing off: no OTLP collector configured")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    assert Tracing(TelemetryConfig(tracing_enabled=True), EventBus()).enabled
