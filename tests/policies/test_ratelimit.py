"""The rate limiter on FakeClock: queueing, refusal, lanes, endpoint limits, AIMD, one waker."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from sidecar.clock import FakeClock
from sidecar.config import EndpointLimit, RateLimitConfig
from sidecar.errors import DeadlineExceeded, RateLimited
from sidecar.events import RateAdjusted, RateLimitRejected, RateLimitWaited
from sidecar.pipeline import Call, Response
from sidecar.policies.ratelimit import RateLimitPolicy
from sidecar.upstream.endpoints import resolve
from tests.conftest import RecordingBus
from tests.ratelimit.helpers import local_policy

ACCOUNTS = "/v3/accounts"
PRICING = "/v3/accounts/101-001-1-001/pricing"


def make_call(path: str = ACCOUNTS, *, critical: bool = False,
              deadline: float | None = None) -> Call:
    return Call("GET", path, resolve(path), critical=critical, deadline=deadline)


def recorder(clock: FakeClock, log: list[tuple[str, float]],
             status: int = 200) -> Callable[[Call], Awaitable[Response]]:
    """A trivial `next` that notes which call went out and when."""

    async def nxt(call: Call) -> Response:
        log.append((call.headers.get("id", call.path), clock.monotonic()))
        return Response(status, b"{}")

    return nxt


async def settle() -> None:
    for _ in range(6):
        await asyncio.sleep(0)


def tagged(tag: str, **kwargs: Any) -> Call:
    call = make_call(kwargs.pop("path", ACCOUNTS), **kwargs)
    call.headers["id"] = tag
    return call


async def spawn(limiter: RateLimitPolicy, calls: list[Call],
                nxt: Callable[[Call], Awaitable[Response]]) -> list[asyncio.Task[Response]]:
    """Start calls one after another (arrival order is list order) and let them queue."""
    tasks = []
    for call in calls:
        tasks.append(asyncio.create_task(limiter.handle(call, nxt)))
        await settle()
    return tasks


async def finish(clock: FakeClock, tasks: list[asyncio.Task[Response]]) -> None:
    """Cancel leftovers and let the waker notice the empty queue and exit."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    clock.advance(60.0)
    await settle()


def limiter_for(clock: FakeClock, bus: RecordingBus, **overrides: Any) -> RateLimitPolicy:
    return local_policy(RateLimitConfig(**overrides), clock, bus)


async def test_burst_passes_at_once_without_sleeping(clock: FakeClock,
                                                     bus: RecordingBus) -> None:
    limiter = limiter_for(clock, bus, rate_per_s=100, burst=20)
    log: list[tuple[str, float]] = []
    for i in range(20):
        await limiter.handle(tagged(str(i)), recorder(clock, log))
    assert [t for _, t in log] == [1000.0] * 20
    assert clock.sleeps == []
    assert bus.of(RateLimitWaited) == []
    snap = limiter.snapshot()
    assert snap.admitted_total == 20 and snap.tokens == pytest.approx(0.0)


async def test_waiters_are_admitted_in_fifo_order_by_one_waker(bus: RecordingBus) -> None:
    clock = FakeClock(auto_advance=False)
    limiter = limiter_for(clock, bus, rate_per_s=8, burst=1)
    log: list[tuple[str, float]] = []
    nxt = recorder(clock, log)
    await limiter.handle(tagged("first"), nxt)
    tasks = await spawn(limiter, [tagged(str(i)) for i in range(5)], nxt)
    # Five waiters, one sleeper: the waker sleeps until the head's token is due.
    assert clock.sleeps == [0.125]
    assert limiter.snapshot().queued_normal == 5
    for _ in range(5):
        clock.advance(0.125)
        await settle()
    assert [tag for tag, _ in log] == ["first", "0", "1", "2", "3", "4"]
    assert [t - 1000.0 for _, t in log] == [0.0, 0.125, 0.25, 0.375, 0.5, 0.625]
    assert clock.sleeps == [0.125] * 5
    waits = [e.wait_s for e in bus.of(RateLimitWaited)]
    assert waits == [0.125, 0.25, 0.375, 0.5, 0.625]
    assert {e.lane for e in bus.of(RateLimitWaited)} == {"normal"}
    await finish(clock, tasks)


