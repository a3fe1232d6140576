"""The degradation controller: NONE, CACHED_DATA or READ_ONLY, decided from events.

It is not a policy. It listens to the bus and keeps one level that two policies read: the
read-only gate (writes refused at READ_ONLY) and the cache fallback (reads answered from cache
while degraded). The recovery probe reports its results here.

Automatic rules (each new failure restarts the probe's success streak):
- a breaker turns OPEN or FORCED_OPEN                                  → READ_ONLY
- `outage_connection_failures` attempts in a row found no connection   → READ_ONLY
- within `failed_read_window_s`, at least `enter_failed_reads` reads failed after retries and
  they are at least half of the reads that finished                    → CACHED_DATA
- while degraded, enough probe successes in a row                      → NONE
- an operator resets a breaker or clears its override                  → NONE
The level only rises on failures and only falls through the probe (or an operator): a lucky call
during an outage cannot bring it back, and an unlucky read in a healthy period cannot degrade it.
Against flapping, "enough" is `recovery_successes`, doubled each time a degraded level comes back
within `flap_window_s` of the last recovery (at most 8x), and reset once a recovery holds.

Manual: `set_manual(level, reason)` holds a level until `set_manual("automatic", ...)`. The
automatic state keeps running underneath, so handing back shows what the events say now.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from sidecar.clock import Clock
from sidecar.degradation.config import DegradationConfig
from sidecar.errors import InvalidRequest
from sidecar.events import (
    AttemptFinished,
    BreakerTransition,
    DegradationChanged,
    EventBus,
    RetryGivenUp,
)
from sidecar.vocabulary import (
    AUTOMATIC,
    LEVEL_RANK,
    NO_CONNECTION,
    OPERATOR_CLOSED,
    READ_FAILED_REASONS,
    BreakerState,
    Level,
    TransitionReason,
    classify,
)

NONE, CACHED_DATA, READ_ONLY = Level.NONE, Level.CACHED_DATA, Level.READ_ONLY
_FAILED_READ_SHARE = 0.5
_BREAKER_OPEN_STATES = frozenset({BreakerState.OPEN, BreakerState.FORCED_OPEN})
_MAX_DOUBLINGS = 3
_MAX_READS_KEPT = 10_000


class LevelView(Protocol):
    """What the read-only gate and the cache fallback read of the controller, on every call."""

    level: Level

    @property
    def reason(self) -> str: ...


@dataclass(frozen=True, slots=True)
class DegradationSnapshot:
    level: Level  # the effective level
    reason: str
    since: float  # wall seconds of the last change of level or of manual/automatic
    manual: bool
    automatic_level: Level  # what the events say, even while a manual level is held
    probe_successes: int  # the current streak
    required_successes: int  # the streak that returns to NONE (grows when flapping)
    waiting_for: str = ""  # what the level waits for before it comes down


class DegradationController:
    """Holds the level. `level` is a plain attribute: the request path reads it per call."""

    def __init__(self, config: DegradationConfig, clock: Clock, bus: EventBus) -> None:
        self._config = config
        self._clock = clock
        self._bus = bus
        self.level: Level = NONE
        self._reason = ""
        self._manual = False
        self._published_manual = False
        self._since = clock.wall()
        self._auto_level: Level = NONE
        self._auto_reason = ""
        self._manual_level: Level = NONE
        self._manual_reason = ""
        self._reads: deque[tuple[float, bool]] = deque()  # (monotonic, failed) per finished read
        self._failed_in_window = 0
        self._connection_failures = 0
        self._probe_successes = 0
        self._doublings = 0
        self._recovered_at: float | None = None
        self._degraded = asyncio.Event()
        self._open_breakers: set[str] = set()
        bus.subscribe(BreakerTransition, self._on_breaker)
        bus.subscribe(AttemptFinished, self._on_attempt)
        bus.subscribe(RetryGivenUp, self._on_given_up)

    # -- what the views and the probe ask --------------------------------------------------

    @property
    def reason(self) -> str:
        return self._reason

    @property
    def needs_probe(self) -> bool:
        """True while the automatic level is degraded (a manual hold does not stop probing)."""
        return self._auto_level != NONE

    @property
    def required_successes(self) -> int:
        return int(self._config.recovery_successes) << self._doublings

    async def wait_until_degraded(self) -> None:
        await self._degraded.wait()

    def snapshot(self) -> DegradationSnapshot:
        return DegradationSnapshot(self.level, self._reason, self._since, self._manual,
                                   self._auto_level, self._probe_successes,
                                   self.required_successes, self.waiting_for())

    def waiting_for(self) -> str:
        """What the level waits for before it comes down, in words for the operator."""
        if self._manual:
            return "an operator: held manually (SetDegradation AUTOMATIC hands back)"
        if self._auto_level == READ_ONLY and self._open_breakers:
            names = ", ".join(f"'{n}'" for n in sorted(self._open_breakers))
            return f"circuit breaker {names} to close (its next probe answered by OANDA)"
        if self._auto_level == READ_ONLY:
            return (f"one probe answered by OANDA (every "
                    f"{self._config.probe_interval_s:g} s)")
        if self._auto_level == CACHED_DATA:
            return f"recovery {self._probe_successes}/{self.required_successes} probes ok"
        return ""

    # -- inputs ----------------------------------------------------------------------------

    def set_manual(self, level: str, reason: str) -> None:
        """Hold `level` ("none", "cached_data", "read_only"), or hand back with "automatic"."""
        if level == AUTOMATIC:
            self._manual = False
        elif level in LEVEL_RANK:
            self._manual = True
            self._manual_level, self._manual_reason = Level(level), reason
        else:
            raise InvalidRequest(f"unknown degradation level {level!r}", field="level")
        self._publish_if_changed()

    def record_probe(self, ok: bool, detail: str) -> None:
        """One probe result. READ_ONLY for want of a connection ends at the first probe OANDA
        answers (READ_ONLY for an open breaker ends when that breaker closes); CACHED_DATA
        needs enough successes in a row."""
        if not ok:
            self._probe_successes = 0
            return
        if self._auto_level == NONE:
            return
        if self._auto_level == READ_ONLY:
            if not self._open_breakers:
                self._recovered_at = self._clock.monotonic()
                self._set_auto(NONE, f"recovered: OANDA answered the probe ({detail})")
            return
        self._probe_successes += 1
        if self._probe_successes >= self.required_successes:
            n = self._probe_successes
            self._recovered_at = self._clock.monotonic()
            self._set_auto(NONE, f"recovered: {n} probe successes in a row ({detail})")

    def _on_breaker(self, event: BreakerTransition) -> None:
        if event.to_state in _BREAKER_OPEN_STATES:
            self._open_breakers.add(event.breaker)
            why = f": {event.last_error}" if event.last_error else ""
            self._escalate(READ_ONLY, f"circuit breaker '{event.breaker}' "
                                      f"{event.to_state.replace('_', ' ')}{why}")
            return
        if event.to_state == BreakerState.HALF_OPEN:
            return  # still not serving: its probe decides
        self._open_breakers.discard(event.breaker)
        if event.reason in OPERATOR_CLOSED and self._auto_level != NONE:
            # The operator vouches for OANDA: one command, not a reset and a wait for probes.
            self._doublings = 0
            self._set_auto(NONE, f"circuit breaker '{event.breaker}' {event.reason} "
                                 "by an operator")
        elif (event.reason == TransitionReason.PROBE_SUCCEEDED and self._auto_level == READ_ONLY
              and not self._open_breakers):
            # OANDA answered the breaker's probe: writes flow again at once, nothing is added
            # to the breaker's own recovery timeout.
            self._recovered_at = self._clock.monotonic()
            self._set_auto(NONE, f"recovered: circuit breaker '{event.breaker}' closed, OANDA "
                                 "answered its probe")

    def _on_attempt(self, event: AttemptFinished) -> None:
        if event.error_type in NO_CONNECTION:
            self._connection_failures += 1
            if self._connection_failures >= self._config.outage_connection_failures:
                self._escalate(READ_ONLY, f"OANDA unreachable: {self._connection_failures} "
                                          f"attempts in a row without a connection "
                                          f"({event.error_type})")
        elif event.status is not None:
            self._connection_failures = 0
            if event.method == "GET" and not classify(event.status).is_failure:
                self._add_read(False)

    def _on_given_up(self, event: RetryGivenUp) -> None:
        if event.method != "GET" or event.reason not in READ_FAILED_REASONS:
            return
        failed, total = self._add_read(True)
        if failed >= self._config.enter_failed_reads and failed >= total * _FAILED_READ_SHARE:
            self._escalate(CACHED_DATA, f"{failed} of {total} reads failed after retries in "
                                        f"{self._config.failed_read_window_s:g} s (last: GET "
                                        f"{event.endpoint}, {event.reason})")

    # -- state -----------------------------------------------------------------------------

    def _add_read(self, failed: bool) -> tuple[int, int]:
        now = self._clock.monotonic()
        reads = self._reads
        reads.append((now, failed))
        self._failed_in_window += failed
        horizon = now - self._config.failed_read_window_s
        while reads and (reads[0][0] < horizon or len(reads) > _MAX_READS_KEPT):
            self._failed_in_window -= reads.popleft()[1]
        return self._failed_in_window, len(reads)

    def _escalate(self, level: Level, reason: str) -> None:
        self._probe_successes = 0  # a fresh failure: recovery starts over
        if LEVEL_RANK[level] > LEVEL_RANK[self._auto_level]:
            self._set_auto(level, reason)

    def _set_auto(self, level: Level, reason: str) -> None:
        was = self._auto_level
        self._auto_level, self._auto_reason = level, reason
        self._probe_successes = 0
        if level == NONE:
            self._reads.clear()
            self._failed_in_window = 0
            self._connection_failures = 0
            self._degraded.clear()
        else:
            if was == NONE:
                self._count_flap()
            self._degraded.set()
        self._publish_if_changed()

    def _count_flap(self) -> None:
        recovered = self._recovered_at
        if recovered is not None and (
                self._clock.monotonic() - recovered <= self._config.flap_window_s):
            self._doublings = min(self._doublings + 1, _MAX_DOUBLINGS)
        else:
            self._doublings = 0

    def _publish_if_changed(self) -> None:
        if self._manual:
            level, reason = self._manual_level, self._manual_reason
        else:
            level, reason = self._auto_level, self._auto_reason
        before = self.level
        # At NONE (automatic) nothing is wrong: the status says no old reason. The change
        # event still carries why it came back.
        self._reason = reason if self._manual or level != NONE else ""
        if level == before and self._manual == self._published_manual:
            return
        self.level = level
        self._published_manual = self._manual
        self._since = self._clock.wall()
        # State first, then publish: a subscriber asking for a snapshot sees the new level.
        self._bus.publish(DegradationChanged(at=self._since, from_level=before, to_level=level,
                                             reason=reason, manual=self._manual))
