"""ControlService: what operators call through grpcurl or `oanda-sidecar ctl`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import grpc

import sidecar
from sidecar._gen.oanda.sidecar.v1 import control_pb2 as cpb
from sidecar._gen.oanda.sidecar.v1 import control_pb2_grpc
from sidecar.clock import Clock
from sidecar.degradation import DegradationController
from sidecar.errors import InvalidRequest, NotFound
from sidecar.events import ControlAction, EventBus
from sidecar.policies.breaker import BreakerRegistry
from sidecar.server.convert import (
    PB_TO_LEVEL,
    PB_TO_OVERRIDE,
    breaker_status,
    degradation_fields,
    order_outcome_response,
    status_response,
)
from sidecar.server.status_feed import StatusFeed
from sidecar.status import StatusBoard

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


class ControlServicer(control_pb2_grpc.ControlServiceServicer):
    def __init__(self, board: StatusBoard, breakers: BreakerRegistry,
                 degradation: DegradationController, bus: EventBus, clock: Clock, *,
                 max_watchers: int = 100, orders: Any | None = None) -> None:
        self._board = board
        self._feed = StatusFeed(board, bus, self._status, max_watchers=max_watchers)
        self._breakers = breakers
        self._degradation = degradation
        self._bus = bus
        self._clock = clock
        self._orders = orders  # sidecar.orders.OrderDesk: GetOrderOutcome

    def _status(self) -> cpb.GetStatusResponse:
        return status_response(self._board.snapshot(), sidecar.__version__)

    async def GetStatus(self, request: cpb.GetStatusRequest,
                        context: Context) -> cpb.GetStatusResponse:
        return self._status()

    async def WatchStatus(self, request: cpb.WatchStatusRequest,
                          context: Context) -> AsyncIterator[cpb.GetStatusResponse]:
        async for status in self._feed.watch():
            yield status

    def _breaker_list(self) -> list[cpb.BreakerStatus]:
        return [breaker_status(s) for s in self._breakers.snapshots()]

    def _check_name(self, name: str) -> None:
        known = [s.name for s in self._breakers.snapshots()]
        if name not in known:
            raise NotFound(f"no breaker named {name!r} (known: {', '.join(known)})")

    async def ResetBreaker(self, request: cpb.ResetBreakerRequest,
                           context: Context) -> cpb.ResetBreakerResponse:
        if request.name:
            self._check_name(request.name)
        before = self._states()
        self._breakers.reset(request.name or None)
        self._audit(context, f"reset_breaker {request.name or '*'}", before, self._states())
        return cpb.ResetBreakerResponse(breakers=self._breaker_list())

    async def SetBreakerOverride(self, request: cpb.SetBreakerOverrideRequest,
                                 context: Context) -> cpb.SetBreakerOverrideResponse:
        override = PB_TO_OVERRIDE.get(request.override)
        if override is None:
            raise InvalidRequest("override must be BREAKER_OVERRIDE_NONE, _FORCED_OPEN or "
                                 "_DISABLED", field="override")
        self._check_name(request.name)
        before = self._states()
        self._breakers.set_override(request.name, override)
        self._audit(context, f"set_breaker_override {request.name} {override}", before,
                    self._states())
        return cpb.SetBreakerOverrideResponse(breakers=self._breaker_list())

    async def GetDegradation(self, request: cpb.GetDegradationRequest,
                             context: Context) -> cpb.GetDegradationResponse:
        return cpb.GetDegradationResponse(**degradation_fields(self._board.snapshot().degradation))

    async def SetDegradation(self, request: cpb.SetDegradationRequest,
                             context: Context) -> cpb.SetDegradationResponse:
        level = PB_TO_LEVEL.get(request.level)
        if level is None:
            raise InvalidRequest("level must be DEGRADATION_LEVEL_NONE, _CACHED_DATA, "
                                 "_READ_ONLY or _AUTOMATIC", field="level")
        controller = self._degradation
        before = _readable(controller.snapshot())
        controller.set_manual(level, request.reason or f"set by operator ({context.peer()})")
        snap = controller.snapshot()
        self._audit(context, f"set_degradation {level}", before, _readable(snap))
        return cpb.SetDegradationResponse(**degradation_fields(snap))

    async def GetOrderOutcome(self, request: cpb.GetOrderOutcomeRequest,
                              context: Context) -> cpb.GetOrderOutcomeResponse:
        cid = request.client_order_id
        if not cid or len(cid) > 128:
            raise InvalidRequest("client_order_id is required (the order's clientExtensions.id, "
                                 "at most 128 characters)", field="client_order_id")
        record = await self._orders.outcome(cid) if self._orders is not None else None
        return order_outcome_response(cid, record)

    def _states(self) -> dict[str, Any]:
        return {s.name: str(s.state) for s in self._breakers.snapshots()}

    def _audit(self, context: Context, action: str, before: dict[str, Any],
               after: dict[str, Any]) -> None:
        self._bus.publish(ControlAction(at=self._clock.wall(), action=action,
                                        peer=context.peer() or "unknown",
                                        before=_plain(before), after=_plain(after)))


def _readable(snap: Any) -> dict[str, Any]:
    """A degradation snapshot for the audit line: names, not enum numbers."""
    return {"level": snap.level, "reason": snap.reason, "manual": snap.manual}


def _plain(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if not isinstance(v, str | int | float | bool) else v)
            for k, v in fields.items() if v is not None}
