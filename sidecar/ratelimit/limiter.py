"""The limiter behind the rate-limit policy: the wait budget, lanes, AIMD and the status view.

`admit(call)` returns when the call may be sent (the admission time) or raises RateLimited /
DeadlineExceeded; where the tokens come from is the gate's business (this process's buckets, or
one bucket for the fleet in Redis with a local fallback). AIMD: when OANDA answers 429 anyway,
the rate is cut and recovers linearly (`AdaptiveRate`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from sidecar.clock import Clock
from sidecar.config import RateLimitConfig
from sidecar.errors import DeadlineExceeded, RateLimited, SidecarError
from sidecar.events import EventBus, RateAdjusted, RateLimitRejected, RateLimitWaited
from sidecar.pipeline import Call
from sidecar.ratelimit.bucket import AdaptiveRate
from sidecar.ratelimit.gates import Gate, LocalGate
from sidecar.ratelimit.lanes import CRITICAL, LANE_NAMES, NORMAL, LaneArbiter
from sidecar.ratelimit.queue import AdmissionQueue
from sidecar.ratelimit.snapshot import EndpointLimitSnapshot, RateLimitSnapshot, SharedSnapshot

_RECOVERY_STEP = 0.1  # publish recovery each time the rate regains 10% of the configured rate


class Limiter:
    def __init__(self, config: RateLimitConfig, clock: Clock, bus: EventBus, gate: Gate, *,
                 shared: Callable[[], SharedSnapshot] | None = None) -> None:
        self._config = config
        self._clock = clock
        self._bus = bus
        self.gate = gate
        self._local = gate if isinstance(gate, LocalGate) else None
        self._shared = shared
        self._configured = config.rate_per_s
        self._rate = config.rate_per_s
        self._patterns = tuple(limit.parsed for limit in config.endpoints)
        self._limit_of: dict[str, dict[str, int]] = {}  # template -> method -> limit index
        self._queue = AdmissionQueue(gate, clock, LaneArbiter(config.critical_max_share),
                                     len(self._patterns), config.max_queue_length, self._refuse)
        self._admitted = 0
        self._rejected = 0
        self._aimd = AdaptiveRate(config.rate_per_s, decrease_factor=config.decrease_factor,
                                  recovery_per_s=config.recovery_per_s,
                                  min_rate=config.min_rate_per_s)
        self._published_rate = self._rate

    async def admit(self, call: Call) -> float:
        """Wait for the call's tokens; return the moment it was admitted."""
        clock = self._clock
        now = clock.monotonic()
        if self._rate < self._configured:
            self._recover(now)
        limit = self._limit_index(call) if self._patterns else 0
        lane = CRITICAL if call.critical else NORMAL
        end = call.deadline if call.deadline is not None else math.inf
        if lane == NORMAL:
            end = min(end, now + self._config.max_queue_wait_s)
        queue = self._queue
        if queue.can_skip_queue(lane) and self._local is not None:
            if self._local.take_now(limit, now):  # the lean path: no coroutine, one check
                queue.went(lane)
                self._admitted += 1
                return now
        elif queue.can_skip_queue(lane) and self.gate.due(lane, limit, now) == 0.0:
            taken = await self.gate.take(lane, limit, now, end - now)
            if taken >= 0.0:
                queue.went(lane)
                self._admitted += 1
                if taken > 0.0:  # a reservation in the shared bucket: go when it comes
                    await self._waited(call, lane, now, now + taken)
                return now + taken
            now = clock.monotonic()
        refused = queue.would_refuse(lane, limit, now, end)
        if refused is not None:
            raise self._refuse(call.endpoint.template, lane, limit, 0.0, now, deadline=refused)
        admitted_at = await queue.wait(lane, limit, call.endpoint.template, now, end)
        self._admitted += 1
        await self._waited(call, lane, now, admitted_at)
        return admitted_at

    async def _waited(self, call: Call, lane: int, since: float, admitted_at: float) -> None:
        wait_s = admitted_at - since
        if wait_s > 0.0:
            self._bus.publish(RateLimitWaited(self._clock.wall(), call.endpoint.template,
                                              wait_s, LANE_NAMES[lane]))
        ahead = admitted_at - self._clock.monotonic()
        if ahead > 0.0:
            await self._clock.sleep(ahead)

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

    def _refuse(self, endpoint: str, lane: int, limit: int, waited_s: float, now: float, *,
                deadline: bool) -> SidecarError:
        self._rejected += 1
        retry_after = max(self._queue.estimate(lane, limit, now), 1.0 / self._rate)
        self._bus.publish(RateLimitRejected(self._clock.wall(), endpoint, waited_s, retry_after))
        if lane == CRITICAL and deadline:  # critical calls never give up for queue time
            return DeadlineExceeded("deadline passed while waiting for a rate-limit token")
        return RateLimited(f"no rate-limit token within the wait budget ({waited_s:.3f}s waited)",
                           retry_after_s=retry_after)

    def close(self) -> None:
        self._queue.close()

    # -- AIMD -------------------------------------------------------------------------------

    def on_429(self, sent_at: float) -> None:
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
        self.gate.set_rate(rate, now)
        if reason is not None:
            self._published_rate = rate
            self._bus.publish(RateAdjusted(self._clock.wall(), rate, self._configured, reason))

    # -- status -----------------------------------------------------------------------------

    def snapshot(self) -> RateLimitSnapshot:
        now = self._clock.monotonic()
        if self._rate < self._configured:
            self._recover(now)
        endpoints = tuple(
            EndpointLimitSnapshot(str(pattern), limit.rate_per_s, limit.burst,
                                  self.gate.tokens(i + 1, now))
            for i, (pattern, limit) in enumerate(zip(self._patterns, self._config.endpoints,
                                                     strict=True)))
        return RateLimitSnapshot(
            rate_per_s=self._rate, configured_rate_per_s=self._configured,
            burst=self._config.burst, tokens=self.gate.tokens(0, now),
            queued_normal=self._queue.queued[NORMAL],
            queued_critical=self._queue.queued[CRITICAL],
            rejected_total=self._rejected, admitted_total=self._admitted, endpoints=endpoints,
            shared=self._shared() if self._shared is not None else None)
