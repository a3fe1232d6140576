"""Which events raise and clear which alert condition.

`ConditionTracker` is pure state: it turns events into `Signal`s ("trigger" or "resolve" for a
condition key) and knows nothing about windows, channels or delivery. `CONDITIONS` is the table
of every kind of condition — severity, channels, what raises and clears it — that the tracker
and docs/operations.md (`python scripts/opsdoc.py`) both read.

Operator actions (forced open, manual READ_ONLY) are announced in Slack but never page: the
person who did it does not need waking, the team channel should know calls are refused on purpose.
A breaker forced open while it was already open keeps its `breaker_open` alert until it closes.
`degradation_read_only` resolves as soon as writes are allowed again (read_only -> cached_data
included): the page is about not being able to trade.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sidecar.alerting.market_hours import in_weekly_closure
from sidecar.events import (
    AttemptFinished,
    BreakerTransition,
    DegradationChanged,
    Event,
    StreamChanged,
)
from sidecar.vocabulary import BreakerState, Level, Verdict, classify

Action = Literal["trigger", "resolve"]
PAGERDUTY = "pagerduty"
SLACK = "slack"
BOTH: frozenset[str] = frozenset({PAGERDUTY, SLACK})
SLACK_ONLY: frozenset[str] = frozenset({SLACK})

BREAKER_OPEN = "breaker_open"
BREAKER_FORCED = "breaker_forced"
AUTH = "upstream_auth"
THROTTLED = "upstream_throttled"
READ_ONLY = "degradation_read_only"
MANUAL_READ_ONLY = "degradation_manual_read_only"
STREAM_DOWN = "stream_down"
_NO_SIGNALS: tuple[Signal, ...] = ()


@dataclass(frozen=True, slots=True)
class Condition:
    """One kind of alert condition. Its keys are the kind, or `kind:subject` where `subject`
    says what fills it (e.g. `<breaker>`); `raised`, `cleared` and `means` are for people."""

    severity: str  # PagerDuty's: "critical", "error", "warning", "info"
    channels: frozenset[str]
    raised: str
    cleared: str
    means: str
    resolved_summary: str  # filled from the clearing event's details
    subject: str = ""


CONDITIONS: dict[str, Condition] = {
    BREAKER_OPEN: Condition(
        "critical", BOTH, "a breaker opens (BreakerTransition to `open`)",
        "it closes or is disabled",
        "OANDA failed `breaker.failure_threshold` times in a row: calls are refused with "
        "CIRCUIT_OPEN until a probe succeeds",
        "Circuit breaker '{breaker}' is {to_state}: calls to OANDA flow again", "<breaker>"),
    BREAKER_FORCED: Condition(
        "warning", SLACK_ONLY, "an operator forces a breaker open", "the override is removed",
        "every call through that breaker is refused on purpose",
        "Circuit breaker '{breaker}' is no longer forced open (now {to_state})", "<breaker>"),
    AUTH: Condition(
        "critical", BOTH, "an attempt is answered 401 or 403", "the next 2xx attempt",
        "401: the OANDA token is invalid or revoked; 403: the account is blocked or the token "
        "lacks access. Nothing works until it is fixed",
        "OANDA accepts our requests again (HTTP {status} on {endpoint})"),
    THROTTLED: Condition(
        "warning", BOTH, "an attempt is answered 429",
        "`alerts.aggregation_window_s` without a 429",
        "OANDA rate-limited the account although the limiter paces calls: another client "
        "shares it, or the limit is set too high (the limiter slows down by itself)",
        "No 429 from OANDA for {quiet_s:g} s"),
    READ_ONLY: Condition(
        "critical", BOTH, "the sidecar enters READ_ONLY by itself",
        "it leaves READ_ONLY (to CACHED_DATA included)",
        "OANDA is unreachable or the breaker is open: orders cannot be placed; closes and "
        "cancels are still attempted",
        "Sidecar left READ_ONLY (now {to_level}): orders can be placed again"),
    MANUAL_READ_ONLY: Condition(
        "warning", SLACK_ONLY, "an operator sets READ_ONLY", "it leaves READ_ONLY",
        "writes are refused on purpose, e.g. for a maintenance window",
        "Sidecar left READ_ONLY (now {to_level}): orders can be placed again"),
    STREAM_DOWN: Condition(
        "critical", BOTH, "an upstream stream stays reconnecting longer than "
        "`alerts.stream_down_s`", "it is connected (or closed) again",
        "OANDA's pricing or transaction stream is down: its subscribers get nothing new",
        "OANDA {stream} stream {key} is {state} again", "<stream>:<key>"),
}


@dataclass(frozen=True, slots=True)
class Signal:
    """One occurrence: a condition was (re)triggered or cleared."""

    condition: str  # the key, e.g. "breaker_open:rest"
    kind: str  # the key without its subject, e.g. "breaker_open"
    action: Action
    severity: str  # PagerDuty's: "critical", "error", "warning", "info"
    summary: str
    channels: frozenset[str]
    at: float  # wall-clock seconds of the event
    details: Mapping[str, Any]


class ConditionTracker:
    """Remembers which conditions are active; `observe` is cheap for uninteresting events."""

    def __init__(self, quiet_s: float, *, quiet_in_closure: bool = False,
                 stream_down_s: float = 30.0) -> None:
        self.quiet_s = quiet_s
        self._quiet_in_closure = quiet_in_closure
        self.stream_down_s = stream_down_s
        self._active: dict[str, Signal] = {}
        self._last_429: float | None = None  # monotonic, while THROTTLED is active
        # Streams reconnecting: condition -> (monotonic time it becomes an alert, details).
        self._streams_down: dict[str, tuple[float, dict[str, Any]]] = {}

    def is_active(self, condition: str) -> bool:
        return condition in self._active

    def observe(self, event: Event, now: float) -> tuple[Signal, ...]:
        if isinstance(event, AttemptFinished):
            return self._attempt(event, now)
        if isinstance(event, BreakerTransition):
            return self._breaker(event)
        if isinstance(event, DegradationChanged):
            return self._degradation(event)
        if isinstance(event, StreamChanged):
            return self._stream(event, now)
        return _NO_SIGNALS

    def next_deadline(self) -> float | None:
        """When `due` may next have something to say (monotonic), or None."""
        deadlines = [d for d, _ in self._streams_down.values()]
        if self._last_429 is not None:
            deadlines.append(self._last_429 + self.quiet_s)
        return min(deadlines, default=None)

    def due(self, now: float, wall: float) -> tuple[Signal, ...]:
        """What falls due by time alone: the 429 quiet period, streams down too long."""
        out = self._streams_due(now, wall)
        if self._last_429 is None or now < self._last_429 + self.quiet_s:
            return out
        self._last_429 = None
        return out + self._resolve(THROTTLED, wall, {"quiet_s": self.quiet_s})

    def _stream(self, ev: StreamChanged, now: float) -> tuple[Signal, ...]:
        condition = f"{STREAM_DOWN}:{ev.stream}:{ev.key}"
        details = {"stream": ev.stream, "key": ev.key, "state": ev.state, "reason": ev.reason,
                   "down_since": ev.down_since, "last_error": ev.error}
        if ev.state == "reconnecting":
            if condition not in self._streams_down and condition not in self._active:
                self._streams_down[condition] = (now + self.stream_down_s, details)
            return _NO_SIGNALS
        self._streams_down.pop(condition, None)
        return self._resolve(condition, ev.at, details)

    def _streams_due(self, now: float, wall: float) -> tuple[Signal, ...]:
        out: tuple[Signal, ...] = _NO_SIGNALS
        for condition, (deadline, details) in list(self._streams_down.items()):
            if now >= deadline:
                del self._streams_down[condition]
                out += self._trigger(
                    condition, STREAM_DOWN, wall,
                    f"OANDA {details['stream']} stream {details['key']} down for more than "
                    f"{self.stream_down_s:g} s ({details['reason']}): subscribers get nothing "
                    "new", details)
        return out

    def _attempt(self, ev: AttemptFinished, now: float) -> tuple[Signal, ...]:
        status = ev.status
        if status is None:
            return _NO_SIGNALS
        if 200 <= status < 300:
            # The hot path: one dict lookup when nothing is wrong.
            if AUTH in self._active:
                return self._resolve(AUTH, ev.at, {"endpoint": ev.endpoint, "status": status})
            return _NO_SIGNALS
        verdict = classify(status)
        if verdict is Verdict.AUTH_FAILED:
            what = "token invalid or revoked" if status == 401 else "access forbidden"
            return self._trigger(AUTH, AUTH, ev.at,
                                 f"OANDA answered {status} ({what}) on {ev.method} {ev.endpoint}",
                                 _attempt_details(ev))
        if verdict is Verdict.THROTTLED:
            self._last_429 = now
            return self._trigger(THROTTLED, THROTTLED, ev.at,
                                 f"OANDA answered 429 (rate limited) on {ev.method} {ev.endpoint}",
                                 _attempt_details(ev))
        return _NO_SIGNALS

    def _breaker(self, ev: BreakerTransition) -> tuple[Signal, ...]:
        name, to = ev.breaker, ev.to_state
        details = {"breaker": name, "from_state": ev.from_state, "to_state": to,
                   "reason": ev.reason, "consecutive_failures": ev.consecutive_failures,
                   "last_error": ev.last_error}
        opened, forced = f"{BREAKER_OPEN}:{name}", f"{BREAKER_FORCED}:{name}"
        out: tuple[Signal, ...] = _NO_SIGNALS
        if ev.from_state == BreakerState.FORCED_OPEN and to != BreakerState.FORCED_OPEN:
            out += self._resolve(forced, ev.at, details)
        if to == BreakerState.OPEN:
            out += self._trigger(
                opened, BREAKER_OPEN, ev.at,
                f"Circuit breaker '{name}' opened ({ev.reason}, {ev.consecutive_failures} "
                "consecutive failures): OANDA calls are refused", details)
        elif to == BreakerState.FORCED_OPEN:
            out += self._trigger(forced, BREAKER_FORCED, ev.at,
                                 f"Circuit breaker '{name}' forced open by an operator", details)
        elif to in (BreakerState.CLOSED, BreakerState.DISABLED):
            out += self._resolve(opened, ev.at, details)
        return out

    def _degradation(self, ev: DegradationChanged) -> tuple[Signal, ...]:
        details = {"from_level": ev.from_level, "to_level": ev.to_level, "reason": ev.reason,
                   "manual": ev.manual}
        if ev.to_level == Level.READ_ONLY:
            if ev.manual:
                return self._trigger(MANUAL_READ_ONLY, MANUAL_READ_ONLY,
                                     ev.at, "Sidecar set to READ_ONLY by an operator: writes "
                                     "are refused", details)
            return self._trigger(READ_ONLY, READ_ONLY, ev.at,
                                 f"Sidecar entered READ_ONLY automatically ({ev.reason}): "
                                 "orders cannot be placed", details)
        return (self._resolve(READ_ONLY, ev.at, details)
                + self._resolve(MANUAL_READ_ONLY, ev.at, details))

    def _trigger(self, condition: str, kind: str, at: float, summary: str,
                 details: Mapping[str, Any]) -> tuple[Signal, ...]:
        spec = CONDITIONS[kind]
        severity, channels = spec.severity, spec.channels
        if self._quiet_in_closure and channels == BOTH and in_weekly_closure(at):
            # OANDA's routine weekend maintenance: told, not paged.
            severity, channels = "warning", SLACK_ONLY
            summary += " (during OANDA's weekly closure, Fri 21:00-Sun 21:00 UTC: not paged)"
        signal = Signal(condition, kind, "trigger", severity, summary, channels, at, details)
        self._active[condition] = signal
        return (signal,)

    def _resolve(self, condition: str, at: float,
                 details: Mapping[str, Any]) -> tuple[Signal, ...]:
        raised = self._active.pop(condition, None)
        if raised is None:
            return _NO_SIGNALS
        if condition == THROTTLED:
            self._last_429 = None
        summary = CONDITIONS[raised.kind].resolved_summary.format_map(details)
        return (Signal(condition, raised.kind, "resolve", raised.severity, summary,
                       raised.channels, at, details),)


def _attempt_details(ev: AttemptFinished) -> dict[str, Any]:
    return {"method": ev.method, "endpoint": ev.endpoint, "status": ev.status,
            "attempt": ev.attempt, "request_id": ev.request_id,
            "last_error": ev.error_message}
