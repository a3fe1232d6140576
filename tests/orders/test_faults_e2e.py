"""Every way an order's answer can be lost, through the real sidecar to the simulator: exactly
one order in OANDA's state, and the caller gets the order (rebuilt from the transactions)."""

from __future__ import annotations

import pytest

from sidecar._gen.oanda.sidecar.v1 import control_pb2
from sidecar.sim.server import Simulator
from tests.e2e.helpers import add_fault
from tests.orders.conftest import Orders, body_of, market, orders_of, posts

POST_ORDERS = {"method": "POST", "path": "*/orders"}


@pytest.mark.parametrize("kind", ["drop_after_commit", "commit_then_503", "commit_then_hang"])
@pytest.mark.parametrize("lag_s", [0.0, 0.25])
async def test_committed_then_lost_answers_the_order_reconciled(
        orders: Orders, sim: Simulator, kind: str, lag_s: float) -> None:
    sim.order_faults.set_lag(lag_s)
    await add_fault(sim.url, kind=kind, match=POST_ORDERS, count=1)
    response = await orders.place(market(cid="strat-1"))
    assert response.status == 201 and response.reconciled
    assert response.client_order_id == "strat-1" and response.attempts == 1
    body = body_of(response)
    created, filled = body["orderCreateTransaction"], body["orderFillTransaction"]
    assert created["clientExtensions"]["id"] == "strat-1"
    assert filled["orderID"] == created["id"]
    assert body["relatedTransactionIDs"] == [created["id"], filled["id"]]
    assert body["lastTransactionID"] == filled["id"]
    assert len(orders_of(sim, "strat-1")) == 1 and len(posts(sim)) == 1


async def test_dropped_before_processing_is_sent_once_more(orders: Orders,
                                                           sim: Simulator) -> None:
    await add_fault(sim.url, kind="reset", match=POST_ORDERS, count=1)
    response = await orders.place(market())
    assert response.status == 201 and not response.reconciled
    assert response.attempts == 2
    cid = response.client_order_id
    assert cid.startswith("osc-")
    assert len(orders_of(sim, cid)) == 1 and len(posts(sim)) == 2
    outcome = await orders.outcome(cid)
    assert outcome.outcome == control_pb2.ORDER_OUTCOME_PLACED
