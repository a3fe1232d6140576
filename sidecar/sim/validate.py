"""Field checks shared by order requests, on-fill details and the client-extension endpoints.

Each check raises `Reject` with the reason OANDA would give; callers pass the reason names, since
one check answers `PRICE_MISSING` for a LIMIT and `TAKE_PROFIT_ON_FILL_PRICE_MISSING` on fill.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sidecar.sim.engine import Reject
from sidecar.sim.formats import parse_decimal, parse_time, quantize

_NEW_YORK = ZoneInfo("America/New_York")
_EXTENSION_KEYS = ("id", "tag", "comment")


def decimal_field(o: dict[str, Any], key: str, missing: str, bad: str) -> Decimal:
    if key not in o:
        raise Reject(missing)
    value = parse_decimal(o[key])
    if value is None:
        raise Reject(bad)
    return value


def price_field(o: dict[str, Any], key: str, precision: int, reasons: tuple[str, str, str]
                ) -> Decimal:
    """A positive price within the instrument's precision; reasons: missing, invalid, precision."""
    price = decimal_field(o, key, reasons[0], reasons[1])
    if price <= 0:
        raise Reject(reasons[1])
    if price != quantize(price, precision):
        raise Reject(reasons[2])
    return price


def extensions(o: dict[str, Any], key: str, bad: str) -> dict[str, str] | None:
    """`{id, tag, comment}`, each a string of at most 128 characters (OANDA's limit)."""
    ext = o.get(key)
    if ext is None:
        return None
    if not isinstance(ext, dict) or not all(
            k in _EXTENSION_KEYS and isinstance(v, str) and len(v) <= 128
            for k, v in ext.items()):
        raise Reject(bad)
    return dict(ext)


def end_of_trading_day(t: float) -> float:
    """The next 17:00 in New York after `t`: when a GFD (good for day) order expires."""
    local = datetime.fromtimestamp(t, _NEW_YORK)
    close = local.replace(hour=17, minute=0, second=0, microsecond=0)
    if close <= local:
        close = (close + timedelta(days=1)).replace(hour=17)
    return close.timestamp()


def time_in_force(o: dict[str, Any], allowed: set[str], default: str, now: float,
                  prefix: str = "") -> tuple[str, float | None]:
    """The time in force and when it expires (GTD: `gtdTime`, GFD: 17:00 New York)."""
    tif = o.get("timeInForce", default)
    if tif not in allowed:
        raise Reject(f"{prefix}TIME_IN_FORCE_INVALID")
    gtd_prefix = prefix or "TIME_IN_FORCE_"
    if tif == "GFD":
        return tif, end_of_trading_day(now)
    if tif != "GTD":
        if "gtdTime" in o:
            raise Reject(f"{prefix}TIME_IN_FORCE_INVALID")
        return tif, None
    if "gtdTime" not in o:
        raise Reject(f"{gtd_prefix}GTD_TIMESTAMP_MISSING")
    try:
        gtd = parse_time(str(o["gtdTime"]))
    except ValueError:
        raise Reject(f"{gtd_prefix}GTD_TIMESTAMP_MISSING") from None
    if gtd <= now:
        raise Reject(f"{gtd_prefix}GTD_TIMESTAMP_IN_PAST")
    return tif, gtd


def unknown_field(o: dict[str, Any], allowed: frozenset[str]) -> str | None:
    """The first field the simulator does not know: refused, never ignored (a misspelt
    `stopLossOnFill` must not leave a strategy believing it has a stop)."""
    unknown = sorted(set(o) - allowed)
    return unknown[0] if unknown else None
