"""POST /orders, PUT /orders/{spec} (replace) and PUT /orders/{spec}/cancel."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sidecar.sim.engine import (
    Outcome,
    cancel,
    create_order,
    error,
    execute,
    invalid,
    opposite_trades,
    rejected,
)
from sidecar.sim.formats import parse_decimal, quantize
from sidecar.sim.market import INSTRUMENTS, InstrumentSpec, Market
from sidecar.sim.state import Account, Batch, Order

PENDING_TYPES = ("LIMIT", "STOP", "MARKET_IF_TOUCHED")
_TIME_IN_FORCE = {"MARKET": ({"FOK", "IOC"}, "FOK")}
_PENDING_TIF = ({"GTC", "GTD", "GFD"}, "GTC")
_POSITION_FILLS = {"DEFAULT", "OPEN_ONLY", "REDUCE_FIRST", "REDUCE_ONLY"}
_TRIGGERS = {"DEFAULT", "INVERSE", "BID", "ASK", "MID"}


class Reject(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _decimal(o: dict[str, Any], key: str, missing: str, bad: str) -> Decimal:
    if key not in o:
        raise Reject(missing)
    value = parse_decimal(o[key])
    if value is None:
        raise Reject(bad)
    return value


def _extensions(o: dict[str, Any], key: str, bad: str) -> dict[str, str] | None:
    ext = o.get(key)
    if ext is None:
        return None
    if not isinstance(ext, dict) or not all(
            k in ("id", "tag", "comment") and isinstance(v, str) and len(v) <= 128
            for k, v in ext.items()):
        raise Reject(bad)
    return dict(ext)


def parse_order(account: Account, o: dict[str, Any], order_id: str, now: float,
                replacing: Order | None = None) -> Order:
    """The order a request describes, or Reject with OANDA's reason."""
    otype = str(o["type"])
    spec, units = _instrument_and_units(o)
    price = None
    if otype in PENDING_TYPES:
        price = _decimal(o, "price", "PRICE_MISSING", "PRICE_INVALID")
        if price <= 0:
            raise Reject("PRICE_INVALID")
        if price != quantize(price, spec.display_precision):
            raise Reject("PRICE_PRECISION_EXCEEDED")
    allowed, default_tif = _TIME_IN_FORCE.get(otype, _PENDING_TIF)
    tif = o.get("timeInForce", default_tif)
    if tif not in allowed:
        raise Reject("TIME_IN_FORCE_INVALID")
    fill = o.get("positionFill", "DEFAULT")
    if fill not in _POSITION_FILLS:
        raise Reject("ORDER_FILL_POSITION_ACTION_INVALID")
    trigger = o.get("triggerCondition", "DEFAULT") if price is not None else None
    if trigger is not None and trigger not in _TRIGGERS:
        raise Reject("TRIGGER_CONDITION_INVALID")
    bound = None
    if "priceBound" in o and (bound := parse_decimal(o["priceBound"])) is None:
        raise Reject("PRICE_BOUND_INVALID")
    ext = _extensions(o, "clientExtensions", "CLIENT_ORDER_ID_INVALID")
    trade_ext = _extensions(o, "tradeClientExtensions", "CLIENT_TRADE_ID_INVALID")
    _check_client_ids(account, ext, trade_ext, replacing)
    return Order(order_id, otype, spec.name, units, now, tif, fill, price, bound, trigger, ext,
                 trade_ext)


def _instrument_and_units(o: dict[str, Any]) -> tuple[InstrumentSpec, Decimal]:
    name = o.get("instrument")
    if not name:
        raise Reject("INSTRUMENT_MISSING")
    if not isinstance(name, str) or name not in INSTRUMENTS:
        raise Reject("INSTRUMENT_UNKNOWN")
    spec = INSTRUMENTS[name]
    units = _decimal(o, "units", "UNITS_MISSING", "UNITS_INVALID")
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


