"""Closing trades and positions (market orders with a reason) and PATCH /configuration."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sidecar.sim.engine import Outcome, Reject, create_order, error, invalid, rejected
from sidecar.sim.fills import fill
from sidecar.sim.formats import parse_decimal
from sidecar.sim.market import INSTRUMENTS, Market
from sidecar.sim.records import Order, Trade
from sidecar.sim.state import Account, Batch
from sidecar.sim.validate import extensions, unknown_field


def _amount(spec: object, available: Decimal) -> Decimal | str:
    """Units to close for "ALL" or a positive decimal; a reject reason string otherwise."""
    if spec == "ALL":
        return available
    units = parse_decimal(spec)
    if units is None or units <= 0:
        return "PARTIAL_UNITS_MISSING"
    return units if units <= available else "UNITS_EXCEED"


_TRADE_FIELDS = frozenset({"units"})
_POSITION_FIELDS = frozenset({"longUnits", "longClientExtensions", "shortUnits",
                              "shortClientExtensions"})
_CONFIG_FIELDS = frozenset({"alias", "marginRate"})


def _unknown(body: Any, allowed: frozenset[str]) -> Outcome | None:
    """A body field the simulator does not know is refused, never ignored."""
    name = unknown_field(body, allowed) if isinstance(body, dict) else None
    if name is None:
        return None
    return error(400, f"Invalid value specified for '{name}': the simulator knows "
                      f"{', '.join(sorted(allowed))}", "INVALID_FIELD")


def close_trade(account: Account, market: Market, batch: Batch, spec: str,
                body: Any) -> Outcome:
    if (refused := _unknown(body, _TRADE_FIELDS)) is not None:
        return refused
    trade = account.find_trade(spec)
    want = body.get("units", "ALL") if isinstance(body, dict) else "ALL"
    close_spec: dict[str, Any] = {"units": str(want)}
    close_spec["clientTradeID" if spec.startswith("@") else "tradeID"] = spec.lstrip("@")
    reject: dict[str, Any] = {"type": "MARKET_ORDER_REJECT", "reason": "TRADE_CLOSE",
                              "tradeClose": close_spec, "timeInForce": "FOK",
                              "positionFill": "REDUCE_ONLY"}
    if trade is None or trade.state != "OPEN":
        reject["rejectReason"] = "TRADE_DOESNT_EXIST"
        return rejected(404, batch, {"orderRejectTransaction": reject}, "TRADE_DOESNT_EXIST")
    units = _amount(want, abs(trade.current_units))
    if isinstance(units, str):
        reason = {"UNITS_EXCEED": "CLOSE_TRADE_UNITS_EXCEED_TRADE_SIZE"}.get(
            units, "CLOSE_TRADE_PARTIAL_UNITS_MISSING")
        reject["rejectReason"] = reason
        return rejected(400, batch, {"orderRejectTransaction": reject}, reason)
    close_spec["tradeID"] = trade.id
    if trade.client_id:
        close_spec["clientTradeID"] = trade.client_id
    order = _closing_order(batch, trade.instrument, -units if trade.current_units > 0 else units,
                           {"tradeClose": close_spec})
    answer = {"orderCreateTransaction": create_order(account, batch, order, "TRADE_CLOSE")}
    answer.update(fill(account, market, batch, order, [trade], "MARKET_ORDER_TRADE_CLOSE"))
    return Outcome(200, {**answer, **batch.tail()}, location=order.id)


def _closing_order(batch: Batch, instrument: str, units: Decimal,
                   extra: dict[str, Any]) -> Order:
    return Order(batch.next_id(), "MARKET", instrument, units, batch.now, "FOK", "REDUCE_ONLY",
                 extra=extra)


def _side_plan(account: Account, instrument: str, side: str,
               want: object) -> tuple[list[Trade], Decimal] | dict[str, Any]:
    """The trades and units to close on one side, or the reject transaction for it."""
    trades = [t for t in account.open_trades(instrument)
              if (t.current_units > 0) == (side == "long")]
    units = _amount(want, abs(sum((t.current_units for t in trades), Decimal(0))))
    if trades and not isinstance(units, str):
        return trades, units
    reason = ("CLOSEOUT_POSITION_DOESNT_EXIST" if not trades
              else {"UNITS_EXCEED": "CLOSEOUT_POSITION_UNITS_EXCEED_POSITION_SIZE"}.get(
                  str(units), "CLOSEOUT_POSITION_PARTIAL_UNITS_MISSING"))
    return {"type": "MARKET_ORDER_REJECT", "instrument": instrument, "timeInForce": "FOK",
            "positionFill": "REDUCE_ONLY", "reason": "POSITION_CLOSEOUT",
            f"{side}PositionCloseout": {"instrument": instrument, "units": str(want)},
            "rejectReason": reason}


def close_position(account: Account, market: Market, batch: Batch, instrument: str,
                   body: Any) -> Outcome:
    """Close one or both sides; any side that cannot be closed rejects the whole request."""
    if instrument not in INSTRUMENTS:
        return invalid("instrument")
    body = body if isinstance(body, dict) else {}
    if (refused := _unknown(body, _POSITION_FIELDS)) is not None:
        return refused
    try:
        exts = {side: extensions(body, f"{side}ClientExtensions", "CLIENT_ORDER_ID_INVALID")
                for side in ("long", "short")}
    except Reject as r:
        return error(400, f"Invalid client extensions: {r.reason}", r.reason)
    plans: list[tuple[str, list[Trade], Decimal, str]] = []
    rejects: dict[str, dict[str, Any]] = {}
    for side in ("long", "short"):
        want = body.get(f"{side}Units", "NONE")
        if want == "NONE":
            continue
        plan = _side_plan(account, instrument, side, want)
        if isinstance(plan, dict):
            rejects[f"{side}OrderRejectTransaction"] = plan
        else:
            plans.append((side, *plan, str(want)))
    if rejects:
        return rejected(400, batch, rejects, next(iter(rejects.values()))["rejectReason"])
    if not plans:
        return error(400, "Either longUnits or shortUnits must be specified",
                     "CLOSEOUT_POSITION_INCOMPLETE_SPECIFICATION")
    answer = _close_sides(account, market, batch, instrument, plans, exts)
    first_order = answer[f"{plans[0][0]}OrderCreateTransaction"]["id"]
    return Outcome(200, {**answer, **batch.tail()}, location=first_order)


def _close_sides(account: Account, market: Market, batch: Batch, instrument: str,
                 plans: list[tuple[str, list[Trade], Decimal, str]],
                 exts: dict[str, dict[str, str] | None]) -> dict[str, Any]:
    answer: dict[str, Any] = {}
    for side, trades, units, want in plans:
        order = _closing_order(batch, instrument, -units if side == "long" else units,
                               {f"{side}PositionCloseout": {"instrument": instrument,
                                                            "units": want}})
        order.client_extensions = exts[side]
        answer[f"{side}OrderCreateTransaction"] = create_order(account, batch, order,
                                                               "POSITION_CLOSEOUT")
        filled = fill(account, market, batch, order, trades, "MARKET_ORDER_POSITION_CLOSEOUT")
        answer.update({f"{side}{k[0].upper()}{k[1:]}": v for k, v in filled.items()})
    return answer


def configure(account: Account, batch: Batch, body: Any) -> Outcome:
    body = body if isinstance(body, dict) else {}
    if (refused := _unknown(body, _CONFIG_FIELDS)) is not None:
        return refused
    fields = {k: body[k] for k in ("alias", "marginRate") if k in body}
    reason = None
    rate = parse_decimal(fields.get("marginRate", "1"))
    if not fields:
        reason = "CLIENT_CONFIGURE_DATA_MISSING"
    elif rate is None or not 0 < rate <= 1:
        reason = "MARGIN_RATE_INVALID"
    elif not isinstance(fields.get("alias", ""), str):
        reason = "ALIAS_INVALID"
    shown = {k: str(v) for k, v in fields.items()}
    if reason is not None:
        tx = {"type": "CLIENT_CONFIGURE_REJECT", **shown, "rejectReason": reason}
        answer = rejected(400, batch, {"clientConfigureRejectTransaction": tx}, reason)
        answer.body.pop("relatedTransactionIDs")
        return answer
    if "alias" in fields:
        account.alias = fields["alias"]
    if rate is not None and "marginRate" in fields:
        account.margin_rate = rate
    tx = batch.add({"type": "CLIENT_CONFIGURE", **shown})
    return Outcome(200, {"clientConfigureTransaction": tx,
                         "lastTransactionID": account.last_transaction_id})
