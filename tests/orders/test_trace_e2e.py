"""The trace of an Execute whose order answer was lost shows the resolution: the lost POST and
the lookups as its child spans, and an `order.resolved` event, as a real OTLP receiver gets it."""

from __future__ import annotations

import grpc
import pytest

from sidecar.sim.server import Simulator
from tests.e2e.helpers import add_fault, execute_request
from tests.observability.otlp_receiver import OtlpReceiver
from tests.orders.conftest import Orders, OrdersFactory, market, orders_path

ORDER_TEMPLATE = "/v3/accounts/{accountID}/orders"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


async def test_the_lookups_are_spans_in_the_executes_trace(
        orders_factory: OrdersFactory, sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    async with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://{receiver.endpoint}")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
        orders: Orders = await orders_factory(telemetry={"tracing_enabled": True})
        await orders.place(market(units="1"))  # the account's transaction ID is known
        await add_fault(sim.url, kind="drop_after_commit", count=1, match={"method": "POST"})
        async with grpc.aio.insecure_channel(orders.app.grpc_target) as channel:
            response = await Orders(orders.app, channel, sim).stubs.proxy.Execute(
                execute_request("POST", orders_path(sim), body=market(cid="traced-1")),
                metadata=(("traceparent", f"00-{TRACE_ID}-{CALLER_SPAN}-01"),))
        assert response.reconciled
        # The first order: its server span, the summary read and the POST; this one: its
        # server span, the lost POST and two lookups.
        spans = await receiver.wait_for_spans(7, timeout_s=10)
    [server] = [s for s in spans if s.trace_id == TRACE_ID and s.name.startswith("Execute ")]
    assert server.name == f"Execute POST {ORDER_TEMPLATE}"
    children = sorted((s for s in spans if s.parent_span_id == server.span_id),
                      key=lambda s: s.span.start_time_unix_nano)
    assert [s.name for s in children] == [
        f"POST {ORDER_TEMPLATE}", f"GET {ORDER_TEMPLATE}/{{orderSpecifier}}",
        "GET /v3/accounts/{accountID}/transactions/sinceid"]
    assert children[0].attributes["error.type"] == "connection_lost"
    resolved = [attrs for name, attrs in server.events if name == "order.resolved"]
    assert len(resolved) == 1
    assert resolved[0]["oanda.client_order_id"] == "traced-1"
    assert resolved[0]["outcome"] == "placed" and resolved[0]["lookups"] == 2

