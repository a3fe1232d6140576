"""Exactly-once orders, in the pipeline: outside retry (it sees the final unknown outcome),
inside the cache fallback (which never answers a write).

Order writes (create, replace, trade and position close, cancel) go to the OrderDesk, which
sends them once and resolves an unknown outcome from OANDA's records. Every other call passes
through; its answer teaches the account's last transaction ID (about a microsecond).
"""

from __future__ import annotations

from sidecar.orders.desk import OrderDesk
from sidecar.orders.ids import WRITES
from sidecar.pipeline import Call, Handler, Response


class ExactlyOncePolicy:
    __slots__ = ("_desk", "_learn")

    def __init__(self, desk: OrderDesk) -> None:
        self._desk = desk
        self._learn = desk.ids.learn

    async def handle(self, call: Call, next: Handler) -> Response:
        kind = WRITES.get((call.method, call.endpoint.template))
        if kind is not None:
            return await self._desk.execute(call, kind, next)
        response = await next(call)
        if response.status < 500 and not response.from_cache:
            self._learn(call.path, response.body)
        return response
