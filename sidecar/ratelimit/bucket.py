"""Rate-limit arithmetic, pure: no asyncio, no clock. Every method is told `now`.

The one token bucket of the tree: the limiter's local buckets, its fallback while Redis is away
and the connection pacer all use it. It holds at most `burst` tokens and gains `rate` per second.
Admitting only when a whole token is present keeps every window of length t at or under
`rate * t + burst` admissions; `reserve` lets a caller book the next token ahead (FIFO by
construction: the tokens go negative and later callers wait behind the debt).
"""

from __future__ import annotations

import math

# Float slack: after waiting exactly `time_until()`, refill may land a hair under a whole token.
_EPSILON = 1e-9


class TokenBucket:
    """A token bucket; `time_until` is the decision (0.0 or the seconds until n tokens)."""

    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, burst: float, now: float,
                 tokens: float | None = None) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self._rate = rate
        self._burst = burst
        # Full by default: an idle service may send a burst at once. A fallback bucket starts
        # empty instead (tokens=0): what the shared bucket admitted just before still counts.
        self._tokens = burst if tokens is None else min(tokens, burst)
        self._stamp = now

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def burst(self) -> float:
        return self._burst

    def _refill(self, now: float) -> None:
        elapsed = now - self._stamp
        if elapsed > 0.0:
            tokens = self._tokens + elapsed * self._rate
            self._tokens = tokens if tokens < self._burst else self._burst
            self._stamp = now

    def tokens(self, now: float) -> float:
        """Tokens available at `now` (never more than `burst`)."""
        self._refill(now)
        return self._tokens

    def time_until(self, n: float, now: float) -> float:
        """0.0 if `n` tokens are available at `now`, else the seconds until the bucket has produced
        them at the current rate. For n > burst this is an estimate (used for queue positions)."""
        self._refill(now)
        deficit = n - self._tokens
        if deficit <= _EPSILON:
            return 0.0
        return deficit / self._rate

    def take(self, n: float, now: float) -> None:
        """Spend `n` tokens; the caller checked `time_until(n, now) == 0.0` first."""
        self._refill(now)
        if n - self._tokens > _EPSILON:
            raise ValueError(f"taking {n} tokens with {self._tokens:.6f} available")
        self._tokens -= n

    def reserve(self, now: float, horizon: float) -> float | None:
        """Book one token: 0.0 (take it now), the seconds until the booked token is due when
        that is within `horizon`, or None (nothing booked)."""
        wait = self.time_until(1, now)
        if wait > horizon:
            return None
        self._tokens -= 1
        return wait

    def set_rate(self, rate: float, now: float) -> None:
        """Change the refill rate from `now` on; tokens earned so far are kept."""
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self._refill(now)
        self._rate = rate


WINDOW_S = 1.0  # OANDA counts requests per sliding second


class AdaptiveRate:
    """AIMD for the bucket's rate: multiply by `decrease_factor` on congestion (not below
    `min_rate`), then add back `recovery_per_s` per second since the last decrease, up to the
    configured rate. Computed lazily from `now`, so no timer is needed."""

    __slots__ = ("_configured", "_decreased_at", "_factor", "_min", "_rate", "_recovery",
                 "_restart")

    def __init__(self, configured: float, *, decrease_factor: float, recovery_per_s: float,
                 min_rate: float) -> None:
        self._configured = configured
        self._factor = decrease_factor
        self._recovery = recovery_per_s
        self._min = min(min_rate, configured)
        self._rate = configured
        self._decreased_at = -math.inf
        self._restart = configured  # the rate right after the last decrease

    @property
    def rate(self) -> float:
        """The rate as of the last `recover` or `decrease`."""
        return self._rate

    def recover(self, now: float) -> float:
        """The rate at `now` after linear recovery."""
        if self._rate < self._configured:
            elapsed = max(0.0, now - self._decreased_at)
            self._rate = min(self._configured, self._restart + self._recovery * elapsed)
        return self._rate

    def decrease(self, sent_at: float, now: float) -> bool:
        """Congestion seen for a request sent at `sent_at`; returns whether this one counted.
        One cut per OANDA window: a request sent less than WINDOW_S after the last decrease
        shares the sliding second that earned the last cut, so its 429 says nothing of the new
        rate. (Cutting once per round trip instead took a burst of five 429s within 80 ms from
        100/s to the 5/s floor, found by the soak.)"""
        if sent_at < self._decreased_at + WINDOW_S:
            return False
        rate = max(self._min, self.recover(now) * self._factor)
        self._rate = self._restart = rate
        self._decreased_at = now
        return True
