"""The simulator's streams, read by OANDA's own `v20` library and by plain aiohttp: the price
model, heartbeats, transactions the order code creates, connection counts, and the faults
not covered by the sidecar's tests (heartbeats only, slow delivery)."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import v20

from sidecar.sim.server import Simulator
from tests.e2e.conftest import TOKEN
from tests.streams.conftest import add_transactions, sim_fault, until


async def _read(sim: Simulator, path: str, seconds: float,
                query: dict[str, str] | None = None) -> list[tuple[float, dict[str, Any]]]:
    out: list[tuple[float, dict[str, Any]]] = []
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as s:
        async with s.get(sim.url + path, params=query) as resp:
            assert resp.status == 200
            end = time.monotonic() + seconds
            while (left := end - time.monotonic()) > 0:
                try:
                    line = await asyncio.wait_for(resp.content.readline(), left)
                except TimeoutError:
                    break
                out.append((time.monotonic(), json.loads(line)))
    return out


async def test_prices_follow_the_rest_model_at_most_4_per_s(sim: Simulator) -> None:
    sim.streams.heartbeat_s = 0.5
    path = f"/v3/accounts/{sim.account_id}/pricing/stream"
    lines = await _read(sim, path, 2.0, {"instruments": "EUR_USD,USD_JPY"})
    prices = [obj for _, obj in lines if obj["type"] == "PRICE"]
    beats = [obj for _, obj in lines if obj["type"] == "HEARTBEAT"]
    assert len(beats) >= 3
    for name in ("EUR_USD", "USD_JPY"):
        mine = [p for p in prices if p["instrument"] == name]
        assert 2 <= len(mine) <= 4 * 2 + 1  # snapshot + at most one per 0.25 s tick
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as s:
        async with s.get(f"{sim.url}/v3/accounts/{sim.account_id}/pricing",
                         params={"instruments": "EUR_USD"}) as resp:
            rest = (await resp.json())["prices"][0]
    assert set(rest) == set(prices[0])  # the same shape as REST's answer
    assert sim.streams.opened["pricing"] == 1
    await until(lambda: sim.streams.active["pricing"] == 0, timeout=3)  # noticed at a write


def _v20_stream(host: str, port: int, account: str, n: int) -> list[str]:
    ctx = v20.Context(host, port, ssl=False, token=TOKEN, stream_timeout=5)
    response = ctx.pricing.stream(account, instruments="EUR_USD", snapshot=True)
    kinds: list[str] = []
    for kind, _ in response.parts():
        kinds.append(kind)
        if kinds.count("pricing.ClientPrice") >= n:
            break
    return kinds


async def test_oandas_own_v20_library_reads_the_price_stream(sim: Simulator) -> None:
    url = urlsplit(sim.url)
    assert url.hostname is not None and url.port is not None
    kinds = await asyncio.to_thread(_v20_stream, url.hostname, url.port, sim.account_id, 3)
    assert kinds.count("pricing.ClientPrice") == 3


async def test_every_transaction_the_order_code_creates_is_streamed(sim: Simulator) -> None:
    path = f"/v3/accounts/{sim.account_id}/transactions/stream"
    reader = asyncio.ensure_future(_read(sim, path, 1.5))
    await asyncio.sleep(0.3)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as s:
        for units in ("100", "-100"):
            async with s.post(f"{sim.url}/v3/accounts/{sim.account_id}/orders", json={
                    "order": {"type": "MARKET", "instrument": "EUR_USD", "units": units}}) as r:
                assert r.status == 201
    streamed = [obj["id"] for _, obj in await reader if "id" in obj]
    log = [tx["id"] for tx in sim.state.accounts[sim.account_id].transactions]
    assert streamed == log[2:] and len(streamed) >= 4


async def test_heartbeats_only_leaves_transactions_out_but_heartbeats_reveal_them(
        sim: Simulator) -> None:
    sim.streams.heartbeat_s = 0.2
    path = f"/v3/accounts/{sim.account_id}/transactions/stream"
    await sim_fault(sim, kind="stream_heartbeats_only", duration_s=5)
    reader = asyncio.ensure_future(_read(sim, path, 1.0))
    await asyncio.sleep(0.3)
    add_transactions(sim, 3)
    lines = [obj for _, obj in await reader]
    assert lines and all(obj["type"] == "HEARTBEAT" for obj in lines)
    assert lines[-1]["lastTransactionID"] == sim.state.accounts[sim.account_id] \
        .last_transaction_id


async def test_slow_delivery_delays_every_line(sim: Simulator) -> None:
    sim.streams.heartbeat_s = 0.05
    path = f"/v3/accounts/{sim.account_id}/transactions/stream"
    await sim_fault(sim, kind="stream_slow", delay_s=0.3, duration_s=5)
    lines = await _read(sim, path, 1.3)
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(lines)]
    assert 2 <= len(lines) <= 5 and min(gaps) >= 0.25


async def test_bad_instruments_and_faults_are_refused(sim: Simulator) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as s:
        async with s.get(f"{sim.url}/v3/accounts/{sim.account_id}/pricing/stream",
                         params={"instruments": "NOPE"}) as resp:
            assert resp.status == 400
        async with s.post(f"{sim.url}/_sim/faults", json={"kind": "stream_bogus"}) as resp:
            assert resp.status == 400
        async with s.post(f"{sim.url}/_sim/faults", json={"kind": "stream_drop",
                                                          "x": 1}) as resp:
            assert resp.status == 400
        async with s.get(f"{sim.url}/_sim/faults") as resp:
            assert (await resp.json())["faults"] == []


async def test_heartbeat_interval_is_set_through_the_fault_api(sim: Simulator) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{sim.url}/_sim/streams", json={"heartbeat_s": 0.1}) as resp:
            assert resp.status == 200 and (await resp.json())["heartbeat_s"] == 0.1
        async with s.post(f"{sim.url}/_sim/streams", json={"heartbeat_s": 0}) as resp:
            assert resp.status == 400
    path = f"/v3/accounts/{sim.account_id}/transactions/stream"
    beats = [obj for _, obj in await _read(sim, path, 0.55) if obj["type"] == "HEARTBEAT"]
    assert 4 <= len(beats) <= 6
