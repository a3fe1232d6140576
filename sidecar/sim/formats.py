"""Wire formats of the simulator: timestamps, decimals and the JSON encoder that renders them.

State keeps `Decimal`s and `Timestamp`s; they become strings only when a response is encoded, so
one stored transaction can be rendered as RFC3339 or UNIX time per request
(`Accept-Datetime-Format`).
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

TIME_FORMAT: ContextVar[str] = ContextVar("sim_time_format", default="RFC3339")

_MONEY = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class Timestamp:
    """Seconds since the epoch, rendered per request."""

    t: float


def fmt_time(t: float) -> str:
    """OANDA style: nanosecond precision, `Z`, or `seconds.nanoseconds` for UNIX."""
    micros = round(t * 1_000_000)
    secs, frac = divmod(micros, 1_000_000)
    if TIME_FORMAT.get() == "UNIX":
        return f"{secs}.{frac:06d}000"
    return datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:06d}000Z"


def parse_time(text: str) -> float:
    """RFC3339 (any fraction length) or UNIX seconds; ValueError otherwise."""
    try:
        return float(text)
    except ValueError:
        pass
    head, dot, frac = text.rstrip("Z").partition(".")
    dt = datetime.fromisoformat(head).replace(tzinfo=UTC)
    return dt.timestamp() + (float("0." + frac) if dot and frac.isdigit() else 0.0)


def parse_decimal(value: object) -> Decimal | None:
    """A finite decimal from a JSON string or number, else None."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def money(x: Decimal) -> Decimal:
    """Account-currency amounts carry four decimals; `+ 0` drops a negative zero."""
    return x.quantize(_MONEY, rounding=ROUND_HALF_EVEN) + 0


def quantize(x: Decimal, places: int) -> Decimal:
    return x.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN) + 0


def _default(obj: object) -> Any:
    if isinstance(obj, Decimal):
        return format(obj, "f")
    if isinstance(obj, Timestamp):
        return fmt_time(obj.t)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


_ENCODER = json.JSONEncoder(default=_default, separators=(",", ":"))


def dumps(obj: object) -> str:
    return _ENCODER.encode(obj)
