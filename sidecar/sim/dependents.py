"""Dependent orders: take profit, stop loss (guaranteed where the account allows it) and
trailing stop loss, each linked to one trade and closing all of it when triggered.

They are created on fill (from `takeProfitOnFill` & co. of the entry order, reason `ON_FILL`,
right after the fill in the same batch), directly (`POST /orders` with `tradeID`, or
`PUT /trades/{spec}/orders`), replaced and cancelled; when their trade closes they are
cancelled `LINKED_TRADE_CLOSED`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sidecar.sim.engine import Reject, cancel, create_order
from sidecar.sim.formats import Timestamp
from sidecar.sim.market import INSTRUMENTS, InstrumentSpec, Market
from sidecar.sim.records import DEPENDENT_TYPES, Order, Trade
from sidecar.sim.state import Account, Batch
from sidecar.sim.validate import decimal_field, extensions, price_field, time_in_force

_TIF = {"GTC", "GTD", "GFD"}
_TRIGGERS = {"DEFAULT", "INVERSE", "BID", "ASK", "MID"}
_DIRECT = {  # the reason a directly created order gives, for the on-fill base reason
    "GTD_TIMESTAMP_MISSING": "TIME_IN_FORCE_GTD_TIMESTAMP_MISSING",
    "GTD_TIMESTAMP_IN_PAST": "TIME_IN_FORCE_GTD_TIMESTAMP_IN_PAST",
    "DISTANCE_INVALID": "PRICE_DISTANCE_INVALID",
    "PRICE_AND_DISTANCE_BOTH_SPECIFIED": "STOP_LOSS_ORDER_PRICE_AND_DISTANCE_BOTH_SPECIFIED",
    "PRICE_AND_DISTANCE_BOTH_MISSING": "STOP_LOSS_ORDER_PRICE_AND_DISTANCE_BOTH_MISSING",
    "GUARANTEED_NOT_ALLOWED": "STOP_LOSS_ORDER_GUARANTEED_NOT_ALLOWED",
    "GUARANTEED_REQUIRED": "STOP_LOSS_ORDER_GUARANTEED_REQUIRED",
}
DETAIL_FIELDS = {"TAKE_PROFIT": frozenset({"price", "timeInForce", "gtdTime", "clientExtensions"}),
                 "STOP_LOSS": frozenset({"price", "distance", "timeInForce", "gtdTime",
                                         "clientExtensions", "guaranteed"}),
                 "TRAILING_STOP_LOSS": frozenset({"distance", "timeInForce", "gtdTime",
                                                  "clientExtensions"})}


@dataclass(frozen=True, slots=True)
class Details:
    """What a dependent order asks for, validated."""

    type: str
    price: Decimal | None
    distance: Decimal | None
    tif: str
    gtd: float | None
    trigger: str
    ext: dict[str, str] | None
    guaranteed: bool | None

    def as_json(self) -> dict[str, Any]:
        """As the on-fill field of the entry order renders it (TakeProfitDetails & co.)."""
        d: dict[str, Any] = {"timeInForce": self.tif}
        for key, value in (("price", self.price), ("distance", self.distance),
                           ("clientExtensions", self.ext), ("guaranteed", self.guaranteed)):
            if value is not None:
                d[key] = value
        if self.gtd is not None and self.tif == "GTD":
            d["gtdTime"] = Timestamp(self.gtd)
        return d


def parse_details(account: Account, otype: str, instrument: str, d: Any, now: float,
                  on_fill: bool) -> Details:
    """Validate the details of a dependent order; Reject with OANDA's reason."""
    def reason(base: str) -> str:
        return f"{otype}_ON_FILL_{base}" if on_fill else _DIRECT.get(base, base)

    if not isinstance(d, dict):
        raise Reject(reason("PRICE_MISSING" if otype != "TRAILING_STOP_LOSS"
                            else "PRICE_DISTANCE_MISSING"))
    price, distance = _levels(otype, d, INSTRUMENTS[instrument], reason)
    guaranteed = _guaranteed(account, otype, d, reason)
    tif, gtd = time_in_force(d, _TIF, "GTC", now, f"{otype}_ON_FILL_" if on_fill else "")
    trigger = d.get("triggerCondition", "DEFAULT")
    if trigger not in _TRIGGERS:
        raise Reject(reason("TRIGGER_CONDITION_INVALID"))
    ext = extensions(d, "clientExtensions", reason("CLIENT_ORDER_ID_INVALID"))
    return Details(otype, price, distance, tif, gtd, trigger, ext, guaranteed)


