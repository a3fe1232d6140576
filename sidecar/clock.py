"""Time, injected: policies ask a Clock, never `time` or `asyncio.sleep` directly."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a monotonic scale, for intervals and deadlines."""

    def wall(self) -> float:
        """Seconds since the epoch, for timestamps shown to people."""

    async def sleep(self, seconds: float) -> None:
        """Wait this long (or not at all for seconds <= 0)."""


class SystemClock:
    """The real clock."""

    __slots__ = ()

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock for tests: time moves only when told to, and every sleep is recorded.

    With `auto_advance` (the default) a sleep moves time forward by its own length at once, so
    sequential code runs without real waiting; `clock.sleeps` lists what was slept. Without it,
    sleepers wait until `advance()` moves time past their wake-up point.
    """

    def __init__(self, start: float = 1000.0, *, wall_start: float = 1_700_000_000.0,
                 auto_advance: bool = True) -> None:
        self._now = start
        self._wall_offset = wall_start - start
        self.auto_advance = auto_advance
        self.sleeps: list[float] = []
        self._waiters: list[tuple[float, asyncio.Future[None]]] = []

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now + self._wall_offset

    async def sleep(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.sleeps.append(seconds)
        if self.auto_advance:
            self.advance(seconds)
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self._now + seconds, fut))
        await fut

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose time has come."""
        self._now += seconds
        due = [w for w in self._waiters if w[0] <= self._now]
        self._waiters = [w for w in self._waiters if w[0] > self._now]
        for _, fut in due:
            if not fut.done():
                fut.set_result(None)


def rfc3339(wall: float) -> str:
    """Wall-clock seconds as RFC 3339 UTC with microseconds, the one time format of every
    status surface (gRPC Timestamps render the same way in JSON)."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="microseconds").replace(
        "+00:00", "Z")
