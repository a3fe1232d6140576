"""The simulator and ctl as commands."""

from __future__ import annotations

import asyncio
import json
import signal

import aiohttp

from sidecar.app import App
from tests.e2e.helpers import clean_env, free_port, sidecar_cmd


async def test_sim_command_serves_with_its_flags() -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *sidecar_cmd(), "sim", "--listen", f"127.0.0.1:{port}", "--token", "T",
        "--accounts", "2", "--rate-limit-per-s", "3", env=clean_env(),
        stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line.decode().strip() == f"simulator listening on http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(headers={"Authorization": "Bearer T"}) as http:
            statuses = []
            for _ in range(4):
                async with http.get(f"http://127.0.0.1:{port}/v3/accounts") as resp:
                    statuses.append(resp.status)
                    if resp.status == 200:
                        assert len(json.loads(await resp.read())["accounts"]) == 2
        assert statuses == [200, 200, 200, 429]
    finally:
        proc.terminate()
        await proc.wait()


async def _ctl(app: App, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *sidecar_cmd(), "ctl", "--target", app.grpc_target, *args, env=clean_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_ctl_status_override_reset_and_exit_codes(sidecar: App) -> None:
    code, out, _ = await _ctl(sidecar, "status")
    assert code == 0 and "rest" in out and "CLOSED" in out and "degradation: NONE" in out
    code, out, _ = await _ctl(sidecar, "override", "rest", "forced_open")
    assert code == 0 and "FORCED_OPEN" in out
    code, out, _ = await _ctl(sidecar, "reset")
    assert code == 0 and "CLOSED" in out
    code, _, err = await _ctl(sidecar, "reset", "nope")
    assert code == 1 and "NOT_FOUND" in err
    code, out, _ = await _ctl(sidecar, "degrade", "read_only", "--reason", "maintenance")
    assert code == 0 and "READ_ONLY (manual)" in out and "maintenance" in out
    code, out, _ = await _ctl(sidecar, "degrade", "automatic")
    assert code == 0 and "(automatic)" in out
    proc = await asyncio.create_subprocess_exec(
        *sidecar_cmd(), "ctl", "--target", f"127.0.0.1:{free_port()}", "--timeout", "1",
        "status", env=clean_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    await proc.communicate()
    assert proc.returncode == 3


async def test_demo_serves_the_simulator_through_the_sidecar_until_interrupted() -> None:
    import signal

    import grpc

    from sidecar._gen.oanda.sidecar.v1 import proxy_pb2_grpc
    from tests.e2e.helpers import execute_request

    grpc_port, admin_port, sim_port = free_port(), free_port(), free_port()
    proc = await asyncio.create_subprocess_exec(
        *sidecar_cmd(), "demo", "--grpc-listen", f"127.0.0.1:{grpc_port}",
        "--admin-listen", f"127.0.0.1:{admin_port}", "--sim-listen", f"127.0.0.1:{sim_port}",
        env=clean_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        ready = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert f"grpc 127.0.0.1:{grpc_port}" in ready
        banner = (await asyncio.wait_for(proc.stdout.read(2000), 5)).decode()
        assert "grpcurl -plaintext" in banner and "ProxyService/Execute" in banner
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            answer = await proxy_pb2_grpc.ProxyServiceStub(channel).Execute(
                execute_request("GET", "/v3/accounts"), timeout=10)
        assert answer.status == 200 and b"101-004-" in answer.body
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_ctl_watch_follows_changes_live(sidecar: App) -> None:
    """Issue 15: `ctl watch` prints the status, then again on every change, until stopped."""
    proc = await asyncio.create_subprocess_exec(
        *sidecar_cmd(), "ctl", "--target", sidecar.grpc_target, "watch", env=clean_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    first = await asyncio.wait_for(proc.stdout.readuntil(b"recent decisions"), 30)
    assert b"degradation: NONE" in first
    sidecar.parts.degradation.set_manual("read_only", "watch test")
    second = await asyncio.wait_for(proc.stdout.readuntil(b"watch test"), 10)
    assert b"READ_ONLY (manual)" in second
    proc.send_signal(signal.SIGINT)
    await asyncio.wait_for(proc.wait(), 10)
