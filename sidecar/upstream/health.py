"""How OANDA has been answering lately: healthy, degraded or down. A subscriber of attempts.

A status view only: what counts as a failure is `sidecar.vocabulary.classify`, which the breaker,
the probe and the degradation controller use too."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from sidecar.clock import Clock
from sidecar.events import AttemptFinished, EventBus
from sidecar.vocabulary import UpstreamHealth, classify

WINDOW_S = 60.0
DEGRADED_ERROR_RATE = 0.1
DOWN_ERROR_RATE = 0.5
DOWN_CONSECUTIVE = 3


@dataclass(frozen=True, slots=True)
class UpstreamSnapshot:
    health: UpstreamHealth
    last_success: float | None  # wall seconds
    last_error: float | None
    last_error_message: str
    recent_error_rate: float
    base_url: str


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
        failed = classify(event.status).is_failure
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
            health = UpstreamHealth.DOWN
        elif rate >= DEGRADED_ERROR_RATE or self._consecutive_failures:
            health = UpstreamHealth.DEGRADED
        else:
            health = UpstreamHealth.HEALTHY
        return UpstreamSnapshot(health, self._last_success, self._last_error,
                                self._last_error_message, rate, self._base_url)
