"""Circuit breaker rules: the table of legal transitions, overrides, the snapshot.

The names (states, overrides, reasons) are in `sidecar.vocabulary`.

The machine itself lives in `sidecar.policies.breaker`. Every state change goes through the
`TRANSITIONS` table; anything outside it is a bug in the breaker and raises `IllegalTransition`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sidecar.vocabulary import BreakerState, Override, TransitionReason

_S = BreakerState

# Legal (from, to) pairs. CLOSED -> HALF_OPEN is absent (a probe follows an open period), and so
# is OPEN -> OPEN: a probe fails from HALF_OPEN. Any state may be reset or overridden; the
# overrides leave only by reset / override NONE (-> CLOSED) or by switching to the other one.
TRANSITIONS: dict[BreakerState, frozenset[BreakerState]] = {
    _S.CLOSED: frozenset({_S.OPEN, _S.FORCED_OPEN, _S.DISABLED}),
    _S.OPEN: frozenset({_S.HALF_OPEN, _S.CLOSED, _S.FORCED_OPEN, _S.DISABLED}),
    _S.HALF_OPEN: frozenset({_S.CLOSED, _S.OPEN, _S.FORCED_OPEN, _S.DISABLED}),
    _S.FORCED_OPEN: frozenset({_S.CLOSED, _S.DISABLED}),
    _S.DISABLED: frozenset({_S.CLOSED, _S.FORCED_OPEN}),
}

OVERRIDE_STATES = frozenset({_S.FORCED_OPEN, _S.DISABLED})

# Each override and the state it forces (NONE: leave the override, back to CLOSED).
OVERRIDES: dict[Override, BreakerState | None] = {
    Override.NONE: None,
    Override.FORCED_OPEN: _S.FORCED_OPEN,
    Override.DISABLED: _S.DISABLED,
}
_OVERRIDE_REASONS = {_S.FORCED_OPEN: TransitionReason.OVERRIDE_FORCED_OPEN,
                     _S.DISABLED: TransitionReason.OVERRIDE_DISABLED}


def override_reason(state: BreakerState) -> TransitionReason:
    return _OVERRIDE_REASONS[state]


# A permit is the breaker's generation number when it was granted. Every transition and every
# reset starts a new generation, so a result that arrives for an older one is stale and ignored.
Permit = int


class IllegalTransition(RuntimeError):
    """A transition outside the table was attempted: a bug, answered as INTERNAL."""

    def __init__(self, breaker: str, from_state: BreakerState, to_state: BreakerState) -> None:
        super().__init__(
            f"breaker {breaker!r}: illegal transition {from_state.value} -> {to_state.value}"
        )
        self.from_state = from_state
        self.to_state = to_state


def check_transition(breaker: str, from_state: BreakerState, to_state: BreakerState) -> None:
    if to_state not in TRANSITIONS[from_state]:
        raise IllegalTransition(breaker, from_state, to_state)


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """One breaker, as GetStatus shows it. Times are wall-clock seconds."""

    name: str
    state: BreakerState
    consecutive_failures: int
    opened_at: float | None  # when it last opened (kept while half-open); None when closed
    next_probe_in_s: float | None  # OPEN: time left; HALF_OPEN: 0.0; otherwise None
    state_since: float
    failure_threshold: int
    recovery_timeout_s: float
    total_failures: int
    total_successes: int
    half_open_in_flight: int
