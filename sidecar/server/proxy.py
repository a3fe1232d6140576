"""ProxyService: one OANDA call per Execute, through the composed pipeline."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

import grpc

from sidecar._gen.oanda.sidecar.v1 import proxy_pb2, proxy_pb2_grpc
from sidecar.clock import Clock
from sidecar.errors import SidecarError
from sidecar.events import EventBus, ExecuteFinished
from sidecar.pipeline import Call, Handler
from sidecar.server.convert import check_priority, execute_response
from sidecar.upstream.endpoints import resolve


class Tracer(Protocol):
    def execute_span(self, metadata: Any, method: str,
                     path_template: str) -> AbstractContextManager[Any]: ...


def outcome_of(status: int) -> str:
    if status < 400:
        return "ok"
    return "http_4xx" if status < 500 else "http_5xx"


class ProxyServicer(proxy_pb2_grpc.ProxyServiceServicer):
    def __init__(self, handler: Handler, clock: Clock, bus: EventBus,
                 risk_reducing: Callable[[str, str], bool],
                 tracer: Tracer | None = None) -> None:
        self._handler = handler
        self._clock = clock
        self._bus = bus
        self._risk_reducing = risk_reducing
        self._tracer = tracer

    async def Execute(self, request: proxy_pb2.ExecuteRequest,
                      context: grpc.aio.ServicerContext[Any, Any]) -> proxy_pb2.ExecuteResponse:
        clock = self._clock
        started = clock.monotonic()
        endpoint = resolve(request.path)
        method = request.method
        remaining = context.time_remaining()
        call = Call(method=method, path=request.path, endpoint=endpoint,
                    query=dict(request.query) if request.query else {}, body=request.body,
                    headers=dict(request.headers) if request.headers else {},
                    deadline=None if remaining is None else started + remaining)
        span: AbstractContextManager[Any] = (
            self._tracer.execute_span(context.invocation_metadata(), method, endpoint.template)
            if self._tracer is not None else contextlib.nullcontext())
        with span:
            try:
                prioritised = check_priority(request.priority)
                call.risk_reducing = self._risk_reducing(method, endpoint.template)
                call.critical = prioritised or call.risk_reducing
                response = await self._handler(call)
            except SidecarError as error:
                self._finish(call, started, error.reason.lower(), None, call.attempt,
                             error=error.message)
                raise
            self._finish(call, started, outcome_of(response.status), response.status,
                         response.attempts, response.from_cache,
                         response.headers.get("RequestID"))
            return execute_response(response)

    def _finish(self, call: Call, started: float, outcome: str, status: int | None,
                attempts: int, from_cache: bool = False, request_id: str | None = None,
                error: str | None = None) -> None:
        self._bus.publish(ExecuteFinished(
            at=self._clock.wall(), method=call.method, endpoint=call.endpoint.template,
            outcome=outcome, status=status, attempts=attempts,
            duration_s=self._clock.monotonic() - started, from_cache=from_cache,
            request_id=request_id, error=error))
