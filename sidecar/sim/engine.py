"""Order execution: how a market order fills against the book, and the answers writes give.

Netting account, FIFO: a fill first reduces the opposite-side trades it is given (oldest first),
and what remains opens a new trade whose ID is the fill transaction's ID, as on OANDA.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sidecar.sim.formats import money
from sidecar.sim.market import Market, Quote
from sidecar.sim.records import ZERO, Order, Trade
from sidecar.sim.state import Account, Batch

MESSAGES = {
    "INSTRUMENT_MISSING": "The instrument was not specified",
    "INSTRUMENT_UNKNOWN": "The instrument specified is unknown",
    "UNITS_MISSING": "The units were not specified",
    "UNITS_INVALID": "The units specified are invalid",
    "UNITS_PRECISION_EXCEEDED": "The units specified exceed the instrument's precision",
    "UNITS_LIMIT_EXCEEDED": "The units specified exceed the maximum order size",
    "PRICE_MISSING": "The price was not specified",
    "PRICE_INVALID": "The price specified is invalid",
    "PRICE_PRECISION_EXCEEDED": "The price specified exceeds the instrument's precision",
    "CLIENT_ORDER_ID_ALREADY_EXISTS":
        "The client Order ID specified is already assigned to another pending Order",
    "CLIENT_TRADE_ID_ALREADY_EXISTS":
        "The client Trade ID specified is already assigned to another open Trade",
    "ORDER_DOESNT_EXIST": "The Order specified does not exist",
    "TRADE_DOESNT_EXIST": "The Trade specified does not exist",
    "CLOSEOUT_POSITION_DOESNT_EXIST": "The Position requested to be closed out does not exist",
    "CLOSE_TRADE_UNITS_EXCEED_TRADE_SIZE": "The units specified exceed the Trade's size",
}


class Reject(Exception):
    """A request OANDA would refuse, with its `rejectReason`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def message(reason: str) -> str:
    return MESSAGES.get(reason, reason.replace("_", " ").capitalize())


@dataclass(frozen=True, slots=True)
class Outcome:
    """An answer for the HTTP layer: status, JSON body, and the order a `Location` points to."""

    status: int
    body: dict[str, Any]
    location: str | None = None


def error(status: int, text: str, code: str | None = None) -> Outcome:
    body = {"errorMessage": text} if code is None else {"errorCode": code, "errorMessage": text}
    return Outcome(status, body)


def invalid(field: str) -> Outcome:
    return error(400, f"Invalid value specified for '{field}'")


def rejected(status: int, batch: Batch, txs: dict[str, dict[str, Any]], reason: str) -> Outcome:
    """A reject answer: the reject transaction(s) consume IDs, errorCode is the reason."""
    body: dict[str, Any] = {key: batch.add(tx) for key, tx in txs.items()}
    return Outcome(status, {**body, **batch.tail(), "errorCode": reason,
                            "errorMessage": message(reason)})


def create_order(account: Account, batch: Batch, order: Order, reason: str,
                 fill_id: str | None = None) -> dict[str, Any]:
    """Record `order` (its ID must be `batch.next_id()`) with its create transaction."""
    tx: dict[str, Any] = {"type": f"{order.type}_ORDER", **order.spec_fields(), "reason": reason}
    if order.replaces_order_id is not None:
        tx["replacesOrderID"] = order.replaces_order_id
    if fill_id is not None:
        tx["orderFillTransactionID"] = fill_id
    account.add_order(order)
    return batch.add(tx)


def opposite_trades(account: Account, instrument: str, units: Decimal) -> list[Trade]:
    return [t for t in account.open_trades(instrument) if (t.current_units > 0) != (units > 0)]


