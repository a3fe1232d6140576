"""Pending orders meet the market: expiry, trailing stops, triggers, fills.

`settle(state, now)` replays every price tick since the last call (4 per second, at most
`MAX_TICKS` of them: longer gaps are sampled evenly) against every pending order, oldest first:
an order whose `gtdTime` (or GFD end of day) has come is cancelled `TIME_IN_FORCE_EXPIRED`;
a trailing stop follows the price; an order whose price is crossed fills at that tick, with
the tick's time, exactly as a market order would (dependent orders close their whole trade).
Nothing triggers while the market is closed. The simulator calls it before each request and
four times a second, so fills happen whether or not anyone is polling.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from sidecar.sim.dependents import unlink
from sidecar.sim.engine import cancel
from sidecar.sim.fills import fill, targets_of
from sidecar.sim.market import TICK_S, Market, Quote
from sidecar.sim.records import Order
from sidecar.sim.state import Account, Batch, SimState

MAX_TICKS = 2400  # ten minutes of ticks


def settle(state: SimState, now: float, *, again: bool = False) -> None:
    """Apply the market from the last settle up to `now`; `again` re-checks `now` itself
    (after a price was moved at this instant)."""
    start = state.settled_at
    if now < start or (now == start and not again):
        return
    state.settled_at = now
    for account in state.accounts.values():
        if account.live:
            _settle_account(state, account, start, now)


def _ticks(start: float, now: float) -> Iterator[float]:
    """The tick times in (start, now), then `now` itself (which quotes as its own tick)."""
    first = math.floor(start / TICK_S) + 1
    last = math.ceil(now / TICK_S) - 1
    count = last - first + 1
    step = max(1, math.ceil(count / MAX_TICKS))
    for tick in range(first, last + 1, step):
        yield tick * TICK_S
    yield now


def _settle_account(state: SimState, account: Account, start: float, now: float) -> None:
    market = state.market
    for t in _ticks(start, now):
        orders = account.pending_orders()
        if not orders:
            return
        quotes: dict[str, Quote] = {}  # one quote per instrument and tick
        for order in orders:
            if order.state != "PENDING":
                continue  # filled or cancelled by an earlier order at this tick
            if order.gtd_time is not None and order.gtd_time <= t:
                batch = account.batch(state.request_ids(), order.gtd_time)
                cancel(batch, order, "TIME_IN_FORCE_EXPIRED")
                unlink(account, order)
            elif market.tradeable(t):
                q = quotes.get(order.instrument) or quotes.setdefault(
                    order.instrument, market.quote(order.instrument, t))
                check(account, market, order, t, state.request_ids, quote=q)


def check(account: Account, market: Market, order: Order, t: float,
          request_id: Callable[[], str], batch: Batch | None = None,
          quote: Quote | None = None) -> dict[str, Any] | None:
    """Fill `order` at `t` if the price there crosses it (in `batch`, else in a batch of its
    own, named by `request_id()`); the fill's answer, or None."""
    q = quote or market.quote(order.instrument, t)
    if order.type == "TRAILING_STOP_LOSS":
        _trail(order, q)
    price = fill_price(order, q)
    if price is None:
        return None
    batch = batch or account.batch(request_id(), t)
    targets = targets_of(account, order)
    return fill(account, market, batch, order, targets, f"{order.type}_ORDER", price)


def _compared(order: Order, q: Quote) -> Decimal:
    """The price the trigger condition watches: the natural side by default (the ask for a
    buy, the bid for a sell), the other one for INVERSE, or the one it names."""
    cond = order.trigger_condition or "DEFAULT"
    buy = order.units > 0
    if cond == "MID":
        return q.mid
    if cond in ("BID", "ASK"):
        return q.bid if cond == "BID" else q.ask
    natural = (cond == "DEFAULT") == buy
    return q.ask if natural else q.bid


def _trail(order: Order, q: Quote) -> None:
    if order.distance is None or order.trailing_stop_value is None:
        return
    p = _compared(order, q)
    if order.units < 0:  # protects a long trade: trails the price up
        order.trailing_stop_value = max(order.trailing_stop_value, p - order.distance)
    else:
        order.trailing_stop_value = min(order.trailing_stop_value, p + order.distance)


def fill_price(order: Order, q: Quote) -> Decimal | None:
    """The price `order` fills at with quote `q`, or None when `q` does not trigger it."""
    level = order.trailing_stop_value if order.type == "TRAILING_STOP_LOSS" else order.price
    if level is None:
        return None
    buy = order.units > 0
    p, market_price = _compared(order, q), (q.ask if buy else q.bid)
    if order.type in ("LIMIT", "TAKE_PROFIT"):  # at the level or better
        if p <= level if buy else p >= level:
            return min(market_price, level) if buy else max(market_price, level)
        return None
    if order.type == "MARKET_IF_TOUCHED":
        below = order.initial_market_price is not None and level < order.initial_market_price
        return market_price if (p <= level if below else p >= level) else None
    if p >= level if buy else p <= level:  # STOP, STOP_LOSS, TRAILING_STOP_LOSS: at market
        return level if order.guaranteed else market_price
    return None
