"""Two limiters ("pods") sharing one bucket in a real Valkey, on the real clock; Redis failing
slow, down and restarted. Short runs with tolerances for a loaded machine."""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from sidecar.clock import SystemClock
from sidecar.config import OandaConfig, RateLimitConfig
from sidecar.errors import RateLimited, SidecarError
from sidecar.events import SharedLimitChanged, SharedLimitFailed
from sidecar.pipeline import Call, Response
from sidecar.policies.ratelimit import RateLimitPolicy
from sidecar.ratelimit import RateLimit, build_rate_limit
from sidecar.upstream.endpoints import resolve
from tests.conftest import RecordingBus
from tests.ratelimit.conftest import Valkey, restart

RATE, BURST = 50.0, 5.0
Pods = Callable[..., tuple[list[RateLimitPolicy], RecordingBus]]


@pytest.fixture
async def pods(valkey: Valkey, redis_client: aioredis.Redis) -> AsyncIterator[Pods]:
    made: list[RateLimit] = []

    def make(n: int = 2, token: str = "t0k3n", **overrides: object) -> tuple[
            list[RateLimitPolicy], RecordingBus]:
        bus = RecordingBus()
        shared = {"redis_url": valkey.url, "fallback_rate_per_s": RATE / n,
                  **overrides.pop("shared", {})}  # type: ignore[dict-item]
        config = RateLimitConfig(rate_per_s=RATE, burst=BURST, shared=shared, **overrides)
        limits = [build_rate_limit(config, OandaConfig(base_url="http://sim"), token,
                                   SystemClock(), bus) for _ in range(n)]
        made.extend(limits)
        return [RateLimitPolicy(limit.limiter) for limit in limits], bus

    yield make
    for limit in made:
        await limit.close()


def windows(times: list[float], width: float = 1.0) -> int:
    times = sorted(times)
    return max((bisect.bisect_left(times, t + width) - i for i, t in enumerate(times)), default=0)


async def offer(policies: list[RateLimitPolicy], per_pod: float, seconds: float,
                sent: list[float], *, critical: bool = False) -> list[BaseException | Response]:
    """Offer each pod `per_pod` req/s; `sent` gets the admission times the limiters decided
    (the moment a call is handed on adds this loaded process's event-loop lag, which is not
    the limiter's to answer for)."""

    async def one(policy: RateLimitPolicy, call: Call) -> Response:
        sent.append(await policy.limiter.admit(call))
        return Response(200, b"")

    tasks: list[asyncio.Task[Response]] = []
    start, n = time.monotonic(), 0
    while (now := time.monotonic()) - start < seconds:
        while n < (now - start) * per_pod:
            for policy in policies:
                call = Call("GET", "/v3/accounts", resolve("/v3/accounts"), critical=critical)
                tasks.append(asyncio.create_task(one(policy, call)))
            n += 1
        await asyncio.sleep(0.005)
    return await asyncio.gather(*tasks, return_exceptions=True)


async def test_two_pods_share_one_bucket(pods: Pods) -> None:
    # A generous timeout: a loaded machine must not send a pod to its fallback here.
    (a, b), bus = pods(shared={"critical_reserve": 0.0, "timeout_s": 0.5}, max_queue_wait_s=0.5)
    sent: list[float] = []
    results = await offer([a, b], 3 * RATE, 2.0, sent)
    assert windows(sent) <= RATE + BURST, windows(sent)
    sustained = (len(sent) - BURST) / (sent[-1] - sent[0])
    # A starved event loop comes late to some slots (each lost for good): a loaded machine's
    # margin. The bench measures it at 99.6-100% on a quiet one.
    assert sustained >= 0.85 * RATE, sustained
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors and all(isinstance(e, RateLimited) for e in errors)
    assert bus.of(SharedLimitFailed) == [], bus.of(SharedLimitFailed)
    snap = a.snapshot()
    assert snap.shared is not None and snap.shared.healthy and snap.shared.backend == "redis"
    assert snap.shared.key_hash and "t0k3n" not in snap.shared.key_hash


async def test_pods_with_another_token_have_their_own_bucket(pods: Pods) -> None:
    (a,), _ = pods(1, token="one")
    (b,), _ = pods(1, token="two")
    sa, sb = a.snapshot().shared, b.snapshot().shared
    assert sa is not None and sb is not None and sa.key_hash != sb.key_hash
    sent: list[float] = []
    await offer([a, b], BURST / 0.2, 0.2, sent)  # both full bursts pass at once
    assert len(sent) == 2 * BURST


