"""Issue 11: hostile input and self-inflicted faults, each on the real server over loopback."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path

import grpc
import pytest

from sidecar.app import App
from sidecar.sim.server import Simulator
from sidecar.vocabulary import Level
from tests.e2e.conftest import SidecarFactory, Stubs
from tests.e2e.helpers import SidecarProcess, add_fault, error_info, execute_request

BATCHES = 8
ORDER = {"order": {"type": "MARKET", "instrument": "EUR_USD", "units": "10"}}


def rss_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20


async def test_a_cold_burst_of_orders_is_placed_without_false_unknowns(
        sidecar_factory: SidecarFactory, sim: Simulator) -> None:
    """Before: 60 orders at 2 new connections/s → 33 OUTCOME_UNKNOWN for orders never sent,
    then the sidecar opened its own breaker and went READ_ONLY."""
    app = await sidecar_factory(oanda={"max_new_connections_per_s": 2, "request_timeout_s": 10})
    await add_fault(sim.url, kind="latency", latency_s=0.3,
                    match={"method": "POST", "path": "/v3/accounts/*/orders"})
    async with grpc.aio.insecure_channel(app.grpc_target) as channel:
        stubs = Stubs(channel)
        answers = await asyncio.gather(*(stubs.proxy.Execute(execute_request(
            "POST", f"/v3/accounts/{sim.account_id}/orders", body=ORDER), timeout=30)
            for _ in range(60)), return_exceptions=True)
    assert [getattr(a, "status", a) for a in answers] == [201] * 60
    assert len([r for r in sim.requests if r.method == "POST"]) == 60
    assert app.parts.degradation.level == Level.NONE
    assert app.parts.transport.connector is not None
    assert app.parts.transport.connector.opened < 60  # connections were reused


async def test_huge_refused_paths_leave_memory_bounded(tmp_path: Path, sim: Simulator) -> None:
    """Before: 60 refused 3 MiB paths grew RSS by 302 MiB and kept it (an lru_cache of them),
    and every further batch grew it again. Measured on a sidecar process of its own: the first
    batch may warm the allocator (gRPC and malloc keep freed buffers), later ones reuse it."""
    sidecar = await SidecarProcess(tmp_path, sim.url).start()
    try:
        rss = [sidecar.rss_mib()]
        async with grpc.aio.insecure_channel(sidecar.target) as channel:
            stubs = Stubs(channel)
            for batch in range(BATCHES):
                for i in range(60):
                    path = f"/v3/accounts/{batch}-{i}" + "a" * (3 * 2**20)
                    with pytest.raises(grpc.aio.AioRpcError) as caught:
                        await stubs.proxy.Execute(execute_request("GET", path))
                    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                rss.append(sidecar.rss_mib())
    finally:
        await sidecar.stop()
    print(f"sidecar RSS by batch of 60 x 3 MiB paths (MiB): {[round(r) for r in rss]}")
    # Keeping the refused paths would add 180 MiB a batch (60 x 3 MiB): the last four batches
    # together must add less than half of one.
    assert rss[-1] - rss[-5] < 90, f"RSS by batch (MiB): {[round(r) for r in rss]}"
    assert sim.requests == []


@pytest.mark.parametrize("field", ["header", "query", "method"])
async def test_a_huge_field_gets_a_short_message_with_its_error_info(
        stubs: Stubs, sim: Simulator, field: str) -> None:
    huge = "x" * 2**20
    request = {"header": lambda: execute_request("GET", "/v3/accounts", headers={huge: "1"}),
               "query": lambda: execute_request("GET", "/v3/accounts", query={huge: "1"}),
               "method": lambda: execute_request(huge, "/v3/accounts")}[field]()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stubs.proxy.Execute(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(caught.value.details() or "") < 300
    info, _ = error_info(caught.value)
    assert info.reason == "INVALID_REQUEST"
    assert sim.requests == []


@pytest.mark.parametrize("path", [
    "/v3/accounts/%2e/summary", "/v3/%2e%2e/accounts", "/v3/./accounts", "/v3/accounts/.",
    "/v3/accounts/A/orders/%2e/cancel", "/v3/accounts/A/orders/%2E%2e/cancel",
    "/v3/%252e%252e/accounts", "/v3/accounts/%252e/summary", "/v3/accounts/A/..%2f",
])
async def test_dot_segments_in_every_encoding_are_refused(stubs: Stubs, sim: Simulator,
                                                          path: str) -> None:
    """Before: in READ_ONLY, PUT …/orders/%2e/cancel passed the gate as a cancel and reached
    OANDA as PUT …/orders/cancel (a replace)."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stubs.proxy.Execute(execute_request("PUT", path))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, path
    assert sim.requests == []


