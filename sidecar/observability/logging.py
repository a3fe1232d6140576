"""Structured logs: one JSON line per event worth a line, stdlib logging through the same renderer.

`configure_logging` sets up structlog (our own lines) and the root stdlib handler (library lines,
`logging.getLogger(...).exception(...)`) with one processor chain: level, timestamp, the current
OTel trace and span IDs, exception text, redaction, then JSON (or console) rendering.
`EventLogger` turns bus events into lines; policies never log themselves.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

import structlog
from opentelemetry import trace
from structlog.typing import EventDict, Processor, WrappedLogger

from sidecar.config import LoggingConfig
from sidecar.events import (
    AlertSent,
    BreakerTransition,
    CacheFailed,
    ControlAction,
    DegradationChanged,
    EventBus,
    ExecuteFinished,
    OrderResolved,
    RateAdjusted,
    RetryGivenUp,
    RetryScheduled,
    SharedLimitChanged,
    StreamChanged,
    StreamReplayed,
)
from sidecar.observability.redact import Redactor
from sidecar.vocabulary import BreakerState, Level, OrderOutcome, Outcome

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}
_HANDLER_NAME = "oanda-sidecar"


def add_trace_context(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """Add trace_id and span_id of the current OTel span, when there is one."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict["trace_id"] = f"{ctx.trace_id:032x}"
        event_dict["span_id"] = f"{ctx.span_id:016x}"
    return event_dict


def _lead_fields(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """timestamp, level and event first: lines stay scannable by eye."""
    lead = {k: event_dict.pop(k) for k in ("timestamp", "level", "event") if k in event_dict}
    lead.update(event_dict)
    return lead


def configure_logging(config: LoggingConfig, secrets: Sequence[str],
                      stream: TextIO = sys.stderr) -> None:
    """Route structlog and stdlib logging to `stream`, redacted, as JSON or console lines.

    Safe to call again (tests, reload): the previous handler is replaced, not duplicated.
    """
    level = _LEVELS[config.level]
    redactor = Redactor(secrets)
    renderer: list[Processor]
    if config.format == "console":
        renderer = [structlog.dev.ConsoleRenderer(colors=_isatty(stream))]
    else:
        renderer = [_lead_fields, structlog.processors.JSONRenderer()]
    common: list[Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_context,
    ]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *common,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            redactor,
            *renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    _route_stdlib(stream, level, common, [redactor, *renderer])


def _route_stdlib(stream: TextIO, level: int, common: list[Processor],
                  tail: list[Processor]) -> None:
    """Standard-library loggers (grpc, aiohttp, ...) through the same processors."""
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_logger_name,
            *common,
            structlog.processors.format_exc_info,
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
    )
    handler = logging.StreamHandler(stream)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    throttle_export_warnings()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


_root = logging.getLogger()


