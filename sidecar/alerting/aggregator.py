"""Aggregation: identical alerts inside the window become one delivery with a count.

Rules, per condition key (all times on the injected clock's monotonic scale):
- A trigger goes out at once unless a trigger for the same key went out less than one window
  ago; then it is folded into that alert (its `count` grows, its details become the latest).
  A folded repeat is therefore never a message of its own: it shows in the alert's count while
  the alert still waits in a delivery queue, on the dashboard (`recent()`), and in the totals
  (`occurrences`, first/last seen) of the next delivery for that key — the next trigger after
  the window, or the resolve. No timer is needed for that.
- A resolve goes out at once unless the key was triggered less than one window ago; then it is
  held until the window ends and dropped if the condition triggers again meanwhile. This damps
  flapping (at most one trigger and one resolve per key per window) and never leaves a receiver
  believing a condition is resolved while it is active.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sidecar.alerting.conditions import Action, Signal
from sidecar.clock import rfc3339


@dataclass(slots=True)
class Alert:
    """One delivery (mutable until rendered: repeats folded into it raise `count`)."""

    condition: str
    kind: str
    action: Action
    severity: str
    summary: str
    channels: frozenset[str]
    details: dict[str, Any]
    at: float  # wall time of the first occurrence in this alert
    last_at: float  # wall time of the latest occurrence folded into it
    count: int = 1  # occurrences folded into this alert
    occurrences: int = 1  # occurrences since the condition was first triggered
    first_seen: float = 0.0  # wall time the condition was first triggered
    status: dict[str, str] = field(default_factory=dict)  # channel -> queued/sent/failed/dropped

    def fold(self, signal: Signal, occurrences: int) -> None:
        self.count += 1
        self.occurrences = occurrences
        self.last_at = signal.at
        self.summary = signal.summary
        self.details = dict(signal.details)

    def as_dict(self) -> dict[str, Any]:
        return {"condition": self.condition, "action": self.action, "severity": self.severity,
                "summary": self.summary, "count": self.count, "occurrences": self.occurrences,
                "at": rfc3339(self.at), "last_at": rfc3339(self.last_at),
                "channels": dict(self.status),
                "delivered": bool(self.status)
                and all(s == "sent" for s in self.status.values())}


@dataclass(slots=True)
class _KeyState:
    sent_action: Action | None = None
    sent_at: float = 0.0  # monotonic time the last alert for this key was released
    last: Alert | None = None
    occurrences: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0
    held: Signal | None = None  # a resolve waiting for the window to end
    hold_until: float = 0.0


class Aggregator:
    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._keys: dict[str, _KeyState] = {}

    def offer(self, signal: Signal, now: float) -> Alert | None:
        """The alert to deliver now for this signal, or None when folded or held."""
        st = self._keys.get(signal.condition)
        if st is None:
            st = self._keys[signal.condition] = _KeyState()
        if signal.action == "trigger":
            return self._trigger(st, signal, now)
        if st.sent_action != "trigger":
            return None  # nothing was raised, so nothing to clear
        if now - st.sent_at < self.window_s:
            st.held, st.hold_until = signal, st.sent_at + self.window_s
            return None
        return self._release(st, signal, now)

    def next_deadline(self) -> float | None:
        holds = [st.hold_until for st in self._keys.values() if st.held is not None]
        return min(holds) if holds else None

    def due(self, now: float) -> list[Alert]:
        """Held resolves whose window has ended."""
        out = []
        for st in self._keys.values():
            if st.held is not None and st.hold_until <= now:
                signal, st.held = st.held, None
                out.append(self._release(st, signal, now))
        return out

    def _trigger(self, st: _KeyState, signal: Signal, now: float) -> Alert | None:
        st.held = None  # re-triggered before its resolve went out: the receiver stays triggered
        if st.occurrences == 0:
            st.first_seen = signal.at
        st.occurrences += 1
        st.last_seen = signal.at
        last = st.last
        if st.sent_action == "trigger" and last is not None and now - st.sent_at < self.window_s:
            last.fold(signal, st.occurrences)
            return None
        return self._release(st, signal, now)

    def _release(self, st: _KeyState, signal: Signal, now: float) -> Alert:
        alert = Alert(signal.condition, signal.kind, signal.action, signal.severity,
                      signal.summary, signal.channels, dict(signal.details), signal.at,
                      signal.at, occurrences=st.occurrences, first_seen=st.first_seen)
        if signal.action == "resolve":
            alert.last_at = st.last_seen
            st.occurrences = 0  # the next trigger starts a new episode
        st.sent_action, st.sent_at, st.last = signal.action, now, alert
        return alert