async def test_a_deeply_nested_body_is_invalid_and_counted(sidecar: App, stubs: Stubs,
                                                           sim: Simulator) -> None:
    """Before: INTERNAL (RecursionError), a traceback per call, no requests_total sample."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stubs.proxy.Execute(execute_request(
            "POST", f"/v3/accounts/{sim.account_id}/orders", body=b"[" * 100_000))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    body, _ = sidecar.parts.observability.metrics.render()
    assert b'outcome="invalid_request"' in body
    assert sim.requests == []


async def test_a_malformed_protobuf_is_invalid_with_error_info(sidecar: App) -> None:
    async with grpc.aio.insecure_channel(sidecar.grpc_target) as channel:
        raw = channel.unary_unary("/oanda.sidecar.v1.ProxyService/Execute",
                                  request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await raw(b"\xff\xff\xff\xff")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info, _ = error_info(caught.value)
    assert info.reason == "INVALID_REQUEST"


async def test_a_write_cut_off_at_shutdown_is_outcome_unknown(sidecar_factory: SidecarFactory,
                                                              sim: Simulator) -> None:
    """Before: plain UNAVAILABLE ("Cancelling all calls"), no ErrorInfo, although it was sent."""
    app = await sidecar_factory()
    await add_fault(sim.url, kind="latency", latency_s=5.0, match={"method": "POST"})
    order = {"order": {**ORDER["order"], "clientExtensions": {"id": "my-order-1"}}}
    async with grpc.aio.insecure_channel(app.grpc_target) as channel:
        call = asyncio.ensure_future(Stubs(channel).proxy.Execute(execute_request(
            "POST", f"/v3/accounts/{sim.account_id}/orders", body=order), timeout=20))
        await asyncio.sleep(0.3)
        await app.stop(1.0)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
    assert caught.value.code() == grpc.StatusCode.UNKNOWN
    info, _ = error_info(caught.value)
    assert info.reason == "OUTCOME_UNKNOWN"
    assert info.metadata["client_order_id"] == "my-order-1"


async def test_stalled_watchers_cost_execute_nothing_and_are_capped(
        sidecar_factory: SidecarFactory, sim: Simulator) -> None:
    """Before: 500 watchers that stopped reading → 17 ms per status change on the publisher's
    path, Execute p50 28 ms (from 0.7), RSS 94 → 298 MiB."""
    app = await sidecar_factory(server={"max_status_watchers": 600})
    async with grpc.aio.insecure_channel(app.grpc_target) as channel:
        stubs = Stubs(channel)

        async def p50() -> float:
            times = []
            for _ in range(40):
                started = time.perf_counter()
                await stubs.proxy.Execute(execute_request("GET", "/v3/accounts"))
                times.append(time.perf_counter() - started)
            return statistics.median(times)

        from sidecar._gen.oanda.sidecar.v1 import control_pb2 as cpb
        quiet = await p50()
        before = rss_mib()
        watchers = [stubs.control.WatchStatus(cpb.WatchStatusRequest()) for _ in range(500)]
        await asyncio.sleep(0.5)
        for i in range(30):  # status changes while nobody reads
            override = cpb.BREAKER_OVERRIDE_DISABLED if i % 2 == 0 else cpb.BREAKER_OVERRIDE_NONE
            await stubs.control.SetBreakerOverride(cpb.SetBreakerOverrideRequest(
                name="rest", override=override))
        loaded = await p50()
        growth = rss_mib() - before
        for watcher in watchers:
            watcher.cancel()
    assert loaded < 2 * quiet + 0.002, (quiet, loaded)
    assert growth < 100, f"RSS grew {growth:.0f} MiB"


async def test_watchers_beyond_the_cap_are_refused(sidecar_factory: SidecarFactory) -> None:
    app = await sidecar_factory(server={"max_status_watchers": 2})
    from sidecar._gen.oanda.sidecar.v1 import control_pb2 as cpb
    async with grpc.aio.insecure_channel(app.grpc_target) as channel:
        stubs = Stubs(channel)
        kept = [stubs.control.WatchStatus(cpb.WatchStatusRequest()) for _ in range(2)]
        for watcher in kept:
            await watcher.read()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            extra = stubs.control.WatchStatus(cpb.WatchStatusRequest())
            await extra.read()
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        for watcher in kept:
            watcher.cancel()


async def test_slow_and_idle_admin_connections_are_closed_and_capped(
        sidecar_factory: SidecarFactory) -> None:
    """Before: 2,000 slowloris connections stayed open 150 s (4,023 fds)."""
    app = await sidecar_factory(server={"http_header_timeout_s": 0.5,
                                        "http_max_connections": 20})
    host, port = "127.0.0.1", app.admin_port
    slow = [await asyncio.open_connection(host, port) for _ in range(30)]
    for _, writer in slow:
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # a head that never ends
    await asyncio.sleep(0.1)
    guard = app.admin.guard
    assert guard.open_connections <= 20 and guard.refused >= 10
    await asyncio.sleep(1.0)
    assert guard.open_connections == 0 and guard.timed_out >= 20
    closed = [await reader.read() for reader, _ in slow]
    assert all(data == b"" for data in closed)
    for _, writer in slow:
        writer.close()
    reader, writer = await asyncio.open_connection(host, port)  # a real client still gets in
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (await reader.read()).startswith(b"HTTP/1.1 200")
    writer.close()


async def test_a_secret_given_where_a_path_belongs_is_never_printed(tmp_path: Path) -> None:
    from tests.e2e.helpers import clean_env, sidecar_cmd

    secret = "s3cr3t-Oanda-t0ken-value"
    config = tmp_path / "c.yaml"
    config.write_text(f"oanda: {{token_file: {secret}}}\n")
    proc = await asyncio.create_subprocess_exec(
        *sidecar_cmd(), "check-config", "--config", str(config), env=clean_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode != 0
    assert b"oanda.token_file" in err and secret.encode() not in out + err
    assert json.dumps(secret) not in (out + err).decode()
