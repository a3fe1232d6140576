"""One span per upstream stream connection (not per price): it starts when the connection is
established and ends when it goes away, with the reason; reconnects are so many siblings."""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from sidecar.events import EventBus, StreamChanged

_QUIET_ENDS = frozenset({"closed"})


def _ns(seconds: float) -> int:
    return round(seconds * 1e6) * 1000


class StreamSpans:
    def __init__(self, tracer: trace.Tracer, bus: EventBus) -> None:
        self._tracer = tracer
        self._open: dict[tuple[str, str], Span] = {}
        self._unsubscribe: Callable[[], None] = bus.subscribe(StreamChanged, self._on_change)

    def close(self) -> None:
        self._unsubscribe()
        for span in self._open.values():
            span.end()
        self._open.clear()

    def _on_change(self, e: StreamChanged) -> None:
        key = (e.stream, e.key)
        ended = self._open.pop(key, None)
        if ended is not None:
            ended.set_attribute("oanda.stream.end_reason", e.reason)
            if e.reason not in _QUIET_ENDS:
                ended.set_status(Status(StatusCode.ERROR, e.reason))
                if e.error:
                    ended.set_attribute("error.type", e.reason)
            ended.end(end_time=_ns(e.at))
        if e.state == "connected":
            template = f"/v3/accounts/{{accountID}}/{e.stream}/stream"
            span = self._tracer.start_span(
                f"GET {template}", kind=SpanKind.CLIENT, start_time=_ns(e.at),
                context=trace.set_span_in_context(trace.INVALID_SPAN),
                attributes={"http.request.method": "GET", "url.template": template,
                            "oanda.stream": e.stream, "oanda.stream.key": e.key,
                            "oanda.stream.reconnects": e.reconnects})
            self._open[key] = span
