"""The WatchStatus fan-out: one status built per change, shared by every watcher.

Each breaker or degradation change is captured once, when it is published (so a short state —
HALF_OPEN for one probe — is streamed even if the next change follows at once), into a short
shared history. A watcher is only a cursor into it: a watcher that stops reading costs nothing
on the publisher's path and holds no backlog; when it has fallen behind the history it skips to
the newest status (newest wins). The number of watchers is capped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from sidecar.errors import RateLimited
from sidecar.events import BreakerTransition, DegradationChanged, Event, EventBus
from sidecar.status import StatusBoard

HISTORY = 32


class StatusFeed:
    def __init__(self, board: StatusBoard, bus: EventBus, build: Callable[[], Any], *,
                 max_watchers: int) -> None:
        self._board = board
        self._build = build
        self._max = max_watchers
        self._history: deque[tuple[int, Any]] = deque(maxlen=HISTORY)  # (sequence, status)
        self._seq = 0
        self._watchers = 0
        bus.subscribe(BreakerTransition, self._capture)
        bus.subscribe(DegradationChanged, self._capture)

    @property
    def watchers(self) -> int:
        return self._watchers

    def _capture(self, event: Event | None = None) -> None:
        if not self._watchers:
            return  # nobody watching: not even one status is built
        self._seq += 1
        self._history.append((self._seq, self._build()))

    async def watch(self) -> AsyncIterator[Any]:
        """The current status, then one per change, until the caller stops iterating."""
        if self._watchers >= self._max:
            raise RateLimited(f"too many WatchStatus streams ({self._max}); close one or poll "
                              "GetStatus", retry_after_s=5.0)
        self._watchers += 1
        try:
            cursor = self._seq
            version = self._board.version
            yield self._build()
            while True:
                version = await self._board.wait_for_change(version)
                fresh = [(seq, status) for seq, status in self._history if seq > cursor]
                if not fresh:  # a change without an event (readiness)
                    yield self._build()
                for seq, status in fresh:
                    cursor = seq
                    yield status
        finally:
            self._watchers -= 1
