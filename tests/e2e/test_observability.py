"""Issue 5, end to end: traces from the real sidecar to a real OTLP receiver; bounded metrics."""

from __future__ import annotations

import re

import aiohttp
import grpc
import pytest

from sidecar.app import App
from sidecar.sim.server import Simulator
from tests.e2e.conftest import TOKEN, SidecarFactory, Stubs, make_config
from tests.e2e.helpers import add_fault, execute_request
from tests.observability.otlp_receiver import OtlpReceiver

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


async def test_a_503_503_200_call_is_one_server_span_and_three_attempt_spans(
        sidecar_factory: SidecarFactory, sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    async with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://{receiver.endpoint}")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
        app = await sidecar_factory(telemetry={"tracing_enabled": True},
                                    retry={"base_delay_s": 0.01, "max_delay_s": 0.05})
        await add_fault(sim.url, kind="status", status=503, count=2)
        async with grpc.aio.insecure_channel(app.grpc_target) as channel:
            answer = await Stubs(channel).proxy.Execute(
                execute_request("GET", "/v3/accounts"),
                metadata=(("traceparent", f"00-{TRACE_ID}-{CALLER_SPAN}-01"),))
        assert answer.status == 200 and answer.attempts == 3
        spans = await receiver.wait_for_spans(4, timeout_s=10)
    servers = [s for s in spans if s.name.startswith("Execute ")]
    assert len(servers) == 1
    server = servers[0]
    assert server.trace_id == TRACE_ID and server.parent_span_id == CALLER_SPAN
    assert server.resource["service.name"] == "oanda-sidecar"
    attempts = sorted((s for s in spans if s.parent_span_id == server.span_id),
                      key=lambda s: s.span.start_time_unix_nano)
    assert len(attempts) == 3
    assert all(s.trace_id == TRACE_ID for s in attempts)
    assert [s.attributes.get("http.request.resend_count") for s in attempts] == [None, 1, 2]
    assert [s.attributes["http.response.status_code"] for s in attempts] == [503, 503, 200]
    assert [s.attributes.get("error.type") for s in attempts] == ["503", "503", None]
    assert {s.attributes["url.template"] for s in attempts} == {"/v3/accounts"}
    assert [name for name, _ in server.events].count("retry") == 2


async def test_a_thousand_account_ids_keep_the_metric_label_set_bounded() -> None:
    sim = Simulator(token=TOKEN, rate_limit_per_s=1_000_000)
    await sim.start(host="127.0.0.1", port=0)
    app = App(make_config(sim.url, rate_limit={"rate_per_s": 10_000, "burst": 10_000},
                          breaker={"failure_threshold": 1000}))
    await app.start()
    try:
        async with grpc.aio.insecure_channel(app.grpc_target) as channel:
            stubs = Stubs(channel)
            for i in range(1000):
                answer = await stubs.proxy.Execute(execute_request(
                    "GET", f"/v3/accounts/101-004-{i:07d}-001/summary"))
                assert answer.status == 400  # the simulator knows none of these accounts
        async with aiohttp.ClientSession() as http, http.get(f"{app.admin_url}/metrics") as resp:
            text = await resp.text()
    finally:
        await app.stop(0.5)
        await sim.close()
    assert not re.search(r"101-004-\d{7}-001", text)
    series = [line for line in text.splitlines()
              if line.startswith("oanda_sidecar_requests_total{")]
    assert len(series) == 1, series
    assert 'endpoint="/v3/accounts/{accountID}/summary"' in series[0]
    assert series[0].endswith(" 1000.0")
    labels = {line.split(" ")[0] for line in text.splitlines()
              if line.startswith("oanda_sidecar_") and "{" in line}
    assert len(labels) < 100
