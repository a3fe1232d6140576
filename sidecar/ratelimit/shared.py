"""The shared gate: the fleet's one bucket in Redis (GCRA), with this process's fallback.

Each take is one script call (`sidecar.ratelimit.gcra`) for the global bucket and the call's
endpoint bucket together. Normal calls may book a slot at most `reserve - T` ahead (so the
critical reserve stays free of bookings), critical calls up to a second; beyond that the script
answers when to ask again and the queue's waker sleeps until then. What Redis answered is kept as
a hint per lane and limit, so the queue knows when to ask without asking.

While Redis cannot answer, takes go to a local bucket at `fallback_rate_per_s` (endpoint limits
scaled alike), which starts empty at each switch: what the fleet admitted just before still
counts, so the fallback never adds a burst on top.
"""

from __future__ import annotations

import hashlib

from sidecar.config import RateLimitConfig
from sidecar.ratelimit.backend import SharedBackend, SharedUnavailable
from sidecar.ratelimit.gates import LocalGate
from sidecar.ratelimit.lanes import CRITICAL, NORMAL

_CRITICAL_HORIZON_S = 1.0


class SharedGate:
    def __init__(self, config: RateLimitConfig, backend: SharedBackend, now: float) -> None:
        self._config = config
        self._backend = backend
        self._shares = config.shared
        limits = config.endpoints
        self._keys = tuple(
            (backend.key("global"),) if i == 0 else (
                backend.key("global"), backend.key("ep:" + _name(limits[i - 1].pattern)))
            for i in range(len(limits) + 1))
        self._endpoint_params = tuple(
            (1e6 / limit.rate_per_s, (limit.burst - 1) * 1e6 / limit.rate_per_s)
            for limit in limits)
        self._blocked = [[0.0] * (len(limits) + 1) for _ in (NORMAL, CRITICAL)]
        self._ahead_us = 0.0
        self._generation = backend.generation
        self._fallback = self._new_fallback(config.rate_per_s, now)
        self.set_rate(config.rate_per_s, now)

    def _new_fallback(self, rate: float, now: float) -> LocalGate:
        share = min(1.0, self._shares.fallback_rate_per_s / self._config.rate_per_s)
        return LocalGate(
            rate * share, max(1.0, self._config.burst * share),
            [(e.rate_per_s * share, max(1.0, e.burst * share)) for e in self._config.endpoints],
            now, empty=True)

    def _local(self, now: float) -> LocalGate | None:
        """The fallback gate while Redis is out (fresh and empty after each switch)."""
        backend = self._backend
        if backend.healthy:
            return None
        if backend.generation != self._generation:
            self._generation = backend.generation
            self._fallback = self._new_fallback(self._rate, now)
        return self._fallback

    def due(self, lane: int, limit: int, now: float) -> float:
        local = self._local(now)
        if local is not None:
            return local.due(lane, limit, now)
        blocked = self._blocked[lane]
        return max(0.0, blocked[0] - now, blocked[limit] - now)

    async def take(self, lane: int, limit: int, now: float, horizon: float) -> float:
        local = self._local(now)
        if local is None:
            cap = _CRITICAL_HORIZON_S if lane == CRITICAL else self._normal_horizon
            params = (self._interval_us, self._tau_us, self._reserve_us, self._critical_us,
                      *(self._endpoint_params[limit - 1] if limit else ()))
            try:
                wait_us, blocker, ahead_us = await self._backend.decide(
                    self._keys[limit], lane, max(0.0, min(horizon, cap)) * 1e6, params)
            except SharedUnavailable:
                local = self._local(now)
            else:
                self._ahead_us = ahead_us
                if wait_us >= 0:
                    return wait_us / 1e6
                self._blocked[lane][limit if blocker else 0] = now - wait_us / 1e6
                return wait_us / 1e6
        assert local is not None
        taken = await local.take(lane, limit, now, horizon)
        if taken >= 0.0:
            self._backend.charge(self._keys[0][0], self._interval_us, self._tau_us,
                                 self._reserve_us, self._shares.fallback_rate_per_s)
        return taken

    def estimate(self, ahead: int, same_limit_ahead: int, limit: int, now: float) -> float:
        local = self._local(now)
        if local is not None:
            return local.estimate(ahead, same_limit_ahead, limit, now)
        # Optimistic: other pods take slots too; the queue's expiry refuses what waits too long.
        return self.due(NORMAL, limit, now) + ahead * self._interval_us / 1e6

    def set_rate(self, rate: float, now: float) -> None:
        self._rate = rate
        self._interval_us = 1e6 / rate
        self._tau_us = (self._config.burst - 1) * self._interval_us
        reserve = min(self._shares.critical_reserve * self._config.burst,
                      self._config.burst - 1)
        self._reserve_us = reserve * self._interval_us
        self._critical_us = self._interval_us / self._config.critical_max_share
        # A booking ends at most at the reserve: a critical call still finds its token at once.
        self._normal_horizon = max(0.0, (reserve - 1) * self._interval_us / 1e6)
        self._fallback.set_rate(rate * min(1.0, self._shares.fallback_rate_per_s
                                           / self._config.rate_per_s), now)

    def tokens(self, limit: int, now: float) -> float:
        local = self._local(now)
        if local is not None:
            return local.tokens(limit, now)
        if limit:
            return -1.0  # held in Redis; not known here
        burst = self._config.burst
        return min(burst, max(0.0, burst - self._ahead_us / self._interval_us))


def _name(pattern: str) -> str:
    return hashlib.sha256(pattern.encode()).hexdigest()[:12]
