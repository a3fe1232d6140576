"""Stream fixtures: the real simulator as OANDA's REST and stream host, the real sidecar on
loopback, short heartbeats and timeouts so that failures are found in a second or two."""

# ruff: noqa: ASYNC109  (test helpers: `timeout` bounds a local wait)
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import grpc
import pytest

from sidecar._gen.oanda.sidecar.v1 import proxy_pb2, proxy_pb2_grpc
from sidecar.app import App
from sidecar.sim.server import Simulator
from tests.e2e.conftest import (  # noqa: F401  (fixtures)
    TOKEN,
    SidecarFactory,
    merge,
    sidecar_factory,
    sim,
)

STREAM_CONFIG: dict[str, Any] = {
    "streams": {"heartbeat_timeout_s": 1.0, "reconnect_base_delay_s": 0.05,
                "reconnect_max_delay_s": 0.3, "idle_close_delay_s": 0.2},
}


@pytest.fixture
async def stream_sidecar(sim: Simulator, sidecar_factory: SidecarFactory) -> App:  # noqa: F811
    sim.streams.heartbeat_s = 0.3
    return await sidecar_factory(oanda={"stream_url": sim.url}, **STREAM_CONFIG)


@pytest.fixture
async def proxy(stream_sidecar: App) -> AsyncIterator[Any]:
    async with grpc.aio.insecure_channel(stream_sidecar.grpc_target) as channel:
        yield proxy_pb2_grpc.ProxyServiceStub(channel)  # type: ignore[no-untyped-call]


def tx_path(sim: Simulator) -> str:  # noqa: F811
    return f"/v3/accounts/{sim.account_id}/transactions/stream"


def price_path(sim: Simulator) -> str:  # noqa: F811
    return f"/v3/accounts/{sim.account_id}/pricing/stream"


def add_transactions(sim: Simulator, n: int) -> None:  # noqa: F811
    """`n` transactions in the simulator's log, as its order code records them."""
    acct = sim.state.accounts[sim.account_id]
    for _ in range(n):
        batch = acct.batch("1", sim.clock.wall())
        batch.add({"type": "DAILY_FINANCING", "financing": "0.0000",
                   "accountBalance": str(acct.balance)})


def log_ids(sim: Simulator) -> list[str]:  # noqa: F811
    return [tx["id"] for tx in sim.state.accounts[sim.account_id].transactions]


async def sim_fault(sim: Simulator, **spec: Any) -> str:  # noqa: F811
    async with aiohttp.ClientSession() as session, session.post(
            f"{sim.url}/_sim/faults", json=spec) as resp:
        body = await resp.json()
        assert resp.status == 200, body
        return str(body["id"])


class Collector:
    """Reads one Stream call in the background, keeping every message."""

    def __init__(self, stub: Any, path: str, *, since: str = "",
                 query: dict[str, str] | None = None, delay_s: float = 0.0) -> None:
        self.call = stub.Stream(proxy_pb2.StreamRequest(path=path, query=query or {},
                                                        since_transaction_id=since))
        self.messages: list[proxy_pb2.StreamMessage] = []
        self.arrived: list[float] = []  # time.monotonic() of each message
        self.error: grpc.aio.AioRpcError | None = None
        self._delay = delay_s
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for message in self.call:
                self.messages.append(message)
                self.arrived.append(time.monotonic())
                if self._delay:
                    await asyncio.sleep(self._delay)
        except grpc.aio.AioRpcError as exc:
            self.error = exc

    def ids(self) -> list[str]:
        return [m.transaction_id for m in self.messages if m.transaction_id]

    def of(self, kind: str) -> list[proxy_pb2.StreamMessage]:
        return [m for m in self.messages if m.type == kind]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        await until(predicate, timeout)

    async def close(self) -> None:
        self.call.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def until(predicate: Callable[[], bool], timeout: float = 10.0,
                step: float = 0.02) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step)


def line(message: proxy_pb2.StreamMessage) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(message.line)
    return result


Waiter = Callable[..., Awaitable[None]]
