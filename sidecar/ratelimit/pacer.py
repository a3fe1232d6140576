"""New connections per second (OANDA allows 2/s), on the same bucket as the limiter.

`await pacer.acquire(deadline)` returns when a new connection may be opened, or raises
`NoConnectionSlot` (not sent, never an upstream failure) when no slot comes before `deadline`
(on the clock's monotonic scale; None: wait as long as it takes). Slots are booked FIFO, so the
wait is known at once and a caller that cannot make it is refused at once.

With a shared backend the slots are the fleet's (one GCRA key per token), so a rollout that
restarts every pod does not storm OANDA with connects; while Redis is out each pod books from a
local bucket at its fallback share of the rate, starting empty.
"""

from __future__ import annotations

from sidecar.clock import Clock
from sidecar.errors import NoConnectionSlot
from sidecar.ratelimit.backend import SharedBackend, SharedUnavailable
from sidecar.ratelimit.bucket import TokenBucket
from sidecar.ratelimit.lanes import CRITICAL

_FOREVER_S = 3600.0


class ConnectionPacer:
    def __init__(self, rate: float, clock: Clock, *, backend: SharedBackend | None = None,
                 fallback_share: float = 1.0) -> None:
        self._rate = rate
        self._burst = max(1.0, rate)
        self._clock = clock
        self._backend = backend
        self._share = fallback_share
        now = clock.monotonic()
        self._bucket = TokenBucket(rate, self._burst, now)
        self._generation = backend.generation if backend is not None else 0
        self._key: tuple[str, ...] = (backend.key("connections"),) if backend else ()
        interval = 1e6 / rate
        self._params = (interval, (self._burst - 1) * interval, 0.0, interval)
        self.granted = 0

    async def acquire(self, deadline: float | None) -> None:
        now = self._clock.monotonic()
        horizon = _FOREVER_S if deadline is None else deadline - now
        wait = await self._book(now, max(0.0, horizon))
        if wait is None:
            retry = self._bucket.time_until(1, now) if self._local_now() else 1.0 / self._rate
            raise NoConnectionSlot("no new-connection slot before the deadline (OANDA allows "
                                   f"{self._rate:g} new connections/s)",
                                   retry_after_s=max(retry, 1.0 / self._rate))
        self.granted += 1
        if wait > 0.0:
            await self._clock.sleep(wait)

    async def _book(self, now: float, horizon: float) -> float | None:
        backend = self._backend
        if backend is not None and not self._local_now():
            try:
                wait_us, _, _ = await backend.decide(self._key, CRITICAL, horizon * 1e6,
                                                     self._params)
            except SharedUnavailable:
                self._local_now()
            else:
                return wait_us / 1e6 if wait_us >= 0 else None
        wait = self._bucket.reserve(now, horizon)
        if wait is not None and backend is not None:
            backend.charge(self._key[0], self._params[0], self._params[1], 0.0, self._rate)
        return wait

    def _local_now(self) -> bool:
        """Whether slots come from the local bucket (always, without a shared backend)."""
        backend = self._backend
        if backend is None:
            return True
        if backend.healthy:
            return False
        if backend.generation != self._generation:  # just fell back: a fresh, empty bucket
            self._generation = backend.generation
            rate = self._rate * self._share
            self._bucket = TokenBucket(rate, max(1.0, self._burst * self._share),
                                       self._clock.monotonic(), 0.0)
        return True
