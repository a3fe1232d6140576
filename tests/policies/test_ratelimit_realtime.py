"""The limiter on the real clock: ~2 s of 400 req/s offered against a 100 req/s limit."""

from __future__ import annotations

import asyncio
import bisect
import time

import pytest

from sidecar.clock import SystemClock
from sidecar.config import RateLimitConfig
from sidecar.errors import RateLimited
from sidecar.events import EventBus
from sidecar.pipeline import Call, Response
from sidecar.upstream.endpoints import resolve
from tests.ratelimit.helpers import local_policy

RATE, BURST, OFFERED, SECONDS = 100.0, 20.0, 400.0, 2.0


@pytest.mark.slow
async def test_real_clock_holds_every_window_and_sustains_the_rate() -> None:
    limiter = local_policy(RateLimitConfig(rate_per_s=RATE, burst=BURST), SystemClock(),
                          EventBus())
    admitted: list[float] = []

    async def nxt(call: Call) -> Response:
        admitted.append(time.monotonic())
        return Response(200, b"")

    tasks: list[asyncio.Task[Response]] = []
    start = time.monotonic()
    sent = 0
    while (now := time.monotonic()) - start < SECONDS:
        # Catch up on the offered load even if the loop was late (a loaded machine).
        while sent < (now - start) * OFFERED:
            call = Call("GET", "/v3/accounts", resolve("/v3/accounts"))
            tasks.append(asyncio.create_task(limiter.handle(call, nxt)))
            sent += 1
        await asyncio.sleep(0.005)
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)

    windows = [bisect.bisect_left(admitted, t + 1.0) - i for i, t in enumerate(admitted)]
    assert max(windows) <= RATE + BURST
    # Demand never stopped, so the bucket never filled: between the first and the last
    # admission it produced (and the limiter admitted) one token per 1/RATE.
    sustained = (len(admitted) - BURST) / (admitted[-1] - admitted[0])
    assert sustained >= 0.97 * RATE, sustained
    refused = sum(isinstance(r, RateLimited) for r in results)
    assert refused > 0  # 400/s against 100/s: the 5 s queue budget overflows
    await asyncio.sleep(0.05)  # let the waker see the empty queue and exit
    assert limiter.snapshot().queued_normal == 0
