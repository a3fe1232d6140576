"""Recent activity for the dashboard: per-bucket counts and recent errors, fed by events.

Each event costs O(1): the counts live in a fixed ring of buckets (90 x 10 s = 15 minutes) that is
reused as time moves on, and error groups live in a bounded LRU. Nothing here grows with traffic.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sidecar.clock import Clock, rfc3339
from sidecar.events import (
    AttemptFinished,
    BreakerRejected,
    EventBus,
    ExecuteFinished,
    RateLimitRejected,
    RetryScheduled,
)
from sidecar.vocabulary import Outcome, Verdict, classify

# The series the ring keeps, in the order of a bucket's counters.
SERIES = ("requests", "errors", "client_errors", "retries", "throttled", "breaker_rejected",
          "rate_limited")
_REQUESTS, _ERRORS, _CLIENT_ERRORS, _RETRIES, _THROTTLED, _BREAKER, _RATE = range(len(SERIES))


@dataclass(slots=True)
class _ErrorGroup:
    endpoint: str
    key: str  # the HTTP status ("503") or the error reason ("circuit_open")
    status: int | None
    method: str
    count: int
    first_seen: float  # wall seconds
    last_seen: float
    message: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "key": self.key, "status": self.status,
                "method": self.method, "count": self.count,
                "first_seen": rfc3339(self.first_seen), "last_seen": rfc3339(self.last_seen),
                "message": self.message}


class Activity:
    """Counts of requests, errors, retries, upstream 429s and rejections per `bucket_s`, over the
    last `window_s`, and the last `max_groups` error groups by (endpoint template, status or
    reason). `snapshot()` is JSON-ready for /api/status.

    An error is an Execute that did not end with a 2xx/3xx answer; 4xx answers are counted apart
    as client errors (a 404 on an order lookup is an answer, not an outage), but they are grouped.
    """

    def __init__(self, bus: EventBus, clock: Clock, *, bucket_s: float = 10.0,
                 window_s: float = 900.0, max_groups: int = 100) -> None:
        if bucket_s <= 0 or window_s < bucket_s or max_groups < 1:
            raise ValueError("need bucket_s > 0, window_s >= bucket_s and max_groups >= 1")
        self._clock = clock
        self._bucket_s = bucket_s
        self._size = math.ceil(window_s / bucket_s)
        self._epochs = [-1] * self._size  # which bucket index each slot currently holds
        self._counts = [[0] * len(SERIES) for _ in range(self._size)]
        self._max_groups = max_groups
        self._groups: OrderedDict[tuple[str, str], _ErrorGroup] = OrderedDict()
        self._unsubscribe: list[Callable[[], None]] = [
            bus.subscribe(ExecuteFinished, self._on_execute),
            bus.subscribe(RetryScheduled, lambda e: self._count(_RETRIES)),
            bus.subscribe(AttemptFinished, self._on_attempt),
            bus.subscribe(BreakerRejected, lambda e: self._count(_BREAKER)),
            bus.subscribe(RateLimitRejected, lambda e: self._count(_RATE)),
        ]

    def close(self) -> None:
        """Stop listening to the bus."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()

    def _bucket(self) -> list[int]:
        index = int(self._clock.monotonic() // self._bucket_s)
        slot = index % self._size
        counts = self._counts[slot]
        if self._epochs[slot] != index:  # the slot still holds a bucket older than the window
            self._epochs[slot] = index
            for i in range(len(counts)):
                counts[i] = 0
        return counts

    def _count(self, series: int) -> None:
        self._bucket()[series] += 1

    def _on_attempt(self, e: AttemptFinished) -> None:
        if e.status is not None and classify(e.status) is Verdict.THROTTLED:
            self._count(_THROTTLED)

    def _on_execute(self, e: ExecuteFinished) -> None:
        counts = self._bucket()
        counts[_REQUESTS] += 1
        if e.outcome == Outcome.OK:
            return
        counts[_CLIENT_ERRORS if e.outcome == Outcome.HTTP_4XX else _ERRORS] += 1
        self._group(e)

    def _group(self, e: ExecuteFinished) -> None:
        key = str(e.status) if e.status is not None else e.outcome
        now = self._clock.wall()
        group = self._groups.get((e.endpoint, key))
        if group is None:
            group = _ErrorGroup(e.endpoint, key, e.status, e.method, 0, now, now, e.error)
            self._groups[(e.endpoint, key)] = group
            if len(self._groups) > self._max_groups:
                self._groups.popitem(last=False)  # the group seen least recently goes
        else:
            self._groups.move_to_end((e.endpoint, key))
        group.count += 1
        group.last_seen = now
        group.method = e.method
        if e.error:
            group.message = e.error

    def snapshot(self) -> dict[str, Any]:
        """Series oldest bucket first (the last one is the current, partial bucket), totals over
        the window, and error groups most recently seen first. Times are wall seconds."""
        mono, wall = self._clock.monotonic(), self._clock.wall()
        current = int(mono // self._bucket_s)
        first = current - self._size + 1
        series: list[list[int]] = [[0] * self._size for _ in SERIES]
        for pos, index in enumerate(range(first, current + 1)):
            slot = index % self._size
            if self._epochs[slot] == index:
                for s, value in enumerate(self._counts[slot]):
                    series[s][pos] = value
        start_at = wall - (mono - first * self._bucket_s)
        return {
            "now": rfc3339(wall),
            "bucket_seconds": self._bucket_s,
            "window_seconds": self._size * self._bucket_s,
            "start_at": rfc3339(start_at),
            "series": dict(zip(SERIES, series, strict=True)),
            "totals": {name: sum(values) for name, values in zip(SERIES, series, strict=True)},
            "recent_errors": [g.as_dict() for g in reversed(self._groups.values())],
        }
