"""OpenTelemetry tracing: one SERVER span per Execute, one CLIENT span per upstream attempt.

The server span continues the caller's W3C `traceparent` from gRPC metadata and is made current
for the Execute task, so events published synchronously inside it (attempts, waits, retries,
breaker changes) land on it: attempts become child spans with explicit start and end times,
the rest become span events. Spans leave through a BatchSpanProcessor (bounded queue, background
thread): an unreachable collector never slows a request. With tracing disabled nothing subscribes
and `execute_span` returns a shared no-op context.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode

import sidecar
from sidecar.config import TelemetryConfig
from sidecar.events import (
    AttemptFinished,
    BreakerRejected,
    BreakerTransition,
    CacheServed,
    DegradationChanged,
    EventBus,
    ExecuteFinished,
    OrderResolved,
    RateLimitRejected,
    RateLimitWaited,
    RetryGivenUp,
    RetryScheduled,
)
from sidecar.observability.logging import throttle_export_warnings
from sidecar.observability.redact import Redactor
from sidecar.observability.spans import ExecuteSpan, extract, in_daemon_thread
from sidecar.vocabulary import BreakerState, Outcome, classify

_log = logging.getLogger("sidecar.tracing")
_DEFAULT_EXPORT_TIMEOUT_S = 3.0
_BATCH_SIZE = 64
_BATCH_DELAY_MS = 200.0
_SHUTDOWN_BUDGET_S = 2.0
_OK_OUTCOMES = frozenset({Outcome.OK, Outcome.HTTP_4XX})
_NOOP_SPAN: AbstractContextManager[Span] = nullcontext(INVALID_SPAN)
_SCRUB = Redactor()  # error texts may quote a path: mask account IDs, as the logs do


def _ns(seconds: float) -> int:
    """Epoch seconds to ns. Via µs: a float holds epoch µs exactly, epoch ns it does not."""
    return round(seconds * 1e6) * 1000


def build_resource(service_name: str, extra: Mapping[str, str] | None = None) -> Resource:
    """service.name/version, k8s pod and namespace from POD_NAME/POD_NAMESPACE, then `extra`."""
    attrs: dict[str, str] = {"service.name": service_name,
                             "service.version": sidecar.__version__}
    if pod := os.environ.get("POD_NAME"):
        attrs["k8s.pod.name"] = pod
    if namespace := os.environ.get("POD_NAMESPACE"):
        attrs["k8s.namespace.name"] = namespace
    attrs.update(extra or {})
    return Resource.create(attrs)


def collector_configured() -> bool:
    """Whether the standard OTLP variables name a collector to export to."""
    return any(os.environ.get(name) for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def default_exporter() -> SpanExporter:
    """OTLP/gRPC, configured by OTEL_EXPORTER_OTLP_*; a short timeout unless one is set."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    env_timeout = ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
    if any(os.environ.get(name) for name in env_timeout):
        return OTLPSpanExporter()
    return OTLPSpanExporter(timeout=_DEFAULT_EXPORT_TIMEOUT_S)


def batch_processor(exporter: SpanExporter) -> BatchSpanProcessor:
    """Small, frequent batches unless OTEL_BSP_* says otherwise: encoding a batch holds the GIL,
    and one of 512 spans (the SDK default) stalls the event loop for milliseconds."""
    size = None if os.environ.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") else _BATCH_SIZE
    delay = None if os.environ.get("OTEL_BSP_SCHEDULE_DELAY") else _BATCH_DELAY_MS
    return BatchSpanProcessor(exporter, max_export_batch_size=size, schedule_delay_millis=delay)


