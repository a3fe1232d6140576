"""OANDA's routine weekly closure: Friday 21:00 to Sunday 21:00 UTC (its maintenance mostly
falls there). An outage inside it is expected, so it is told on Slack, not paged."""

from __future__ import annotations

from datetime import UTC, datetime

_FRIDAY, _SUNDAY = 4, 6
_OPEN_HOUR = 21


def in_weekly_closure(wall: float) -> bool:
    """True from Friday 21:00 to Sunday 21:00 UTC."""
    at = datetime.fromtimestamp(wall, UTC)
    day, hour = at.weekday(), at.hour
    if day == _FRIDAY:
        return hour >= _OPEN_HOUR
    if day == _SUNDAY:
        return hour < _OPEN_HOUR
    return day == 5  # Saturday
