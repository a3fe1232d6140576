"""One fill with everything OANDA does around it: the on-fill loss check before, and after it
the cancels of the closed trades' dependent orders and the new trade's on-fill orders."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sidecar.sim.dependents import cancel_linked, create_on_fill, on_fill_loss
from sidecar.sim.engine import cancel, execute, opposite_trades
from sidecar.sim.market import Market
from sidecar.sim.records import Order, Trade
from sidecar.sim.state import Account, Batch


def fill(account: Account, market: Market, batch: Batch, order: Order, targets: list[Trade],
         reason: str, price: Decimal | None = None) -> dict[str, Any]:
    """Fill `order` (at `price`, else at the ask or bid); the answer's fill or cancel."""
    q = market.quote(order.instrument, batch.now)
    if price is None:
        price = q.ask if order.units > 0 else q.bid
    loss = on_fill_loss(order, price) if order.on_fill else None
    if loss is not None:
        return {"orderCancelTransaction": cancel(batch, order, loss)}
    answer = execute(account, market, batch, order, targets, reason, price, q)
    filled = answer.get("orderFillTransaction")
    if filled is None:
        return answer
    for trade_id in order.trade_closed_ids:
        cancel_linked(account, batch, account.trades[trade_id])
    if order.trade_opened_id is not None and order.on_fill:
        create_on_fill(account, market, batch, order, account.trades[order.trade_opened_id],
                       filled["id"])
    return answer


def targets_of(account: Account, order: Order) -> list[Trade]:
    """The trades a fill of `order` reduces first: its own trade for a dependent order, the
    opposite side (oldest first) for an entry order unless it only opens."""
    if order.trade_id is not None:
        trade = account.trades[order.trade_id]
        order.units = -trade.current_units
        return [trade]
    if order.position_fill == "OPEN_ONLY":
        return []
    return opposite_trades(account, order.instrument, order.units)
