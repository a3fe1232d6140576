"""A sidecar killed with an order in flight leaves a PENDING record in Redis; its successor
must resolve that record when asked (GetOrderOutcome), not answer PENDING forever.

Found by the chaos run (issue 18): after a SIGKILL, polling GetOrderOutcome never ended."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from sidecar._gen.oanda.sidecar.v1 import control_pb2
from sidecar.sim.server import Simulator
from tests.e2e.helpers import add_fault
from tests.orders.conftest import Orders, OrdersFactory, market, orders_of, posts


async def _die_with_order_in_flight(orders_factory: OrdersFactory, sim: Simulator,
                                    redis_url: str, fault: str, cid: str) -> None:
    shared = {"degradation": {"cache_backend": "redis", "redis_url": redis_url}}
    dying = await orders_factory(**shared)
    await dying.place(market(units="1"))  # learns the account's last transaction ID
    await add_fault(sim.url, kind=fault, match={"method": "POST"}, count=1)
    in_flight = asyncio.ensure_future(dying.place(market(cid=cid)))
    for _ in range(300):
        if any(r.client_order_id == cid for r in sim.requests):
            break
        await asyncio.sleep(0.01)
    await dying.app.stop(0.1)  # gone: nobody in that process resolves it any more
    with pytest.raises(grpc.aio.AioRpcError):
        await in_flight


async def _poll(successor: Orders, cid: str) -> control_pb2.GetOrderOutcomeResponse:
    for _ in range(100):
        outcome = await successor.outcome(cid)
        if outcome.outcome != control_pb2.ORDER_OUTCOME_PENDING:
            return outcome
        await asyncio.sleep(0.1)
    raise AssertionError(f"{cid} still PENDING after 10 s")


async def test_a_committed_order_of_a_dead_sidecar_is_found_placed_by_its_successor(
        orders_factory: OrdersFactory, sim: Simulator, redis_url: str) -> None:
    await _die_with_order_in_flight(orders_factory, sim, redis_url, "commit_then_hang",
                                    "strat-orphan-placed")
    assert len(orders_of(sim, "strat-orphan-placed")) == 1
    successor = await orders_factory(
        degradation={"cache_backend": "redis", "redis_url": redis_url})
    outcome = await _poll(successor, "strat-orphan-placed")
    assert outcome.outcome == control_pb2.ORDER_OUTCOME_PLACED
    assert outcome.transaction_ids
    assert len(orders_of(sim, "strat-orphan-placed")) == 1 and len(posts(sim)) == 2


async def test_an_order_of_a_dead_sidecar_that_never_arrived_is_not_placed(
        orders_factory: OrdersFactory, sim: Simulator, redis_url: str) -> None:
    await _die_with_order_in_flight(orders_factory, sim, redis_url, "hang",
                                    "strat-orphan-absent")
    assert orders_of(sim, "strat-orphan-absent") == []
    successor = await orders_factory(
        degradation={"cache_backend": "redis", "redis_url": redis_url})
    outcome = await _poll(successor, "strat-orphan-absent")
    assert outcome.outcome == control_pb2.ORDER_OUTCOME_NOT_PLACED
    # And a resend with the same client ID is now sent, once.
    again = await successor.place(market(cid="strat-orphan-absent"))
    assert again.status == 201 and len(orders_of(sim, "strat-orphan-absent")) == 1