async def test_refuses_at_once_when_queue_position_exceeds_max_wait(bus: RecordingBus) -> None:
    clock = FakeClock(auto_advance=False)
    limiter = limiter_for(clock, bus, rate_per_s=8, burst=1, max_queue_wait_s=0.25)
    nxt = recorder(clock, [])
    await limiter.handle(make_call(), nxt)
    tasks = await spawn(limiter, [make_call(), make_call()], nxt)  # due at 0.125 and 0.25
    with pytest.raises(RateLimited) as info:
        await limiter.handle(make_call(), nxt)  # would be due at 0.375 > 0.25
    err = info.value
    assert err.code == grpc.StatusCode.RESOURCE_EXHAUSTED and err.reason == "RATE_LIMITED"
    assert err.retry_after_s == 0.375
    [rejected] = bus.of(RateLimitRejected)
    assert rejected.endpoint == ACCOUNTS and rejected.waited_s == 0.0
    assert rejected.retry_after_s == 0.375
    assert limiter.snapshot().rejected_total == 1
    await finish(clock, tasks)


async def test_waiter_overtaken_by_critical_calls_expires_at_max_wait(bus: RecordingBus) -> None:
    clock = FakeClock(auto_advance=False)
    limiter = limiter_for(clock, bus, rate_per_s=8, burst=1, max_queue_wait_s=0.3125)
    log: list[tuple[str, float]] = []
    nxt = recorder(clock, log)
    await limiter.handle(tagged("first"), nxt)
    [normal] = await spawn(limiter, [tagged("normal")], nxt)
    crit = await spawn(limiter, [tagged(f"c{i}", critical=True) for i in range(3)], nxt)
    for _ in range(6):
        clock.advance(0.0625)
        await settle()
    with pytest.raises(RateLimited) as info:
        await normal
    assert info.value.retry_after_s is not None and info.value.retry_after_s > 0
    [rejected] = bus.of(RateLimitRejected)
    assert rejected.waited_s == 0.3125
    assert [tag for tag, _ in log] == ["first", "c0", "c1", "c2"]
    assert clock.sleeps == [0.125, 0.125, 0.0625, 0.0625]  # woke for the expiry in between
    await finish(clock, crit)


async def test_normal_call_is_refused_before_its_deadline_passes(bus: RecordingBus) -> None:
    clock = FakeClock(auto_advance=False)
    limiter = limiter_for(clock, bus, rate_per_s=8, burst=1)
    nxt = recorder(clock, [])
    await limiter.handle(make_call(), nxt)
    with pytest.raises(RateLimited):  # token due in 0.125 s, deadline in 0.0625 s: refuse now
        await limiter.handle(make_call(deadline=clock.monotonic() + 0.0625), nxt)
    # Accepted (due 0.125 < 0.1875), then a critical call jumps ahead: refused at its deadline.
    [waiter] = await spawn(limiter, [make_call(deadline=clock.monotonic() + 0.1875)], nxt)
    crit = await spawn(limiter, [make_call(critical=True)], nxt)
    for _ in range(4):
        clock.advance(0.0625)
        await settle()
    with pytest.raises(RateLimited):
        await waiter
    assert bus.of(RateLimitRejected)[-1].waited_s == 0.1875
    await finish(clock, crit)


async def test_critical_call_only_fails_on_its_own_deadline(bus: RecordingBus) -> None:
    clock = FakeClock(auto_advance=False)
    limiter = limiter_for(clock, bus, rate_per_s=8, burst=1, max_queue_wait_s=0.0)
    nxt = recorder(clock, [])
    await limiter.handle(make_call(), nxt)
    with pytest.raises(RateLimited):  # normal: no queue time allowed at all
        await limiter.handle(make_call(), nxt)
    [crit] = await spawn(limiter, [make_call(critical=True)], nxt)  # queue time is fine
    with pytest.raises(DeadlineExceeded):
        await limiter.handle(make_call(critical=True, deadline=clock.monotonic() + 0.125), nxt)
    clock.advance(0.125)
    await settle()
    assert (await crit).status == 200
    await finish(clock, [])


