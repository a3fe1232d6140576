"""The typed client's README example, run as written against the real sidecar: it places each
order exactly once through lost answers and an unknown outcome."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from oanda_sidecar_client import AsyncSidecarClient, errors

from sidecar.sim.server import Simulator
from tests.e2e.helpers import add_fault
from tests.orders.conftest import OrdersFactory, orders_of, posts

README = Path(__file__).resolve().parents[2] / "clients" / "python" / "README.md"
POST_ORDERS = {"method": "POST", "path": "*/orders"}


def _example() -> Any:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    code = next(b for b in blocks if "async def place(" in b)
    namespace: dict[str, Any] = {}
    exec(compile(code, str(README), "exec"), namespace)
    return namespace["place"]


async def test_the_readme_example_places_each_order_once(orders_factory: OrdersFactory,
                                                         sim: Simulator) -> None:
    place = _example()
    orders = await orders_factory(orders={"resolve_timeout_s": 0.5})
    async with AsyncSidecarClient(orders.app.grpc_target) as client:
        await add_fault(sim.url, kind="commit_then_503", match=POST_ORDERS, count=1)
        first = await place(client, sim.account_id, "readme-1", "10")
        order = orders_of(sim, "readme-1")[0]
        assert first == (order.id, order.filling_transaction_id)
        # Lost answer and OANDA dark for lookups: OutcomeUnknown, polled, then answered.
        await add_fault(sim.url, kind="drop_after_commit", match=POST_ORDERS, count=1)
        dark = await add_fault(sim.url, kind="outage", match={"method": "GET"}, duration_s=1.0)
        assert dark
        second = await asyncio.wait_for(place(client, sim.account_id, "readme-2", "10"), 30)
        order = orders_of(sim, "readme-2")[0]
        assert second == (order.id, order.filling_transaction_id)
        outcome = await client.order_outcome("readme-2")
        assert outcome.outcome == "placed" and outcome.decided
        assert outcome.transaction_ids == second
        assert (await client.order_outcome("never")).outcome == "not_seen"
        with pytest.raises(errors.InvalidRequest) as caught:
            await client.order_outcome("")
        assert caught.value.field == "client_order_id"
    for cid in ("readme-1", "readme-2"):
        assert len(orders_of(sim, cid)) == 1
    assert len(posts(sim)) == 2
