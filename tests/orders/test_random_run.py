"""A seeded random run: 300 orders through the real sidecar with every fault kind mixed in.

Invariants: no client ID is placed twice; every order the caller was told is placed exists once;
every order it was told is not placed does not exist; no OUTCOME_UNKNOWN while OANDA answers
lookups (some lookups fail too, briefly, and the lookup lag varies per order).
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
import time

import grpc

from sidecar.sim.server import Simulator
from tests.e2e.helpers import add_fault, error_info
from tests.orders.conftest import Orders, OrdersFactory, market

ORDERS_TOTAL = 300
WORKERS = 10
POST_ORDERS = {"method": "POST", "path": "*/orders"}
FAULTS = [  # on order creates; the first that draws its ratio applies
    {"kind": "reset", "ratio": 0.08},  # dropped before OANDA processed it
    {"kind": "drop_after_commit", "ratio": 0.08},
    {"kind": "commit_then_503", "ratio": 0.08},
    {"kind": "commit_then_hang", "ratio": 0.04},
    {"kind": "status", "status": 503, "ratio": 0.05},  # refused before processing, as 503
]


async def _one(orders: Orders, rng: random.Random, n: int) -> tuple[str, str]:
    """(client ID, "placed" | "not_placed" | "unknown" | other outcome)."""
    units = str(rng.choice([-1, 1]) * rng.randint(1, 100))
    cid = f"run-{n}" if rng.random() < 0.8 else None  # the rest get an osc- ID
    try:
        response = await orders.place(market(units=units, cid=cid), deadline_s=20)
    except grpc.aio.AioRpcError as err:
        info, _ = error_info(err)
        outcome = info.metadata.get("outcome") or info.reason.lower()
        return info.metadata.get("client_order_id", cid or ""), outcome
    assert response.client_order_id
    placed = response.status == 201 and "orderCreateTransaction" in json.loads(response.body)
    return response.client_order_id, "placed" if placed else f"http_{response.status}"


async def test_three_hundred_orders_with_every_fault_mixed_in(orders_factory: OrdersFactory,
                                                              sim: Simulator) -> None:
    orders = await orders_factory(
        oanda={"request_timeout_s": 0.5}, orders={"lookup_lag_s": 0.3, "resolve_timeout_s": 8},
        breaker={"failure_threshold": 1000},
        degradation={"outage_connection_failures": 1000, "enter_failed_reads": 1000})
    sim.order_faults.set_lag(0.0, 0.25)
    for fault in FAULTS:
        await add_fault(sim.url, match=POST_ORDERS, **fault)
    await add_fault(sim.url, kind="status", status=503, ratio=0.1,
                    match={"method": "GET", "path": "*/orders/@*"})
    rng = random.Random(20261201)
    numbers = iter(range(ORDERS_TOTAL))
    results: list[tuple[str, str]] = []

    async def worker(seed: int) -> None:
        mine = random.Random(rng.random() + seed)
        for n in numbers:
            results.append(await _one(orders, mine, n))

    started = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(WORKERS)))
    took = time.monotonic() - started

    account = sim.state.accounts[sim.account_id]
    per_cid = collections.Counter(o.client_id for o in account.orders.values())
    told = collections.Counter(outcome for _, outcome in results)
    faulted = sum(1 for r in sim.requests if r.faults and r.method == "POST")
    print(f"\n{ORDERS_TOTAL} orders in {took:.1f} s: {dict(told)}; {faulted} sends faulted, "
          f"{orders.app.parts.orders.resolver.lookups} lookups")
    assert len(results) == ORDERS_TOTAL
    assert max(per_cid.values()) == 1  # no duplicates
    assert told["outcome_unknown"] == 0
    assert set(told) <= {"placed", "not_placed"}, told
    for cid, outcome in results:
        assert per_cid.get(cid, 0) == (1 if outcome == "placed" else 0), (cid, outcome)
    assert faulted >= 60 and told["placed"] >= 250
    assert took < 45
