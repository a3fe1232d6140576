"""When the simulated market trades: a weekly schedule, an operator override, maintenance windows.

OANDA's FX market closes from Friday 21:00 to Sunday 21:00 UTC (the default here). While it is
closed prices are frozen at the last tick before the close and `tradeable: false`, and orders
that would fill are cancelled `MARKET_HALTED`. The fault API can force the market open or closed
at once, and script maintenance windows, during which every /v3 request is answered
503 `{"errorMessage":"Timeout waiting for response."}` as OANDA's gateway does.
All times are seconds since the epoch on the simulator's clock (`Clock.wall()`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sidecar.sim.formats import Timestamp

WEEK_S = 7 * 86400.0
_MONDAY_OFFSET = 4 * 86400.0  # 1970-01-01 was a Thursday; Monday 1970-01-05 starts week 0
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Mode = Literal["auto", "open", "closed"]
MODES: tuple[str, ...] = ("auto", "open", "closed")


def week_point(spec: str) -> float:
    """`"fri 21:00"` as seconds after Monday 00:00 UTC; ValueError names the problem."""
    day, _, clock = spec.strip().lower().partition(" ")
    if day[:3] not in _DAYS or not clock:
        raise ValueError(f"expected a weekday and HH:MM (like 'fri 21:00'), got {spec!r}")
    hours, _, minutes = clock.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60):
        raise ValueError(f"expected HH:MM after the weekday, got {clock!r}")
    return _DAYS.index(day[:3]) * 86400.0 + int(hours) * 3600.0 + int(minutes) * 60.0


@dataclass(frozen=True, slots=True)
class Window:
    start: float
    end: float

    def as_json(self) -> dict[str, Any]:
        return {"from": Timestamp(self.start), "to": Timestamp(self.end)}


class MarketCalendar:
    """`closes`/`opens` are weekly points (`"fri 21:00"`); None for both: always open."""

    def __init__(self, closes: str | None = "fri 21:00", opens: str | None = "sun 21:00") -> None:
        if (closes is None) != (opens is None):
            raise ValueError("closes and opens go together (both None: always open)")
        self.closes = None if closes is None else week_point(closes)
        self.opens = None if opens is None else week_point(opens)
        self._weekly = closes is not None and self.closes != self.opens
        self.spec = "always" if not self._weekly else f"{closes} -> {opens}"
        self.mode: Mode = "auto"
        self._forced_at = 0.0
        self.maintenance: list[Window] = []

    @classmethod
    def always_open(cls) -> MarketCalendar:
        return cls(None, None)

    @classmethod
    def parse(cls, text: str) -> MarketCalendar:
        """`weekend` (Friday 21:00 to Sunday 21:00 UTC), `always`, or `CLOSES-OPENS` with
        weekly points (`"fri 22:00-sun 22:00"`); ValueError names the problem."""
        if text == "weekend":
            return cls()
        if text == "always":
            return cls.always_open()
        closes, dash, opens = text.partition("-")
        if not dash:
            raise ValueError(f"expected 'weekend', 'always' or 'fri 21:00-sun 21:00', got {text!r}")
        return cls(closes, opens)

    def force(self, mode: str, now: float) -> None:
        """`open` or `closed` from now on whatever the schedule says; `auto` follows it again."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        self.mode, self._forced_at = mode, now  # type: ignore[assignment]

    def closed_since(self, t: float) -> float | None:
        """When the market closed, if it is closed at `t`; None while it is open."""
        if self.mode == "open":
            return None
        if self.mode == "closed":
            return min(self._forced_at, t)
        if not self._weekly or self.closes is None or self.opens is None:
            return None
        pos = (t - _MONDAY_OFFSET) % WEEK_S
        into = (pos - self.closes) % WEEK_S
        return t - into if into < (self.opens - self.closes) % WEEK_S else None

    def is_open(self, t: float) -> bool:
        return self.closed_since(t) is None

    def next_change(self, t: float) -> float | None:
        """The next scheduled open or close after `t` (None when forced or always open)."""
        if self.mode != "auto" or not self._weekly or self.closes is None or self.opens is None:
            return None
        pos = (t - _MONDAY_OFFSET) % WEEK_S
        target = self.opens if self.closed_since(t) is not None else self.closes
        return t + ((target - pos) % WEEK_S or WEEK_S)

    def add_maintenance(self, start: float, end: float) -> Window:
        if end <= start:
            raise ValueError("a maintenance window ends after it starts")
        window = Window(start, end)
        self.maintenance.append(window)
        return window

    def in_maintenance(self, t: float) -> bool:
        if not self.maintenance:
            return False
        self.maintenance = [w for w in self.maintenance if w.end > t]
        return any(w.start <= t for w in self.maintenance)

    def as_json(self, t: float) -> dict[str, Any]:
        closed = self.closed_since(t)
        nxt = self.next_change(t)
        return {"schedule": self.spec, "mode": self.mode, "open": closed is None,
                "closedSince": None if closed is None else Timestamp(closed),
                "nextChange": None if nxt is None else Timestamp(nxt),
                "inMaintenance": self.in_maintenance(t),
                "maintenance": [w.as_json() for w in self.maintenance]}
