"""The REST listener is observed as Execute is: one SERVER span per request continuing the
caller's `traceparent` (to a real OTLP receiver), the same metrics with `front="rest"`, the same
log line; and at shutdown a write still in flight is answered, not cut bare."""

from __future__ import annotations

import asyncio
import io
import json

import aiohttp
import pytest

from sidecar.sim.server import Simulator
from tests.degradation.conftest import captured_logs  # noqa: F401  (fixture)
from tests.e2e.conftest import SidecarFactory
from tests.e2e.helpers import add_fault
from tests.observability.otlp_receiver import OtlpReceiver
from tests.rest.conftest import ORDERS

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
SUMMARY = "/v3/accounts/{accountID}/summary"


async def test_a_rest_call_is_one_server_span_in_the_callers_trace(
        sim: Simulator, sidecar_factory: SidecarFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://{receiver.endpoint}")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
        app = await sidecar_factory(telemetry={"tracing_enabled": True})
        async with aiohttp.ClientSession() as http, http.get(
                f"{app.rest_url}/v3/accounts/{sim.account_id}/summary",
                headers={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"}) as resp:
            assert resp.status == 200
        spans = await receiver.wait_for_spans(2, timeout_s=10)
    [server] = [s for s in spans if s.parent_span_id == CALLER_SPAN]
    assert server.trace_id == TRACE_ID
    assert server.name == f"GET {SUMMARY}"
    assert server.attributes["oanda_sidecar.front"] == "rest"
    assert server.attributes["http.response.status_code"] == 200
    [attempt] = [s for s in spans if s.parent_span_id == server.span_id]
    assert attempt.name == f"GET {SUMMARY}" and attempt.trace_id == TRACE_ID


async def test_metrics_and_log_lines_name_the_rest_front(
        sim: Simulator, sidecar_factory: SidecarFactory,
        captured_logs: io.StringIO) -> None:  # noqa: F811
    app = await sidecar_factory()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{app.rest_url}/v3/accounts/{sim.account_id}/summary") as resp:
            assert resp.status == 200
        async with http.get(f"{app.rest_url}/v2/nothing") as resp:
            assert resp.status == 400
        async with http.get(f"{app.admin_url}/metrics") as resp:
            metrics = await resp.text()
    assert (f'oanda_sidecar_requests_total{{endpoint="{SUMMARY}",front="rest",method="GET",'
            'outcome="ok"} 1.0') in metrics
    assert 'front="rest",method="GET",outcome="invalid_request"} 1.0' in metrics
    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines()
             if line.startswith("{")]
    executes = [line for line in lines if line.get("event") == "execute"]
    assert [(e["front"], e["outcome"]) for e in executes] == [
        ("rest", "ok"), ("rest", "invalid_request")]
    assert executes[0]["endpoint"] == SUMMARY and executes[0]["status"] == 200


async def test_a_write_in_flight_at_shutdown_is_answered_outcome_unknown(
        sim: Simulator, sidecar_factory: SidecarFactory) -> None:
    app = await sidecar_factory(orders=ORDERS)
    await add_fault(sim.url, kind="latency", latency_s=5.0, match={"method": "POST"})
    async with aiohttp.ClientSession() as http:
        sent = asyncio.ensure_future(http.post(
            f"{app.rest_url}/v3/accounts/{sim.account_id}/orders",
            json={"order": {"type": "MARKET", "instrument": "EUR_USD", "units": "1",
                            "clientExtensions": {"id": "bot-drain-1"}}}))
        await asyncio.sleep(0.3)
        stopping = asyncio.ensure_future(app.stop(1.0))
        resp = await sent
        body = await resp.json()
        await stopping
    assert resp.status == 504 and body["errorCode"] == "OUTCOME_UNKNOWN"
    assert body["clientOrderID"] == "bot-drain-1"
