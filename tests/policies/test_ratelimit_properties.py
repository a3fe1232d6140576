"""Laws of the rate limiter, checked with Hypothesis on the pure bucket and on the policy.

The window law: in any window of length t, at most `rate * t + burst` admissions. Checked over
every pair of admitted timestamps in O(n): with a_k = k - rate * ts[k], the window from ts[i] to
ts[j] holds j - i + 1 admissions, so the law is a_j - min(a_i for i <= j) + 1 <= burst.
"""

from __future__ import annotations

import asyncio
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.clock import FakeClock
from sidecar.config import EndpointLimit, RateLimitConfig
from sidecar.errors import SidecarError
from sidecar.events import EventBus
from sidecar.pipeline import Call, Response
from sidecar.ratelimit.bucket import WINDOW_S, AdaptiveRate, TokenBucket
from sidecar.upstream.endpoints import resolve
from tests.ratelimit.helpers import local_policy

TOLERANCE = 1e-6  # the bucket's float slack is 1e-9 of a token per admission

rates = st.floats(min_value=0.5, max_value=500.0)
bursts = st.integers(min_value=1, max_value=40).map(float)


def worst_excess(times: list[float], rate: float) -> float:
    """max over windows [ts[i], ts[j]] of (admissions - rate * length); must stay <= burst."""
    worst, low = 0.0, float("inf")
    for k, t in enumerate(sorted(times)):
        low = min(low, k - rate * t)
        worst = max(worst, k - rate * t - low + 1)
    return worst


@settings(max_examples=200, deadline=None)
@given(rate=rates, burst=bursts,
       gaps=st.lists(st.one_of(st.just(0.0), st.floats(0.0, 0.05), st.floats(0.0, 2.0)),
                     min_size=1, max_size=400),  # bursts after idle periods, and trickles
       slowdowns=st.lists(st.floats(min_value=0.05, max_value=1.0), max_size=5))
