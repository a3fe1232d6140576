"""Silence detection on the injected clock: no line for `timeout_s` means a stale stream."""

from __future__ import annotations

from sidecar.clock import Clock


class Watchdog:
    """`touch()` on every line; `await silent()` returns once nothing came for `timeout_s`.

    No timer per line: the waiter sleeps until the earliest moment the stream could be silent
    long enough, then looks again (a line meanwhile just moves that moment on).
    """

    __slots__ = ("_clock", "_last", "timeout_s")

    def __init__(self, clock: Clock, timeout_s: float) -> None:
        self._clock = clock
        self.timeout_s = timeout_s
        self._last = clock.monotonic()

    def touch(self) -> None:
        self._last = self._clock.monotonic()

    @property
    def silent_for(self) -> float:
        return self._clock.monotonic() - self._last

    async def silent(self) -> float:
        """Wait for `timeout_s` of silence; returns how long it has actually been."""
        while True:
            remaining = self._last + self.timeout_s - self._clock.monotonic()
            if remaining <= 0:
                return self.silent_for
            await self._clock.sleep(remaining)
