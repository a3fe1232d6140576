from __future__ import annotations

from typing import Any

from sidecar.sim.server import Simulator
from tests.streams.conftest import Collector, add_transactions, log_ids, price_path, tx_path


async def test_transactions_flow(sim: Simulator, proxy: Any) -> None:
    c = Collector(proxy, tx_path(sim))
    await c.wait_for(lambda: bool(c.of("SIDECAR_CONNECTED")))
    add_transactions(sim, 5)
    await c.wait_for(lambda: len(c.ids()) >= 5)
    assert c.ids() == log_ids(sim)[-5:]
    await c.close()


async def test_prices_flow(sim: Simulator, proxy: Any) -> None:
    c = Collector(proxy, price_path(sim), query={"instruments": "EUR_USD,USD_JPY"})
    await c.wait_for(lambda: len(c.of("PRICE")) >= 4)
    await c.close()
