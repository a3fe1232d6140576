"""POST /orders, PUT /orders/{spec} (replace) and PUT /orders/{spec}/cancel.

Entry orders (MARKET and the pending LIMIT, STOP, MARKET_IF_TOUCHED) and dependent orders
(TAKE_PROFIT, STOP_LOSS, TRAILING_STOP_LOSS with a `tradeID`) are parsed here; a pending order
whose price the market already crosses fills at once, in the same answer, as on OANDA.
"""

from __future__ import annotations

from typing import Any

from sidecar.sim import entry
from sidecar.sim.dependents import DETAIL_FIELDS, build, parse_details, unlink
from sidecar.sim.engine import Outcome, Reject, cancel, create_order, error, invalid, rejected
from sidecar.sim.fills import fill, targets_of
from sidecar.sim.market import Market
from sidecar.sim.records import DEPENDENT_TYPES, ENTRY_TYPES, Order, Trade
from sidecar.sim.state import Account, Batch
from sidecar.sim.triggers import check
from sidecar.sim.validate import unknown_field

ORDER_TYPES = (*ENTRY_TYPES, *DEPENDENT_TYPES)
_DEPENDENT_FIELDS = {t: DETAIL_FIELDS[t] | {"type", "tradeID", "clientTradeID",
                                             "triggerCondition"} for t in DEPENDENT_TYPES}


def _reject_tx(o: dict[str, Any], reason: str) -> dict[str, Any]:
    """The reject transaction echoes the request's well-formed fields."""
    tx: dict[str, Any] = {"type": f"{o['type']}_ORDER_REJECT", "reason": "CLIENT_ORDER",
                          "rejectReason": reason}
    keys = ("tradeID", "clientTradeID", "price", "distance", "timeInForce", "triggerCondition") \
        if o["type"] in DEPENDENT_TYPES else \
        ("instrument", "units", "price", "priceBound", "timeInForce", "positionFill",
         "triggerCondition")
    for key in keys:
        if isinstance(o.get(key), str | int | float) and not isinstance(o.get(key), bool):
            tx[key] = str(o[key])
    for key in ("clientExtensions", "tradeClientExtensions"):
        if isinstance(o.get(key), dict):
            tx[key] = {k: v for k, v in o[key].items() if isinstance(v, str)}
    return tx


def _order_request(body: Any) -> dict[str, Any] | Outcome:
    o = body.get("order") if isinstance(body, dict) else None
    if not isinstance(o, dict):
        return invalid("order")
    if o.get("type") not in ORDER_TYPES:
        return error(400, f"Invalid value specified for 'order.type': the simulator supports "
                          f"{', '.join(ORDER_TYPES)}", "INVALID_ORDER_TYPE")
    allowed = entry.FIELDS.get(o["type"]) or _DEPENDENT_FIELDS[o["type"]]
    unknown = unknown_field(o, allowed)
    if unknown is not None:
        return error(400, f"Invalid value specified for 'order.{unknown}': not a field of a "
                          f"{o['type']} order request the simulator knows", "INVALID_FIELD")
    return o


def _trade_of(account: Account, o: dict[str, Any]) -> Trade:
    spec = o.get("tradeID") or ("@" + o["clientTradeID"] if o.get("clientTradeID") else None)
    if not isinstance(spec, str):
        raise Reject("TRADE_ID_UNSPECIFIED")
    trade = account.find_trade(spec)
    if trade is None or trade.state != "OPEN":
        raise Reject("TRADE_DOESNT_EXIST")
    return trade


def parse_dependent(account: Account, market: Market, o: dict[str, Any], order_id: str,
                    now: float, replacing: Order | None = None) -> Order:
    trade = _trade_of(account, o)
    key = DEPENDENT_TYPES[o["type"]][0]
    existing = trade.dependents.get(key)
    if existing is not None and (replacing is None or replacing.id != existing):
        raise Reject(f"{o['type']}_ORDER_ALREADY_EXISTS")
    if replacing is not None and replacing.trade_id != trade.id:
        raise Reject("REPLACING_TRADE_ID_INVALID")
    details = parse_details(account, o["type"], trade.instrument, o, now, on_fill=False)
    return build(order_id, details, trade, market, now)


