"""PUT /trades/{spec}/orders: create, replace or cancel a trade's dependent orders at once.

A key absent from the body leaves that order alone; `null` cancels it; details create it, or
replace the existing one (cancel `CLIENT_REQUEST_REPLACED`, create `REPLACEMENT`). Every detail is
checked before anything changes: one reject rejects the request. An order whose level the market
already crosses fills at once (`stopLossOrderFillTransaction`), as on OANDA.
"""

from __future__ import annotations

from typing import Any

from sidecar.sim.dependents import DETAIL_FIELDS, Details, build, parse_details
from sidecar.sim.engine import Outcome, Reject, cancel, create_order, error, invalid, rejected
from sidecar.sim.market import Market
from sidecar.sim.records import Trade
from sidecar.sim.state import Account, Batch
from sidecar.sim.triggers import check

KEYS = {"takeProfit": "TAKE_PROFIT", "stopLoss": "STOP_LOSS",
        "trailingStopLoss": "TRAILING_STOP_LOSS"}
_FILL_KEYS = {"takeProfit", "stopLoss"}  # the answer has no trailingStopLossOrderFill...


def _plan(account: Account, trade: Trade, body: dict[str, Any], now: float
          ) -> tuple[list[tuple[str, Details | None]], dict[str, dict[str, Any]]]:
    plans: list[tuple[str, Details | None]] = []
    rejects: dict[str, dict[str, Any]] = {}
    for key, otype in KEYS.items():
        if key not in body:
            continue
        d = body[key]
        if d is None:
            plans.append((key, None))
            continue
        try:
            if isinstance(d, dict) and set(d) - DETAIL_FIELDS[otype] - {"triggerCondition"}:
                raise Reject("PRICE_INVALID" if otype != "TRAILING_STOP_LOSS"
                             else "PRICE_DISTANCE_INVALID")
            plans.append((key, parse_details(account, otype, trade.instrument, d, now,
                                             on_fill=False)))
        except Reject as r:
            tx = _reject_tx(trade, key, otype, d, r.reason)
            rejects[f"{key}OrderRejectTransaction"] = tx
    return plans, rejects


def _reject_tx(trade: Trade, key: str, otype: str, d: Any, reason: str) -> dict[str, Any]:
    """Echoes the request's well-formed fields, with OANDA's defaults filled in."""
    d = d if isinstance(d, dict) else {}
    tx: dict[str, Any] = {"type": f"{otype}_ORDER_REJECT", "tradeID": trade.id,
                          "timeInForce": d.get("timeInForce", "GTC"),
                          "triggerCondition": d.get("triggerCondition", "DEFAULT"),
                          "reason": "REPLACEMENT" if key in trade.dependents else "CLIENT_ORDER",
                          "rejectReason": reason}
    for field in ("price", "distance"):
        if isinstance(d.get(field), str):
            tx[field] = d[field]
    if trade.client_id:
        tx["clientTradeID"] = trade.client_id
    return tx


def set_trade_orders(account: Account, market: Market, batch: Batch, spec: str,
                     body: Any) -> Outcome:
    trade = account.find_trade(spec)
    if trade is None or trade.state != "OPEN":
        return error(404, "The Trade specified does not exist", "NO_SUCH_TRADE")
    if not isinstance(body, dict):
        return invalid("body")
    unknown = sorted(set(body) - set(KEYS))
    if unknown:
        return error(400, f"Invalid value specified for '{unknown[0]}': the simulator knows "
                          f"{', '.join(KEYS)}", "INVALID_FIELD")
    plans, rejects = _plan(account, trade, body, batch.now)
    if rejects:
        return rejected(400, batch, rejects, next(iter(rejects.values()))["rejectReason"])
    answer: dict[str, Any] = {}
    for key, details in plans:
        if trade.state != "OPEN":
            break  # an earlier order of this request filled and closed the trade
        answer.update(_apply(account, market, batch, trade, key, details))
    return Outcome(200, {**answer, **batch.tail()})


def _apply(account: Account, market: Market, batch: Batch, trade: Trade, key: str,
           details: Details | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    old_id = trade.dependents.get(key)
    old = account.orders[old_id] if old_id is not None else None
    if details is None:
        if old is not None:
            out[f"{key}OrderCancelTransaction"] = cancel(batch, old, "CLIENT_REQUEST")
            del trade.dependents[key]
        return out
    new_id = batch.next_id() if old is None else str(int(batch.next_id()) + 1)
    new = build(new_id, details, trade, market, batch.now)
    if old is not None:
        out[f"{key}OrderCancelTransaction"] = cancel(batch, old, "CLIENT_REQUEST_REPLACED",
                                                     replaced_by=new.id)
        new.replaces_order_id = old.id
    out[f"{key}OrderTransaction"] = create_order(account, batch, new,
                                                 "CLIENT_ORDER" if old is None else "REPLACEMENT")
    trade.dependents[key] = new.id
    if key in _FILL_KEYS and market.tradeable(batch.now):
        filled = check(account, market, new, batch.now, lambda: batch.request_id, batch) or {}
        if "orderFillTransaction" in filled:
            out[f"{key}OrderFillTransaction"] = filled["orderFillTransaction"]
        if "orderCancelTransaction" in filled:
            out[f"{key}OrderCreatedCancelTransaction"] = filled["orderCancelTransaction"]
    return out
