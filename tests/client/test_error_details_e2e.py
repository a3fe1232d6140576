"""Every gRPC error of CONTRACT §3 carries its ErrorInfo (and RetryInfo where a wait helps),
provoked for real and read through the typed client."""

from __future__ import annotations

import grpc
import pytest
from oanda_sidecar_client import AsyncSidecarClient, errors

from sidecar.sim.server import Simulator
from tests.e2e.conftest import SidecarFactory
from tests.e2e.helpers import add_fault

ORDER = {"order": {"type": "MARKET", "instrument": "EUR_USD", "units": "10",
                   "clientExtensions": {"id": "details-1"}}}


async def test_invalid_request_names_the_field(sidecar_factory: SidecarFactory) -> None:
    app = await sidecar_factory()
    async with AsyncSidecarClient(app.grpc_target) as client:
        with pytest.raises(errors.InvalidRequest) as caught:
            await client.execute("GET", "/v3/accounts", headers={"Authorization": "Bearer x"})
    assert caught.value.reason == "INVALID_REQUEST" and caught.value.metadata["field"] == "headers"


async def test_rate_limited_carries_retry_info(sidecar_factory: SidecarFactory) -> None:
    app = await sidecar_factory(rate_limit={"rate_per_s": 1, "burst": 1, "max_queue_wait_s": 0})
    async with AsyncSidecarClient(app.grpc_target) as client:
        assert (await client.get("/v3/accounts")).status == 200
        with pytest.raises(errors.RateLimited) as caught:
            await client.get("/v3/accounts")
    assert caught.value.reason == "RATE_LIMITED"
    assert caught.value.retry_after is not None and 0 < caught.value.retry_after <= 1.0


async def test_circuit_open_carries_retry_info(sidecar_factory: SidecarFactory,
                                               sim: Simulator) -> None:
    app = await sidecar_factory(retry={"max_attempts": 1},
                                breaker={"failure_threshold": 1, "recovery_timeout_s": 30})
    await add_fault(sim.url, kind="status", status=503, count=1)
    async with AsyncSidecarClient(app.grpc_target) as client:
        assert (await client.get("/v3/accounts")).status == 503
        with pytest.raises(errors.CircuitOpen) as caught:
            await client.get("/v3/accounts")
    assert caught.value.retry_after is not None and 25 < caught.value.retry_after <= 30


async def test_upstream_unavailable_after_retries(sidecar_factory: SidecarFactory,
                                                  sim: Simulator) -> None:
    app = await sidecar_factory()
    await add_fault(sim.url, kind="reset")
    async with AsyncSidecarClient(app.grpc_target) as client:
        with pytest.raises(errors.UpstreamUnavailable) as caught:
            await client.get("/v3/accounts")
    assert caught.value.reason == "UPSTREAM_UNAVAILABLE"
    assert "3 attempts" in caught.value.message
    assert len(sim.requests) == 3


async def test_outcome_unknown_for_a_dropped_order(sidecar_factory: SidecarFactory,
                                                   sim: Simulator) -> None:
    # The order's answer is lost and OANDA answers no lookup: the outcome stays unknown.
    app = await sidecar_factory(orders={"resolve_timeout_s": 0.5, "lookup_lag_s": 0.2})
    await add_fault(sim.url, kind="drop_after_commit", count=1, match={"method": "POST"})
    await add_fault(sim.url, kind="outage", match={"method": "GET"})
    async with AsyncSidecarClient(app.grpc_target) as client:
        with pytest.raises(errors.OutcomeUnknown) as caught:
            await client.post(f"/v3/accounts/{sim.account_id}/orders", json=ORDER)
    assert caught.value.reason == "OUTCOME_UNKNOWN"
    assert caught.value.code == grpc.StatusCode.UNKNOWN  # never retried by generic clients
    assert caught.value.metadata["client_order_id"]
    assert caught.value.metadata["account_id"] == sim.account_id


async def test_deadline_exceeded_when_the_callers_deadline_passes(
        sidecar_factory: SidecarFactory, sim: Simulator) -> None:
    app = await sidecar_factory()
    await add_fault(sim.url, kind="latency", latency_s=1.0)
    async with AsyncSidecarClient(app.grpc_target) as client:
        with pytest.raises(errors.DeadlineExceeded):
            await client.get("/v3/accounts", timeout=0.3)
