"""The connection pacer: FIFO slots on the fake clock, refused as not sent, shared in Valkey."""

from __future__ import annotations

import asyncio
import time

import pytest

from sidecar.clock import FakeClock, SystemClock
from sidecar.config import SharedRateLimitConfig
from sidecar.errors import NoConnectionSlot, RateLimited
from sidecar.events import EventBus
from sidecar.ratelimit.backend import SharedBackend
from sidecar.ratelimit.pacer import ConnectionPacer
from tests.ratelimit.conftest import Valkey


async def test_slots_are_booked_fifo_and_slept_for(clock: FakeClock) -> None:
    pacer = ConnectionPacer(2.0, clock)
    for _ in range(5):
        await pacer.acquire(None)
    # A burst of 2 at once, then one every 0.5 s, each caller sleeping only for its own slot.
    assert clock.sleeps == [0.5, 0.5, 0.5]
    assert pacer.granted == 5


async def test_a_slot_beyond_the_deadline_is_refused_at_once_as_not_sent() -> None:
    clock = FakeClock(auto_advance=False)
    pacer = ConnectionPacer(2.0, clock)
    await pacer.acquire(None)
    await pacer.acquire(None)
    with pytest.raises(NoConnectionSlot) as info:
        await pacer.acquire(clock.monotonic() + 0.25)  # the next slot is 0.5 s away
    err = info.value
    assert isinstance(err, RateLimited) and err.reason == "RATE_LIMITED"
    assert err.request_sent is False and err.retry_after_s == pytest.approx(0.5)
    assert clock.sleeps == []  # refused without waiting, and nothing booked
    waiter = asyncio.create_task(pacer.acquire(clock.monotonic() + 0.5))
    await asyncio.sleep(0)
    clock.advance(0.5)
    await waiter  # the refused call took no slot: this one got the 0.5 s slot
    assert pacer.granted == 3


async def test_pods_share_two_connections_per_second(valkey: Valkey) -> None:
    config = SharedRateLimitConfig(redis_url=valkey.url, timeout_s=1)
    backends = [SharedBackend(config, "pacer-test", SystemClock(), EventBus()) for _ in range(3)]
    pacers = [ConnectionPacer(2.0, SystemClock(), backend=b, fallback_share=1 / 3)
              for b in backends]
    started = time.monotonic()
    done: list[float] = []

    async def connect(pacer: ConnectionPacer) -> None:
        await pacer.acquire(started + 3.0)
        done.append(time.monotonic() - started)

    await asyncio.gather(*(connect(p) for p in pacers for _ in range(2)))  # 6 connects
    done.sort()
    # 2 at once (the burst), then one per 0.5 s for the fleet: the 6th near 2.0 s.
    assert done[1] < 0.2 and 1.8 < done[5] < 2.4, done
    with pytest.raises(NoConnectionSlot):
        await pacers[0].acquire(time.monotonic() + 0.1)
    for backend in backends:
        await backend.close()