def _reject_tx(o: dict[str, Any], reason: str) -> dict[str, Any]:
    """The reject transaction echoes the request's well-formed fields."""
    tx: dict[str, Any] = {"type": f"{o['type']}_ORDER_REJECT", "reason": "CLIENT_ORDER",
                          "rejectReason": reason}
    for key in ("instrument", "units", "price", "priceBound", "timeInForce", "positionFill",
                "triggerCondition"):
        if isinstance(o.get(key), str | int | float):
            tx[key] = str(o[key])
    for key in ("clientExtensions", "tradeClientExtensions"):
        if isinstance(o.get(key), dict):
            tx[key] = {k: v for k, v in o[key].items() if isinstance(v, str)}
    return tx


def _order_request(body: Any) -> dict[str, Any] | Outcome:
    o = body.get("order") if isinstance(body, dict) else None
    if not isinstance(o, dict):
        return invalid("order")
    if o.get("type") not in ("MARKET", *PENDING_TYPES):
        return error(400, f"Invalid value specified for 'order.type': the simulator supports "
                          f"MARKET, {', '.join(PENDING_TYPES)}", "INVALID_ORDER_TYPE")
    return o


def place_order(account: Account, market: Market, batch: Batch, body: Any) -> Outcome:
    o = _order_request(body)
    if isinstance(o, Outcome):
        return o
    try:
        order = parse_order(account, o, batch.next_id(), batch.now)
    except Reject as r:
        return rejected(400, batch, {"orderRejectTransaction": _reject_tx(o, r.reason)}, r.reason)
    answer = {"orderCreateTransaction": create_order(account, batch, order, "CLIENT_ORDER")}
    if order.type == "MARKET":
        targets = ([] if order.position_fill == "OPEN_ONLY"
                   else opposite_trades(account, order.instrument, order.units))
        answer.update(execute(account, market, batch, order, targets, "MARKET_ORDER"))
    return Outcome(201, {**answer, **batch.tail()}, location=order.id)


def _no_such_order(batch: Batch, spec: str) -> Outcome:
    tx: dict[str, Any] = {"type": "ORDER_CANCEL_REJECT", "rejectReason": "ORDER_DOESNT_EXIST"}
    tx["clientOrderID" if spec.startswith("@") else "orderID"] = spec.lstrip("@")
    return rejected(404, batch, {"orderCancelRejectTransaction": tx}, "ORDER_DOESNT_EXIST")


def cancel_order(account: Account, batch: Batch, spec: str) -> Outcome:
    order = account.find_order(spec)
    if order is None or order.state != "PENDING":
        return _no_such_order(batch, spec)
    tx = cancel(batch, order, "CLIENT_REQUEST")
    return Outcome(200, {"orderCancelTransaction": tx, **batch.tail()})


def replace_order(account: Account, market: Market, batch: Batch, spec: str,
                  body: Any) -> Outcome:
    """Cancel a pending order and create its replacement in one batch."""
    old = account.find_order(spec)
    if old is None or old.state != "PENDING":
        return _no_such_order(batch, spec)
    o = _order_request(body)
    if isinstance(o, Outcome):
        return o
    if o["type"] == "MARKET":
        return error(400, "A pending order can only be replaced by a pending order",
                     "REPLACING_ORDER_INVALID")
    try:
        new = parse_order(account, o, str(int(batch.next_id()) + 1), batch.now, replacing=old)
    except Reject as r:
        return rejected(400, batch, {"orderRejectTransaction": _reject_tx(o, r.reason)}, r.reason)
    cancelled = cancel(batch, old, "CLIENT_REQUEST_REPLACED", replaced_by=new.id)
    new.replaces_order_id = old.id
    created = create_order(account, batch, new, "REPLACEMENT")
    return Outcome(201, {"orderCancelTransaction": cancelled, "orderCreateTransaction": created,
                         **batch.tail()}, location=new.id)
