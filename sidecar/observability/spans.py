"""The pieces of tracing that are not subscriptions: the Execute SERVER span (continuing the
caller's `traceparent`, mapping errors to span status) and running blocking SDK calls off the
event loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from sidecar.errors import SidecarError
from sidecar.observability.redact import Redactor

_PROPAGATOR = TraceContextTextMapPropagator()
_TRACE_KEYS = frozenset({"traceparent", "tracestate"})
# gRPC server spans are errors only for these codes (OTel semantic conventions for RPC).
_SERVER_ERROR_CODES = frozenset({grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED,
                                 grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.INTERNAL,
                                 grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DATA_LOSS})
_SCRUB = Redactor()  # error texts may quote a path: mask account IDs, as the logs do


def extract(metadata: Sequence[tuple[str, str | bytes]] | None) -> otel_context.Context | None:
    if not metadata:
        return None
    carrier: dict[str, str] = {}
    for key, value in metadata:
        if key in _TRACE_KEYS:
            carrier[key] = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    return _PROPAGATOR.extract(carrier) if carrier else None


class ExecuteSpan(AbstractContextManager[Span]):
    """A class, not a generator: cheaper, and it maps SidecarErrors to span status itself."""

    __slots__ = ("_attrs", "_ctx", "_name", "_rest", "_span", "_token", "_tracer")

    def __init__(self, tracer: trace.Tracer, ctx: otel_context.Context | None, method: str,
                 template: str | None, front: str = "grpc") -> None:
        self._tracer, self._ctx, self._rest = tracer, ctx, front == "rest"
        if self._rest:  # an HTTP server span, named as OTel's HTTP conventions say
            self._name = f"{method} {template}" if template else method
            self._attrs = {"http.request.method": method, "network.protocol.name": "http",
                           "oanda_sidecar.front": front}
        else:
            self._name = f"Execute {method} {template}" if template else f"Execute {method}"
            self._attrs = {"rpc.system": "grpc", "rpc.service": "oanda.sidecar.v1.ProxyService",
                           "rpc.method": "Execute", "http.request.method": method}
        if template:
            self._attrs["url.template"] = template

    def __enter__(self) -> Span:
        self._span = self._tracer.start_span(self._name, context=self._ctx,
                                             kind=SpanKind.SERVER, attributes=self._attrs)
        self._token = otel_context.attach(trace.set_span_in_context(self._span, self._ctx))
        return self._span

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        span = self._span
        try:
            if isinstance(exc, SidecarError):
                span.set_attribute("error.type", exc.reason)
                if self._rest:
                    span.set_attribute("http.response.status_code", exc.http_status)
                    if exc.http_status >= 500:
                        span.set_status(Status(StatusCode.ERROR, exc.reason))
                    return
                span.set_attribute("rpc.grpc.status_code", exc.code.value[0])
                if exc.code in _SERVER_ERROR_CODES:
                    span.set_status(Status(StatusCode.ERROR, exc.reason))
            elif isinstance(exc, asyncio.CancelledError):  # the caller went away: not our fault
                span.set_attribute("error.type", "CANCELLED")
            elif exc is not None:
                # No stack trace on the span: the log line has it, redacted.
                name = type(exc).__qualname__
                span.add_event("exception", {"exception.type": name,
                                             "exception.message": _SCRUB.text(str(exc))})
                span.set_attribute("error.type", name)
                span.set_status(Status(StatusCode.ERROR, name))
        finally:
            otel_context.detach(self._token)
            span.end()


async def in_daemon_thread(fn: Callable[..., Any], timeout_s: float,
                            *args: Any) -> Any | None:
    """Run a blocking SDK call off the loop; None when it is still running after `timeout_s`.

    A daemon thread, not the default executor: a stuck export must never hold up exit.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def run() -> None:
        try:
            outcome: tuple[Any, BaseException | None] = (fn(*args), None)
        except Exception as exc:  # reported through the future, never lost
            outcome = (None, exc)
        with contextlib.suppress(RuntimeError):  # the loop may be gone after a timeout
            loop.call_soon_threadsafe(_settle, future, *outcome)

    threading.Thread(target=run, name="otel-shutdown", daemon=True).start()
    try:
        return await asyncio.wait_for(asyncio.shield(future), timeout_s)
    except TimeoutError:
        return None


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
