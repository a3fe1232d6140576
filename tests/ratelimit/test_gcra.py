"""The GCRA script on a real Valkey server against a reference model (Hypothesis).

Time is replayed (the script's `now` argument), so each example is exact and fast. The window
law: in any window of length t at most `rate * t + burst` admissions; for normal calls the
critical reserve comes off the burst.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.clock import FakeClock
from sidecar.config import SharedRateLimitConfig
from sidecar.events import EventBus
from sidecar.ratelimit.backend import SharedBackend
from sidecar.ratelimit.lanes import CRITICAL, NORMAL
from tests.policies.test_ratelimit_properties import TOLERANCE, worst_excess
from tests.ratelimit.conftest import Valkey

_keys = itertools.count()


class ModelGcra:
    """The reference: GCRA as published (virtual scheduling), in floats, no lanes."""

    def __init__(self, rate: float, burst: float) -> None:
        self.interval = 1.0 / rate
        self.tolerance = (burst - 1) * self.interval
        self.tat = 0.0

    def admit(self, now: float) -> bool:
        if self.tat - now > self.tolerance + 1e-9:
            return False
        self.tat = max(self.tat, now) + self.interval
        return True


def backend(valkey: Valkey) -> SharedBackend:
    config = SharedRateLimitConfig(redis_url=valkey.url, timeout_s=2)
    return SharedBackend(config, f"test{next(_keys)}", FakeClock(), EventBus())


def params(rate: float, burst: float, reserve: float = 0.0, share: float = 1.0) -> list[float]:
    t = 1e6 / rate
    return [t, (burst - 1) * t, reserve * t, t / share]


schedules = st.lists(st.one_of(st.just(0.0), st.floats(0.0, 0.02), st.floats(0.0, 1.5)),
                     min_size=1, max_size=250)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rate=st.floats(2.0, 400.0), burst=st.integers(1, 30).map(float), gaps=schedules)
async def test_script_never_over_admits_and_matches_the_model(
        valkey: Valkey, rate: float, burst: float, gaps: list[float]) -> None:
    shared = backend(valkey)
    model = ModelGcra(rate, burst)
    now, admitted, model_count = 1_000.0, [], 0
    for gap in gaps:
        now += gap
        now_us = int(now * 1e6)
        wait, _, _ = await shared.decide([shared.key("g")], CRITICAL, 0.0, params(rate, burst),
                                         now_us)
        if wait == 0:
            admitted.append(now_us / 1e6)
        model_count += model.admit(now_us / 1e6)
    await shared.close()
    assert worst_excess(admitted, rate) <= burst + TOLERANCE
    assert len(admitted) >= 0.99 * model_count - 1  # µs rounding may cost one at a boundary


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rate=st.floats(10.0, 300.0), burst=st.integers(5, 30).map(float),
       reserve=st.floats(0.1, 0.5), lanes=st.lists(st.booleans(), min_size=1, max_size=200),
       gaps=schedules)
async def test_normal_calls_leave_the_reserve_and_bookings_keep_the_law(
        valkey: Valkey, rate: float, burst: float, reserve: float, lanes: list[bool],
        gaps: list[float]) -> None:
    shared = backend(valkey)
    depth = reserve * burst
    now, everyone, normal = 1_000.0, [], []
    for gap, critical in zip(gaps, itertools.cycle(lanes)):
        now += gap
        horizon = 0.0 if critical else max(0.0, (depth - 2) / rate) * 1e6
        wait, _, _ = await shared.decide([shared.key("g")], CRITICAL if critical else NORMAL,
                                         horizon, params(rate, burst, depth), int(now * 1e6))
        if wait >= 0:
            at = now + wait / 1e6
            everyone.append(at)
            if not critical:
                normal.append(at)
    await shared.close()
    assert worst_excess(everyone, rate) <= burst + TOLERANCE
    assert worst_excess(normal, rate) <= burst - depth + 1 + TOLERANCE


async def test_endpoint_keys_bind_with_the_global_one(valkey: Valkey) -> None:
    shared = backend(valkey)
    keys = [shared.key("g"), shared.key("ep")]
    ep = [1e6 / 2, 0.0]  # 2/s, burst 1
    answers = [await shared.decide(keys, NORMAL, 0.0, [*params(100, 10), *ep], 5_000_000 + i)
               for i in range(3)]
    assert answers[0][0] == 0
    assert answers[1][0] < 0 and answers[1][1] == 1  # refused, by the endpoint key
    assert -answers[1][0] == 500_000 - 1
    # A call without the endpoint limit is not blocked by it.
    assert (await shared.decide(keys[:1], NORMAL, 0.0, params(100, 10), 5_000_010))[0] == 0
    await shared.close()


async def test_a_missing_key_is_full_but_created_empty_after_a_hold(
        valkey: Valkey, redis_client: aioredis.Redis) -> None:
    shared = backend(valkey)
    p = params(10, 5)
    first = [await shared.decide([shared.key("a")], CRITICAL, 0.0, p, 1_000_000) for _ in range(6)]
    assert [w for w, _, _ in first][:5] == [0] * 5 and first[5][0] < 0  # a full bucket: burst
    shared._rejoined_at = shared._clock.monotonic()  # just back from fallback: hold
    held = await shared.decide([shared.key("b")], CRITICAL, 10e6, p, 1_000_000)
    hold_us = shared._hold_s * 1e6
    assert held[0] == int(hold_us + 100_000)  # booked after the hold, the bucket empty
    assert await redis_client.pttl(shared.key("b")) > 0  # it expires once full again
    await shared.close()
    await asyncio.sleep(0)


@pytest.mark.parametrize("share", [0.5, 0.8, 1.0])
async def test_while_normal_calls_wait_critical_calls_keep_to_their_share(
        valkey: Valkey, share: float) -> None:
    """A flood of critical calls from any pod leaves normal calls 1 - share of the rate (with
    share 1, the old rule, it leaves them nothing)."""
    shared = backend(valkey)
    key = [shared.key("g")]
    p = params(100, 20, 4, share=share)  # T = 10 ms, reserve 4 tokens
    now = 10_000_000
    taken = {NORMAL: 0, CRITICAL: 0}
    for step in range(400):  # 2 s: each lane asks every 5 ms, critical first
        t = now + step * 5_000
        for lane in (CRITICAL, NORMAL):
            wait, _, _ = await shared.decide(key, lane, 0.0, p, t + lane)
            if wait == 0 and step >= 200:  # the second second, past the initial burst
                taken[lane] += 1
    assert taken[NORMAL] + taken[CRITICAL] == pytest.approx(100, abs=3)
    assert taken[NORMAL] == pytest.approx(100 * (1 - share), abs=5), taken
    await shared.close()