def test_bucket_never_over_admits_in_any_window(rate: float, burst: float, gaps: list[float],
                                                slowdowns: list[float]) -> None:
    bucket = TokenBucket(rate, burst, 0.0)
    now, admitted = 0.0, []
    for i, gap in enumerate(gaps):
        now += gap
        if slowdowns and i % 50 == 49:  # AIMD may lower the rate: the law keeps the maximum
            bucket.set_rate(rate * slowdowns[(i // 50) % len(slowdowns)], now)
        if bucket.time_until(1, now) == 0.0:
            bucket.take(1, now)
            admitted.append(now)
    assert worst_excess(admitted, rate) <= burst + TOLERANCE


@settings(max_examples=200, deadline=None)
@given(rate=rates, burst=bursts)
def test_bucket_sustains_its_rate_under_continuous_demand(rate: float, burst: float) -> None:
    bucket, now, count = TokenBucket(rate, burst, 0.0), 0.0, 0
    horizon = 5000 / rate
    while now < horizon:
        now += bucket.time_until(1, now)
        bucket.take(1, now)
        count += 1
    assert 0.99 * rate * horizon <= count <= rate * horizon + burst + 1


@settings(max_examples=200, deadline=None)
@given(configured=st.floats(min_value=10, max_value=500), factor=st.floats(0.1, 0.9),
       recovery=st.floats(0.5, 50), floor=st.floats(1, 10),
       events=st.lists(st.tuples(st.floats(0, 20), st.booleans()), max_size=30))
def test_adaptive_rate_stays_between_floor_and_configured(
        configured: float, factor: float, recovery: float, floor: float,
        events: list[tuple[float, bool]]) -> None:
    aimd = AdaptiveRate(configured, decrease_factor=factor, recovery_per_s=recovery,
                        min_rate=floor)
    now, last_cut = 0.0, -math.inf
    for gap, congested in events:
        before = aimd.recover(now)
        now += gap
        after = aimd.recover(now)
        assert before <= after <= min(configured, before + recovery * gap + 1e-9)
        if congested and now >= last_cut + WINDOW_S:
            assert aimd.decrease(now, now)
            assert aimd.rate == max(floor, after * factor)
            last_cut = now
        elif congested:  # sent within the OANDA second that earned the last cut
            assert not aimd.decrease(now, now)
        if last_cut > -math.inf:  # a request sent before the last cut was already answered for
            assert not aimd.decrease(last_cut, now)
        assert floor <= aimd.rate <= configured


def call(critical: bool, pricing: bool, deadline: float | None = None) -> Call:
    path = "/v3/accounts/1/pricing" if pricing else "/v3/accounts"
    return Call("GET", path, resolve(path), critical=critical, deadline=deadline)


arrivals = st.lists(st.tuples(st.floats(0.0, 0.05), st.booleans(), st.booleans()),
                    min_size=1, max_size=300)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rate=st.floats(5.0, 300.0), burst=bursts, ep_rate=st.floats(1.0, 50.0),
       schedule=arrivals)
async def test_limiter_never_over_admits_for_random_arrivals(
        rate: float, burst: float, ep_rate: float,
        schedule: list[tuple[float, bool, bool]]) -> None:
    clock = FakeClock(auto_advance=False)
    limits = (EndpointLimit(pattern="*/pricing", rate_per_s=ep_rate, burst=2),)
    limiter = local_policy(RateLimitConfig(rate_per_s=rate, burst=burst, endpoints=limits,
                                          max_queue_wait_s=2.0), clock, EventBus())
    admitted: list[float] = []
    pricing: list[float] = []

    async def nxt(c: Call) -> Response:
        (pricing if c.path.endswith("pricing") else admitted).append(clock.monotonic())
        return Response(200, b"")

    async def one(c: Call) -> None:
        try:
            await limiter.handle(c, nxt)
        except SidecarError:
            pass

    tasks = []
    for gap, critical, is_pricing in schedule:
        await advance(clock, gap)
        deadline = clock.monotonic() + 2.5  # so that critical calls end too
        tasks.append(asyncio.create_task(one(call(critical, is_pricing, deadline))))
        # Let every granted call reach `next` before time moves on: the law is about when
        # tokens are granted, not about how late a task is scheduled afterwards.
        for _ in range(20):
            await asyncio.sleep(0)
    await advance(clock, 3.0)
    await asyncio.gather(*tasks)
    assert worst_excess(admitted + pricing, rate) <= burst + TOLERANCE
    assert worst_excess(pricing, ep_rate) <= 2 + TOLERANCE
    snap = limiter.snapshot()
    assert snap.admitted_total + snap.rejected_total == len(schedule)
    assert snap.queued_normal == snap.queued_critical == 0


async def advance(clock: FakeClock, seconds: float, step: float = 0.002) -> None:
    """Move fake time in small steps, letting woken tasks run after each."""
    while seconds > 0:
        clock.advance(min(step, seconds))
        seconds -= step
        for _ in range(4):
            await asyncio.sleep(0)


@settings(max_examples=40, deadline=None)
@given(rate=st.floats(5.0, 400.0), burst=bursts, clients=st.integers(1, 20))
async def test_limiter_sustains_rate_under_continuous_demand(rate: float, burst: float,
                                                             clients: int) -> None:
    clock = FakeClock(auto_advance=False)
    limiter = local_policy(RateLimitConfig(rate_per_s=rate, burst=burst, max_queue_wait_s=300),
                          clock, EventBus())
    start = clock.monotonic()
    horizon = 2000 / rate
    admitted: list[float] = []

    async def nxt(c: Call) -> Response:
        admitted.append(clock.monotonic())
        return Response(200, b"")

    async def client() -> None:
        while True:
            await limiter.handle(call(False, False), nxt)

    tasks = [asyncio.create_task(client()) for _ in range(clients)]
    while clock.monotonic() - start < horizon:
        for _ in range(6):
            await asyncio.sleep(0)
        # Only the waker sleeps: jump exactly to its wake-up, as an idle real clock would.
        clock.advance(clock.sleeps[-1] if clock.sleeps else 1 / rate)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    clock.advance(300)
    assert len(admitted) >= 0.99 * rate * horizon
    assert worst_excess(admitted, rate) <= burst + TOLERANCE
