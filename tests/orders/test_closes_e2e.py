"""Replace, trade and position closes with explicit units, cancels: a lost answer is resolved from
the transaction log before anything is sent again, so nothing is closed twice."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sidecar._gen.oanda.sidecar.v1 import proxy_pb2
from sidecar.sim.server import Simulator
from tests.e2e.helpers import add_fault, execute_request
from tests.orders.conftest import Orders, body_of, market


def _puts(sim: Simulator, suffix: str) -> int:
    return sum(1 for r in sim.requests if r.method == "PUT" and r.path.endswith(suffix))


async def _put(orders: Orders, path: str, body: dict[str, object]) -> proxy_pb2.ExecuteResponse:
    response: proxy_pb2.ExecuteResponse = await orders.stubs.proxy.Execute(
        execute_request("PUT", path, body=body), timeout=10)
    return response


@pytest.mark.parametrize("kind", ["drop_after_commit", "commit_then_503"])
async def test_a_partial_trade_close_whose_answer_was_lost_is_not_closed_twice(
        orders: Orders, sim: Simulator, kind: str) -> None:
    opened = body_of(await orders.place(market(units="100")))
    trade_id = opened["orderFillTransaction"]["tradeOpened"]["tradeID"]
    path = f"/v3/accounts/{sim.account_id}/trades/{trade_id}/close"
    await add_fault(sim.url, kind=kind, match={"method": "PUT", "path": "*/close"}, count=1)
    closed = await _put(orders, path, {"units": "40"})
    assert closed.status == 200 and closed.reconciled
    fill = body_of(closed)["orderFillTransaction"]
    assert fill["tradeReduced"] == {**fill["tradeReduced"], "tradeID": trade_id, "units": "-40"}
    trade = sim.state.accounts[sim.account_id].trades[trade_id]
    assert trade.current_units == Decimal(60) and _puts(sim, "/close") == 1


async def test_a_trade_is_closed_by_the_client_id_the_sidecar_mirrored(
        orders: Orders, sim: Simulator) -> None:
    placed = await orders.place(market(units="100"))
    cid = placed.client_order_id
    path = f"/v3/accounts/{sim.account_id}/trades/@{cid}/close"
    await add_fault(sim.url, kind="drop_after_commit", match={"method": "PUT"}, count=1)
    closed = await _put(orders, path, {"units": "25"})
    assert closed.status == 200 and closed.reconciled
    trade = next(iter(sim.state.accounts[sim.account_id].trades.values()))
    assert trade.client_id == cid and trade.current_units == Decimal(75)
    assert _puts(sim, "/close") == 1


async def test_a_position_close_answered_503_is_resolved(orders: Orders, sim: Simulator) -> None:
    await orders.place(market(units="100"))
    path = f"/v3/accounts/{sim.account_id}/positions/EUR_USD/close"
    await add_fault(sim.url, kind="commit_then_503", match={"method": "PUT"}, count=1)
    closed = await _put(orders, path, {"longUnits": "30"})
    assert closed.status == 200 and closed.reconciled
    body = body_of(closed)
    assert body["longOrderFillTransaction"]["units"] == "-30"
    trades = sim.state.accounts[sim.account_id].open_trades("EUR_USD")
    assert sum(t.current_units for t in trades) == Decimal(70) and _puts(sim, "/close") == 1


async def test_a_cancel_whose_answer_was_lost_is_resolved(orders: Orders, sim: Simulator) -> None:
    limit = body_of(await orders.place({"order": {
        "type": "LIMIT", "instrument": "EUR_USD", "units": "10", "price": "0.50000"}}))
    order_id = limit["orderCreateTransaction"]["id"]
    await add_fault(sim.url, kind="drop_after_commit", match={"method": "PUT"}, count=1)
    cancelled = await _put(orders, f"/v3/accounts/{sim.account_id}/orders/{order_id}/cancel", {})
    assert cancelled.status == 200 and cancelled.reconciled
    assert body_of(cancelled)["orderCancelTransaction"]["orderID"] == order_id
    assert _puts(sim, "/cancel") == 1


async def test_a_replace_whose_answer_was_lost_is_resolved_by_the_new_client_id(
        orders: Orders, sim: Simulator) -> None:
    limit = body_of(await orders.place({"order": {
        "type": "LIMIT", "instrument": "EUR_USD", "units": "10", "price": "0.50000"}}))
    old_id = limit["orderCreateTransaction"]["id"]
    await add_fault(sim.url, kind="drop_after_commit", match={"method": "PUT"}, count=1)
    replaced = await _put(orders, f"/v3/accounts/{sim.account_id}/orders/{old_id}", {"order": {
        "type": "LIMIT", "instrument": "EUR_USD", "units": "20", "price": "0.60000",
        "clientExtensions": {"id": "strat-replace-1"}}})
    assert replaced.status == 201 and replaced.reconciled
    body = body_of(replaced)
    assert body["orderCancelTransaction"]["orderID"] == old_id
    assert body["orderCreateTransaction"]["clientExtensions"]["id"] == "strat-replace-1"
    assert body["orderCreateTransaction"]["replacesOrderID"] == old_id
    assert sum(1 for r in sim.requests if r.method == "PUT") == 1
