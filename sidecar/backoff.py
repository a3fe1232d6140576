"""Exponential backoff with jitter, and the Retry-After parse: the one copy for the whole tree.

Retry, alert delivery and stream reconnects all wait with these pure functions.

After attempt n (1-based) fails, the wait is at most `min(cap, base * 2**(n-1))`. Jitter spreads
the retries of many callers so an outage does not come back as synchronised waves ("Exponential
Backoff And Jitter", AWS Architecture Blog): `full` draws from [0, ceiling], `equal` from
[ceiling/2, ceiling], `none` waits the ceiling itself.
"""

from __future__ import annotations

import math
import random

JITTER_MODES = ("full", "equal", "none")



def backoff_ceiling(attempt: int, base: float, cap: float) -> float:
    """The longest wait after `attempt` failed: `min(cap, base * 2**(attempt-1))`."""
    if attempt < 1:
        raise ValueError(f"attempt must be 1 or more, got {attempt}")
    if not (base >= 0 and cap >= 0):  # also rejects NaN
        raise ValueError(f"base and cap must be >= 0, got base={base} cap={cap}")
    if base == 0:
        return 0.0
    try:  # ldexp is exact (base * 2**n) and raises instead of overflowing to inf silently
        return min(cap, math.ldexp(base, attempt - 1))
    except OverflowError:
        return cap


def backoff_delay(attempt: int, base: float, cap: float, jitter: str,
                  rng: random.Random) -> float:
    """The wait after `attempt` failed, jittered with `rng` (never negative, never above cap)."""
    ceiling = backoff_ceiling(attempt, base, cap)
    if jitter == "full":
        return ceiling * rng.random()
    if jitter == "equal":
        half = ceiling / 2
        return min(ceiling, half + half * rng.random())
    if jitter == "none":
        return ceiling
    raise ValueError(f"jitter must be one of {JITTER_MODES}, got {jitter!r}")


def honour_retry_after(delay: float, retry_after_s: float | None, cap: float) -> float:
    """`delay`, but never shorter than a server-given Retry-After; both capped at `cap`."""
    if retry_after_s is not None and retry_after_s > delay:
        delay = retry_after_s
    return min(cap, max(0.0, delay))


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header; None when absent, or an HTTP-date (neither OANDA nor
    the alert receivers use those: fall back to our own backoff rather than guess)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds) if seconds == seconds else None  # NaN is no wait
