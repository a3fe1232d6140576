"""SLOW_CONSUMER and a sidecar restart: the typed client resumes from its cursor, losing
nothing and repeating nothing."""

from __future__ import annotations

import asyncio

import grpc
from oanda_sidecar_client import AsyncSidecarClient, SidecarClient, StreamMessage

from sidecar.app import App
from sidecar.sim.server import Simulator
from tests.e2e.conftest import SidecarFactory, make_config
from tests.e2e.helpers import error_info
from tests.streams.conftest import (
    STREAM_CONFIG,
    Collector,
    add_transactions,
    log_ids,
    merge,
    tx_path,
    until,
)


async def test_slow_transaction_subscriber_is_ended_with_slow_consumer(
        sim: Simulator, sidecar_factory: SidecarFactory) -> None:
    sim.streams.heartbeat_s = 0.3
    app = await sidecar_factory(oanda={"stream_url": sim.url},
                                **merge(STREAM_CONFIG, {"streams": {"subscriber_buffer": 50}}))
    async with grpc.aio.insecure_channel(app.grpc_target) as channel:
        from sidecar._gen.oanda.sidecar.v1 import proxy_pb2_grpc

        stub = proxy_pb2_grpc.ProxyServiceStub(channel)  # type: ignore[no-untyped-call]
        slow = Collector(stub, tx_path(sim), delay_s=0.05)
        await until(lambda: bool(slow.of("SIDECAR_CONNECTED")))
        add_transactions(sim, 5000)
        await until(lambda: slow.task.done(), timeout=20)
        assert slow.error is not None
        assert slow.error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        info, _ = error_info(slow.error)
        assert info.reason == "SLOW_CONSUMER"
        got = slow.ids()
        assert got == log_ids(sim)[2:2 + len(got)]  # what it got was in order, no gap
        assert info.metadata["last_transaction_id"] >= got[-1] if got else True


async def test_typed_client_resumes_after_slow_consumer_without_loss(
        sim: Simulator, sidecar_factory: SidecarFactory) -> None:
    sim.streams.heartbeat_s = 0.3
    app = await sidecar_factory(oanda={"stream_url": sim.url},
                                **merge(STREAM_CONFIG, {"streams": {"subscriber_buffer": 50}}))
    first = int(log_ids(sim)[-1])
    got: list[StreamMessage] = []
    async with AsyncSidecarClient(app.grpc_target) as client:
        async def consume() -> None:
            async for m in client.transactions(sim.account_id, since=str(first)):
                got.append(m)
                if m.transaction_id and len(got) % 200 == 0:
                    await asyncio.sleep(0.3)  # slow now and then: the buffer overflows
        reader = asyncio.ensure_future(consume())
        add_transactions(sim, 3000)
        expected = log_ids(sim)[first:]
        await until(lambda: len([m for m in got if m.transaction_id]) >= len(expected),
                    timeout=30)
        reader.cancel()
    ids = [m.transaction_id for m in got if m.transaction_id]
    assert ids == expected
    assert any(m.replayed for m in got)  # resumed from its cursor via transactions/sinceid


async def test_sidecar_restarted_mid_stream_client_resumes_from_its_cursor(
        sim: Simulator) -> None:
    sim.streams.heartbeat_s = 0.3
    config = make_config(sim.url, oanda={"stream_url": sim.url}, **STREAM_CONFIG)
    first_app = App(config)
    await first_app.start()
    port = first_app.grpc_port
    got: list[str] = []
    start = int(log_ids(sim)[-1])
    async with AsyncSidecarClient(f"127.0.0.1:{port}") as client:
        async def consume() -> None:
            async for m in client.transactions(sim.account_id, since=str(start)):
                if m.transaction_id:
                    got.append(m.transaction_id)
        reader = asyncio.ensure_future(consume())
        add_transactions(sim, 100)
        await until(lambda: len(got) >= 100)
        await first_app.stop(0.5)
        add_transactions(sim, 100)  # while no sidecar runs
        second = App(make_config(sim.url, oanda={"stream_url": sim.url},
                                 server={"grpc_listen": f"127.0.0.1:{port}"}, **STREAM_CONFIG))
        await second.start()
        try:
            add_transactions(sim, 100)
            await until(lambda: len(got) >= 300, timeout=20)
            reader.cancel()
        finally:
            await second.stop(0.5)
    assert got == log_ids(sim)[start:]


def _sync_read(target: str, account: str, since: str, n: int) -> list[str]:
    out: list[str] = []
    with SidecarClient(target) as client:
        for m in client.transactions(account, since=since):
            if m.transaction_id:
                out.append(m.transaction_id)
                if len(out) >= n:
                    break
    return out


async def test_sync_client_reads_from_its_cursor(sim: Simulator, stream_sidecar: App) -> None:
    add_transactions(sim, 20)
    since = log_ids(sim)[-20]
    ids = await asyncio.to_thread(_sync_read, stream_sidecar.grpc_target, sim.account_id,
                                  since, 19)
    assert ids == log_ids(sim)[-19:]



def _sync_slow(target: str, account: str, since: str, n: int) -> list[StreamMessage]:
    import time

    out: list[StreamMessage] = []
    with SidecarClient(target) as client:
        for m in client.transactions(account, since=since):
            out.append(m)
            if m.transaction_id and len(out) % 200 == 0:
                time.sleep(0.3)  # slow now and then: the buffer overflows
            if len([x for x in out if x.transaction_id]) >= n:
                break
    return out


async def test_sync_client_resumes_after_slow_consumer_without_loss(
        sim: Simulator, sidecar_factory: SidecarFactory) -> None:
    sim.streams.heartbeat_s = 0.3
    app = await sidecar_factory(oanda={"stream_url": sim.url},
                                **merge(STREAM_CONFIG, {"streams": {"subscriber_buffer": 50}}))
    first = log_ids(sim)[-1]
    reader = asyncio.ensure_future(asyncio.to_thread(_sync_slow, app.grpc_target,
                                                     sim.account_id, first, 2000))
    await asyncio.sleep(0.5)
    for _ in range(20):
        add_transactions(sim, 100)
        await asyncio.sleep(0.01)
    got = await asyncio.wait_for(reader, 30)
    ids = [m.transaction_id for m in got if m.transaction_id]
    assert ids == log_ids(sim)[int(first):]
    assert any(m.replayed for m in got)
