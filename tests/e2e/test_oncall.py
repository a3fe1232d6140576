"""Issue 15: what the on-call engineer sees is true, and short trouble stays short."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import pytest

from sidecar._gen.oanda.sidecar.v1 import control_pb2 as cpb
from sidecar._gen.oanda.sidecar.v1 import proxy_pb2 as ppb
from sidecar.events import ExecuteFinished, RateAdjusted
from sidecar.sim.server import Simulator
from sidecar.vocabulary import BreakerState, Level
from tests.e2e.conftest import SidecarFactory, Stubs
from tests.e2e.helpers import SidecarProcess, add_fault, error_info, execute_request

ORDER = {"order": {"type": "MARKET", "instrument": "EUR_USD", "units": "10"}}


async def test_a_call_ended_by_the_callers_deadline_is_logged_and_counted(
        sidecar_factory: SidecarFactory, sim: Simulator) -> None:
    """Before: 13 calls made, 12 counted; no `execute` line for the one the deadline ended."""
    app = await sidecar_factory()
    finished: list[ExecuteFinished] = []
    app.bus.subscribe(ExecuteFinished, finished.append)
    await add_fault(sim.url, kind="latency", latency_s=2.0, match={"path": "*/summary"})
    async with grpc.aio.insecure_channel(app.grpc_target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await Stubs(channel).proxy.Execute(execute_request(
                "GET", f"/v3/accounts/{sim.account_id}/summary"), timeout=0.3)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    for _ in range(50):
        if finished:
            break
        await asyncio.sleep(0.02)
    assert [e.outcome for e in finished] == ["deadline_exceeded"]
    body, _ = app.parts.observability.metrics.render()
    assert b'outcome="deadline_exceeded"} 1.0' in body


async def test_a_429_storm_never_opens_the_breaker_nor_refuses_orders(
        sidecar_factory: SidecarFactory, sim: Simulator) -> None:
    """Before: 5 s of 429s opened the breaker ("http_429") and orders were refused READ_ONLY
    for the recovery timeout."""
    app = await sidecar_factory(retry={"max_attempts": 1},
                                rate_limit={"recovery_per_s": 50})
    rates: list[float] = []
    app.bus.subscribe(RateAdjusted, lambda e: rates.append(e.rate_per_s))
    await add_fault(sim.url, kind="throttle", duration_s=2.0)
    statuses = []
    async with grpc.aio.insecure_channel(app.grpc_target) as channel:
        stubs = Stubs(channel)
        started = time.monotonic()
        while time.monotonic() - started < 3.0:
            answer = await stubs.proxy.Execute(execute_request(
                "POST", f"/v3/accounts/{sim.account_id}/orders", body=ORDER))
            statuses.append(answer.status)
            await asyncio.sleep(0.05)
    assert 429 in statuses and statuses[-1] == 201  # answers, never READ_ONLY
    assert app.parts.breakers.get("rest").state is BreakerState.CLOSED
    assert app.parts.degradation.level == Level.NONE
    assert rates and min(rates) < 100  # the limiter slowed down


@pytest.mark.parametrize("mode", ["refuse", "status"])
async def test_writes_flow_again_within_recovery_plus_one_probe_after_a_short_outage(
        sidecar_factory: SidecarFactory, sim: Simulator, mode: str) -> None:
    """Before: a 5 s outage refused orders for 87 s, and status read breaker=closed,
    upstream=healthy, level=read_only with a stale reason. The bound is the breaker's
    recovery timeout + one probe interval + 1 s (here 1 s + 0.5 s + 1 s)."""
    app = await sidecar_factory(breaker={"failure_threshold": 3, "recovery_timeout_s": 1.0},
                                degradation={"probe_interval_s": 0.5},
                                retry={"max_attempts": 1})
    await add_fault(sim.url, kind="outage", mode=mode, status=503, duration_s=1.5)
    async with grpc.aio.insecure_channel(app.grpc_target) as channel:
        stubs = Stubs(channel)
        for _ in range(4):  # fail enough to open the breaker and go READ_ONLY
            try:
                await stubs.proxy.Execute(execute_request("GET", "/v3/accounts"))
            except grpc.aio.AioRpcError:
                pass
        assert app.parts.degradation.level == Level.READ_ONLY
        status = await stubs.control.GetStatus(cpb.GetStatusRequest())
        assert status.degradation.waiting_for  # it says what it waits for
        back_at = time.monotonic() + max(0.0, 1.5 - 0.3)
        while True:
            try:
                answer = await stubs.proxy.Execute(execute_request(
                    "POST", f"/v3/accounts/{sim.account_id}/orders", body=ORDER))
                if answer.status == 201:
                    break
            except grpc.aio.AioRpcError as err:
                assert error_info(err)[0].reason in ("READ_ONLY", "CIRCUIT_OPEN",
                                                     "UPSTREAM_UNAVAILABLE")
            assert time.monotonic() - back_at < 1.0 + 0.5 + 1.0 + 0.5, "writes still refused"
            await asyncio.sleep(0.05)
        status = await stubs.control.GetStatus(cpb.GetStatusRequest())
    assert status.degradation.reason == "" and status.degradation.waiting_for == ""


async def test_operator_holds_survive_sigkill_and_restart(tmp_path: Path, sim: Simulator) -> None:
    """Before: FORCED_OPEN and a manual READ_ONLY were gone after a SIGKILL, and the next
    order went out."""
    sidecar = await SidecarProcess(tmp_path, sim.url,
                                   server_extra=f", state_dir: {tmp_path / 'state'}").start()
    async with grpc.aio.insecure_channel(sidecar.target) as channel:
        stubs = Stubs(channel)
        await stubs.control.SetBreakerOverride(cpb.SetBreakerOverrideRequest(
            name="rest", override=cpb.BREAKER_OVERRIDE_FORCED_OPEN))
        await stubs.control.SetDegradation(cpb.SetDegradationRequest(
            level=ppb.DEGRADATION_LEVEL_READ_ONLY, reason="OANDA maintenance window 22:00-23:00"))
    await sidecar.kill()  # SIGKILL: no drain, no goodbye
    await sidecar.start()
    try:
        async with grpc.aio.insecure_channel(sidecar.target) as channel:
            stubs = Stubs(channel)
            status = await stubs.control.GetStatus(cpb.GetStatusRequest())
            assert status.holds_kept
            states = {b.name: b.state for b in status.breakers}
            assert states["rest"] == cpb.BREAKER_STATE_FORCED_OPEN  # `stream` untouched
            assert status.degradation.manual
            assert status.degradation.reason == "OANDA maintenance window 22:00-23:00"
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stubs.proxy.Execute(execute_request(
                    "POST", f"/v3/accounts/{sim.account_id}/orders", body=ORDER))
            assert error_info(caught.value)[0].reason in ("READ_ONLY", "CIRCUIT_OPEN")
    finally:
        await sidecar.stop()
    assert [r for r in sim.requests if r.method == "POST"] == []
