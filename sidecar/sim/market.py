"""Instruments, prices and candles: a pure function of (seed, instrument, time).

Prices follow a few seeded sine waves plus tick noise, quantised to 0.25 s ticks (OANDA sends at
most 4 prices/s). Being a function of time rather than a stored walk, candles of any past period
are consistent with the prices quoted at that time, and two simulators with one seed agree.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sidecar.sim.calendar import MarketCalendar
from sidecar.sim.formats import Timestamp, quantize

TICK_S = 0.25
MAX_CANDLES = 5000

GRANULARITIES: dict[str, int] = {
    "S5": 5, "S10": 10, "S15": 15, "S30": 30, "M1": 60, "M2": 120, "M4": 240, "M5": 300,
    "M10": 600, "M15": 900, "M30": 1800, "H1": 3600, "H2": 7200, "H3": 10800, "H4": 14400,
    "H6": 21600, "H8": 28800, "H12": 43200, "D": 86400, "W": 604800, "M": 2592000,
}


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    name: str
    type: str
    base_price: float
    pip_location: int
    display_precision: int
    units_precision: int
    spread_pips: float
    margin_rate: str = "0.0333"
    maximum_order_units: int = 100_000_000

    def trailing_distance(self, pips: int) -> Decimal:
        """`pips` pips in price units, at the instrument's display precision."""
        return quantize(Decimal(pips).scaleb(self.pip_location), self.display_precision)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "type": self.type, "displayName": self.name.replace("_", "/"),
            "pipLocation": self.pip_location, "displayPrecision": self.display_precision,
            "tradeUnitsPrecision": self.units_precision, "minimumTradeSize": "1",
            "maximumTrailingStopDistance": self.trailing_distance(10_000),
            "minimumTrailingStopDistance": self.trailing_distance(5),
            "maximumPositionSize": "0", "maximumOrderUnits": str(self.maximum_order_units),
            "marginRate": self.margin_rate,
        }


INSTRUMENTS: dict[str, InstrumentSpec] = {s.name: s for s in (
    InstrumentSpec("EUR_USD", "CURRENCY", 1.0850, -4, 5, 0, 1.4),
    InstrumentSpec("GBP_USD", "CURRENCY", 1.2650, -4, 5, 0, 2.0),
    InstrumentSpec("AUD_USD", "CURRENCY", 0.6550, -4, 5, 0, 1.6),
    InstrumentSpec("USD_JPY", "CURRENCY", 150.20, -2, 3, 0, 1.6),
    InstrumentSpec("USD_CHF", "CURRENCY", 0.8800, -4, 5, 0, 2.0),
    InstrumentSpec("USD_CAD", "CURRENCY", 1.3600, -4, 5, 0, 2.2),
    InstrumentSpec("EUR_GBP", "CURRENCY", 0.8580, -4, 5, 0, 1.8),
    InstrumentSpec("EUR_JPY", "CURRENCY", 162.90, -2, 3, 0, 2.0),
    InstrumentSpec("XAU_USD", "METAL", 2000.0, -2, 3, 0, 35.0, "0.05"),
    InstrumentSpec("SPX500_USD", "CFD", 4700.0, 0, 1, 1, 0.5, "0.05"),
)}

# (amplitude as a share of the price, period in seconds): a drift, an intraday swing, a wobble.
_WAVES = ((0.01, 5 * 86400.0), (0.002, 3 * 3600.0), (0.0004, 300.0))
_NOISE = 0.0001


@dataclass(frozen=True, slots=True)
class Quote:
    instrument: str
    bid: Decimal
    ask: Decimal
    t: float

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