class Tracing:
    """Owns a private TracerProvider (the global one is left alone) and the bus subscriptions."""

    def __init__(self, config: TelemetryConfig, bus: EventBus, *,
                 exporter: SpanExporter | None = None,
                 resource_attrs: Mapping[str, str] | None = None,
                 upstream_url: str | None = None) -> None:
        self.enabled = config.tracing_enabled and (exporter is not None or collector_configured())
        self._unsubscribe: list[Callable[[], None]] = []
        self._server_address = urlsplit(upstream_url).hostname if upstream_url else None
        # Not a stream of export errors to localhost:4317: no spans made, and one line (the App
        # logs it once it serves, so that a failed start stays one line).
        self.off_reason = ("tracing off: no OTLP collector configured (set "
                           "OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)"
                           if config.tracing_enabled and not self.enabled else "")
        if not self.enabled:
            return
        self._exporter = exporter if exporter is not None else default_exporter()
        self._provider = TracerProvider(resource=build_resource(config.service_name,
                                                                resource_attrs),
                                        shutdown_on_exit=False)
        self._provider.add_span_processor(batch_processor(self._exporter))
        self._tracer = self._provider.get_tracer("oanda-sidecar", sidecar.__version__)
        throttle_export_warnings()
        subscriptions: list[tuple[type[Any], Callable[[Any], None]]] = [
            (AttemptFinished, self._on_attempt), (ExecuteFinished, self._on_execute),
            (RateLimitWaited, self._on_wait), (RateLimitRejected, self._on_rejected),
            (RetryScheduled, self._on_retry), (RetryGivenUp, self._on_given_up),
            (BreakerTransition, self._on_breaker), (BreakerRejected, self._on_breaker_rejected),
            (DegradationChanged, self._on_degradation), (CacheServed, self._on_cache_served),
            (OrderResolved, self._on_order_resolved),
        ]
        self._unsubscribe = [bus.subscribe(kind, handler) for kind, handler in subscriptions]

    @property
    def tracer(self) -> trace.Tracer | None:
        """The private provider's tracer (None when disabled), for spans not tied to Execute."""
        return self._tracer if self.enabled else None

    def execute_span(self, metadata: Sequence[tuple[str, str | bytes]] | None, method: str,
                     path_template: str | None = None, *,
                     front: str = "grpc") -> AbstractContextManager[Span]:
        """The SERVER span of one Execute, current while the context is open. The path's
        template is known once the validator has resolved it: ExecuteFinished names the span."""
        if not self.enabled:
            return _NOOP_SPAN
        return ExecuteSpan(self._tracer, extract(metadata), method, path_template, front)

    async def force_flush(self, timeout_s: float = 5.0) -> bool:
        """Export what is queued (in a thread: the exporter blocks)."""
        if not self.enabled:
            return True
        done = await in_daemon_thread(self._provider.force_flush, timeout_s)
        return bool(done)

    async def shutdown(self) -> None:
        """Flush and stop, in at most about two seconds even with a dead collector."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        if not self.enabled:
            return
        self.enabled = False
        provider = self._provider

        def stop() -> bool:
            provider.shutdown()
            return True

        if await in_daemon_thread(stop, _SHUTDOWN_BUDGET_S * 0.75) is None:
            # Still exporting to a collector that does not answer: closing the exporter aborts
            # its retries and its channel, which ends the worker thread.
            _log.warning("trace export did not finish in time; dropping queued spans")
            self._exporter.shutdown()

    # --- event handlers: all run inside the Execute task, so the server span is current ---

    def _on_attempt(self, e: AttemptFinished) -> None:
        parent = trace.get_current_span()
        if not parent.is_recording():
            return
        attrs: dict[str, Any] = {"http.request.method": e.method, "url.template": e.endpoint}
        if e.status is not None:
            attrs["http.response.status_code"] = e.status
        if e.attempt > 1:  # semconv: only on resends
            attrs["http.request.resend_count"] = e.attempt - 1
        error_type = e.error_type
        if error_type is None and e.status is not None and classify(e.status).is_transient:
            error_type = str(e.status)
        if error_type is not None:
            attrs["error.type"] = error_type
        if e.request_id:
            attrs["oanda.request_id"] = e.request_id
        if self._server_address:
            attrs["server.address"] = self._server_address
        end = _ns(e.at)
        span = self._tracer.start_span(f"{e.method} {e.endpoint}", kind=SpanKind.CLIENT,
                                       attributes=attrs, start_time=end - round(e.duration_s * 1e9))
        if error_type is not None:
            detail = _SCRUB.text(e.error_message) if e.error_message else error_type
            span.set_status(Status(StatusCode.ERROR, detail))
        span.end(end_time=end)

    def _on_execute(self, e: ExecuteFinished) -> None:
        span = trace.get_current_span()
        if not span.is_recording():
            return
        # Each attribute costs the SDK a few µs: set only what says something.
        span.update_name(f"{e.method} {e.endpoint}" if e.front == "rest"
                         else f"Execute {e.method} {e.endpoint}")
        span.set_attributes({"oanda.outcome": e.outcome, "oanda.attempts": e.attempts,
                             "url.template": e.endpoint})
        if e.from_cache:
            span.set_attribute("oanda.from_cache", True)
        if e.status is not None:
            span.set_attribute("http.response.status_code", e.status)
        if e.request_id:
            span.set_attribute("oanda.request_id", e.request_id)
        if e.outcome not in _OK_OUTCOMES:
            # An error raised through the span refines this (reason, gRPC code) in __exit__.
            span.set_attribute("error.type", e.outcome)
        if e.outcome == Outcome.HTTP_5XX:
            span.set_status(Status(StatusCode.ERROR, f"upstream answered {e.status}"))

    def _event(self, name: str, at: float, attrs: dict[str, Any]) -> None:
        span = trace.get_current_span()
        if span.is_recording():
            span.add_event(name, attrs, timestamp=_ns(at))

    def _on_wait(self, e: RateLimitWaited) -> None:
        self._event("ratelimit.wait", e.at, {"duration_ms": e.wait_s * 1000.0, "lane": e.lane})

    def _on_rejected(self, e: RateLimitRejected) -> None:
        self._event("ratelimit.rejected", e.at, {"waited_ms": e.waited_s * 1000.0,
                                                 "retry_after_ms": e.retry_after_s * 1000.0})

    def _on_retry(self, e: RetryScheduled) -> None:
        self._event("retry", e.at, {"attempt": e.attempt, "delay_ms": e.delay_s * 1000.0,
                                    "reason": e.reason})

    def _on_given_up(self, e: RetryGivenUp) -> None:
        self._event("retry.given_up", e.at, {"attempts": e.attempts, "reason": e.reason})

    def _on_breaker(self, e: BreakerTransition) -> None:
        self._event("breaker.transition", e.at, {
            "breaker": e.breaker, "from": e.from_state, "to": e.to_state, "reason": e.reason,
            "consecutive_failures": e.consecutive_failures})

    def _on_breaker_rejected(self, e: BreakerRejected) -> None:
        self._event("breaker.rejected", e.at, {
            "breaker": e.breaker, "breaker.state": BreakerState.OPEN,
            "retry_after_ms": e.retry_after_s * 1000.0})

    def _on_degradation(self, e: DegradationChanged) -> None:
        self._event("degradation.change", e.at, {"from": e.from_level, "to": e.to_level,
                                                 "reason": e.reason, "manual": e.manual})

    def _on_cache_served(self, e: CacheServed) -> None:
        self._event("cache.served", e.at, {"age_ms": e.age_s * 1000.0})

    def _on_order_resolved(self, e: OrderResolved) -> None:
        # The lookups themselves are CLIENT spans already (AttemptFinished).
        self._event("order.resolved", e.at, {
            "oanda.client_order_id": e.client_order_id, "outcome": e.outcome,
            "transaction_ids": list(e.transaction_ids), "lookups": e.lookups,
            "resolve_ms": e.duration_s * 1000.0})