def _levels(otype: str, d: dict[str, Any], spec: InstrumentSpec, reason: Any
            ) -> tuple[Decimal | None, Decimal | None]:
    prec = spec.display_precision
    price_reasons = (reason("PRICE_MISSING"), reason("PRICE_INVALID"),
                     reason("PRICE_PRECISION_EXCEEDED"))
    if otype == "TAKE_PROFIT":
        return price_field(d, "price", prec, price_reasons), None
    if otype == "TRAILING_STOP_LOSS":
        distance = decimal_field(d, "distance", reason("PRICE_DISTANCE_MISSING"),
                                 reason("PRICE_DISTANCE_INVALID"))
        if distance <= 0:
            raise Reject(reason("PRICE_DISTANCE_INVALID"))
        if distance < spec.trailing_distance(5):
            raise Reject(reason("PRICE_DISTANCE_MINIMUM_NOT_MET"))
        if distance > spec.trailing_distance(10_000):
            raise Reject(reason("PRICE_DISTANCE_MAXIMUM_EXCEEDED"))
        return None, distance
    if "price" in d and "distance" in d:
        raise Reject(reason("PRICE_AND_DISTANCE_BOTH_SPECIFIED"))
    if "price" in d:
        return price_field(d, "price", prec, price_reasons), None
    if "distance" not in d:
        raise Reject(reason("PRICE_AND_DISTANCE_BOTH_MISSING"))
    distance = decimal_field(d, "distance", reason("DISTANCE_INVALID"),
                             reason("DISTANCE_INVALID"))
    if distance <= 0:
        raise Reject(reason("DISTANCE_INVALID"))
    return None, distance


def _guaranteed(account: Account, otype: str, d: dict[str, Any], reason: Any) -> bool | None:
    if otype != "STOP_LOSS":
        return None
    wanted = d.get("guaranteed", False)
    if not isinstance(wanted, bool):
        raise Reject(reason("PRICE_INVALID"))
    if wanted and account.gsl_mode == "DISABLED":
        raise Reject(reason("GUARANTEED_NOT_ALLOWED"))
    if not wanted and account.gsl_mode == "REQUIRED":
        raise Reject(reason("GUARANTEED_REQUIRED"))
    return wanted


def build(order_id: str, details: Details, trade: Trade, market: Market, now: float) -> Order:
    """The dependent order of `trade` that `details` describe (its levels fixed now)."""
    long_trade = trade.current_units > 0
    order = Order(order_id, details.type, trade.instrument, -trade.current_units, now,
                  details.tif, "REDUCE_ONLY", details.price, None, details.trigger, details.ext,
                  gtd_time=details.gtd, trade_id=trade.id, client_trade_id=trade.client_id,
                  distance=details.distance, guaranteed=details.guaranteed)
    if details.type == "STOP_LOSS" and details.distance is not None:
        order.price = trade.price - details.distance if long_trade \
            else trade.price + details.distance
    if details.guaranteed:
        order.premium = Decimal(1).scaleb(INSTRUMENTS[trade.instrument].pip_location)
    if details.type == "TRAILING_STOP_LOSS" and details.distance is not None:
        q = market.quote(trade.instrument, now)
        order.trailing_stop_value = q.bid - details.distance if long_trade \
            else q.ask + details.distance
    return order


def create_on_fill(account: Account, market: Market, batch: Batch, entry: Order,
                   trade: Trade, fill_id: str) -> None:
    """The entry order's on-fill orders for the trade it opened, in OANDA's order."""
    for key, field in DEPENDENT_TYPES.values():
        details = entry.on_fill.get(field)
        if not isinstance(details, Details):
            continue
        order = build(batch.next_id(), details, trade, market, batch.now)
        create_order(account, batch, order, "ON_FILL", fill_id)
        trade.dependents[key] = order.id


def unlink(account: Account, order: Order) -> None:
    """A dependent order that stopped being pending leaves its trade."""
    if order.trade_id is not None:
        trade = account.trades[order.trade_id]
        key = DEPENDENT_TYPES[order.type][0]
        if trade.dependents.get(key) == order.id:
            del trade.dependents[key]


def cancel_linked(account: Account, batch: Batch, trade: Trade) -> None:
    """A closed trade's dependent orders are cancelled `LINKED_TRADE_CLOSED`."""
    for key, order_id in list(trade.dependents.items()):
        order = account.orders[order_id]
        if order.state == "PENDING":
            cancel(batch, order, "LINKED_TRADE_CLOSED")
        del trade.dependents[key]


def on_fill_loss(order: Order, price: Decimal) -> str | None:
    """OANDA cancels an entry order whose take profit or stop loss would lose at once."""
    buy = order.units > 0
    tp, sl = order.on_fill.get("takeProfitOnFill"), order.on_fill.get("stopLossOnFill")
    if isinstance(tp, Details) and tp.price is not None and (
            tp.price <= price if buy else tp.price >= price):
        return "TAKE_PROFIT_ON_FILL_LOSS"
    if isinstance(sl, Details) and sl.price is not None and (
            sl.price >= price if buy else sl.price <= price):
        return "STOP_LOSS_ON_FILL_LOSS"
    return None