async def test_critical_calls_go_ahead_of_200_queued_normal_calls(bus: RecordingBus) -> None:
    clock = FakeClock(auto_advance=False)
    limiter = limiter_for(clock, bus, rate_per_s=128, burst=1)  # 1/128 s is exact in binary
    log: list[tuple[str, float]] = []
    nxt = recorder(clock, log)
    await limiter.handle(tagged("first"), nxt)
    normal = await spawn(limiter, [tagged(f"n{i}") for i in range(200)], nxt)
    crit = await spawn(limiter, [tagged(f"c{i}", critical=True) for i in range(3)], nxt)
    snap = limiter.snapshot()
    assert (snap.queued_normal, snap.queued_critical) == (200, 3)
    assert len(clock.sleeps) == 1
    for _ in range(203):
        clock.advance(1 / 128)
        await settle()
    order = [tag for tag, _ in log]
    assert order == ["first", "c0", "c1", "c2"] + [f"n{i}" for i in range(200)]
    assert {e.lane for e in bus.of(RateLimitWaited)[:3]} == {"critical"}
    assert bus.of(RateLimitRejected) == []
    await finish(clock, normal + crit)


async def test_endpoint_limit_throttles_its_calls_without_blocking_others(
        bus: RecordingBus) -> None:
    clock = FakeClock(auto_advance=False)
    limits = (EndpointLimit(pattern="GET */pricing", rate_per_s=2, burst=1),)
    limiter = limiter_for(clock, bus, rate_per_s=100, burst=5, endpoints=limits)
    log: list[tuple[str, float]] = []
    nxt = recorder(clock, log)
    calls = [tagged("p0", path=PRICING), tagged("p1", path=PRICING), tagged("p2", path=PRICING),
             tagged("a0"), tagged("a1"), tagged("a2")]
    tasks = await spawn(limiter, calls, nxt)
    # p1 and p2 wait for their endpoint; a0..a2 pass them (no head-of-line blocking).
    assert [tag for tag, _ in log] == ["p0", "a0", "a1", "a2"]
    snap = limiter.snapshot()
    assert snap.tokens == pytest.approx(1.0)  # waiting p1/p2 did not hold global tokens
    [ep] = snap.endpoints
    assert (ep.pattern, ep.rate_per_s, ep.burst, ep.tokens) == ("GET */pricing", 2, 1, 0.0)
    for _ in range(8):
        clock.advance(0.125)
        await settle()
    times = {tag: t - 1000.0 for tag, t in log}
    assert (times["p1"], times["p2"]) == (0.5, 1.0)
    await finish(clock, tasks)


async def test_waker_is_rearmed_when_an_earlier_token_becomes_relevant(
        bus: RecordingBus) -> None:
    clock = FakeClock(auto_advance=False)
    limits = (EndpointLimit(pattern="*/pricing", rate_per_s=2, burst=1),)
    limiter = limiter_for(clock, bus, rate_per_s=8, burst=2, endpoints=limits)
    log: list[tuple[str, float]] = []
    calls = [tagged("p0", path=PRICING), tagged("p1", path=PRICING), tagged("a0"), tagged("a1")]
    tasks = await spawn(limiter, calls, recorder(clock, log))
    # The waker slept 0.5 s for p1's endpoint; a1 needs a global token in 0.125 s instead.
    assert clock.sleeps == [0.5, 0.125]
    for _ in range(4):
        clock.advance(0.125)
        await settle()
    assert [(tag, t - 1000.0) for tag, t in log] == [
        ("p0", 0.0), ("a0", 0.0), ("a1", 0.125), ("p1", 0.5)]
    assert clock.sleeps == [0.5, 0.125, 0.375]
    await finish(clock, tasks)


async def test_endpoint_limit_and_global_limit_both_bind(clock: FakeClock,
                                                         bus: RecordingBus) -> None:
    limits = (EndpointLimit(pattern="*/pricing", rate_per_s=1000, burst=1000),)
    limiter = limiter_for(clock, bus, rate_per_s=10, burst=1, endpoints=limits)
    log: list[tuple[str, float]] = []
    for _ in range(3):
        await limiter.handle(make_call(PRICING), recorder(clock, log))
    assert [t - 1000.0 for _, t in log] == pytest.approx([0.0, 0.1, 0.2])
    assert limiter.snapshot().endpoints[0].tokens == pytest.approx(999.0)  # refilled, capped


