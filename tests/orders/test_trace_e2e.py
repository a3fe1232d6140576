"""The trace of an Execute whose order answer was lost shows the resolution: the lost POST, the
lookups as CLIENT spans, and an `order.resolved` event on the server span."""

from __future__ import annotations

import grpc
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from sidecar.app import App
from sidecar.config import TelemetryConfig
from sidecar.observability.tracing import Tracing
from sidecar.sim.server import Simulator
from tests.e2e.conftest import make_config
from tests.e2e.helpers import add_fault
from tests.orders.conftest import ORDERS, Orders, market

ORDER_TEMPLATE = "/v3/accounts/{accountID}/orders"


async def test_the_lookups_are_spans_in_the_executes_trace(sim: Simulator) -> None:
    memory = InMemorySpanExporter()
    app = App(make_config(sim.url, orders=ORDERS))
    tracing = Tracing(TelemetryConfig(), app.bus, exporter=memory)
    app.parts.extras["tracing"] = tracing
    await app.start()
    try:
        async with grpc.aio.insecure_channel(app.grpc_target) as channel:
            orders = Orders(app, channel, sim)
            await orders.place(market(units="1"))
            await tracing.force_flush()
            memory.clear()
            await add_fault(sim.url, kind="drop_after_commit", count=1,
                            match={"method": "POST"})
            response = await orders.place(market(cid="traced-1"))
            assert response.reconciled
        await tracing.force_flush()
    finally:
        await tracing.shutdown()
        await app.stop(0.5)
    spans = memory.get_finished_spans()
    [server] = [s for s in spans if s.kind == SpanKind.SERVER]
    assert server.name == f"Execute POST {ORDER_TEMPLATE}"
    children = sorted((s for s in spans if s.kind == SpanKind.CLIENT and s.parent is not None
                       and s.parent.span_id == server.context.span_id),
                      key=lambda s: s.start_time or 0)
    assert [s.name for s in children] == [
        f"POST {ORDER_TEMPLATE}", f"GET {ORDER_TEMPLATE}/{{orderSpecifier}}",
        f"GET {ORDER_TEMPLATE[:-7]}/transactions/sinceid"]
    assert (children[0].attributes or {})["error.type"] == "connection_lost"
    [event] = [e for e in server.events if e.name == "order.resolved"]
    attrs = dict(event.attributes or {})
    assert attrs["oanda.client_order_id"] == "traced-1" and attrs["outcome"] == "placed"
    assert attrs["lookups"] == 2