class EventLogger:
    """Writes one line per Execute outcome, retry, breaker, degradation, rate, cache, control
    and alert event. Breaker state and degradation level ride along on Execute lines once known.
    """

    def __init__(self, bus: EventBus) -> None:
        self._log = structlog.get_logger()
        self._breakers: dict[str, str] = {}
        self._degradation: str = Level.NONE
        self._unsubscribe = [
            bus.subscribe(ExecuteFinished, self._on_execute),
            bus.subscribe(RetryScheduled, self._on_retry),
            bus.subscribe(RetryGivenUp, self._on_given_up),
            bus.subscribe(BreakerTransition, self._on_breaker),
            bus.subscribe(DegradationChanged, self._on_degradation),
            bus.subscribe(RateAdjusted, self._on_rate),
            bus.subscribe(SharedLimitChanged, self._on_shared_limit),
            bus.subscribe(CacheFailed, self._on_cache_failed),
            bus.subscribe(ControlAction, self._on_control),
            bus.subscribe(AlertSent, self._on_alert),
            bus.subscribe(OrderResolved, self._on_order_resolved),
            bus.subscribe(StreamChanged, self._on_stream),
            bus.subscribe(StreamReplayed, self._on_replayed),
        ]

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()

    def _emit(self, level: int, event: str, **fields: Any) -> None:
        self._log.log(level, event, **fields)

    def _on_execute(self, e: ExecuteFinished) -> None:
        level = _execute_level(e.outcome)
        if not _root.isEnabledFor(level):
            return  # one per call: skip building a line nobody will write
        fields: dict[str, Any] = {
            "method": e.method, "endpoint": e.endpoint, "outcome": e.outcome,
            "status": e.status, "attempts": e.attempts,
            "latency_ms": round(e.duration_s * 1000.0, 3), "request_id": e.request_id,
        }
        if e.front != "grpc":
            fields["front"] = e.front
        if e.from_cache:
            fields["from_cache"] = True
        if e.error is not None:
            fields["error"] = e.error
        if "rest" in self._breakers:
            fields["breaker_state"] = self._breakers["rest"]
        if self._degradation != Level.NONE:
            fields["degradation"] = self._degradation
        self._emit(level, "execute", **fields)

    def _on_retry(self, e: RetryScheduled) -> None:
        self._emit(logging.INFO, "retry.scheduled", method=e.method, endpoint=e.endpoint,
                   attempt=e.attempt, delay_ms=round(e.delay_s * 1000.0, 1), reason=e.reason)

    def _on_given_up(self, e: RetryGivenUp) -> None:
        self._emit(logging.WARNING, "retry.given_up", method=e.method, endpoint=e.endpoint,
                   attempts=e.attempts, reason=e.reason)

    def _on_breaker(self, e: BreakerTransition) -> None:
        self._breakers[e.breaker] = e.to_state
        level = logging.WARNING if e.to_state in _OPEN_STATES else logging.INFO
        self._emit(level, "breaker.transition", breaker=e.breaker, from_state=e.from_state,
                   to_state=e.to_state, reason=e.reason,
                   consecutive_failures=e.consecutive_failures, last_error=e.last_error)

    def _on_degradation(self, e: DegradationChanged) -> None:
        self._degradation = e.to_level
        level = logging.INFO if e.to_level == Level.NONE else logging.WARNING
        self._emit(level, "degradation.changed", from_level=e.from_level, to_level=e.to_level,
                   reason=e.reason, manual=e.manual)

    def _on_rate(self, e: RateAdjusted) -> None:
        level = logging.WARNING if e.reason == "upstream_429" else logging.INFO
        self._emit(level, "ratelimit.adjusted", rate_per_s=round(e.rate_per_s, 3),
                   configured_rate_per_s=e.configured_rate_per_s, reason=e.reason)

    def _on_shared_limit(self, e: SharedLimitChanged) -> None:
        self._emit(logging.INFO if e.healthy else logging.WARNING, "ratelimit.shared",
                   backend=e.backend, healthy=e.healthy, key_hash=e.key_hash, reason=e.reason,
                   error=e.error)

    def _on_cache_failed(self, e: CacheFailed) -> None:
        self._emit(logging.WARNING, "cache.failed", operation=e.operation, error=e.error)

    def _on_control(self, e: ControlAction) -> None:
        self._emit(logging.INFO, "control.action", action=e.action, peer=e.peer,
                   before=e.before, after=e.after)

    def _on_alert(self, e: AlertSent) -> None:
        level = logging.INFO if e.result == "ok" else logging.ERROR
        self._emit(level, "alert.sent" if e.result == "ok" else "alert.failed",
                   channel=e.channel, result=e.result, alert=e.alert, action=e.action,
                   count=e.count, attempts=e.attempts, error=e.error)

    def _on_order_resolved(self, e: OrderResolved) -> None:
        level = logging.WARNING if e.outcome == OrderOutcome.UNKNOWN else logging.INFO
        self._emit(level, "order.resolved", client_order_id=e.client_order_id,
                   account_id=e.account_id, kind=e.kind, outcome=e.outcome,
                   transaction_ids=list(e.transaction_ids),
                   since_transaction_id=e.since_transaction_id,
                   resolve_ms=round(e.duration_s * 1000.0, 1), background=e.background,
                   lookups=e.lookups)


    def _on_stream(self, e: StreamChanged) -> None:
        level = logging.WARNING if e.state == "reconnecting" else logging.INFO
        self._emit(level, "stream.changed", stream=e.key, state=e.state, reason=e.reason,
                   reconnects=e.reconnects, error=e.error)

    def _on_replayed(self, e: StreamReplayed) -> None:
        self._emit(logging.INFO, "stream.replayed", stream=e.key, transactions=e.count)


_OPEN_STATES = frozenset({BreakerState.OPEN, BreakerState.FORCED_OPEN})
_QUIET_OUTCOMES = frozenset({Outcome.OK, Outcome.HTTP_4XX, "invalid_request"})


def _execute_level(outcome: str) -> int:
    if outcome in _QUIET_OUTCOMES:
        return logging.INFO
    if outcome == "internal":
        return logging.ERROR
    return logging.WARNING


class _Throttle(logging.Filter):
    """Lets one record per message template through every `interval_s` (the SDK logs a warning
    per dropped span and per failed export: with a dead collector that is a flood)."""

    def __init__(self, interval_s: float = 30.0) -> None:
        super().__init__()
        self._interval_s = interval_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = str(record.msg)
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._interval_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        self._last[key] = now
        if count := self._suppressed.pop(key, 0):
            record.msg = f"{record.msg} ({count} similar messages suppressed)"
        return True


_THROTTLED_LOGGERS = ("opentelemetry.sdk._shared_internal",
                      "opentelemetry.exporter.otlp.proto.grpc.exporter")


def throttle_export_warnings() -> None:
    """Keep the OTel SDK from flooding the log while the collector is unreachable."""
    for name in _THROTTLED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _Throttle) for f in logger.filters):
            logger.addFilter(_Throttle())
