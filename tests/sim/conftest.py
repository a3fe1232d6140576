"""A running simulator and an authorised client for each test (both start in milliseconds)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from sidecar.clock import FakeClock
from sidecar.sim.calendar import MarketCalendar
from sidecar.sim.server import Simulator
from tests.e2e.conftest import sim  # noqa: F401  (the one simulator fixture)

TOKEN = "sim-token"


class Client:
    """A thin JSON client bound to one simulator account."""

    def __init__(self, session: aiohttp.ClientSession, sim: Simulator) -> None:  # noqa: F811
        self.session = session
        self.sim = sim
        self.base = f"{sim.url}/v3/accounts/{sim.account_id}"

    async def call(self, method: str, path: str, body: Any = None,
                   **kwargs: Any) -> tuple[int, Any, dict[str, str]]:
        """`path` is relative to the account unless it starts with `/`."""
        url = self.sim.url + path if path.startswith("/") else f"{self.base}/{path}".rstrip("/")
        async with self.session.request(method, url, json=body, **kwargs) as resp:
            text = await resp.text()
            data = await resp.json(content_type=None) if text.startswith("{") else text
            return resp.status, data, dict(resp.headers)

    async def order(self, **fields: Any) -> tuple[int, Any, dict[str, str]]:
        return await self.call("POST", "orders", {"order": fields})

    async def hold(self, instrument: str = "EUR_USD", **price: str) -> dict[str, Any]:
        """Hold a price through the fault API (`mid=`, `bid=`+`ask=`, or `step=`)."""
        status, body, _ = await self.call("PUT", f"/_sim/prices/{instrument}", price)
        assert status == 200, body
        return dict(body)

    async def transactions_since(self, last: str | int) -> list[dict[str, Any]]:
        status, body, _ = await self.call("GET", f"transactions/sinceid?id={last}")
        assert status == 200, body
        return list(body["transactions"])

    async def market(self, units: str, instrument: str = "EUR_USD",
                     **fields: Any) -> dict[str, Any]:
        status, body, _ = await self.order(type="MARKET", instrument=instrument, units=units,
                                           **fields)
        assert status == 201, body
        return dict(body)


@pytest.fixture
def sim_token() -> str:
    return TOKEN


@pytest.fixture
def sim_seed() -> int:
    return 7


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[Client]:  # noqa: F811
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        yield Client(session, sim)


# A Tuesday, 10:00 UTC: the market is open under the weekend calendar.
TUESDAY = 1_764_669_600.0  # 2025-12-02T10:00:00Z


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock(wall_start=TUESDAY, auto_advance=False)


@pytest.fixture
async def clocked(fake_clock: FakeClock) -> AsyncIterator[Client]:
    """A client of a simulator on a fake clock with the weekend calendar and guaranteed stop
    losses allowed: time moves only when the test says so."""
    simulator = Simulator(token=TOKEN, seed=7, clock=fake_clock, calendar=MarketCalendar(),
                          gsl_mode="ALLOWED")
    await simulator.start()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        yield Client(session, simulator)
    await simulator.close()
