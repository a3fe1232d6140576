"""The simulator's order faults, over its own HTTP API (what a test outside this process uses)."""

from __future__ import annotations

import asyncio

import aiohttp

from sidecar.sim.server import Simulator
from tests.e2e.conftest import TOKEN
from tests.e2e.helpers import add_fault

HEADERS = {"Authorization": f"Bearer {TOKEN}"}
ORDER = {"order": {"type": "MARKET", "instrument": "EUR_USD", "units": "5",
                   "clientExtensions": {"id": "sim-1"}}}


async def test_commit_then_503_processes_the_order(sim: Simulator) -> None:
    await add_fault(sim.url, kind="commit_then_503", count=1, match={"method": "POST"})
    async with aiohttp.ClientSession(headers=HEADERS) as http:
        async with http.post(f"{sim.url}/v3/accounts/{sim.account_id}/orders",
                             json=ORDER) as resp:
            assert resp.status == 503
            assert await resp.json() == {"errorMessage": "Timeout waiting for response."}
        async with http.get(f"{sim.url}/v3/accounts/{sim.account_id}/orders/@sim-1") as resp:
            assert resp.status == 200 and (await resp.json())["order"]["state"] == "FILLED"


async def test_lookup_lag_hides_young_orders_and_transactions(sim: Simulator) -> None:
    base = f"{sim.url}/v3/accounts/{sim.account_id}"
    await asyncio.sleep(0.35)  # the account's opening transactions are older than the lag
    async with aiohttp.ClientSession(headers=HEADERS) as http:
        async with http.post(f"{sim.url}/_sim/order-faults", json={"lookup_lag_s": "x"}) as resp:
            assert resp.status == 400
        async with http.post(f"{sim.url}/_sim/order-faults",
                             json={"lookup_lag_s": [0.3, 0.3]}) as resp:
            assert resp.status == 200 and await resp.json() == {"lookup_lag_s": [0.3, 0.3]}
        async with http.post(f"{base}/orders", json=ORDER) as resp:
            assert resp.status == 201
        async with http.get(f"{base}/orders/@sim-1") as resp:
            assert resp.status == 404 and (await resp.json())["errorCode"] == "NO_SUCH_ORDER"
        async with http.get(f"{base}/transactions/sinceid", params={"id": "2"}) as resp:
            assert await resp.json() == {"transactions": [], "lastTransactionID": "2"}
        await asyncio.sleep(0.35)
        async with http.get(f"{base}/orders/@sim-1") as resp:
            assert resp.status == 200
        async with http.get(f"{base}/transactions/sinceid", params={"id": "2"}) as resp:
            body = await resp.json()
            assert [t["type"] for t in body["transactions"]] == ["MARKET_ORDER", "ORDER_FILL"]
            assert body["lastTransactionID"] == "4"
