"""Circuit breaker: a state machine per upstream, and the policy that consults it on every call.

CLOSED counts consecutive failures and opens at `failure_threshold`. OPEN fails calls at once
with CircuitOpen; once `recovery_timeout_s` has passed, the next call that asks for a permit turns
the breaker HALF_OPEN and becomes a probe (decided lazily: no timer task). At most
`half_open_max_calls` probes are in flight; a probe's success closes the breaker, its failure
reopens it with a fresh timer. FORCED_OPEN and DISABLED are operator overrides.

Decisions documented here:
- FORCED_OPEN rejects with `retry_after_s = recovery_timeout_s`: no probe is scheduled, so this is
  only a pacing hint for clients (and keeps BreakerRejected.retry_after_s a number).
- While half-open probes are all in flight, rejections say `retry_after_s = min(1 s, recovery)`:
  the probe's verdict is due within one request timeout, not a whole recovery period.
- A 4xx other than 401/403/429 is an answer, so it counts as a success (resets the count).
- `reset()` works from every state, overrides included: an operator's reset clears the override.
  `set_override("none")` leaves an override for CLOSED; without an active override it does
  nothing (closing a tripped breaker is what `reset()` is for).
- Reset and entering an override clear the consecutive count and the last error; the lifetime
  totals (`total_failures`, `total_successes`) are never cleared and count every outcome,
  including stale ones and those seen while DISABLED.
- A permit is a generation number; results for an older generation (the breaker changed state or
  was reset meanwhile) move only the totals.
"""

from __future__ import annotations

from collections.abc import Sequence

from sidecar.clock import Clock
from sidecar.config import BreakerConfig
from sidecar.errors import CircuitOpen, InvalidRequest, UpstreamError
from sidecar.events import BreakerRejected, BreakerTransition, EventBus
from sidecar.pipeline import Call, Handler, Response
from sidecar.policies.breaker_state import (
    OVERRIDE_STATES,
    OVERRIDES,
    BreakerSnapshot,
    IllegalTransition,
    Permit,
    check_transition,
    override_reason,
)
from sidecar.vocabulary import BreakerState, Override, TransitionReason, classify

__all__ = [
    "BreakerPolicy",
    "BreakerRegistry",
    "BreakerSnapshot",
    "BreakerState",
    "CircuitBreaker",
    "IllegalTransition",
    "Permit",
]

_CLOSED = BreakerState.CLOSED
_OPEN = BreakerState.OPEN
_HALF_OPEN = BreakerState.HALF_OPEN
_FORCED_OPEN = BreakerState.FORCED_OPEN
_DISABLED = BreakerState.DISABLED

_PROBE_BUSY_RETRY_S = 1.0


