"""OANDA's hard limit as the simulator enforces it: N requests per token in any 1 s window."""

from __future__ import annotations

from collections import deque


class SlidingWindowLimit:
    """Exact sliding window: a deque of arrival times per token. Every arrival counts, the
    refused ones too, so a client that keeps hammering keeps being refused."""

    __slots__ = ("_arrivals", "limit", "window_s")

    def __init__(self, limit: int, window_s: float = 1.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._arrivals: dict[str, deque[float]] = {}

    def arrive(self, key: str, now: float) -> bool:
        """Record an arrival at `now`; True when it is within the limit."""
        q = self._arrivals.get(key)
        if q is None:
            q = self._arrivals[key] = deque()
        horizon = now - self.window_s
        while q and q[0] <= horizon:
            q.popleft()
        q.append(now)
        return len(q) <= self.limit

    def reset(self) -> None:
        self._arrivals.clear()
