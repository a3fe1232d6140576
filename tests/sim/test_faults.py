"""Each fault kind as a client meets it, and the /_sim control API."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from sidecar.sim.faults import Fault
from sidecar.sim.server import Simulator
from tests.sim.conftest import Client

ORDERS = {"method": "POST", "path": "/v3/accounts/*/orders"}
MARKET = {"order": {"type": "MARKET", "instrument": "EUR_USD", "units": "10"}}


async def _timed(client: Client, path: str) -> tuple[int, float]:
    started = time.monotonic()
    status, _, _ = await client.call("GET", path)
    return status, time.monotonic() - started


async def test_latency_delays_only_matching_requests(client: Client, sim: Simulator) -> None:
    sim.faults.add(Fault(kind="latency", latency_s=0.4, match={"path": "*/summary"}))
    status, slow = await _timed(client, "summary")
    assert status == 200 and slow >= 0.39
    status, fast = await _timed(client, "openTrades")
    assert status == 200 and fast < 0.3


async def test_status_fault_bodies_and_count(client: Client, sim: Simulator) -> None:
    sim.faults.add(Fault(kind="status", status=500, count=2, match={"path": "*/summary"}))
    results = [await client.call("GET", "summary") for _ in range(3)]
    assert [r[0] for r in results] == [500, 500, 200]
    assert "errorMessage" in results[0][1]
    assert results[0][2]["RequestID"].isdigit()
    sim.faults.clear()
    sim.faults.add(Fault(kind="status", status=502, body="html", count=1))
    status, text, headers = await client.call("GET", "summary")
    assert status == 502 and text.startswith("<html>") and "text/html" in headers["Content-Type"]
    sim.faults.add(Fault(kind="status", status=504, body="empty", count=1))
    status, text, _ = await client.call("GET", "summary")
    assert status == 504 and text == ""


async def test_status_fault_does_not_process_the_order(client: Client, sim: Simulator) -> None:
    sim.faults.add(Fault(kind="status", status=503, match=ORDERS, count=1))
    status, _, _ = await client.call("POST", "orders", MARKET)
    assert status == 503
    assert sim.state.counts(sim.state.accounts[sim.account_id])["orders"] == 0
    assert sim.requests[-1].status == 503 and sim.requests[-1].faults


async def test_reset_is_a_connection_error(client: Client, sim: Simulator) -> None:
    sim.faults.add(Fault(kind="reset", match=ORDERS, count=1))
    with pytest.raises(aiohttp.ClientConnectionError):
        await client.call("POST", "orders", MARKET)
    assert sim.requests[-1].status is None
    assert sim.state.counts(sim.state.accounts[sim.account_id])["orders"] == 0
    status, _, _ = await client.call("POST", "orders", MARKET)  # count=1 spent
    assert status == 201


async def test_hang_ends_in_a_client_timeout(client: Client, sim: Simulator) -> None:
    sim.faults.add(Fault(kind="hang", count=1, match={"path": "*/summary"}))
    with pytest.raises(asyncio.TimeoutError):
        await client.call("GET", "summary", timeout=aiohttp.ClientTimeout(total=0.3))
    assert sim.requests[-1].status is None
    status, _, _ = await client.call("GET", "summary")
    assert status == 200


async def test_close_ends_hanging_requests_without_leaking_tasks() -> None:
    sim = Simulator()
    await sim.start()
    sim.faults.add(Fault(kind="hang"))
    before = len(asyncio.all_tasks())
    async with aiohttp.ClientSession() as s:
        async def hang() -> None:
            async with s.get(f"{sim.url}/v3/accounts") as r:
                await r.read()
        waiting = asyncio.ensure_future(hang())
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await sim.close()
        with pytest.raises(aiohttp.ClientError):
            await asyncio.wait_for(waiting, 2.0)
        assert time.monotonic() - started < 1.5
    await asyncio.sleep(0)
    assert len(asyncio.all_tasks()) <= before


async def test_outage_for_its_duration(client: Client, sim: Simulator) -> None:
    sim.faults.add(Fault(kind="outage", duration_s=0.3))
    status, body, _ = await client.call("GET", "summary")
    assert status == 503 and body == {"errorMessage": "Timeout waiting for response."}
    await asyncio.sleep(0.35)
    status, _, _ = await client.call("GET", "summary")
    assert status == 200


async def test_outage_refuse_mode_resets(client: Client, sim: Simulator) -> None:
    sim.faults.add(Fault(kind="outage", mode="refuse", match=ORDERS, count=1))
    with pytest.raises(aiohttp.ClientConnectionError):
        await client.call("POST", "orders", MARKET)


async def test_throttle_is_a_429_storm(client: Client, sim: Simulator) -> None:
    sim.faults.add(Fault(kind="throttle", count=3))
    statuses = [(await client.call("GET", "summary"))[0] for _ in range(4)]
    assert statuses == [429, 429, 429, 200]


async def test_drop_after_commit_creates_the_order(client: Client, sim: Simulator) -> None:
    sim.faults.add(Fault(kind="drop_after_commit", match=ORDERS, count=1))
    body = {"order": {**MARKET["order"], "clientExtensions": {"id": "lost-1"}}}
    with pytest.raises(aiohttp.ClientConnectionError):
        await client.call("POST", "orders", body)
    record = sim.requests[-1]
    assert record.status is None and record.client_order_id == "lost-1"
    status, got, _ = await client.call("GET", "orders/@lost-1")
    assert status == 200 and got["order"]["state"] == "FILLED"


async def test_ratio_affects_a_seeded_share(client: Client, sim: Simulator) -> None:
    sim.faults.add(Fault(kind="status", status=503, ratio=0.3, match={"path": "/v3/accounts"}))
    statuses = [(await client.call("GET", "/v3/accounts"))[0] for _ in range(100)]
    assert 10 <= statuses.count(503) <= 50
    assert set(statuses) == {200, 503}


async def test_fault_http_api(client: Client, sim: Simulator) -> None:
    status, added, _ = await client.call(
        "POST", "/_sim/faults", {"kind": "status", "status": 503, "count": 1,
                                 "match": {"method": "GET", "path": "*/summary"}})
    assert status == 200 and added["id"]
    _, listed, _ = await client.call("GET", "/_sim/faults")
    assert [f["id"] for f in listed["faults"]] == [added["id"]]
    assert listed["faults"][0]["remaining"] == 1
    status, _, _ = await client.call("DELETE", f"/_sim/faults/{added['id']}")
    assert status == 200
    assert (await client.call("GET", "summary"))[0] == 200
    for bad in ({"kind": "nope"}, {"status": 503}, {"kind": "status", "ratio": 2},
                {"kind": "status", "extra": 1}, {"kind": "latency", "match": {"host": "x"}}):
        status, body, _ = await client.call("POST", "/_sim/faults", bad)
        assert status == 400 and "errorMessage" in body, bad
    await client.call("POST", "/_sim/faults", {"kind": "throttle"})
    await client.call("DELETE", "/_sim/faults")
    assert (await client.call("GET", "summary"))[0] == 200
    status, _, _ = await client.call("DELETE", "/_sim/faults/f999")
    assert status == 404


async def test_request_log_state_and_reset_api(client: Client, sim: Simulator) -> None:
    await client.market("5")
    _, log, _ = await client.call("GET", "/_sim/requests")
    assert log["requests"][-1]["method"] == "POST" and log["requests"][-1]["status"] == 201
    _, counts, _ = await client.call("GET", "/_sim/state")
    assert counts["orders"] == 1 and counts["trades"] == 1
    assert counts["lastTransactionID"] == "4" and counts["transactions"] == 4
    await client.call("DELETE", "/_sim/requests")
    assert sim.requests == []
    await client.call("POST", "/_sim/reset")
    _, counts, _ = await client.call("GET", "/_sim/state")
    assert counts["orders"] == 0 and counts["lastTransactionID"] == "2"
