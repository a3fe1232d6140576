"""One upstream connection per (account, stream, instruments); prices newest-wins."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from sidecar.app import App
from sidecar.sim.server import Simulator
from tests.streams.conftest import Collector, price_path, until

INSTRUMENTS = "EUR_USD,USD_JPY,GBP_USD"


async def test_three_subscribers_share_one_pricing_connection(
        sim: Simulator, proxy: Any, stream_sidecar: App) -> None:
    # The same set in other orders and spellings is the same stream.
    queries = [INSTRUMENTS, "USD_JPY,EUR_USD,GBP_USD", "GBP_USD,EUR_USD,USD_JPY,EUR_USD"]
    subscribers = [Collector(proxy, price_path(sim), query={"instruments": q}) for q in queries]
    await until(lambda: all(len(c.of("PRICE")) >= 6 for c in subscribers))
    assert sim.streams.opened["pricing"] == 1
    assert sim.streams.active["pricing"] == 1
    # Opened through the REST transport's paced pool: one budget of new connections per second.
    connector = stream_sidecar.parts.transport.connector
    assert connector is not None and connector.opened == 1
    [status] = stream_sidecar.parts.board.snapshot().streams
    assert status.subscribers == 3 and status.state == "connected"
    assert status.instruments == ("EUR_USD", "GBP_USD", "USD_JPY")
    for c in subscribers[:2]:
        await c.close()
    await asyncio.sleep(stream_sidecar.config.streams.idle_close_delay_s + 0.3)
    assert sim.streams.active["pricing"] == 1  # one subscriber left: still open
    await subscribers[2].close()
    await until(lambda: sim.streams.active["pricing"] == 0, timeout=3)
    assert stream_sidecar.parts.board.snapshot().streams == []
    # A new subscriber opens a new connection.
    again = Collector(proxy, price_path(sim), query={"instruments": INSTRUMENTS})
    await until(lambda: bool(again.of("PRICE")))
    assert sim.streams.opened["pricing"] == 2
    await again.close()


async def test_a_different_instrument_set_is_its_own_connection(
        sim: Simulator, proxy: Any, stream_sidecar: App) -> None:
    a = Collector(proxy, price_path(sim), query={"instruments": "EUR_USD"})
    b = Collector(proxy, price_path(sim), query={"instruments": "EUR_USD,USD_JPY"})
    await until(lambda: bool(a.of("PRICE")) and bool(b.of("PRICE")))
    assert sim.streams.opened["pricing"] == 2
    assert {m.line and json.loads(m.line)["instrument"] for m in a.of("PRICE")} == {"EUR_USD"}
    await a.close()
    await b.close()


@pytest.mark.parametrize("instruments", ["EUR_USD,USD_JPY,GBP_USD,AUD_USD,USD_CHF,USD_CAD"])
async def test_slow_price_subscriber_gets_the_newest_price_and_bounded_memory(
        sim: Simulator, proxy: Any, stream_sidecar: App, instruments: str) -> None:
    fast = Collector(proxy, price_path(sim), query={"instruments": instruments})
    slow = Collector(proxy, price_path(sim), query={"instruments": instruments}, delay_s=0.5)
    hub = stream_sidecar.parts.streams
    assert hub is not None
    await asyncio.sleep(3.0)
    [stream] = hub.hub._streams.values()
    names = instruments.split(",")
    pending = [len(o) for o in stream.outboxes]  # type: ignore[arg-type]
    assert max(pending) <= len(names) + 1 + 16  # one price per instrument, a heartbeat, notices
    assert len(fast.of("PRICE")) > 2 * len(slow.of("PRICE"))
    await slow.close()
    # What the slow reader got last is never older than what was then newest: look at the
    # upstream's latest price for each instrument against the slow reader's latest.
    newest = {n: json.loads(m.line)["time"] for n, m in stream.prices.items()}
    last_slow = {json.loads(m.line)["instrument"]: json.loads(m.line)["time"]
                 for m in slow.of("PRICE")}
    lag = [n for n in last_slow if last_slow[n] < newest[n]]
    assert len(lag) <= len(names)  # not a backlog: at most one stale round
    await fast.close()


async def test_typed_client_slow_price_reader_gets_fresh_prices(
        sim: Simulator, stream_sidecar: App) -> None:
    from datetime import datetime

    from oanda_sidecar_client import AsyncSidecarClient

    names = INSTRUMENTS.split(",")
    ages: list[float] = []
    async with AsyncSidecarClient(stream_sidecar.grpc_target) as client:
        stream = client.prices(sim.account_id, names)
        loop_end = asyncio.get_running_loop().time() + 4.0
        async for m in stream:
            if m.type == "PRICE":
                t = datetime.fromisoformat(m.json()["time"].replace("000Z", "+00:00"))
                ages.append(sim.clock.wall() - t.timestamp())
            await asyncio.sleep(0.3)  # ~3 messages/s read; OANDA-like upstream sends 12/s
            if asyncio.get_running_loop().time() > loop_end:
                break
        await stream.aclose()
    # Newest wins end to end: what a slow reader gets is at most a round of reads old,
    # never a backlog that grows with time.
    assert ages and max(ages[len(ages) // 2:]) < 0.3 * (len(names) + 2) + 0.5


def _sync_prices(target: str, account: str, n: int) -> list[str]:
    from oanda_sidecar_client import SidecarClient

    out: list[str] = []
    with SidecarClient(target) as client:
        for m in client.prices(account, ["EUR_USD"]):
            out.append(m.type)
            if out.count("PRICE") >= n:
                break
    return out


async def test_sync_client_prices(sim: Simulator, stream_sidecar: App) -> None:
    types = await asyncio.to_thread(_sync_prices, stream_sidecar.grpc_target, sim.account_id, 3)
    assert types.count("PRICE") == 3
