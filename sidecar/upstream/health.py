"""How OANDA has been answering lately: healthy, degraded or down. A subscriber of attempts."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from sidecar.clock import Clock
from sidecar.events import AttemptFinished, EventBus

WINDOW_S = 60.0
DEGRADED_ERROR_RATE = 0.1
DOWN_ERROR_RATE = 0.5
DOWN_CONSECUTIVE = 3


@dataclass(frozen=True, slots=True)
class UpstreamSnapshot:
    health: str  # "healthy", "degraded", "down"
    last_success: float | None  # wall seconds
    last_error: float | None
    last_error_message: str
    recent_error_rate: float
    base_url: str


_FAILURE_4XX = frozenset({401, 403, 429})


def is_failure_status(status: int) -> bool:
    """An outage sign from OANDA: 5xx, 429, 401/403. Other 4xx are answers (a rejected order),
    not outages. The breaker, the recovery probe and the health view all use this one rule."""
    return status >= 500 or status in _FAILURE_4XX


def is_upstream_failure(event: AttemptFinished) -> bool:
    """An attempt that failed: no answer at all, or a failure status."""
    return event.status is None or is_failure_status(event.status)


class UpstreamHealthTracker:
    def __init__(self, bus: EventBus, clock: Clock, base_url: str) -> None:
        self._clock = clock
        self._base_url = base_url
        self._recent: deque[tuple[float, bool]] = deque()
        self._consecutive_failures = 0
        self._last_success: float | None = None
        self._last_error: float | None = None
        self._last_error_message = ""
        bus.subscribe(AttemptFinished, self._on_attempt)

    def _on_attempt(self, event: AttemptFinished) -> None:
        now = self._clock.monotonic()
        failed = is_upstream_failure(event)
        self._recent.append((now, failed))
        self._trim(now)
        if failed:
            self._consecutive_failures += 1
            self._last_error = event.at
            self._last_error_message = event.error_message or f"HTTP {event.status}"
        else:
            self._consecutive_failures = 0
            self._last_success = event.at

    def _trim(self, now: float) -> None:
        while self._recent and self._recent[0][0] < now - WINDOW_S:
            self._recent.popleft()
        while len(self._recent) > 10_000:
            self._recent.popleft()

    def snapshot(self) -> UpstreamSnapshot:
        self._trim(self._clock.monotonic())
        total = len(self._recent)
        rate = sum(failed for _, failed in self._recent) / total if total else 0.0
        mostly_failing = total >= 5 and rate >= DOWN_ERROR_RATE
        if self._consecutive_failures >= DOWN_CONSECUTIVE or mostly_failing:
            health = "down"
        elif rate >= DEGRADED_ERROR_RATE or self._consecutive_failures:
            health = "degraded"
        else:
            health = "healthy"
        return UpstreamSnapshot(health, self._last_success, self._last_error,
                                self._last_error_message, rate, self._base_url)
