"""The client against the real sidecar in front of the real simulator, on loopback.

The sidecar serves on this test's event loop, so the blocking client runs in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from oanda_sidecar_client import (
    AsyncSidecarClient,
    Priority,
    SidecarClient,
    SidecarStatus,
    errors,
)

from sidecar.app import App
from sidecar.sim.faults import Fault
from sidecar.sim.server import Simulator
from tests.e2e.conftest import SidecarFactory

MARKET = {"order": {"type": "MARKET", "instrument": "EUR_USD", "units": "100"}}


@pytest.fixture
async def client(sidecar: App) -> AsyncIterator[AsyncSidecarClient]:
    async with AsyncSidecarClient(sidecar.grpc_target, timeout=5.0) as c:
        yield c


async def test_async_get_accounts_and_market_order(client: AsyncSidecarClient,
                                                    sim: Simulator) -> None:
    result = await client.execute("GET", "/v3/accounts")
    assert (result.status, result.ok, result.attempts) == (200, True, 1)
    assert sim.account_id in [a["id"] for a in result.json()["accounts"]]
    assert result.request_id and result.degradation == "none" and not result.from_cache

    order = await client.post(f"/v3/accounts/{sim.account_id}/orders", json=MARKET)
    assert order.status == 201
    fill = order.json()["orderFillTransaction"]
    assert (fill["instrument"], fill["units"]) == ("EUR_USD", "100")
    assert sim.requests[-1].method == "POST"


async def test_sync_client_does_the_same(sidecar: App, sim: Simulator) -> None:
    def trade() -> tuple[int, list[str], int, str]:
        with SidecarClient(sidecar.grpc_target, timeout=5.0) as c:
            accounts = c.get("/v3/accounts")
            order = c.execute("POST", f"/v3/accounts/{sim.account_id}/orders", body=MARKET,
                              priority=Priority.NORMAL)
            rest = c.get_status().breaker("rest")
            assert rest is not None
            watched = next(iter(c.watch_status()))  # closing the generator cancels the stream
            assert watched.breaker("rest") is not None
            return (accounts.status, [a["id"] for a in accounts.json()["accounts"]],
                    order.status, rest.state)

    status, ids, order_status, breaker = await asyncio.to_thread(trade)
    assert (status, order_status, breaker) == (200, 201, "closed")
    assert sim.account_id in ids


async def test_sync_errors_are_typed(sidecar: App) -> None:
    def bad_path() -> errors.SidecarError:
        with SidecarClient(sidecar.grpc_target) as c, pytest.raises(errors.SidecarError) as info:
            c.get("/v3/../etc/passwd")
        return info.value

    err = await asyncio.to_thread(bad_path)
    assert isinstance(err, errors.InvalidRequest) and err.metadata["field"] == "path"


async def test_upstream_404_and_503_are_results(client: AsyncSidecarClient,
                                                 sim: Simulator) -> None:
    missing = await client.get(f"/v3/accounts/{sim.account_id}/transactions/999999")
    assert missing.status == 404 and not missing.ok
    assert missing.json()["errorMessage"]
    sim.faults.add(Fault(kind="status", status=503, count=10,
                         match={"method": "GET", "path": "*/summary"}))
    down = await client.get(f"/v3/accounts/{sim.account_id}/summary", timeout=5.0)
    assert (down.status, down.attempts) == (503, 3)  # GETs are retried: max_attempts 3


async def test_invalid_path_names_the_field(client: AsyncSidecarClient) -> None:
    with pytest.raises(errors.InvalidRequest) as info:
        await client.get("/v2/accounts")
    assert info.value.metadata["field"] == "path"
    assert info.value.code.name == "INVALID_ARGUMENT"


async def test_circuit_opens_and_resets(sidecar_factory: SidecarFactory, sim: Simulator) -> None:
    app = await sidecar_factory(breaker={"failure_threshold": 2, "recovery_timeout_s": 30})
    path = f"/v3/accounts/{sim.account_id}/orders"
    # A 5xx to an order is resolved from OANDA's records (docs/orders.md); one to any other
    # write comes back as it is, and counts against the breaker.
    sim.faults.add(Fault(kind="status", status=503, count=2, match={"method": "PATCH"}))
    async with AsyncSidecarClient(app.grpc_target, timeout=5.0) as client:
        for _ in range(2):
            assert (await client.patch(f"/v3/accounts/{sim.account_id}/configuration",
                                       json={"alias": "x"})).status == 503
        # An open breaker puts the sidecar in READ_ONLY: new orders are refused at once...
        with pytest.raises(errors.ReadOnly):
            await client.post(path, json=MARKET)
        # ...and an uncached read fails fast with CIRCUIT_OPEN and the time to the next probe.
        with pytest.raises(errors.CircuitOpen) as info:
            await client.get(f"/v3/accounts/{sim.account_id}/transactions")
        assert info.value.retry_after is not None and 0 < info.value.retry_after <= 30
        rest = (await client.get_status()).breaker("rest")
        assert rest is not None and rest.state == "open" and rest.opened_at is not None

        breakers = await client.reset_breaker()
        assert [b.state for b in breakers if b.name == "rest"] == ["closed"]
        assert (await client.post(path, json=MARKET)).status == 201


async def test_status_control_and_watch(client: AsyncSidecarClient) -> None:
    status = await client.get_status()
    rest = status.breaker("rest")
    assert rest is not None and rest.state == "closed" and rest.failure_threshold == 5
    assert status.ready and status.rate_limit.rate_per_s > 0
    with pytest.raises(errors.NotFound):
        await client.reset_breaker("no-such-breaker")

    stream = client.watch_status()
    first = await anext(stream)
    assert first.breaker("rest") is not None
    forced = await client.set_breaker_override("rest", "forced_open")
    assert [b.state for b in forced if b.name == "rest"] == ["forced_open"]
    assert await asyncio.wait_for(_until_state(stream, "forced_open"), 2.0)
    await stream.aclose()
    with pytest.raises(errors.CircuitOpen):
        await client.get("/v3/accounts")
    await client.set_breaker_override("rest", "none")
    assert (await client.get("/v3/accounts")).ok


async def _until_state(stream: AsyncIterator[SidecarStatus], state: str) -> bool:
    async for status in stream:
        rest = status.breaker("rest")
        if rest is not None and rest.state == state:
            return True
    return False


async def test_unreachable_sidecar_keeps_the_grpc_code() -> None:
    async with AsyncSidecarClient("127.0.0.1:1", timeout=1.0) as client:
        with pytest.raises(errors.SidecarError) as info:
            await client.get("/v3/accounts")
    assert info.value.code.name == "UNAVAILABLE" and info.value.reason == "UNAVAILABLE"
