"""OANDA's own `v20` library through the REST listener: the same workflow, the same objects.

Unary: two simulators with the same seed on the same frozen clock; the workflow of
tests/sim/test_v20_workflow.py runs once against one directly and once against the other
through the sidecar's listener (with a placeholder token: the simulator accepts only the
sidecar's). Every answer v20 parses must be equal, field for field; the only difference allowed
is the sidecar's documented one: an order sent without a client ID gets an `osc-…` one.

Streams: v20's own stream parser reads the pricing and transaction streams through the listener
and gets what it gets from the simulator directly.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlparse

import aiohttp
import pytest

from sidecar.app import App
from sidecar.clock import FakeClock
from sidecar.sim.calendar import MarketCalendar
from sidecar.sim.server import Simulator
from tests.e2e.conftest import make_config
from tests.rest.conftest import BOT_TOKEN, ORDERS
from tests.sim.conftest import TOKEN as SIM_TOKEN_OF_SIM_TESTS
from tests.sim.conftest import TUESDAY, Client
from tests.sim.test_v20_workflow import (  # noqa: F401  (_needs_v20: an autouse fixture)
    Workflow,
    _needs_v20,
    run_workflow,
    v20,
)


def _frozen_sim() -> Simulator:
    return Simulator(token=SIM_TOKEN_OF_SIM_TESTS, seed=7,
                     clock=FakeClock(wall_start=TUESDAY, auto_advance=False),
                     calendar=MarketCalendar(), gsl_mode="ALLOWED")


@pytest.fixture
async def twins() -> AsyncIterator[tuple[Client, Client, App]]:
    """(direct, behind the listener, the sidecar): twin simulators, one sidecar."""
    direct, behind = _frozen_sim(), _frozen_sim()
    await direct.start()
    await behind.start()
    app = App(make_config(behind.url, token=SIM_TOKEN_OF_SIM_TESTS, orders=ORDERS))
    await app.start()
    async with aiohttp.ClientSession() as session:
        yield Client(session, direct), Client(session, behind), app
    await app.stop(0.5)
    await direct.close()
    await behind.close()


def _sidecar_id(value: Any) -> bool:
    if isinstance(value, dict):
        value = value.get("id", "")
    return isinstance(value, str) and value.startswith("osc-")


def comparable(node: Any, upstream: str) -> Any:
    """Without the client IDs the sidecar assigned (`osc-…`, its one documented change) and the
    volatile `requestID` (the sidecar's own lookups move the simulator's request counter)."""
    if isinstance(node, dict):
        return {k: comparable(v, upstream) for k, v in node.items()
                if k != "requestID" and not _sidecar_id(v)}
    if isinstance(node, list):
        return [comparable(v, upstream) for v in node]
    if isinstance(node, str) and node.startswith(upstream):
        return "OANDA" + node.removeprefix(upstream)
    return node


async def test_v20_gets_the_same_objects_through_the_listener_as_from_oanda(
        twins: tuple[Client, Client, App]) -> None:
    direct_client, behind_client, app = twins
    direct = Workflow(direct_client)
    through = Workflow(behind_client, via=app.rest_url, token=BOT_TOKEN)
    await run_workflow(direct, direct_client)
    await run_workflow(through, behind_client)
    assert len(through.answers) == len(direct.answers) > 40
    for mine, theirs in zip(through.answers, direct.answers, strict=True):
        assert mine[:3] == theirs[:3]
        # Page links name OANDA's host, unchanged (docs/rest.md): here each its simulator's.
        assert comparable(mine[3], behind_client.sim.url) == \
            comparable(theirs[3], direct_client.sim.url), mine[:3]
    assert through.fields >= direct.fields > 1000
    assert len(through.covered) == 29
    # The bot's placeholder token would be refused (401): the sidecar sent its own.
    assert any("@" in r.path for r in behind_client.sim.requests)  # get by @clientID passed


class StreamReader:
    """One v20 stream in a daemon thread (v20 is synchronous); parts land in a queue."""

    def __init__(self, open_stream: Any) -> None:
        self.parts: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.stop = threading.Event()
        self.status: int | None = None
        threading.Thread(target=self._run, args=(open_stream,), daemon=True).start()

    def _run(self, open_stream: Any) -> None:
        try:
            response = open_stream()
            self.status = response.status
            for name, message in response.parts():
                self.parts.put((name, message.dict()))
                if self.stop.is_set():
                    return
        except v20.errors.V20ConnectionError:
            if not self.stop.is_set():  # the end of the test closes the listener under it
                raise

    async def take(self, n: int, *, skip: str = "Heartbeat",
                   within_s: float = 20.0) -> list[tuple[str, dict[str, Any]]]:
        got: list[tuple[str, dict[str, Any]]] = []
        loop_end = asyncio.get_running_loop().time() + within_s
        while len(got) < n:
            remaining = loop_end - asyncio.get_running_loop().time()
            assert remaining > 0, f"only {len(got)} of {n} stream parts: {got}"
            try:
                part = await asyncio.to_thread(self.parts.get, True, min(remaining, 1.0))
            except queue.Empty:
                continue
            if skip not in part[0]:
                got.append(part)
        return got


def _contexts(sim: Simulator, app: App) -> tuple[Any, Any]:
    url = urlparse(sim.url)
    rest = urlparse(app.rest_url)
    return (v20.Context(url.hostname, url.port, ssl=False, token=SIM_TOKEN,
                        decimal_number_as_float=False),
            v20.Context(rest.hostname, rest.port, ssl=False, token=BOT_TOKEN,
                        decimal_number_as_float=False))


SIM_TOKEN = "test-oanda-token-7f3a9c"  # tests.conftest SIM_TOKEN: what the e2e sim accepts


async def test_v20_reads_both_streams_through_the_listener_as_from_oanda(
        sim: Simulator, listener: App) -> None:
    sim.streams.heartbeat_s = 0.3
    sim.controls.hold("EUR_USD", bid=Decimal("1.10000"), ask=Decimal("1.10010"))
    direct, through = _contexts(sim, listener)
    account = sim.account_id
    readers = [StreamReader(lambda c=c: c.transaction.stream(account)) for c in (direct, through)]
    for reader in readers:  # both connected: a heartbeat each
        await reader.take(1, skip="Transaction.")
    for units in ("100", "-40", "25"):
        placed = await asyncio.to_thread(through.order.market, account, instrument="EUR_USD",
                                         units=units)
        assert placed.status == 201, placed.raw_body
    direct_tx, through_tx = [await r.take(6) for r in readers]
    assert [name for name, _ in through_tx] == [name for name, _ in direct_tx]
    assert through_tx == direct_tx
    assert {t["type"] for _, t in through_tx} == {"MARKET_ORDER", "ORDER_FILL"}
    assert [r.status for r in readers] == [200, 200]
    prices = [StreamReader(lambda c=c: c.pricing.stream(account, instruments="EUR_USD",
                                                        snapshot=True)) for c in (direct, through)]
    first_direct, first_through = [(await r.take(1))[0] for r in prices]
    assert first_through[0] == first_direct[0] == "pricing.ClientPrice"
    assert first_through[1] == first_direct[1]
    assert first_through[1]["bids"][0]["price"] == "1.10000"
    for reader in (*readers, *prices):
        reader.stop.set()
