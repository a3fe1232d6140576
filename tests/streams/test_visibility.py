"""GetStatus.streams, the §8 metrics, and one span per upstream connection (not per price)."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
from oanda_sidecar_client._convert import sidecar_status
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sidecar.ctl import format_status
from sidecar.observability.stream_spans import StreamSpans
from sidecar.server.convert import status_response
from sidecar.sim.server import Simulator
from tests.e2e.conftest import SidecarFactory
from tests.streams.conftest import (
    STREAM_CONFIG,
    Collector,
    add_transactions,
    price_path,
    sim_fault,
    tx_path,
    until,
)


async def test_metrics_status_and_spans(sim: Simulator, sidecar_factory: SidecarFactory) -> None:
    sim.streams.heartbeat_s = 0.3
    app = await sidecar_factory(oanda={"stream_url": sim.url},
                                **STREAM_CONFIG)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    spans = StreamSpans(provider.get_tracer("test"), app.bus)
    import grpc

    from sidecar._gen.oanda.sidecar.v1 import proxy_pb2_grpc

    async with grpc.aio.insecure_channel(app.grpc_target) as channel:
        stub: Any = proxy_pb2_grpc.ProxyServiceStub(channel)  # type: ignore[no-untyped-call]
        txs = [Collector(stub, tx_path(sim)) for _ in range(2)]
        prices = Collector(stub, price_path(sim), query={"instruments": "EUR_USD,USD_JPY"})
        await until(lambda: all(c.of("SIDECAR_CONNECTED") for c in txs)
                    and len(prices.of("PRICE")) >= 8)
        await sim_fault(sim, kind="stream_skip", path="*/transactions/stream")
        add_transactions(sim, 3)
        await until(lambda: len(txs[0].ids()) == 3)
        await sim_fault(sim, kind="stream_drop", path="*/transactions/stream")
        await until(lambda: len(txs[0].of("SIDECAR_CONNECTED")) >= 2, timeout=5)
        status = app.parts.board.snapshot().streams
        by_template = {s.path_template: s for s in status}
        tx_status = by_template["/v3/accounts/{accountID}/transactions/stream"]
        assert tx_status.subscribers == 2 and tx_status.reconnects == 1
        assert tx_status.last_transaction_id == txs[0].ids()[-1]
        assert tx_status.account == "***-***-****-001"
        price_status = by_template["/v3/accounts/{accountID}/pricing/stream"]
        assert price_status.instruments == ("EUR_USD", "USD_JPY")
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{app.admin_url}/metrics") as resp:
                text = await resp.text()
            async with session.get(f"{app.admin_url}/api/status") as resp:
                api = await resp.json()
        assert 'oanda_sidecar_stream_connected{stream="transactions"} 1.0' in text
        assert 'oanda_sidecar_stream_subscribers{stream="transactions"} 2.0' in text
        assert 'oanda_sidecar_stream_subscribers{stream="pricing"} 1.0' in text
        replayed = re.search(r'oanda_sidecar_stream_replayed_total\{stream="transactions"\} '
                             r'([0-9.]+)', text)
        assert replayed and float(replayed.group(1)) >= 1  # the skipped line, filled
        assert 'oanda_sidecar_stream_reconnects_total{reason="broken_chunk",' \
               'stream="transactions"} 1.0' in text or \
               'oanda_sidecar_stream_reconnects_total{reason="end_of_stream",' \
               'stream="transactions"} 1.0' in text
        assert 'oanda_sidecar_breaker_state{breaker="stream"} 0.0' in text
        assert "101-004" not in text
        assert {s["path_template"] for s in api["streams"]} == set(by_template)
        text = format_status(sidecar_status(status_response(app.parts.board.snapshot(), "test")))
        assert "transactions  ***-***-****-001" in text and "EUR_USD,USD_JPY" in text
        for c in (*txs, prices):
            await c.close()
    finished = exporter.get_finished_spans()
    tx_spans = [s for s in finished if "transactions" in s.name]
    assert len(tx_spans) == 1  # the dropped connection; its successor is still open
    assert tx_spans[0].attributes is not None
    assert tx_spans[0].attributes["oanda.stream.end_reason"] in ("broken_chunk", "end_of_stream")
    assert not [s for s in finished if "pricing" in s.name]  # one span, still open: no per-price
    spans.close()
