"""A caller resending a client ID that was placed: nothing is sent, the order's record comes back
(same sidecar, and a restarted one sharing a real Valkey server)."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from sidecar._gen.oanda.sidecar.v1 import control_pb2
from sidecar.sim.server import Simulator
from tests.e2e.helpers import add_fault, free_port
from tests.orders.conftest import Orders, OrdersFactory, body_of, market, orders_of, posts


async def test_resending_a_placed_client_id_places_nothing(orders: Orders,
                                                           sim: Simulator) -> None:
    first = await orders.place(market(cid="strat-42"))
    assert first.status == 201 and not first.reconciled
    again = await orders.place(market(cid="strat-42"))
    assert again.status == 201 and again.reconciled and again.attempts == 0
    assert again.client_order_id == "strat-42"
    assert (body_of(again)["orderFillTransaction"]["id"]
            == body_of(first)["orderFillTransaction"]["id"])
    assert len(orders_of(sim, "strat-42")) == 1 and len(posts(sim)) == 1


async def test_resending_an_assigned_id_after_an_unknown_outcome(orders: Orders,
                                                                 sim: Simulator) -> None:
    # The caller learnt the sidecar's osc- ID from the first answer and sends it again.
    first = await orders.place(market())
    cid = first.client_order_id
    again = await orders.place(market(cid=cid))
    assert again.reconciled and len(orders_of(sim, cid)) == 1 and len(posts(sim)) == 1


async def test_a_client_id_not_placed_is_sent(orders: Orders, sim: Simulator) -> None:
    # Refused before it reached OANDA: the caller's resend goes out.
    await add_fault(sim.url, kind="throttle", status=429, match={"method": "POST"}, count=3)
    refused = await orders.place(market(cid="strat-43"))
    assert refused.status == 429 and refused.attempts == 3  # retry's own, all refused
    assert (await orders.outcome("strat-43")).outcome == control_pb2.ORDER_OUTCOME_NOT_PLACED
    again = await orders.place(market(cid="strat-43"))
    assert again.status == 201 and not again.reconciled
    assert len(orders_of(sim, "strat-43")) == 1


async def test_a_restarted_sidecar_with_redis_knows_the_client_id(
        orders_factory: OrdersFactory, sim: Simulator, redis_url: str) -> None:
    shared = {"degradation": {"cache_backend": "redis", "redis_url": redis_url}}
    before = await orders_factory(**shared)
    first = await before.place(market(cid="strat-restart-1"))
    assert first.status == 201
    await before.app.stop(0.5)
    after = await orders_factory(**shared)  # a new process, or another pod
    again = await after.place(market(cid="strat-restart-1"))
    assert again.status == 201 and again.reconciled
    assert len(orders_of(sim, "strat-restart-1")) == 1 and len(posts(sim)) == 1
    outcome = await after.outcome("strat-restart-1")
    assert outcome.outcome == control_pb2.ORDER_OUTCOME_PLACED
    assert list(outcome.transaction_ids) == body_of(first)["relatedTransactionIDs"]


async def test_a_sidecar_killed_mid_order_then_a_resend_to_its_successor_places_nothing(
        orders_factory: OrdersFactory, sim: Simulator, redis_url: str) -> None:
    # The measured failure: 2 orders for one client ID. OANDA commits, its answer hangs,
    # the sidecar goes away; the caller sends the same client ID to the restarted sidecar.
    shared = {"degradation": {"cache_backend": "redis", "redis_url": redis_url}}
    dying = await orders_factory(**shared)
    await dying.place(market(units="1"))
    await add_fault(sim.url, kind="commit_then_hang", match={"method": "POST"}, count=1)
    in_flight = asyncio.ensure_future(dying.place(market(cid="strat-killed-1")))
    for _ in range(200):
        if orders_of(sim, "strat-killed-1"):
            break
        await asyncio.sleep(0.01)
    assert orders_of(sim, "strat-killed-1")  # committed, answer never sent
    await dying.app.stop(0.1)  # killed: the in-flight call is cut off
    with pytest.raises(grpc.aio.AioRpcError):
        await in_flight
    successor = await orders_factory(**shared)
    again = await successor.place(market(cid="strat-killed-1"))
    assert again.status == 201 and again.reconciled and again.attempts == 0
    assert len(orders_of(sim, "strat-killed-1")) == 1 and len(posts(sim)) == 2


async def test_an_unreachable_redis_never_stops_an_order(orders_factory: OrdersFactory,
                                                         sim: Simulator) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    orders = await orders_factory(degradation={"cache_backend": "redis", "redis_url": dead,
                                               "cache_timeout_s": 0.2})
    placed = await orders.place(market(cid="strat-no-redis-1"))
    assert placed.status == 201 and len(orders_of(sim, "strat-no-redis-1")) == 1
    # The memory copy still knows it: a resend places nothing.
    again = await orders.place(market(cid="strat-no-redis-1"))
    assert again.reconciled and len(posts(sim)) == 1
