"""Fixtures for the exactly-once order tests: the real simulator and real sidecars on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest

from sidecar._gen.oanda.sidecar.v1 import control_pb2, proxy_pb2
from sidecar.app import App
from sidecar.sim.server import Simulator
from tests.e2e.conftest import (  # noqa: F401  (fixtures)
    TOKEN,
    SidecarFactory,
    Stubs,
    sidecar_factory,
    sim,
)
from tests.e2e.helpers import execute_request

# Fast resolution for tests: OANDA's lag allowance and the resolve timeout kept short.
ORDERS: dict[str, Any] = {"lookup_lag_s": 0.3, "resolve_timeout_s": 3.0}


def market(units: str = "100", instrument: str = "EUR_USD", cid: str | None = None,
           **extra: Any) -> dict[str, Any]:
    order: dict[str, Any] = {"type": "MARKET", "instrument": instrument, "units": units, **extra}
    if cid is not None:
        order["clientExtensions"] = {"id": cid}
    return {"order": order}


def orders_path(simulator: Simulator) -> str:
    return f"/v3/accounts/{simulator.account_id}/orders"


def orders_of(simulator: Simulator, cid: str) -> list[Any]:
    account = simulator.state.accounts[simulator.account_id]
    return [o for o in account.orders.values() if o.client_id == cid]


def posts(simulator: Simulator) -> list[Any]:
    return [r for r in simulator.requests if r.method == "POST" and r.path.endswith("/orders")]


class Orders:
    """Stubs plus order helpers for one sidecar."""

    def __init__(self, app: App, channel: grpc.aio.Channel, simulator: Simulator) -> None:
        self.app = app
        self.stubs = Stubs(channel)
        self.sim = simulator

    async def place(self, body: dict[str, Any], deadline_s: float = 10.0
                    ) -> proxy_pb2.ExecuteResponse:
        request = execute_request("POST", orders_path(self.sim), body=body)
        response: proxy_pb2.ExecuteResponse = await self.stubs.proxy.Execute(request,
                                                                           timeout=deadline_s)
        return response

    async def outcome(self, cid: str) -> control_pb2.GetOrderOutcomeResponse:
        response: control_pb2.GetOrderOutcomeResponse = await self.stubs.control.GetOrderOutcome(
            control_pb2.GetOrderOutcomeRequest(client_order_id=cid), timeout=5)
        return response


def body_of(response: proxy_pb2.ExecuteResponse) -> Any:
    return json.loads(response.body)


OrdersFactory = Callable[..., Any]


@pytest.fixture
async def orders_factory(sim: Simulator,  # noqa: F811
                         sidecar_factory: SidecarFactory,  # noqa: F811
                         ) -> AsyncIterator[OrdersFactory]:
    channels: list[grpc.aio.Channel] = []

    async def factory(**sections: Any) -> Orders:
        sections["orders"] = {**ORDERS, **sections.get("orders", {})}
        app = await sidecar_factory(**sections)
        channel = grpc.aio.insecure_channel(app.grpc_target)
        channels.append(channel)
        return Orders(app, channel, sim)

    yield factory
    for channel in channels:
        await channel.close()


@pytest.fixture
async def orders(orders_factory: OrdersFactory) -> Orders:
    result: Orders = await orders_factory()
    return result
