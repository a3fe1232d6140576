"""Read-only renderings of the state as OANDA shapes, valued at the current price."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sidecar.sim.formats import Timestamp, money, quantize
from sidecar.sim.market import INSTRUMENTS, Market, Quote
from sidecar.sim.records import ZERO, Trade
from sidecar.sim.state import Account


class Valuation:
    """Unrealised P/L and margin of open trades at one instant."""

    __slots__ = ("_prices", "account", "market", "now")

    def __init__(self, account: Account, market: Market, now: float) -> None:
        self.account, self.market, self.now = account, market, now
        self._prices: dict[str, tuple[Quote, Decimal]] = {}

    def _price(self, instrument: str) -> tuple[Quote, Decimal]:
        """Quote and quote-to-USD factor, once per instrument: accounts may hold many trades."""
        found = self._prices.get(instrument)
        if found is None:
            found = self._prices[instrument] = (
                self.market.quote(instrument, self.now),
                self.market.to_home(instrument.split("_")[1], self.now))
        return found

    def unrealized(self, trade: Trade) -> Decimal:
        q, conv = self._price(trade.instrument)
        close = q.bid if trade.current_units > 0 else q.ask
        return money((close - trade.price) * trade.current_units * conv)

    def value(self, trade: Trade) -> Decimal:
        q, conv = self._price(trade.instrument)
        return money(abs(trade.current_units) * q.mid * conv)

    def margin(self, trade: Trade) -> Decimal:
        return money(self.value(trade) * self.account.margin_rate)

    def trade(self, trade: Trade, summary: bool = False) -> dict[str, Any]:
        """A Trade (with its dependent orders), or a TradeSummary (with their IDs)."""
        d: dict[str, Any] = {
            "id": trade.id, "instrument": trade.instrument, "price": trade.price,
            "openTime": Timestamp(trade.open_time), "state": trade.state,
            "initialUnits": trade.initial_units, "initialMarginRequired": trade.initial_margin,
            "currentUnits": trade.current_units, "realizedPL": money(trade.realized_pl),
            "financing": money(ZERO),
        }
        if trade.state == "OPEN":
            d["unrealizedPL"], d["marginUsed"] = self.unrealized(trade), self.margin(trade)
        if trade.closing_transaction_ids:
            d["closingTransactionIDs"] = list(trade.closing_transaction_ids)
            prec = INSTRUMENTS[trade.instrument].display_precision + 1
            d["averageClosePrice"] = quantize(trade.closed_value / trade.closed_units, prec)
        if trade.close_time is not None:
            d["closeTime"] = Timestamp(trade.close_time)
        if trade.client_extensions:
            d["clientExtensions"] = trade.client_extensions
        for key, order_id in trade.dependents.items():
            if summary:
                d[f"{key}OrderID"] = order_id
            else:
                d[f"{key}Order"] = self.account.orders[order_id].as_json()
        return d

    def position(self, instrument: str) -> dict[str, Any]:
        trades = self.account.open_trades(instrument)
        pls = self.account.position_pl.get(instrument, [ZERO, ZERO])
        sides = [self._side([t for t in trades if t.current_units > 0], pls[0], instrument),
                 self._side([t for t in trades if t.current_units < 0], pls[1], instrument)]
        return {
            "instrument": instrument, "pl": money(pls[0] + pls[1]),
            "unrealizedPL": money(sum((self.unrealized(t) for t in trades), ZERO)),
            "marginUsed": money(sum((self.margin(t) for t in trades), ZERO)),
            "resettablePL": money(pls[0] + pls[1]), "financing": money(ZERO),
            "commission": money(ZERO), "guaranteedExecutionFees": money(ZERO),
            "long": sides[0], "short": sides[1],
        }

    def _side(self, trades: list[Trade], pl: Decimal, instrument: str) -> dict[str, Any]:
        units = sum((t.current_units for t in trades), ZERO)
        d: dict[str, Any] = {
            "units": units, "pl": money(pl), "resettablePL": money(pl),
            "unrealizedPL": money(sum((self.unrealized(t) for t in trades), ZERO)),
            "financing": money(ZERO), "guaranteedExecutionFees": money(ZERO),
        }
        if units:
            avg = sum((t.price * t.current_units for t in trades), ZERO) / units
            d["averagePrice"] = quantize(avg, INSTRUMENTS[instrument].display_precision + 1)
            d["tradeIDs"] = [t.id for t in trades]
        return d

    def positions(self, open_only: bool) -> list[dict[str, Any]]:
        open_instruments = {t.instrument for t in self.account.open_trades()}
        return [self.position(i) for i in self.account.position_pl
                if not open_only or i in open_instruments]

    def figures(self) -> dict[str, Any]:
        """The calculated account state (AccountChangesState minus its lists)."""
        a = self.account
        trades = a.open_trades()
        upl = money(sum((self.unrealized(t) for t in trades), ZERO))
        used = money(sum((self.margin(t) for t in trades), ZERO))
        value = money(sum((self.value(t) for t in trades), ZERO))
        nav = money(a.balance + upl)
        available = money(max(nav - used, ZERO))
        percent = quantize(used / nav / 2, 5) if nav > 0 else Decimal(0)
        return {
            "unrealizedPL": upl, "NAV": nav, "marginUsed": used, "marginAvailable": available,
            "positionValue": value, "marginCloseoutUnrealizedPL": upl,
            "marginCloseoutNAV": nav, "marginCloseoutMarginUsed": used,
            "marginCloseoutPercent": percent, "marginCloseoutPositionValue": value,
            "withdrawalLimit": available, "marginCallMarginUsed": used,
            "marginCallPercent": quantize(percent * 2, 5),
        }

    def summary(self) -> dict[str, Any]:
        a = self.account
        d: dict[str, Any] = {
            "id": a.id, "alias": a.alias, "currency": a.currency, "balance": money(a.balance),
            "createdByUserID": 1435156, "createdTime": Timestamp(a.created_time),
            "guaranteedStopLossOrderMode": a.gsl_mode,
            "pl": money(sum((p[0] + p[1] for p in a.position_pl.values()), ZERO)),
            "resettablePL": money(sum((p[0] + p[1] for p in a.position_pl.values()), ZERO)),
            "resettablePLTime": "0", "financing": money(ZERO), "commission": money(ZERO),
            "guaranteedExecutionFees": money(a.guaranteed_fees), "marginRate": a.margin_rate,
            "openTradeCount": len(a.open_trades()),
            "openPositionCount": len({t.instrument for t in a.open_trades()}),
            "pendingOrderCount": len(a.pending_orders()), "hedgingEnabled": False,
            "lastTransactionID": a.last_transaction_id, **self.figures(),
        }
        if a.last_fill_time is not None:
            d["lastOrderFillTimestamp"] = Timestamp(a.last_fill_time)
        return d

    def full(self) -> dict[str, Any]:
        return {**self.summary(),
                "trades": [self.trade(t, summary=True) for t in self.account.open_trades()],
                "positions": self.positions(open_only=False),
                "orders": [o.as_json() for o in self.account.pending_orders()]}

    def changes(self, since: int) -> dict[str, Any]:
        """What changed after transaction `since` (GET /changes)."""
        a = self.account

        def after(tx_id: str | None) -> bool:
            return tx_id is not None and int(tx_id) > since

        orders = a.orders.values()
        touched = {tx["instrument"] for tx in a.transactions[since:]
                   if tx["type"] == "ORDER_FILL"}
        trades = a.trades.values()
        return {
            "ordersCreated": [o.as_json() for o in orders if after(o.id)],
            "ordersCancelled": [o.as_json() for o in orders
                                if after(o.cancelling_transaction_id)],
            "ordersFilled": [o.as_json() for o in orders if after(o.filling_transaction_id)],
            "ordersTriggered": [],
            "tradesOpened": [self.trade(t, True) for t in trades if after(t.id)],
            "tradesReduced": [self.trade(t, True) for t in trades if t.state == "OPEN"
                              and any(after(i) for i in t.closing_transaction_ids)],
            "tradesClosed": [self.trade(t, True) for t in trades if t.state == "CLOSED"
                             and after(t.closing_transaction_ids[-1])],
            "positions": [self.position(i) for i in sorted(touched)],
            "transactions": a.transactions[since:],
        }

    def changes_state(self) -> dict[str, Any]:
        trades = self.account.open_trades()
        return {
            **self.figures(), "orders": [],
            "trades": [{"id": t.id, "unrealizedPL": self.unrealized(t),
                        "marginUsed": self.margin(t)} for t in trades],
            "positions": [{"instrument": p["instrument"], "netUnrealizedPL": p["unrealizedPL"],
                           "longUnrealizedPL": p["long"]["unrealizedPL"],
                           "shortUnrealizedPL": p["short"]["unrealizedPL"],
                           "marginUsed": p["marginUsed"]} for p in self.positions(True)],
        }
