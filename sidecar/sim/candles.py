"""Candles: per instrument, per account instrument, and the latest ones of an account.

Candles are aligned as OANDA aligns them: daily and longer ones start at `dailyAlignment`
(default 17) o'clock in `alignmentTimezone` (default America/New_York), weekly ones on
`weeklyAlignment` (default Friday); the time zone's UTC offset in effect now is used for the
whole range. Month candles are 30-day buckets, not calendar months.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

from sidecar.sim.formats import parse_decimal, parse_time
from sidecar.sim.market import GRANULARITIES, INSTRUMENTS, MAX_CANDLES, candle_starts
from sidecar.sim.wire import account, fail, flag, int_param, json_response, now
from sidecar.sim.wire import state as sim_state

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_THURSDAY = 3  # 1970-01-01, where the epoch's weekly buckets start


def alignment(request: web.Request, granularity: str, t: float) -> float:
    """Seconds after the epoch's bucket start at which this granularity's candles start."""
    q = request.query
    hour = int_param(request, "dailyAlignment", 17, 23)
    try:
        zone = ZoneInfo(q.get("alignmentTimezone", "America/New_York"))
    except (ZoneInfoNotFoundError, ValueError):
        raise fail(400, "Invalid value specified for 'alignmentTimezone'") from None
    weekday = q.get("weeklyAlignment", "Friday")
    if weekday not in WEEKDAYS:
        raise fail(400, "Invalid value specified for 'weeklyAlignment'")
    utc_offset = datetime.fromtimestamp(t, zone).utcoffset()
    daily = (hour * 3600.0 - (utc_offset.total_seconds() if utc_offset else 0.0)) % 86400.0
    if granularity == "W":
        return ((WEEKDAYS.index(weekday) - _THURSDAY) % 7) * 86400.0 + daily
    return daily % GRANULARITIES[granularity]


def _granularity_and_price(request: web.Request) -> tuple[str, str]:
    granularity = request.query.get("granularity", "S5")
    components = request.query.get("price", "M")
    if granularity not in GRANULARITIES:
        raise fail(400, "Invalid value specified for 'granularity'")
    if not components or set(components) - set("BAM"):
        raise fail(400, "Invalid value specified for 'price'")
    return granularity, components


def _check_units(request: web.Request) -> None:
    # The simulator's book is flat (one level, 10 million deep): every VWAP is the top price.
    if "units" in request.query:
        units = parse_decimal(request.query["units"])
        if units is None or units <= 0:
            raise fail(400, "Invalid value specified for 'units'")


async def candles(request: web.Request) -> web.Response:
    if "accountID" in request.match_info:
        account(request)
        _check_units(request)
    name = request.match_info["instrument"]
    if name not in INSTRUMENTS:
        raise fail(400, "Invalid value specified for 'instrument'")
    granularity, components = _granularity_and_price(request)
    q = request.query
    count = int_param(request, "count", 500, MAX_CANDLES) if "count" in q else None
    t = now(request)
    try:
        start = parse_time(q["from"]) if "from" in q else None
        end = parse_time(q["to"]) if "to" in q else None
        starts = candle_starts(granularity, t, count, start, end,
                               offset=alignment(request, granularity, t),
                               include_first=flag(request, "includeFirst", True))
    except ValueError as exc:
        raise fail(400, str(exc)) from None
    rows = sim_state(request).market.candles(name, granularity, starts, t, components,
                                             flag(request, "smooth", False))
    return json_response({"instrument": name, "granularity": granularity, "candles": rows})


def _specification(text: str) -> tuple[str, str, str]:
    parts = text.split(":")
    if len(parts) != 3 or parts[0] not in INSTRUMENTS or parts[1] not in GRANULARITIES or (
            not parts[2] or set(parts[2]) - set("BAM")):
        raise fail(400, "Invalid value specified for 'candleSpecifications'")
    return parts[0], parts[1], parts[2]


async def latest(request: web.Request) -> web.Response:
    """The most recently completed candle and the one still forming, per specification."""
    account(request)
    _check_units(request)
    text = request.query.get("candleSpecifications", "")
    if not text:
        raise fail(400, "Invalid value specified for 'candleSpecifications'")
    market, t = sim_state(request).market, now(request)
    smooth = flag(request, "smooth", False)
    out: list[dict[str, Any]] = []
    for spec in text.split(","):
        name, granularity, components = _specification(spec)
        starts = candle_starts(granularity, t, 2, None, None,
                               offset=alignment(request, granularity, t))
        out.append({"instrument": name, "granularity": granularity,
                    "candles": market.candles(name, granularity, starts, t, components, smooth)})
    return json_response({"latestCandles": out})


def add_routes(app: web.Application, a: str) -> None:
    app.router.add_get("/v3/instruments/{instrument}/candles", candles)
    app.router.add_get(f"{a}/instruments/{{instrument}}/candles", candles)
    app.router.add_get(f"{a}/candles/latest", latest)
