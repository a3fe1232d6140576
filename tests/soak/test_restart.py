"""The soak's simulator restart: same port, accounts kept, the sidecar serving again after."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import grpc
import pytest

from sidecar._gen.oanda.sidecar.v1 import proxy_pb2, proxy_pb2_grpc
from soak.procs import TOKEN, start_processes
from tests.conftest import require_tool


@pytest.mark.slow
async def test_the_simulator_restarts_with_its_accounts_and_the_sidecar_follows(
        tmp_path: Path) -> None:
    procs = await start_processes(tmp_path)
    try:
        require_tool(procs.can_restart_sim, "this simulator has no --state-file")
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as s:
            async with s.get(f"{procs.sim_url}/v3/accounts") as resp:
                account = (await resp.json())["accounts"][0]["id"]
            order = {"order": {"type": "MARKET", "instrument": "EUR_USD", "units": "10"}}
            async with s.post(f"{procs.sim_url}/v3/accounts/{account}/orders",
                              json=order) as resp:
                assert resp.status == 201
                last = (await resp.json())["lastTransactionID"]
            old_pid = procs.sim.pid
            await procs.restart_sim()
            assert procs.sim.pid != old_pid and procs.sim_restarts == 1
            async with s.get(f"{procs.sim_url}/v3/accounts/{account}/summary") as resp:
                assert (await resp.json())["lastTransactionID"] == last
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{procs.grpc_port}")
        stub = proxy_pb2_grpc.ProxyServiceStub(channel)  # type: ignore[no-untyped-call]
        for _ in range(50):  # the sidecar's pooled connection died with the old process
            with_status = await stub.Execute(proxy_pb2.ExecuteRequest(
                method="GET", path=f"/v3/accounts/{account}/summary"), timeout=10)
            if with_status.status == 200 and not with_status.from_cache:
                break
            await asyncio.sleep(0.2)
        assert with_status.status == 200
        assert f'"lastTransactionID":"{last}"'.encode() in with_status.body.replace(b" ", b"")
        await channel.close()
    finally:
        await procs.stop()
