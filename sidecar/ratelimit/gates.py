"""Where the limiter's tokens come from: a `Gate` answers for the global bucket and the
endpoint buckets together. `LocalGate` is this process's buckets; the shared gate (Redis) lives
in `sidecar.ratelimit.shared` and keeps a `LocalGate` as its fallback.

A take is a value, as the bucket's answer is: `0.0` (taken now), a positive number of seconds
(taken, for that moment ahead: a reservation, only within the `horizon` the caller can afford),
or a negative number (nothing taken; the token may be there after that many seconds).
Limit index 0 stands for "no endpoint limit", 1.. for `rate_limit.endpoints` in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sidecar.ratelimit.bucket import TokenBucket


class Gate(Protocol):
    def due(self, lane: int, limit: int, now: float) -> float:
        """0.0 when a take for `limit` in `lane` may succeed now, else the seconds until it
        may (a hint for the waker; only `take` decides)."""

    async def take(self, lane: int, limit: int, now: float, horizon: float) -> float:
        """Take one token of the global bucket and of `limit`'s (see the module's doc)."""

    def estimate(self, ahead: int, same_limit_ahead: int, limit: int, now: float) -> float:
        """Seconds until a call behind `ahead` others (`same_limit_ahead` of its own limit)
        would get its tokens: a queue position, for refusing at once what cannot make it."""

    def set_rate(self, rate: float, now: float) -> None:
        """The global rate from now on (AIMD after a 429)."""

    def tokens(self, limit: int, now: float) -> float:
        """Tokens of the global bucket (limit 0) or of an endpoint's, as far as known here."""


class LocalGate:
    """The process's own buckets. Never reserves: waiting happens in the limiter's queue, where
    critical calls can still go ahead."""

    __slots__ = ("buckets", "main")

    def __init__(self, rate: float, burst: float, endpoints: Sequence[tuple[float, float]],
                 now: float, *, empty: bool = False) -> None:
        start = 0.0 if empty else None
        self.main = TokenBucket(rate, burst, now, start)
        self.buckets: tuple[TokenBucket | None, ...] = (
            None, *(TokenBucket(r, b, now, start) for r, b in endpoints))

    def due(self, lane: int, limit: int, now: float) -> float:
        due = self.main.time_until(1, now)
        bucket = self.buckets[limit]
        if bucket is not None:
            other = bucket.time_until(1, now)
            if other > due:
                return other
        return due

    def take_now(self, limit: int, now: float) -> bool:
        """The synchronous take (the limiter's fast path): True when both tokens were taken."""
        bucket = self.buckets[limit]
        if self.main.time_until(1, now) != 0.0 or (
                bucket is not None and bucket.time_until(1, now) != 0.0):
            return False
        self.main.take(1, now)
        if bucket is not None:
            bucket.take(1, now)
        return True

    async def take(self, lane: int, limit: int, now: float, horizon: float) -> float:
        if self.take_now(limit, now):
            return 0.0
        return -max(self.due(lane, limit, now), 1e-9)

    def estimate(self, ahead: int, same_limit_ahead: int, limit: int, now: float) -> float:
        estimate = self.main.time_until(ahead + 1, now)
        bucket = self.buckets[limit]
        if bucket is not None:
            estimate = max(estimate, bucket.time_until(same_limit_ahead + 1, now))
        return estimate

    def set_rate(self, rate: float, now: float) -> None:
        self.main.set_rate(rate, now)

    def tokens(self, limit: int, now: float) -> float:
        bucket = self.buckets[limit] if limit else self.main
        return max(0.0, bucket.tokens(now)) if bucket is not None else 0.0
