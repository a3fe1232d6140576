"""The operator's view: one snapshot of breakers, limiter, degradation and upstream health.

Each part only needs a `snapshot()` (or `snapshots()` for the breaker registry); a part may be
absent (None) where a test builds the view alone. Watchers are woken on every breaker or
degradation change.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol

from sidecar.events import (
    BreakerTransition,
    DegradationChanged,
    Event,
    EventBus,
    SharedLimitChanged,
    StreamChanged,
)


class _Snapshotting(Protocol):
    def snapshot(self) -> Any: ...


class _Registry(Protocol):
    def snapshots(self) -> list[Any]: ...


@dataclass(frozen=True, slots=True)
class StatusSnapshot:
    breakers: list[Any]
    rate_limit: Any | None
    degradation: Any | None
    upstream: Any | None
    ready: bool
    holds_kept: bool = False
    decisions: list[Any] | None = None
    streams: list[Any] = field(default_factory=list)


class StatusBoard:
    def __init__(self, bus: EventBus, *, breakers: _Registry | None = None,
                 limiter: _Snapshotting | None = None, degradation: _Snapshotting | None = None,
                 upstream: _Snapshotting | None = None, decisions: Any | None = None,
                 holds_kept: bool = False, streams: _Registry | None = None) -> None:
        self.breakers = breakers
        self.limiter = limiter
        self.degradation = degradation
        self.upstream = upstream
        self.decisions = decisions
        self.holds_kept = holds_kept
        self.streams = streams
        self.ready = False
        self._version = 0
        self._changed = asyncio.Event()
        bus.subscribe(BreakerTransition, self._on_change)
        bus.subscribe(DegradationChanged, self._on_change)
        bus.subscribe(SharedLimitChanged, self._on_change)
        bus.subscribe(StreamChanged, self._on_change)

    def snapshot(self) -> StatusSnapshot:
        return StatusSnapshot(
            breakers=self.breakers.snapshots() if self.breakers else [],
            rate_limit=self.limiter.snapshot() if self.limiter else None,
            degradation=self.degradation.snapshot() if self.degradation else None,
            upstream=self.upstream.snapshot() if self.upstream else None,
            ready=self.ready,
            holds_kept=self.holds_kept,
            decisions=self.decisions.snapshot() if self.decisions else [],
            streams=self.streams.snapshots() if self.streams else [],
        )

    def _on_change(self, event: Event) -> None:
        self.notify()

    def notify(self) -> None:
        """Wake every watcher (a change not carried by an event, e.g. readiness)."""
        self._version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    @property
    def version(self) -> int:
        return self._version

    async def wait_for_change(self, seen_version: int) -> int:
        """Return the new version once it differs from `seen_version`."""
        while self._version == seen_version:
            await self._changed.wait()
        return self._version
