"""The one way a call from any front (gRPC Execute, the REST listener) goes through the pipeline.

A front turns what its caller sent into a `Call` (inside `fill`, so that a malformed request is
answered and counted like any other) and what comes back into its own wire form. Everything in
between is here, once: the SERVER span (continuing the caller's `traceparent`), the in-flight
register the drain cut-off answers, and one ExecuteFinished per call however it ends — an
answer, a sidecar decision, or the caller's deadline or cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from sidecar.clock import Clock
from sidecar.errors import OutcomeUnknown, SidecarError, UpstreamError
from sidecar.events import EventBus, ExecuteFinished
from sidecar.pipeline import METHODS, Call, Handler, Response
from sidecar.vocabulary import Outcome

_CALLER_GONE = "cancelled"
_CUT_OFF = "oanda-sidecar: shutting down"
GRPC, REST = "grpc", "rest"


class Tracer(Protocol):
    def execute_span(self, metadata: Sequence[tuple[str, str | bytes]] | None, method: str,
                     path_template: str | None = None, *,
                     front: str = GRPC) -> AbstractContextManager[Any]: ...


def cut_off_metadata(call: Call) -> dict[str, str]:
    """What the caller needs to reconcile a write cut off at shutdown: its client order ID."""
    try:
        order = json.loads(call.body or b"{}").get("order") or {}
        client_id = (order.get("clientExtensions") or {}).get("id")
    except (ValueError, AttributeError):
        client_id = None
    return {"client_order_id": str(client_id)[:128]} if client_id else {}


class Front:
    """Runs calls for every front; `cut_off()` ends those still in flight at the drain's end."""

    def __init__(self, handler: Handler, clock: Clock, bus: EventBus,
                 tracer: Tracer | None = None) -> None:
        self._handler = handler
        self._clock = clock
        self._bus = bus
        self._tracer = tracer
        self._in_flight: dict[asyncio.Task[Any], Call] = {}

    def cut_off(self) -> int:
        """At the end of the drain grace: end every call still in flight with a clear answer
        (a write: OUTCOME_UNKNOWN — it may have reached OANDA) before it is cancelled bare."""
        for task in list(self._in_flight):
            task.cancel(_CUT_OFF)
        return len(self._in_flight)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def monotonic(self) -> float:
        return self._clock.monotonic()

    async def run(self, call: Call, fill: Callable[[Call], None], *, front: str = GRPC,
                  trace_metadata: Sequence[tuple[str, str | bytes]] | None = None) -> Response:
        """`call` has its method, path and deadline; `fill` completes it from the request."""
        started = self._clock.monotonic()
        span: AbstractContextManager[Any] = (
            self._tracer.execute_span(trace_metadata, call.method, front=front)
            if self._tracer is not None else contextlib.nullcontext())
        task = asyncio.current_task()
        with span:
            try:
                fill(call)
                if task is not None:
                    self._in_flight[task] = call
                response = await self._run(call)
            except SidecarError as error:
                self._finish(call, front, started, error.reason.lower(), None, error.attempts,
                             error=error.describe())
                raise
            except asyncio.CancelledError:
                # The caller's deadline or the caller itself ended the call. It still leaves a
                # log line and a requests_total sample.
                late = call.deadline is not None and self._clock.monotonic() >= call.deadline
                self._finish(call, front, started,
                             "deadline_exceeded" if late else _CALLER_GONE, None, call.attempt,
                             error="ended by the caller's deadline" if late
                             else "cancelled by the caller")
                raise
            finally:
                self._in_flight.pop(task, None)  # type: ignore[arg-type]
            self._finish(call, front, started, Outcome.of_status(response.status),
                         response.status, response.attempts, response.from_cache,
                         response.headers.get("RequestID"))
            return response

    async def _run(self, call: Call) -> Response:
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

    def _finish(self, call: Call, front: str, started: float, outcome: str, status: int | None,
                attempts: int, from_cache: bool = False, request_id: str | None = None,
                error: str | None = None) -> None:
        self._bus.publish(ExecuteFinished(
            at=self._clock.wall(),
            method=call.method if call.method in METHODS else "INVALID",
            endpoint=call.endpoint.template,
            outcome=outcome, status=status, attempts=attempts,
            duration_s=self._clock.monotonic() - started, from_cache=from_cache,
            request_id=request_id, error=error, front=front))
