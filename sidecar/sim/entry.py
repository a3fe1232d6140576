"""Entry order requests (MARKET, LIMIT, STOP, MARKET_IF_TOUCHED) parsed as OANDA checks them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sidecar.sim.dependents import DETAIL_FIELDS, Details, parse_details
from sidecar.sim.engine import Reject
from sidecar.sim.formats import parse_decimal, quantize
from sidecar.sim.market import INSTRUMENTS, InstrumentSpec, Market
from sidecar.sim.records import DEPENDENT_TYPES, ON_FILL_KEYS, PENDING_TYPES, Order
from sidecar.sim.state import Account
from sidecar.sim.validate import decimal_field, extensions, price_field, time_in_force

_COMMON = frozenset({"type", "instrument", "units", "timeInForce", "positionFill",
                     "clientExtensions", "tradeClientExtensions", *ON_FILL_KEYS,
                     "guaranteedStopLossOnFill"})
FIELDS = {"MARKET": _COMMON | {"priceBound"},
          "LIMIT": _COMMON | {"price", "gtdTime", "triggerCondition"},
          "STOP": _COMMON | {"price", "gtdTime", "triggerCondition", "priceBound"},
          "MARKET_IF_TOUCHED": _COMMON | {"price", "gtdTime", "triggerCondition", "priceBound"}}
_TIME_IN_FORCE = {"MARKET": ({"FOK", "IOC"}, "FOK")}
_PENDING_TIF = ({"GTC", "GTD", "GFD"}, "GTC")
_POSITION_FILLS = {"DEFAULT", "OPEN_ONLY", "REDUCE_FIRST", "REDUCE_ONLY"}
_TRIGGERS = {"DEFAULT", "INVERSE", "BID", "ASK", "MID"}


def parse(account: Account, market: Market, o: dict[str, Any], order_id: str, now: float,
          replacing: Order | None = None) -> Order:
    """The entry order a request describes, or Reject with OANDA's reason."""
    otype = str(o["type"])
    spec, units = _instrument_and_units(o)
    price = None
    if otype in PENDING_TYPES:
        price = price_field(o, "price", spec.display_precision,
                            ("PRICE_MISSING", "PRICE_INVALID", "PRICE_PRECISION_EXCEEDED"))
    allowed, default_tif = _TIME_IN_FORCE.get(otype, _PENDING_TIF)
    tif, gtd = time_in_force(o, allowed, default_tif, now)
    fill = o.get("positionFill", "DEFAULT")
    if fill not in _POSITION_FILLS:
        raise Reject("ORDER_FILL_POSITION_ACTION_INVALID")
    trigger = o.get("triggerCondition", "DEFAULT") if price is not None else None
    if trigger is not None and trigger not in _TRIGGERS:
        raise Reject("TRIGGER_CONDITION_INVALID")
    bound = None
    if "priceBound" in o and (bound := parse_decimal(o["priceBound"])) is None:
        raise Reject("PRICE_BOUND_INVALID")
    ext = extensions(o, "clientExtensions", "CLIENT_ORDER_ID_INVALID")
    trade_ext = extensions(o, "tradeClientExtensions", "CLIENT_TRADE_ID_INVALID")
    _check_client_ids(account, ext, trade_ext, replacing)
    order = Order(order_id, otype, spec.name, units, now, tif, fill, price, bound, trigger, ext,
                  trade_ext, gtd_time=gtd, on_fill=_on_fill(account, spec.name, o, now))
    if otype == "MARKET_IF_TOUCHED":
        q = market.quote(spec.name, now)
        order.initial_market_price = q.ask if units > 0 else q.bid
    return order


def _on_fill(account: Account, instrument: str, o: dict[str, Any], now: float
             ) -> dict[str, Details]:
    """takeProfitOnFill & co., validated now (they are created when the order fills).
    `guaranteedStopLossOnFill` (OANDA's newer name) is a stop loss with `guaranteed: true`."""
    wanted = {key: o[key] for key in ON_FILL_KEYS if o.get(key) is not None}
    gsl = o.get("guaranteedStopLossOnFill")
    if gsl is not None:
        if "stopLossOnFill" in wanted:
            raise Reject("STOP_LOSS_ORDER_ALREADY_EXISTS")
        wanted["stopLossOnFill"] = {**gsl, "guaranteed": True} if isinstance(gsl, dict) else gsl
    out: dict[str, Details] = {}
    for otype, (_, key) in DEPENDENT_TYPES.items():
        if key in wanted:
            d = wanted[key]
            if isinstance(d, dict) and set(d) - DETAIL_FIELDS[otype]:
                raise Reject(f"{otype}_ON_FILL_PRICE_INVALID")
            out[key] = parse_details(account, otype, instrument, d, now, on_fill=True)
    if account.gsl_mode == "REQUIRED" and "stopLossOnFill" not in out:
        raise Reject("STOP_LOSS_ON_FILL_GUARANTEED_REQUIRED")
    ids = [d.ext["id"] for d in out.values() if d.ext and "id" in d.ext]
    if len(ids) != len(set(ids)):
        raise Reject("ORDERS_ON_FILL_DUPLICATE_CLIENT_ORDER_IDS")
    return out


def _instrument_and_units(o: dict[str, Any]) -> tuple[InstrumentSpec, Decimal]:
    name = o.get("instrument")
    if not name:
        raise Reject("INSTRUMENT_MISSING")
    if not isinstance(name, str) or name not in INSTRUMENTS:
        raise Reject("INSTRUMENT_UNKNOWN")
    spec = INSTRUMENTS[name]
    units = decimal_field(o, "units", "UNITS_MISSING", "UNITS_INVALID")
    if units == 0:
        raise Reject("UNITS_INVALID")
    if units != quantize(units, spec.units_precision):
        raise Reject("UNITS_PRECISION_EXCEEDED")
    if abs(units) > spec.maximum_order_units:
        raise Reject("UNITS_LIMIT_EXCEEDED")
    return spec, units


def _check_client_ids(account: Account, ext: dict[str, str] | None,
                      trade_ext: dict[str, str] | None, replacing: Order | None) -> None:
    # A client ID is protected only while its order is pending (market orders never are).
    if ext and "id" in ext:
        other = account.find_order("@" + ext["id"])
        if other is not None and other.state == "PENDING" and other is not replacing:
            raise Reject("CLIENT_ORDER_ID_ALREADY_EXISTS")
    if trade_ext and "id" in trade_ext:
        trade = account.find_trade("@" + trade_ext["id"])
        if trade is not None and trade.state == "OPEN":
            raise Reject("CLIENT_TRADE_ID_ALREADY_EXISTS")
