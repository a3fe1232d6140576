"""ProxyService: one OANDA call per Execute, through the composed pipeline.

A thin front: proto → `Call` (sidecar.server.convert), the pipeline (whose first policy
validates), `Response` → proto. It publishes one ExecuteFinished per call, however it ends —
an answer, a sidecar decision, or the caller's deadline or cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from contextlib import AbstractContextManager
from typing import Any, Protocol

import grpc

from sidecar._gen.oanda.sidecar.v1 import proxy_pb2, proxy_pb2_grpc
from sidecar.clock import Clock
from sidecar.errors import OutcomeUnknown, SidecarError, UpstreamError
from sidecar.events import EventBus, ExecuteFinished
from sidecar.pipeline import METHODS, Call, Handler
from sidecar.server.convert import call_from_request, execute_response
from sidecar.vocabulary import Outcome

_CALLER_GONE = "cancelled"
_CUT_OFF = "oanda-sidecar: shutting down"


def cut_off_metadata(call: Call) -> dict[str, str]:
    """What the caller needs to reconcile a write cut off at shutdown: its client order ID."""
    try:
        order = json.loads(call.body or b"{}").get("order") or {}
        client_id = (order.get("clientExtensions") or {}).get("id")
    except (ValueError, AttributeError):
        client_id = None
    return {"client_order_id": str(client_id)[:128]} if client_id else {}


class Tracer(Protocol):
    def execute_span(self, metadata: Any, method: str) -> AbstractContextManager[Any]: ...


class ProxyServicer(proxy_pb2_grpc.ProxyServiceServicer):
    def __init__(self, handler: Handler, clock: Clock, bus: EventBus,
                 tracer: Tracer | None = None) -> None:
        self._handler = handler
        self._clock = clock
        self._bus = bus
        self._tracer = tracer
        self._in_flight: dict[asyncio.Task[Any], Call] = {}

    def cut_off(self) -> int:
        """At the end of the drain grace: end every call still in flight with a clear answer
        (a write: OUTCOME_UNKNOWN — it may have reached OANDA) before gRPC cancels it bare."""
        for task in list(self._in_flight):
            task.cancel(_CUT_OFF)
        return len(self._in_flight)
    async def Execute(self, request: proxy_pb2.ExecuteRequest,
                      context: grpc.aio.ServicerContext[Any, Any]) -> proxy_pb2.ExecuteResponse:
        started = self._clock.monotonic()
        remaining = context.time_remaining()
        call = Call(method=request.method, path=request.path,
                    deadline=None if remaining is None else started + remaining)
        span: AbstractContextManager[Any] = (
            self._tracer.execute_span(context.invocation_metadata(), request.method)
            if self._tracer is not None else contextlib.nullcontext())
        task = asyncio.current_task()
        with span:
            try:
                call_from_request(request, call)
                if task is not None:
                    self._in_flight[task] = call
                response = await self._run(call)
            except SidecarError as error:
                self._finish(call, started, error.reason.lower(), None, error.attempts,
                             error=error.describe())
                raise
            except asyncio.CancelledError:
                # The caller's deadline or the caller itself ended the call: grpc cancels the
                # task. It still leaves a log line and a requests_total sample.
                late = call.deadline is not None and self._clock.monotonic() >= call.deadline
                self._finish(call, started, "deadline_exceeded" if late else _CALLER_GONE,
                             None, call.attempt, error="ended by the caller's deadline"
                             if late else "cancelled by the caller")
                raise
            finally:
                self._in_flight.pop(task, None)  # type: ignore[arg-type]
            self._finish(call, started, Outcome.of_status(response.status), response.status,
                         response.attempts, response.from_cache,
                         response.headers.get("RequestID"))
            return execute_response(response)

    async def _run(self, call: Call) -> Any:
        try:
            return await self._handler(call)
        except asyncio.CancelledError as exc:
            if exc.args != (_CUT_OFF,):
                raise
            if call.is_write:
                raise OutcomeUnknown(
                    f"{call.method} {call.endpoint.template} was still in flight when the "
                    "sidecar shut down: it may have reached OANDA. Reconcile before resending",
                    metadata=cut_off_metadata(call)) from None
            raise UpstreamError("the sidecar shut down before OANDA answered this read; "
                                "send it again") from None

    def _finish(self, call: Call, started: float, outcome: str, status: int | None,
                attempts: int, from_cache: bool = False, request_id: str | None = None,
                error: str | None = None) -> None:
        self._bus.publish(ExecuteFinished(
            at=self._clock.wall(),
            method=call.method if call.method in METHODS else "INVALID",
            endpoint=call.endpoint.template,
            outcome=outcome, status=status, attempts=attempts,
            duration_s=self._clock.monotonic() - started, from_cache=from_cache,
            request_id=request_id, error=error))