class Market:
    """Deterministic prices per seed for the instruments of `INSTRUMENTS`.

    Two things bend the formula: the calendar (while closed, prices stay at the last tick before
    the close) and holds set through the fault API (an instrument quoted at a fixed bid/ask until
    released), so that a test can cross an order's price exactly when it wants to.
    """

    def __init__(self, seed: int, calendar: MarketCalendar | None = None) -> None:
        self.calendar = calendar or MarketCalendar.always_open()
        self.holds: dict[str, tuple[Decimal, Decimal]] = {}  # instrument -> (bid, ask)
        self._phases: dict[str, tuple[tuple[float, ...], int]] = {}
        for name in INSTRUMENTS:
            rng = random.Random(f"{seed}:{name}")
            phases = tuple(rng.uniform(0, 2 * math.pi) for _ in _WAVES)
            self._phases[name] = (phases, rng.getrandbits(32))

    def tradeable(self, t: float) -> bool:
        return self.calendar.is_open(t)

    def hold(self, name: str, bid: Decimal, ask: Decimal) -> None:
        if ask < bid or bid <= 0:
            raise ValueError("a held price needs 0 < bid <= ask")
        prec = INSTRUMENTS[name].display_precision
        self.holds[name] = (quantize(bid, prec), quantize(ask, prec))

    def hold_mid(self, name: str, mid: Decimal) -> None:
        """Hold at `mid` with the instrument's usual spread."""
        spec = INSTRUMENTS[name]
        half = Decimal(str(spec.spread_pips)) * Decimal(10) ** spec.pip_location / 2
        self.hold(name, mid - half, mid + half)

    def mid(self, name: str, t: float) -> float:
        """The formula's mid (holds aside), frozen while the market is closed."""
        closed = self.calendar.closed_since(t)
        return self._formula(name, t if closed is None else min(t, closed - TICK_S))

    def _formula(self, name: str, t: float) -> float:
        spec = INSTRUMENTS[name]
        phases, salt = self._phases[name]
        tick = math.floor(t / TICK_S)
        tt = tick * TICK_S
        x = sum(a * math.sin(2 * math.pi * tt / p + ph)
                for (a, p), ph in zip(_WAVES, phases, strict=True))
        noise = ((tick * 2654435761 + salt) % 4294967296) / 4294967296 - 0.5
        return spec.base_price * (1 + x + _NOISE * noise)

    def quote(self, name: str, t: float) -> Quote:
        held = self.holds.get(name)
        if held is not None:
            return Quote(name, held[0], held[1], math.floor(t / TICK_S) * TICK_S)
        closed = self.calendar.closed_since(t)
        if closed is not None:  # frozen at the last tick before the close
            t = min(t, closed - TICK_S)
        spec = INSTRUMENTS[name]
        mid = self._formula(name, t)
        half = spec.spread_pips * 10.0 ** spec.pip_location / 2
        prec = spec.display_precision
        return Quote(name, quantize(Decimal(mid - half), prec),
                     quantize(Decimal(mid + half), prec), math.floor(t / TICK_S) * TICK_S)

    def to_home(self, currency: str, t: float) -> Decimal:
        """How many USD one unit of `currency` is worth (USD is the home currency)."""
        if currency == "USD":
            return Decimal(1)
        if f"{currency}_USD" in INSTRUMENTS:
            return self._current_mid(f"{currency}_USD", t)
        if f"USD_{currency}" in INSTRUMENTS:
            return Decimal(1) / self._current_mid(f"USD_{currency}", t)
        return Decimal(1)

    def _current_mid(self, name: str, t: float) -> Decimal:
        held = self.holds.get(name)
        return (held[0] + held[1]) / 2 if held is not None else Decimal(self.mid(name, t))

    def price_json(self, name: str, t: float) -> dict[str, Any]:
        q = self.quote(name, t)
        factor = self.to_home(name.split("_")[1], t)
        tradeable = self.calendar.is_open(t)
        return {
            "type": "PRICE", "instrument": name, "time": Timestamp(q.t),
            "status": "tradeable" if tradeable else "non-tradeable", "tradeable": tradeable,
            "bids": [{"price": q.bid, "liquidity": 10_000_000}],
            "asks": [{"price": q.ask, "liquidity": 10_000_000}],
            "closeoutBid": q.bid, "closeoutAsk": q.ask,
            "quoteHomeConversionFactors": {"positiveUnits": quantize(factor, 8),
                                           "negativeUnits": quantize(factor, 8)},
        }

    def candles(self, name: str, granularity: str, starts: list[float], now: float,
                components: str, smooth: bool = False) -> list[dict[str, Any]]:
        """`smooth`: each candle opens at the previous one's close, as OANDA smooths them."""
        g = GRANULARITIES[granularity]
        spec = INSTRUMENTS[name]
        half = spec.spread_pips * 10.0 ** spec.pip_location / 2
        out = []
        for start in starts:
            end = min(start + g - TICK_S, now)
            samples = [self.mid(name, start + (end - start) * i / 4) for i in range(5)]
            if smooth:
                samples[0] = self.mid(name, start - TICK_S)
            candle: dict[str, Any] = {"complete": start + g <= now, "volume": 1 + int(
                abs(samples[2] - samples[1]) * 1e6) % (g * 2), "time": Timestamp(start)}
            for key, letter, shift in (("bid", "B", -half), ("ask", "A", half), ("mid", "M", 0)):
                if letter in components:
                    candle[key] = {k: quantize(Decimal(v + shift), spec.display_precision)
                                   for k, v in (("o", samples[0]), ("h", max(samples)),
                                                ("l", min(samples)), ("c", samples[-1]))}
            out.append(candle)
        return out


def candle_starts(granularity: str, now: float, count: int | None, start: float | None,
                  end: float | None, *, offset: float = 0.0, include_first: bool = True
                  ) -> list[float]:
    """The start times of the candles a request asks for; ValueError names the bad parameter.
    Candles start at `offset` plus a multiple of their length (the daily/weekly alignment);
    `include_first`: the candle covering `start` is included."""
    g = GRANULARITIES[granularity]
    if count is not None and not 1 <= count <= MAX_CANDLES:
        raise ValueError("Maximum value for 'count' exceeded" if count > 0
                         else "Invalid value specified for 'count'")

    def floor(t: float) -> float:
        return math.floor((t - offset) / g) * g + offset

    last = floor(now)
    if start is not None:
        first = floor(start)
        if not include_first:
            first += g
    if start is not None and end is not None:
        if count is not None:
            raise ValueError("'count' may not be specified with both 'from' and 'to'")
        stop = min(floor(end), last)
        if (stop - first) / g + 1 > MAX_CANDLES:
            raise ValueError("Maximum value for 'count' exceeded")
    elif start is not None:
        stop = min(first + (count or 500) * g - g, last)
    else:
        stop = last if end is None else min(floor(end), last)
        first = stop - ((count or 500) - 1) * g
    return [float(first + i * g) for i in range(max(0, int((stop - first) // g) + 1))]
