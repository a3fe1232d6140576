"""The rate limiter: a global token bucket, optional per-endpoint buckets, a FIFO queue with a
critical lane, and AIMD when OANDA answers 429 anyway.

Head-of-line blocking: waiters sit in one FIFO deque per (lane, endpoint limit). A global token goes
to the oldest waiter whose endpoint bucket is ready, and both tokens are taken together at that
moment, so a call throttled by its own endpoint limit never holds a global token and never blocks
calls to other endpoints, while calls sharing a limit stay in FIFO order. Critical calls respect
endpoint limits too (an operator wrote them), but a critical waiter always beats a normal one.

One waker task sleeps on the clock until the next token is due or the next waiter's budget ends;
arrivals dispatch synchronously, so a call that can go at once never waits for the waker.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections import deque
from dataclasses import dataclass

from sidecar.clock import Clock
from sidecar.config import RateLimitConfig
from sidecar.errors import DeadlineExceeded, RateLimited, SidecarError
from sidecar.events import EventBus, RateAdjusted, RateLimitRejected, RateLimitWaited
from sidecar.pipeline import Call, Handler, Response
from sidecar.policies.tokenbucket import AdaptiveRate, TokenBucket

NORMAL, CRITICAL = 0, 1
_LANE_NAMES = ("normal", "critical")
_RECOVERY_STEP = 0.1  # publish recovery each time the rate regains 10% of the configured rate


@dataclass(frozen=True, slots=True)
class EndpointLimitSnapshot:
    pattern: str
    rate_per_s: float
    burst: float
    tokens: float


@dataclass(frozen=True, slots=True)
class RateLimitSnapshot:
    rate_per_s: float
    configured_rate_per_s: float
    burst: float
    tokens: float
    queued_normal: int
    queued_critical: int
    rejected_total: int
    admitted_total: int
    endpoints: tuple[EndpointLimitSnapshot, ...]


@dataclass(slots=True, eq=False)  # eq=False: queues remove waiters by identity
class _Waiter:
    future: asyncio.Future[float]  # resolves to the admission time
    lane: int
    limit: int  # index into _buckets; 0 = no endpoint limit
    endpoint: str
    seq: int
    enqueued_at: float


class RateLimiter:
    """Admits each attempt when a token is free; queues, refuses, or adapts the rate otherwise."""

    def __init__(self, config: RateLimitConfig, clock: Clock, bus: EventBus) -> None:
        now = clock.monotonic()
        self._config = config
        self._clock = clock
        self._bus = bus
        self._configured = config.rate_per_s
        self._rate = config.rate_per_s
        self._bucket = TokenBucket(config.rate_per_s, config.burst, now)
        self._patterns = tuple(limit.parsed for limit in config.endpoints)
        # Index 0 stands for "no endpoint limit" so that lookups need no branch on None.
        self._buckets: tuple[TokenBucket | None, ...] = (
            None, *(TokenBucket(limit.rate_per_s, limit.burst, now) for limit in config.endpoints))
        self._limit_of: dict[str, dict[str, int]] = {}  # template -> method -> bucket index
        self._queues = tuple(tuple(deque[_Waiter]() for _ in self._buckets) for _ in _LANE_NAMES)
        self._queued = [0, 0]
        self._expiries: list[tuple[float, int, _Waiter]] = []  # heap of (budget end, seq, waiter)
        self._seq = 0
        self._waker: asyncio.Task[None] | None = None
        self._wake_at = math.inf
        self._admitted = 0
        self._rejected = 0
        self._aimd = AdaptiveRate(config.rate_per_s, decrease_factor=config.decrease_factor,
                                  recovery_per_s=config.recovery_per_s,
                                  min_rate=config.min_rate_per_s)
        self._published_rate = self._rate

    # -- the request path -------------------------------------------------------------------

    async def handle(self, call: Call, next: Handler) -> Response:
        now = self._clock.monotonic()
        if self._rate < self._configured:
            self._recover(now)
        limit = self._limit_index(call) if self._patterns else 0
        ep_bucket = self._buckets[limit]
        lane = CRITICAL if call.critical else NORMAL
        if (self._queued[CRITICAL] == 0 and (lane == CRITICAL or self._queued[NORMAL] == 0)
                and self._bucket.time_until(1, now) == 0.0
                and (ep_bucket is None or ep_bucket.time_until(1, now) == 0.0)):
            self._bucket.take(1, now)
            if ep_bucket is not None:
                ep_bucket.take(1, now)
            admitted_at = now
        else:
            admitted_at = await self._wait(call, lane, limit, now)
        self._admitted += 1
        response = await next(call)
        if response.status == 429:
            self._on_429(admitted_at)
        return response

    def _limit_index(self, call: Call) -> int:
        template = call.endpoint.template
        by_method = self._limit_of.get(template)
        if by_method is None:
            by_method = self._limit_of[template] = {}
        index = by_method.get(call.method)
        if index is None:
            # First matching pattern wins; templates and methods are bounded, so is this cache.
            index = next((i + 1 for i, p in enumerate(self._patterns)
                          if p.matches(call.method, template)), 0)
            by_method[call.method] = index
        return index

    async def _wait(self, call: Call, lane: int, limit: int, now: float) -> float:
        end = call.deadline if call.deadline is not None else math.inf
        if lane == NORMAL:
            end = min(end, now + self._config.max_queue_wait_s)
        full = self._queued[lane] >= self._config.max_queue_length
        if full or now + self._estimate(lane, limit, now) > end:
            raise self._refuse(call.endpoint.template, lane, limit, 0.0, now, deadline=not full)
        self._seq += 1
        waiter = _Waiter(asyncio.get_running_loop().create_future(), lane, limit,
                         call.endpoint.template, self._seq, now)
        self._queues[lane][limit].append(waiter)
        self._queued[lane] += 1
        if end != math.inf:
            heapq.heappush(self._expiries, (end, waiter.seq, waiter))
        self._kick(now)
        try:
            admitted_at = await waiter.future
        except asyncio.CancelledError:
            self._forget(waiter)
            raise
        wait_s = admitted_at - now
        if wait_s > 0.0:
            self._bus.publish(RateLimitWaited(self._clock.wall(), waiter.endpoint, wait_s,
                                              _LANE_NAMES[lane]))
        return admitted_at

    def _estimate(self, lane: int, limit: int, now: float) -> float:
        """Seconds until a call arriving now in this lane would get its tokens (FIFO estimate)."""
        ahead = self._queued[CRITICAL] + (self._queued[NORMAL] if lane == NORMAL else 0)
        estimate = self._bucket.time_until(ahead + 1, now)
        ep_bucket = self._buckets[limit]
        if ep_bucket is not None:
            same = len(self._queues[CRITICAL][limit])
            if lane == NORMAL:
                same += len(self._queues[NORMAL][limit])
            estimate = max(estimate, ep_bucket.time_until(same + 1, now))
        return estimate

    def _refuse(self, endpoint: str, lane: int, limit: int, waited_s: float, now: float, *,
                deadline: bool) -> SidecarError:
        self._rejected += 1
        retry_after = max(self._estimate(lane, limit, now), 1.0 / self._rate)
        self._bus.publish(RateLimitRejected(self._clock.wall(), endpoint, waited_s, retry_after))
        if lane == CRITICAL and deadline:  # critical calls never give up for queue time
            return DeadlineExceeded("deadline passed while waiting for a rate-limit token")
        return RateLimited(f"no rate-limit token within the wait budget ({waited_s:.3f}s waited)",
                           retry_after_s=retry_after)

    def _forget(self, waiter: _Waiter) -> None:
        """Take a cancelled waiter out of its queue (unless dispatch already did)."""
        future = waiter.future
        if future.done() and not future.cancelled():
            future.exception()  # mark retrieved; a token spent on a cancelled call stays spent
            return
        try:
            self._queues[waiter.lane][waiter.limit].remove(waiter)
        except ValueError:
            return
        self._queued[waiter.lane] -= 1

    # -- the waker --------------------------------------------------------------------------

    def _kick(self, now: float) -> None:
        delay = self._dispatch(now)
        if delay is None:
            return
        wake_at = now + delay
        if self._waker is not None:
            if wake_at >= self._wake_at - 1e-6:
                return  # the sleeping waker comes early enough
            self._waker.cancel()
        self._wake_at = wake_at
        self._waker = asyncio.get_running_loop().create_task(self._wake_loop(delay))

    async def _wake_loop(self, delay: float) -> None:
        clock = self._clock
        while True:
            await clock.sleep(delay)
            now = clock.monotonic()
            next_delay = self._dispatch(now)
            if next_delay is None:
                self._waker = None
                self._wake_at = math.inf
                return
            delay = next_delay
            self._wake_at = now + delay

    def _dispatch(self, now: float) -> float | None:
        """Expire waiters out of budget, admit all that can go now; return the delay until the
        next thing to do, or None when nobody waits."""
        if self._rate < self._configured:
            self._recover(now)
        self._expire(now)
        bucket = self._bucket
        while bucket.time_until(1, now) == 0.0:
            waiter = self._pick(now)
            if waiter is None:
                break
            self._queues[waiter.lane][waiter.limit].popleft()
            self._queued[waiter.lane] -= 1
            bucket.take(1, now)
            ep_bucket = self._buckets[waiter.limit]
            if ep_bucket is not None:
                ep_bucket.take(1, now)
            waiter.future.set_result(now)
        return self._next_delay(now)

    def _pick(self, now: float) -> _Waiter | None:
        """The oldest waiter of the first lane that has one whose endpoint bucket is ready."""
        for lane in (CRITICAL, NORMAL):
            if not self._queued[lane]:
                continue
            best: _Waiter | None = None
            for limit, queue in enumerate(self._queues[lane]):
                while queue and queue[0].future.done():  # cancelled, not yet forgotten
                    queue.popleft()
                    self._queued[lane] -= 1
                ep_bucket = self._buckets[limit]
                if queue and (ep_bucket is None or ep_bucket.time_until(1, now) == 0.0):
                    if best is None or queue[0].seq < best.seq:
                        best = queue[0]
            if best is not None:
                return best
        return None

    def _next_delay(self, now: float) -> float | None:
        if self._queued[NORMAL] + self._queued[CRITICAL] == 0:
            return None
        global_due = self._bucket.time_until(1, now)
        delay = math.inf
        for lane_queues in self._queues:
            for limit, queue in enumerate(lane_queues):
                if queue:
                    ep_bucket = self._buckets[limit]
                    due = global_due if ep_bucket is None else max(
                        global_due, ep_bucket.time_until(1, now))
                    delay = min(delay, due)
        expiries = self._expiries
        while expiries and expiries[0][2].future.done():
            heapq.heappop(expiries)
        if expiries:
            delay = min(delay, expiries[0][0] - now)
        return max(delay, 0.0)

    def _expire(self, now: float) -> None:
        expiries = self._expiries
        while expiries and expiries[0][0] <= now + 1e-9:  # float slack, as in the bucket
            waiter = heapq.heappop(expiries)[2]
            if waiter.future.done():
                continue
            self._queues[waiter.lane][waiter.limit].remove(waiter)
            self._queued[waiter.lane] -= 1
            waiter.future.set_exception(self._refuse(
                waiter.endpoint, waiter.lane, waiter.limit, now - waiter.enqueued_at, now,
                deadline=True))
        if len(expiries) > 64 + 2 * (self._queued[NORMAL] + self._queued[CRITICAL]):
            # Admitted waiters leave stale entries behind; drop them now and then.
            self._expiries = [e for e in expiries if not e[2].future.done()]
            heapq.heapify(self._expiries)

    # -- AIMD -------------------------------------------------------------------------------

    def _on_429(self, sent_at: float) -> None:
        now = self._clock.monotonic()
        if self._aimd.decrease(sent_at, now) and self._aimd.rate != self._rate:
            self._set_rate(self._aimd.rate, now, "upstream_429")

    def _recover(self, now: float) -> None:
        rate = self._aimd.recover(now)
        if rate > self._rate:
            # Publish coarse steps only, never one event per call.
            step = self._configured * _RECOVERY_STEP
            publish = rate == self._configured or rate >= self._published_rate + step
            self._set_rate(rate, now, "recovery" if publish else None)

    def _set_rate(self, rate: float, now: float, reason: str | None) -> None:
        self._rate = rate
        self._bucket.set_rate(rate, now)
        if reason is not None:
            self._published_rate = rate
            self._bus.publish(RateAdjusted(self._clock.wall(), rate, self._configured, reason))

    # -- status -----------------------------------------------------------------------------

    def snapshot(self) -> RateLimitSnapshot:
        now = self._clock.monotonic()
        if self._rate < self._configured:
            self._recover(now)
        endpoints = tuple(
            EndpointLimitSnapshot(str(pattern), bucket.rate, bucket.burst,
                                  max(0.0, bucket.tokens(now)))
            for pattern, bucket in zip(self._patterns, self._buckets[1:], strict=True)
            if bucket is not None)
        return RateLimitSnapshot(
            rate_per_s=self._rate, configured_rate_per_s=self._configured,
            burst=self._bucket.burst, tokens=max(0.0, self._bucket.tokens(now)),
            queued_normal=self._queued[NORMAL], queued_critical=self._queued[CRITICAL],
            rejected_total=self._rejected, admitted_total=self._admitted, endpoints=endpoints)