async def test_a_critical_call_goes_at_once_while_normal_calls_saturate(pods: Pods) -> None:
    (a, b), _ = pods(max_queue_wait_s=1.0)
    flood = asyncio.create_task(offer([a, b], 2 * RATE, 2.0, []))
    await asyncio.sleep(1.0)
    waits = []
    for policy in (a, b, a, b):
        started = time.monotonic()
        call = Call("PUT", "/v3/accounts/1/trades/7/close",
                    resolve("/v3/accounts/1/trades/7/close"), critical=True)

        async def nxt(call: Call) -> Response:
            return Response(200, b"")

        await policy.handle(call, nxt)
        waits.append(time.monotonic() - started)
        await asyncio.sleep(0.1)
    await flood
    # Normal calls queue for up to a second here; a critical one goes at once (a loaded 2-core
    # machine may stall one of the four by tens of ms: the median is the claim, the max a bound).
    assert sorted(waits)[1] < 0.05 and max(waits) < 0.3, waits


async def test_redis_down_falls_back_at_once_and_comes_back(valkey: Valkey, pods: Pods) -> None:
    (a, b), bus = pods(max_queue_wait_s=2.0)
    sent: list[float] = []
    run = asyncio.create_task(offer([a, b], 0.8 * RATE / 2, 4.0, sent))  # 80% of the rate
    await asyncio.sleep(0.7)
    await asyncio.to_thread(valkey.kill)
    killed_at = time.monotonic()
    await asyncio.sleep(1.0)
    await restart(valkey)
    results = await run
    assert not [r for r in results if isinstance(r, SidecarError)]  # nothing failed for Redis
    changes = bus.of(SharedLimitChanged)
    assert [c.healthy for c in changes][:4] == [False, False, True, True]  # each pod, both ways
    assert {c.reason for c in changes if not c.healthy} <= {"connection_error", "timeout"}
    assert windows(sent) <= RATE + BURST
    during = [t for t in sent if killed_at + 0.1 < t < killed_at + 0.9]
    assert len(during) >= 0.6 * 0.8 * RATE * 0.8  # the fallback (2 x 25/s) carried the load
    assert a.snapshot().shared.healthy and b.snapshot().shared.healthy  # type: ignore[union-attr]


async def test_a_slow_redis_is_a_fallback_too(valkey: Valkey, pods: Pods,
                                             redis_client: aioredis.Redis) -> None:
    (a,), bus = pods(1, shared={"timeout_s": 0.05, "probe_interval_s": 0.1})

    async def nxt(call: Call) -> Response:
        return Response(200, b"")

    def call() -> Call:
        return Call("GET", "/v3/accounts", resolve("/v3/accounts"))

    await a.handle(call(), nxt)
    await redis_client.execute_command("CLIENT", "PAUSE", 400, "ALL")
    started = time.monotonic()
    await a.handle(call(), nxt)  # decided locally after at most the timeout
    assert time.monotonic() - started < 0.4
    [change] = bus.of(SharedLimitChanged)
    assert (change.healthy, change.reason) == (False, "timeout")
    await asyncio.sleep(0.8)
    assert bus.of(SharedLimitChanged)[-1].healthy


async def test_waiting_calls_are_woken_by_their_slot_not_by_polling(pods: Pods) -> None:
    (a, b), _ = pods(max_queue_wait_s=1.0)
    calls = 0
    for policy in (a, b):
        backend = policy.limiter.gate._backend  # type: ignore[attr-defined]
        decide = backend.decide

        async def counted(*args: object, _decide: object = decide, **kw: object) -> object:
            nonlocal calls
            calls += 1
            return await _decide(*args, **kw)  # type: ignore[operator]

        backend.decide = counted
    sent: list[float] = []
    await offer([a, b], 2 * RATE, 1.5, sent)  # 4x the rate: most wait, many are refused
    # One script call per arrival that could go at once, plus about one per admission of a
    # waiter; a polling loop would make hundreds per waiter.
    arrivals = int(2 * 2 * RATE * 1.5)
    assert calls <= arrivals + 2 * len(sent), (calls, arrivals, len(sent))


async def test_any_error_of_the_client_is_a_fallback_never_a_failed_request(pods: Pods) -> None:
    (a,), bus = pods(1)
    backend = a.limiter.gate._backend  # type: ignore[attr-defined]

    async def broken(**kw: object) -> object:
        # What uvloop raised when a connect met a closed transport (seen in the bench).
        raise RuntimeError("unable to perform operation on <TCPTransport closed=True>")

    backend._script = backend._charge = broken  # PING still answers: the probe must not trust it

    async def nxt(call: Call) -> Response:
        return Response(200, b"")

    response = await a.handle(Call("GET", "/v3/accounts", resolve("/v3/accounts")), nxt)
    assert response.status == 200
    [change] = bus.of(SharedLimitChanged)
    assert (change.healthy, change.reason) == (False, "error")
    assert "RuntimeError" in (change.error or "")