def _parse(account: Account, market: Market, o: dict[str, Any], order_id: str, now: float,
           replacing: Order | None = None) -> Order:
    if o["type"] in DEPENDENT_TYPES:
        return parse_dependent(account, market, o, order_id, now, replacing)
    return entry.parse(account, market, o, order_id, now, replacing)


def _link(account: Account, order: Order) -> None:
    if order.trade_id is not None:
        account.trades[order.trade_id].dependents[DEPENDENT_TYPES[order.type][0]] = order.id


def place_order(account: Account, market: Market, batch: Batch, body: Any) -> Outcome:
    o = _order_request(body)
    if isinstance(o, Outcome):
        return o
    try:
        order = _parse(account, market, o, batch.next_id(), batch.now)
    except Reject as r:
        return rejected(400, batch, {"orderRejectTransaction": _reject_tx(o, r.reason)}, r.reason)
    answer = {"orderCreateTransaction": create_order(account, batch, order, "CLIENT_ORDER")}
    _link(account, order)
    answer.update(_fill_now(account, market, batch, order))
    return Outcome(201, {**answer, **batch.tail()}, location=order.id)


def _fill_now(account: Account, market: Market, batch: Batch, order: Order) -> dict[str, Any]:
    """A market order fills (or is cancelled) at once; a pending one only if already crossed."""
    if order.type == "MARKET":
        return fill(account, market, batch, order, targets_of(account, order), "MARKET_ORDER")
    if not market.tradeable(batch.now):
        return {}
    filled = check(account, market, order, batch.now, lambda: batch.request_id, batch)
    return filled or {}


def _no_such_order(batch: Batch, spec: str) -> Outcome:
    tx: dict[str, Any] = {"type": "ORDER_CANCEL_REJECT", "rejectReason": "ORDER_DOESNT_EXIST"}
    tx["clientOrderID" if spec.startswith("@") else "orderID"] = spec.lstrip("@")
    return rejected(404, batch, {"orderCancelRejectTransaction": tx}, "ORDER_DOESNT_EXIST")


def cancel_order(account: Account, batch: Batch, spec: str) -> Outcome:
    order = account.find_order(spec)
    if order is None or order.state != "PENDING":
        return _no_such_order(batch, spec)
    tx = cancel(batch, order, "CLIENT_REQUEST")
    unlink(account, order)
    return Outcome(200, {"orderCancelTransaction": tx, **batch.tail()})


def replace_order(account: Account, market: Market, batch: Batch, spec: str,
                  body: Any) -> Outcome:
    """Cancel a pending order and create its replacement in one batch; a dependent order is
    replaced by one of its own type for the same trade."""
    old = account.find_order(spec)
    if old is None or old.state != "PENDING":
        return _no_such_order(batch, spec)
    o = _order_request(body)
    if isinstance(o, Outcome):
        return o
    if o["type"] == "MARKET" or (old.dependent and o["type"] != old.type) or (
            not old.dependent and o["type"] in DEPENDENT_TYPES):
        return error(400, f"A {old.type} order cannot be replaced by a {o['type']} order",
                     "REPLACING_ORDER_INVALID")
    try:
        new = _parse(account, market, o, str(int(batch.next_id()) + 1), batch.now, old)
    except Reject as r:
        return rejected(400, batch, {"orderRejectTransaction": _reject_tx(o, r.reason)}, r.reason)
    cancelled = cancel(batch, old, "CLIENT_REQUEST_REPLACED", replaced_by=new.id)
    new.replaces_order_id = old.id
    created = create_order(account, batch, new, "REPLACEMENT")
    _link(account, new)
    answer = {"orderCancelTransaction": cancelled, "orderCreateTransaction": created}
    answer.update(_fill_now(account, market, batch, new))
    return Outcome(201, {**answer, **batch.tail()}, location=new.id)