class CircuitBreaker:
    """One named breaker. `acquire()` and the `on_*` calls are synchronous and cheap."""

    __slots__ = (
        "_bus",
        "_clock",
        "_consecutive",
        "_gen",
        "_last_error",
        "_max_probes",
        "_opened_mono",
        "_opened_wall",
        "_probes",
        "_recovery_s",
        "_since_wall",
        "_state",
        "_threshold",
        "_total_failures",
        "_total_successes",
        "name",
    )

    def __init__(self, name: str, config: BreakerConfig, clock: Clock, bus: EventBus) -> None:
        self.name = name
        self._threshold = config.failure_threshold
        self._recovery_s = config.recovery_timeout_s
        self._max_probes = config.half_open_max_calls
        self._clock = clock
        self._bus = bus
        self._state = _CLOSED
        self._gen: Permit = 0
        self._consecutive = 0
        self._probes = 0
        self._opened_mono = 0.0
        self._opened_wall: float | None = None
        self._since_wall = clock.wall()
        self._last_error: str | None = None
        self._total_failures = 0
        self._total_successes = 0

    @property
    def state(self) -> BreakerState:
        return self._state

    def acquire(self, endpoint: str = "", *, early_probe: bool = False) -> Permit:
        """A permit to send one call upstream, or CircuitOpen (and a BreakerRejected event).

        `early_probe`: a risk-reducing call (close, cancel) need not wait out the recovery
        timeout: it goes out at once as the half-open probe, within `half_open_max_calls`. A
        trader getting out of the market is worth one request to a struggling OANDA; its
        answer closes or reopens the breaker like any probe's. FORCED_OPEN still refuses it.
        """
        state = self._state
        if state is _CLOSED or state is _DISABLED:
            return self._gen
        if state is _OPEN:
            wait = self._opened_mono + self._recovery_s - self._clock.monotonic()
            if wait > 0 and not early_probe:
                raise self._reject(endpoint, wait)
            self._transition(_HALF_OPEN, TransitionReason.RECOVERY_TIMEOUT if wait <= 0
                             else TransitionReason.RISK_REDUCING_CALL)
        elif state is _FORCED_OPEN:
            raise self._reject(endpoint, self._recovery_s)
        if self._probes >= self._max_probes:
            raise self._reject(endpoint, min(_PROBE_BUSY_RETRY_S, self._recovery_s))
        self._probes += 1
        return self._gen

    def on_success(self, permit: Permit) -> None:
        self._total_successes += 1
        if permit != self._gen:
            return
        state = self._state
        if state is _CLOSED:
            self._consecutive = 0
        elif state is _HALF_OPEN:
            self._transition(_CLOSED, TransitionReason.PROBE_SUCCEEDED)

    def on_failure(self, permit: Permit, error: str) -> None:
        self._total_failures += 1
        if permit != self._gen:
            return
        state = self._state
        if state is _CLOSED:
            self._consecutive += 1
            self._last_error = error
            if self._consecutive >= self._threshold:
                self._transition(_OPEN, TransitionReason.FAILURE_THRESHOLD)
        elif state is _HALF_OPEN:
            self._consecutive += 1
            self._last_error = error
            self._transition(_OPEN, TransitionReason.PROBE_FAILED)

    def on_ignored(self, permit: Permit) -> None:
        """Neither success nor failure (nothing was sent, or the caller went away)."""
        if permit == self._gen and self._state is _HALF_OPEN and self._probes > 0:
            self._probes -= 1

    def reset(self) -> None:
        """Back to CLOSED with counters cleared, from any state (an override included)."""
        if self._state is _CLOSED:
            self._gen += 1  # results of calls admitted before the reset no longer count
            self._consecutive = 0
            self._last_error = None
            return
        self._transition(_CLOSED, TransitionReason.MANUAL_RESET)

    def set_override(self, override: str) -> None:
        """Apply an operator override: "none", "forced_open" or "disabled" (else InvalidRequest)."""
        try:
            target = OVERRIDES[Override(override.lower())]
        except (KeyError, ValueError):
            raise InvalidRequest(f"unknown breaker override {override!r}",
                                 field="override") from None
        if target is None:
            if self._state in OVERRIDE_STATES:
                self._transition(_CLOSED, TransitionReason.OVERRIDE_CLEARED)
        elif self._state is not target:
            self._transition(target, override_reason(target))

    def snapshot(self) -> BreakerSnapshot:
        state = self._state
        next_probe: float | None = None
        if state is _OPEN:
            next_probe = max(0.0, self._opened_mono + self._recovery_s - self._clock.monotonic())
        elif state is _HALF_OPEN:
            next_probe = 0.0
        return BreakerSnapshot(
            name=self.name, state=state, consecutive_failures=self._consecutive,
            opened_at=self._opened_wall, next_probe_in_s=next_probe,
            state_since=self._since_wall, failure_threshold=self._threshold,
            recovery_timeout_s=self._recovery_s, total_failures=self._total_failures,
            total_successes=self._total_successes, half_open_in_flight=self._probes,
        )

    def _reject(self, endpoint: str, retry_after_s: float) -> CircuitOpen:
        self._bus.publish(BreakerRejected(at=self._clock.wall(), breaker=self.name,
                                          endpoint=endpoint, retry_after_s=retry_after_s))
        return CircuitOpen(f"circuit breaker {self.name!r} is {self._state.value}",
                           retry_after_s=retry_after_s)

    def _transition(self, to: BreakerState, reason: TransitionReason) -> None:
        frm = self._state
        check_transition(self.name, frm, to)
        failures, last_error = self._consecutive, self._last_error
        wall = self._clock.wall()
        self._state = to
        self._gen += 1  # every permit granted before this moment is now stale
        self._probes = 0
        self._since_wall = wall
        if to is _OPEN:
            self._opened_mono = self._clock.monotonic()
            self._opened_wall = wall
        elif to is _FORCED_OPEN:
            self._opened_wall = wall
        if to is not _OPEN and to is not _HALF_OPEN:
            self._consecutive = 0
            self._last_error = None
            if to is not _FORCED_OPEN:
                self._opened_wall = None
        # State first, then publish: a subscriber that asks for a snapshot sees the new state.
        self._bus.publish(BreakerTransition(
            at=wall, breaker=self.name, from_state=frm, to_state=to, reason=reason,
            consecutive_failures=failures, last_error=last_error,
        ))


class BreakerRegistry:
    """The named breakers (REST: `rest`). Unknown names raise KeyError (Control: NOT_FOUND)."""

    def __init__(self, config: BreakerConfig, clock: Clock, bus: EventBus,
                 names: Sequence[str] = ("rest",)) -> None:
        self._breakers = {name: CircuitBreaker(name, config, clock, bus) for name in names}

    def get(self, name: str) -> CircuitBreaker:
        try:
            return self._breakers[name]
        except KeyError:
            raise KeyError(f"unknown breaker {name!r}") from None

    def reset(self, name: str | None) -> None:
        """Reset one breaker, or all of them when `name` is None or empty."""
        for breaker in self._select(name):
            breaker.reset()

    def set_override(self, name: str | None, override: str) -> None:
        """Override one breaker, or all of them when `name` is None or empty."""
        breakers = self._select(name)
        if override.lower() not in tuple(Override):  # refuse before touching any of them
            raise InvalidRequest(f"unknown breaker override {override!r}", field="override")
        for breaker in breakers:
            breaker.set_override(override)

    def snapshots(self) -> list[BreakerSnapshot]:
        return [breaker.snapshot() for breaker in self._breakers.values()]

    def _select(self, name: str | None) -> list[CircuitBreaker]:
        return list(self._breakers.values()) if not name else [self.get(name)]


class BreakerPolicy:
    """The pipeline policy: ask the breaker for a permit, send, report the verdict."""

    __slots__ = ("_breaker",)

    def __init__(self, registry: BreakerRegistry, name: str = "rest") -> None:
        self._breaker = registry.get(name)

    async def handle(self, call: Call, next: Handler) -> Response:
        breaker = self._breaker
        permit = breaker.acquire(call.endpoint.template, early_probe=call.risk_reducing)
        try:
            response = await next(call)
        except UpstreamError as exc:
            breaker.on_failure(permit, exc.kind)
            raise
        except BaseException:
            # No upstream verdict: RateLimited or DeadlineExceeded from the limiter (nothing was
            # sent), or the caller went away (CancelledError). A probe must give its permit back.
            breaker.on_ignored(permit)
            raise
        status = response.status
        if classify(status).is_failure:
            breaker.on_failure(permit, f"http_{status}")
        else:
            breaker.on_success(permit)
        return response
