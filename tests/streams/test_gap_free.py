"""Transactions exactly once, in ID order, per subscriber, through every kind of stream fault;
a silent stream noticed within heartbeat_timeout_s + 1 s."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from sidecar.app import App
from sidecar.sim.server import Simulator
from tests.streams.conftest import (
    Collector,
    add_transactions,
    line,
    log_ids,
    sim_fault,
    tx_path,
    until,
)

TOTAL = 2000


async def test_2000_transactions_through_drops_stalls_and_a_skip(
        sim: Simulator, proxy: Any, stream_sidecar: App) -> None:
    rng = random.Random(13)
    subscribers = [Collector(proxy, tx_path(sim)) for _ in range(3)]
    await until(lambda: all(c.of("SIDECAR_CONNECTED") for c in subscribers))
    first = int(log_ids(sim)[-1]) + 1
    steps = 200  # 10 transactions every 40 ms
    drops = set(rng.sample(range(5, steps - 5), 20))
    stalls = set(rng.sample(sorted(set(range(5, steps - 5)) - drops), 2))
    skip = rng.choice(sorted(set(range(5, steps - 5)) - drops - stalls))
    for step in range(steps):
        if step in drops:
            await sim_fault(sim, kind="stream_drop", path="*/transactions/stream",
                            mid_line=rng.random() < 0.7)
        if step in stalls:
            await sim_fault(sim, kind="stream_stall", path="*/transactions/stream")
        if step == skip:
            await sim_fault(sim, kind="stream_skip", path="*/transactions/stream")
        add_transactions(sim, TOTAL // steps)
        await asyncio.sleep(0.04)
    expected = log_ids(sim)[first - 1:]
    assert len(expected) == TOTAL and expected[0] == str(first)
    await until(lambda: all(len(c.ids()) >= TOTAL for c in subscribers), timeout=30)
    await asyncio.sleep(0.3)  # anything repeated late would show now
    for c in subscribers:
        assert c.ids() == expected  # every one, once, in order
        assert c.error is None
    log = {tx["id"]: tx for tx in sim.state.accounts[sim.account_id].transactions}
    for m in subscribers[0].messages:
        if m.transaction_id:
            assert line(m)["id"] == m.transaction_id
            assert line(m)["type"] == log[m.transaction_id]["type"] == m.type
    assert any(m.replayed for m in subscribers[0].messages)
    assert sim.streams.opened["transactions"] >= 1 + 20 + 2  # one upstream, reconnected
    reconnecting = subscribers[0].of("SIDECAR_RECONNECTING")
    reasons = {line(m)["reason"] for m in reconnecting}
    assert {"heartbeat_timeout"} <= reasons and reasons & {"broken_chunk", "read_error",
                                                           "end_of_stream"}
    for c in subscribers:
        await c.close()


async def test_silent_stream_noticed_within_heartbeat_timeout_plus_1s(
        sim: Simulator, proxy: Any, stream_sidecar: App) -> None:
    c = Collector(proxy, tx_path(sim))
    await until(lambda: bool(c.of("HEARTBEAT")))
    opened = sim.streams.opened["transactions"]
    await sim_fault(sim, kind="stream_stall", path="*/transactions/stream")
    await until(lambda: bool(c.of("SIDECAR_RECONNECTING")), timeout=5, step=0.005)
    index = next(i for i, m in enumerate(c.messages) if m.type == "SIDECAR_RECONNECTING")
    silence = c.arrived[index] - c.arrived[index - 1]
    timeout_s = stream_sidecar.config.streams.heartbeat_timeout_s
    assert line(c.messages[index])["reason"] == "heartbeat_timeout"
    assert timeout_s - 0.05 <= silence <= timeout_s + 1.0
    await until(lambda: len(c.of("SIDECAR_CONNECTED")) >= 2, timeout=3)
    assert sim.streams.opened["transactions"] == opened + 1
    add_transactions(sim, 3)
    await until(lambda: c.ids() == log_ids(sim)[-3:], timeout=3)
    await c.close()
