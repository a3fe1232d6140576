"""The simulator keeps its accounts across a restart when given a state file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sidecar.sim.server import Simulator

TOKEN = "sim-token"


async def call(sim: Simulator, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    url = f"{sim.url}/v3/accounts/{sim.account_id}/{path}"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as session, session.request(
            method, url, json=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_accounts_orders_and_transactions_survive_a_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "sim-state.bin"
    first = Simulator(token=TOKEN, state_file=state_file)
    await first.start()
    status, _ = await call(first, "POST", "orders", {"order": {
        "type": "MARKET", "instrument": "EUR_USD", "units": "100",
        "clientExtensions": {"id": "keep-me-1"}, "tradeClientExtensions": {"id": "keep-me-1"}}})
    assert status == 201
    _, before = await call(first, "GET", "transactions/sinceid?id=0")
    await first.close()
    assert state_file.exists()

    second = Simulator(token=TOKEN, state_file=state_file)
    await second.start()
    try:
        _, after = await call(second, "GET", "transactions/sinceid?id=0")
        assert after["transactions"] == before["transactions"]
        status, order = await call(second, "GET", "orders/@keep-me-1")
        assert status == 200 and order["order"]["state"] == "FILLED"
        status, closed = await call(second, "PUT", "trades/@keep-me-1/close", {"units": "40"})
        assert status == 200, closed
        # IDs go on from where they were; RequestIDs do not repeat.
        assert int(closed["lastTransactionID"]) > int(before["lastTransactionID"])
        old_ids = {tx["requestID"] for tx in before["transactions"]}
        assert closed["orderCreateTransaction"]["requestID"] not in old_ids
        assert second.statuses[201] == 1 and second.statuses[200] >= 2
    finally:
        await second.close()


async def test_without_a_state_file_a_restart_starts_afresh(tmp_path: Path) -> None:
    sim = Simulator(token=TOKEN)
    await sim.start()
    await call(sim, "POST", "orders", {"order": {"type": "MARKET", "instrument": "EUR_USD",
                                                 "units": "1"}})
    await sim.close()
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240 - a tiny local directory
    assert Simulator(token=TOKEN).state.counts(
        next(iter(Simulator(token=TOKEN).state.accounts.values())))["transactions"] == 2


async def test_a_state_file_of_another_format_is_refused(tmp_path: Path) -> None:
    import pickle

    state_file = tmp_path / "bad.bin"
    state_file.write_bytes(pickle.dumps({"format": 99}))
    with pytest.raises(ValueError, match="format 99"):
        Simulator(token=TOKEN, state_file=state_file)


async def test_the_cli_writes_its_state_file_on_sigterm_with_a_stream_open(
        tmp_path: Path) -> None:
    # The shutdown used to be cancelled mid-cleanup when a stream was open: no file written.
    import asyncio
    import signal
    import sys

    from tests.e2e.helpers import clean_env, free_port

    state_file, port = tmp_path / "cli-state.bin", free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sidecar", "sim", "--listen", f"127.0.0.1:{port}",
        "--token", TOKEN, "--state-file", str(state_file), env=clean_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        assert b"listening" in await asyncio.wait_for(proc.stdout.readline(), 30)
        base = f"http://127.0.0.1:{port}/v3/accounts/101-004-1435156-001"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession() as session, \
                session.get(f"{base}/transactions/stream", headers=auth) as txs, \
                session.get(f"{base}/pricing/stream?instruments=EUR_USD", headers=auth) as px:
            assert txs.status == 200 and px.status == 200  # both streams open and serving
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert state_file.exists()
    assert Simulator(token=TOKEN, state_file=state_file).state.accounts