@dataclass(frozen=True, slots=True)
class _Fill:
    """One fill in progress: the order, its price and how quote currency converts to USD."""

    account: Account
    order: Order
    price: Decimal
    mid: Decimal
    conv: Decimal
    half_spread: Decimal
    tx_id: str
    now: float

    def cost(self, units: Decimal) -> Decimal:
        return money(self.half_spread * abs(units) * self.conv)

    def reduce(self, targets: list[Trade], tx: dict[str, Any]) -> tuple[Decimal, Decimal]:
        """Reduce `targets` in order; returns the units left and the realised P/L."""
        remaining, total_pl, order = self.order.units, ZERO, self.order
        for trade in targets:
            if remaining == 0:
                break
            part = min(abs(remaining), abs(trade.current_units))
            part = part if trade.current_units > 0 else -part  # the trade's sign
            pl = money((self.price - trade.price) * part * self.conv)
            trade.reduce(part, self.price, pl, self.tx_id, self.now)
            self.account.book_pl(trade.instrument, part > 0, pl)
            total_pl, remaining = total_pl + pl, remaining + part
            fee = money(abs(part) * (order.premium or ZERO) * self.conv)
            entry = {"tradeID": trade.id, "units": -part, "price": self.price, "realizedPL": pl,
                     "financing": money(ZERO), "guaranteedExecutionFee": fee,
                     "halfSpreadCost": self.cost(part)}
            if trade.state == "CLOSED":
                tx.setdefault("tradesClosed", []).append(entry)
                order.trade_closed_ids.append(trade.id)
            else:
                tx["tradeReduced"], order.trade_reduced_id = entry, trade.id
        return remaining, total_pl

    def open(self, units: Decimal, tx: dict[str, Any]) -> None:
        order = self.order
        margin = money(abs(units) * self.mid * self.conv * self.account.margin_rate)
        self.account.add_trade(Trade(self.tx_id, order.instrument, self.price, self.now, units,
                                     margin, units, order.trade_client_extensions))
        tx["tradeOpened"] = {"tradeID": self.tx_id, "units": units, "price": self.price,
                             "guaranteedExecutionFee": money(ZERO),
                             "initialMarginRequired": margin, "halfSpreadCost": self.cost(units)}
        if order.trade_client_extensions:
            tx["tradeOpened"]["clientExtensions"] = order.trade_client_extensions
        order.trade_opened_id = self.tx_id


def _refusal(order: Order, price: Decimal, targets: list[Trade], tradeable: bool) -> str | None:
    """Why a fill is cancelled instead of done (a 201 with a cancel, as on OANDA)."""
    if not tradeable:
        return "MARKET_HALTED"
    bound = order.price_bound
    if bound is not None and (price > bound if order.units > 0 else price < bound):
        return "BOUNDS_VIOLATION"
    if order.position_fill == "REDUCE_ONLY" and not targets:
        return "POSITION_CLOSEOUT_FAILED"
    return None


def execute(account: Account, market: Market, batch: Batch, order: Order, targets: list[Trade],
            reason: str, price: Decimal | None = None, q: Quote | None = None
            ) -> dict[str, Any]:
    """Fill `order` now (at the ask or bid unless `price` says otherwise), reducing `targets`
    first; returns the fill (or cancel) for the answer. `q`: the quote now, if known."""
    q = q or market.quote(order.instrument, batch.now)
    if price is None:
        price = q.ask if order.units > 0 else q.bid
    refusal = _refusal(order, price, targets, market.tradeable(batch.now))
    if refusal is not None:
        return {"orderCancelTransaction": cancel(batch, order, refusal)}
    conv = market.to_home(order.instrument.split("_")[1], batch.now)
    fill = _Fill(account, order, price, q.mid, conv, (q.ask - q.bid) / 2, batch.next_id(),
                 batch.now)
    tx: dict[str, Any] = {"type": "ORDER_FILL", "orderID": order.id, "instrument": order.instrument}
    if order.client_id:
        tx["clientOrderID"] = order.client_id
    remaining, pl = fill.reduce(targets, tx)
    if remaining != 0 and order.position_fill != "REDUCE_ONLY":
        fill.open(remaining, tx)
        remaining = ZERO
    fee = money(abs(order.units - remaining) * (order.premium or ZERO) * conv)
    account.balance -= fee
    account.guaranteed_fees += fee
    factor = conv.quantize(Decimal("1e-8"))
    tx.update({
        "units": order.units - remaining, "price": price, "fullVWAP": price,
        "fullPrice": market.price_json(order.instrument, batch.now), "reason": reason,
        "pl": money(pl), "financing": money(ZERO), "commission": money(ZERO),
        "guaranteedExecutionFee": fee, "accountBalance": money(account.balance),
        "gainQuoteHomeConversionFactor": factor, "lossQuoteHomeConversionFactor": factor,
        "halfSpreadCost": fill.cost(order.units - remaining),
    })
    order.state, order.filling_transaction_id, order.filled_time = "FILLED", fill.tx_id, batch.now
    account.last_fill_time = batch.now
    return {"orderFillTransaction": batch.add(tx)}


def cancel(batch: Batch, order: Order, reason: str,
           replaced_by: str | None = None) -> dict[str, Any]:
    tx: dict[str, Any] = {"type": "ORDER_CANCEL", "orderID": order.id, "reason": reason}
    if order.client_id:
        tx["clientOrderID"] = order.client_id
    if replaced_by is not None:
        tx["replacedByOrderID"] = order.replaced_by_order_id = replaced_by
    tx = batch.add(tx)
    order.state, order.cancelling_transaction_id = "CANCELLED", tx["id"]
    order.cancelled_time = batch.now
    return tx
