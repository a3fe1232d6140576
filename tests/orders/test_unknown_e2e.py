"""OANDA unreachable for lookups: OUTCOME_UNKNOWN (gRPC UNKNOWN) with what to reconcile by, the
sidecar resolving on in the background, and generic gRPC retries never resending the order."""

from __future__ import annotations

import asyncio
import io
import json
import time

import aiohttp
import grpc
import pytest

from sidecar._gen.oanda.sidecar.v1 import control_pb2, proxy_pb2_grpc
from sidecar.sim.server import Simulator
from tests.degradation.conftest import captured_logs  # noqa: F401  (fixture)
from tests.e2e.helpers import add_fault, error_info, execute_request
from tests.orders.conftest import Orders, OrdersFactory, market, orders_of, orders_path, posts

POST_ORDERS = {"method": "POST", "path": "*/orders"}


async def _remove_fault(sim: Simulator, fault_id: str) -> None:
    async with aiohttp.ClientSession() as session, session.delete(
            f"{sim.url}/_sim/faults/{fault_id}") as resp:
        assert resp.status == 200


async def _wait_decided(orders: Orders, cid: str, within_s: float
                        ) -> control_pb2.GetOrderOutcomeResponse:
    give_up = time.monotonic() + within_s
    while True:
        outcome = await orders.outcome(cid)
        if outcome.outcome != control_pb2.ORDER_OUTCOME_PENDING or time.monotonic() > give_up:
            return outcome
        await asyncio.sleep(0.05)


def _resolutions(logs: io.StringIO) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in logs.getvalue().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "order.resolved"]


async def test_unreachable_past_the_resolve_timeout_then_placed_once_back(
        orders_factory: OrdersFactory, sim: Simulator, captured_logs: io.StringIO,  # noqa: F811
) -> None:
    orders = await orders_factory(orders={"resolve_timeout_s": 1.0})
    await orders.place(market(units="1"))  # the account's last transaction ID is known
    since = sim.state.accounts[sim.account_id].last_transaction_id
    await add_fault(sim.url, kind="drop_after_commit", match=POST_ORDERS, count=1)
    lookups_down = await add_fault(sim.url, kind="outage", match={"method": "GET"})
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await orders.place(market(cid="strat-dark-1"))
    took = time.monotonic() - started
    assert caught.value.code() == grpc.StatusCode.UNKNOWN
    info, _ = error_info(caught.value)
    assert info.reason == "OUTCOME_UNKNOWN"
    assert dict(info.metadata) == {**info.metadata, "client_order_id": "strat-dark-1",
                                   "account_id": sim.account_id, "since_transaction_id": since}
    assert 0.8 <= took < 2.0, took  # the last lookup that fits in resolve_timeout_s
    assert (await orders.outcome("strat-dark-1")).outcome == control_pb2.ORDER_OUTCOME_PENDING

    await _remove_fault(sim, lookups_down)
    outcome = await _wait_decided(orders, "strat-dark-1", within_s=10)
    assert outcome.outcome == control_pb2.ORDER_OUTCOME_PLACED
    order = orders_of(sim, "strat-dark-1")
    assert len(order) == 1 and len(posts(sim)) == 2
    assert list(outcome.transaction_ids) == [order[0].id, order[0].filling_transaction_id]
    assert outcome.HasField("decided_at") and outcome.account_id == sim.account_id
    lines = [line for line in _resolutions(captured_logs)
             if line["client_order_id"] == "strat-dark-1"]
    assert [(line["outcome"], line["background"]) for line in lines] == [
        ("unknown", False), ("placed", True)]
    assert lines[-1]["transaction_ids"] == list(outcome.transaction_ids)
    assert lines[-1]["level"] == "info" and lines[0]["level"] == "warning"
    metrics = orders.app.parts.observability.metrics.render()[0].decode()
    assert 'oanda_sidecar_orders_resolved_total{outcome="unknown"} 1.0' in metrics
    assert 'oanda_sidecar_orders_resolved_total{outcome="placed"} 1.0' in metrics
    assert "oanda_sidecar_orders_resolve_seconds_count 1.0" in metrics


async def test_never_seen_client_ids_answer_not_seen(orders: Orders) -> None:
    outcome = await orders.outcome("never-sent-1")
    assert outcome.outcome == control_pb2.ORDER_OUTCOME_NOT_SEEN
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await orders.outcome("")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_generic_retry_on_unavailable_client_never_resends_the_order(
        orders_factory: OrdersFactory, sim: Simulator) -> None:
    # (Three lost connections in a row would put the sidecar in READ_ONLY: not the point here.)
    orders = await orders_factory(orders={"resolve_timeout_s": 0.5},
                                  degradation={"outage_connection_failures": 100})
    config = {"methodConfig": [{
        "name": [{"service": "oanda.sidecar.v1.ProxyService"}],
        "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.01s", "maxBackoff": "0.05s",
                        "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}
    options = [("grpc.enable_retries", 1), ("grpc.service_config", json.dumps(config))]
    async with grpc.aio.insecure_channel(orders.app.grpc_target, options=options) as channel:
        proxy = proxy_pb2_grpc.ProxyServiceStub(channel)  # type: ignore[no-untyped-call]
        # The channel does retry UNAVAILABLE: a read refused three times by OANDA (the sidecar's
        # own three attempts, then UPSTREAM_UNAVAILABLE) succeeds on the channel's second try.
        await add_fault(sim.url, kind="reset", match={"method": "GET", "path": "*/summary"},
                        count=3)
        read = await proxy.Execute(execute_request(
            "GET", f"/v3/accounts/{sim.account_id}/summary"), timeout=10)
        assert read.status == 200
        assert [r.path.endswith("/summary") for r in sim.requests].count(True) == 4
        # An order whose outcome stays unknown is UNKNOWN: the channel does not send it again.
        await add_fault(sim.url, kind="drop_after_commit", match=POST_ORDERS, count=1)
        await add_fault(sim.url, kind="outage", match={"method": "GET"})
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await proxy.Execute(execute_request("POST", orders_path(sim),
                                                body=market(cid="strat-generic-1")), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNKNOWN
    assert len(posts(sim)) == 1 and len(orders_of(sim, "strat-generic-1")) == 1


async def test_a_callers_deadline_while_in_flight_is_answered_unknown_then_resolved(
        orders: Orders, sim: Simulator) -> None:
    await orders.place(market(units="1"))
    # OANDA takes 1 s to process the order; the caller waits 0.5 s.
    await add_fault(sim.url, kind="latency", latency_s=1.0, match=POST_ORDERS, count=1)
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await orders.place(market(cid="strat-late-1"), deadline_s=0.5)
    assert time.monotonic() - started < 0.6
    # Answered before the caller's deadline, with what to reconcile by (not DEADLINE_EXCEEDED).
    assert caught.value.code() == grpc.StatusCode.UNKNOWN
    assert error_info(caught.value)[0].metadata["client_order_id"] == "strat-late-1"
    outcome = await _wait_decided(orders, "strat-late-1", within_s=8)
    assert outcome.outcome == control_pb2.ORDER_OUTCOME_PLACED
    assert len(orders_of(sim, "strat-late-1")) == 1 and len(posts(sim)) == 2