async def test_aimd_halves_on_429_once_per_round_and_recovers_linearly(
        clock: FakeClock, bus: RecordingBus) -> None:
    limiter = limiter_for(clock, bus, rate_per_s=100, burst=20, recovery_per_s=5)
    gate = asyncio.Event()

    async def throttled(call: Call) -> Response:
        await gate.wait()
        return Response(429, b"")

    in_flight = [asyncio.create_task(limiter.handle(make_call(), throttled)) for _ in range(3)]
    await settle()
    gate.set()
    assert [r.status for r in await asyncio.gather(*in_flight)] == [429] * 3
    # Three answers to requests sent at the old rate count as one signal.
    assert [(e.rate_per_s, e.reason) for e in bus.of(RateAdjusted)] == [(50.0, "upstream_429")]
    assert limiter.snapshot().rate_per_s == 50.0
    clock.advance(2.0)
    assert limiter.snapshot().rate_per_s == pytest.approx(60.0)
    clock.advance(2.0)
    assert limiter.snapshot().rate_per_s == pytest.approx(70.0)
    clock.advance(10.0)
    snap = limiter.snapshot()
    assert snap.rate_per_s == 100.0 and snap.configured_rate_per_s == 100.0
    assert [(e.rate_per_s, e.reason) for e in bus.of(RateAdjusted)] == [
        (50.0, "upstream_429"), (pytest.approx(60.0), "recovery"),
        (pytest.approx(70.0), "recovery"), (100.0, "recovery")]


async def test_aimd_slows_admission_and_stops_at_min_rate(clock: FakeClock,
                                                          bus: RecordingBus) -> None:
    limiter = limiter_for(clock, bus, rate_per_s=100, burst=1, min_rate_per_s=20,
                          recovery_per_s=0.001)
    await limiter.handle(make_call(), recorder(clock, [], status=429))
    await limiter.handle(make_call(), recorder(clock, [], status=429))  # waits at rate 50
    assert clock.sleeps == [pytest.approx(1 / 50)]
    # Sent 20 ms after the cut, in the same OANDA second: its 429 is no news (one cut per
    # window; before, a burst of 429s cut the rate once per round trip, down to the floor).
    assert limiter.snapshot().rate_per_s == pytest.approx(50.0, abs=0.1)
    for _ in range(2):
        await clock.sleep(1.0)
        await limiter.handle(make_call(), recorder(clock, [], status=429))
    assert limiter.snapshot().rate_per_s == pytest.approx(20.0)  # 25 * 0.5 floored at 20
    rates = [e.rate_per_s for e in bus.of(RateAdjusted) if e.reason == "upstream_429"]
    assert rates == pytest.approx([50.0, 25.0, 20.0], abs=0.1)


async def test_cancelled_waiter_leaves_the_queue(bus: RecordingBus) -> None:
    clock = FakeClock(auto_advance=False)
    limiter = limiter_for(clock, bus, rate_per_s=8, burst=1)
    log: list[tuple[str, float]] = []
    nxt = recorder(clock, log)
    await limiter.handle(tagged("first"), nxt)
    gone, kept = await spawn(limiter, [tagged("gone"), tagged("kept")], nxt)
    gone.cancel()
    await settle()
    assert limiter.snapshot().queued_normal == 1
    clock.advance(0.125)
    await settle()
    assert [tag for tag, _ in log] == ["first", "kept"]
    assert (await kept).status == 200
    await finish(clock, [gone])


async def test_queue_length_is_bounded(bus: RecordingBus) -> None:
    clock = FakeClock(auto_advance=False)
    limiter = limiter_for(clock, bus, rate_per_s=8, burst=1, max_queue_length=2)
    nxt = recorder(clock, [])
    await limiter.handle(make_call(), nxt)
    tasks = await spawn(limiter, [make_call(), make_call()], nxt)
    with pytest.raises(RateLimited) as info:
        await limiter.handle(make_call(), nxt)
    assert info.value.retry_after_s == 0.375
    crit = await spawn(limiter, [make_call(critical=True), make_call(critical=True)], nxt)
    with pytest.raises(RateLimited):  # a full critical lane refuses too, not as a deadline
        await limiter.handle(make_call(critical=True), nxt)
    await finish(clock, tasks + crit)
