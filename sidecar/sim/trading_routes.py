"""The v20 handlers for orders, trades and positions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from aiohttp import web

from sidecar.sim.closeouts import close_position, close_trade
from sidecar.sim.extensions import modify_order, modify_trade
from sidecar.sim.market import INSTRUMENTS
from sidecar.sim.orders import cancel_order, place_order, replace_order
from sidecar.sim.state import Order, Trade
from sidecar.sim.trade_orders import set_trade_orders
from sidecar.sim.views import Valuation
from sidecar.sim.wire import account, answer, batch, body, fail, int_param, json_response, now
from sidecar.sim.wire import state as sim_state

T = TypeVar("T", Order, Trade)
MAX_LIST = 500


def _page(request: web.Request, items: Sequence[T], states: dict[str, set[str]],
          default_state: str) -> tuple[list[T], dict[str, str] | None]:
    """Filter like OANDA (state, instrument, ids, beforeID), newest first, `count` per page;
    a `Link: <...>; rel="next"` header when more remain."""
    q = request.query
    state = q.get("state", default_state)
    if state not in states:
        raise fail(400, "Invalid value specified for 'state'")
    count = int_param(request, "count", 50, MAX_LIST)
    before = int_param(request, "beforeID", 0) or None
    ids = set(q["ids"].split(",")) if q.get("ids") else None
    instrument = q.get("instrument")
    chosen = [x for x in reversed(items)
              if x.state in states[state] and (instrument is None or x.instrument == instrument)
              and (ids is None or x.id in ids) and (before is None or int(x.id) <= before)]
    if len(chosen) <= count:
        return chosen, None
    page = chosen[:count]
    nxt = request.url.update_query({"beforeID": str(int(page[-1].id) - 1), "count": str(count)})
    return page, {"Link": f'<{nxt}>; rel="next"'}


_ORDER_STATES = {"PENDING": {"PENDING"}, "FILLED": {"FILLED"}, "TRIGGERED": {"TRIGGERED"},
                 "CANCELLED": {"CANCELLED"}, "ALL": {"PENDING", "FILLED", "TRIGGERED",
                                                     "CANCELLED"}}
_TRADE_STATES = {"OPEN": {"OPEN"}, "CLOSED": {"CLOSED"}, "CLOSE_WHEN_TRADEABLE": set(),
                 "ALL": {"OPEN", "CLOSED"}}


async def list_orders(request: web.Request) -> web.Response:
    acct = account(request)
    page, headers = _page(request, list(acct.orders.values()), _ORDER_STATES, "PENDING")
    return json_response({"orders": [o.as_json() for o in page],
                          "lastTransactionID": acct.last_transaction_id}, headers=headers)


async def pending_orders(request: web.Request) -> web.Response:
    acct = account(request)
    return json_response({"orders": [o.as_json() for o in reversed(acct.pending_orders())],
                          "lastTransactionID": acct.last_transaction_id})


async def create_order(request: web.Request) -> web.Response:
    acct = account(request)
    outcome = place_order(acct, sim_state(request).market, batch(request, acct), body(request))
    return answer(request, acct, outcome)


async def get_order(request: web.Request) -> web.Response:
    acct = account(request)
    order = acct.find_order(request.match_info["orderSpecifier"])
    if order is None:
        raise fail(404, "The order ID specified does not exist", "NO_SUCH_ORDER")
    return json_response({"order": order.as_json(), "lastTransactionID": acct.last_transaction_id})


async def put_order(request: web.Request) -> web.Response:
    acct = account(request)
    outcome = replace_order(acct, sim_state(request).market, batch(request, acct),
                            request.match_info["orderSpecifier"], body(request))
    return answer(request, acct, outcome)


async def cancel(request: web.Request) -> web.Response:
    acct = account(request)
    outcome = cancel_order(acct, batch(request, acct), request.match_info["orderSpecifier"])
    return answer(request, acct, outcome)


async def order_extensions(request: web.Request) -> web.Response:
    acct = account(request)
    outcome = modify_order(acct, batch(request, acct), request.match_info["orderSpecifier"],
                           body(request))
    return answer(request, acct, outcome)


async def trade_extensions(request: web.Request) -> web.Response:
    acct = account(request)
    outcome = modify_trade(acct, batch(request, acct), request.match_info["tradeSpecifier"],
                           body(request))
    return answer(request, acct, outcome)


async def trade_orders(request: web.Request) -> web.Response:
    acct = account(request)
    outcome = set_trade_orders(acct, sim_state(request).market, batch(request, acct),
                               request.match_info["tradeSpecifier"], body(request))
    return answer(request, acct, outcome)


def _valuation(request: web.Request) -> Valuation:
    return Valuation(account(request), sim_state(request).market, now(request))


async def list_trades(request: web.Request) -> web.Response:
    v = _valuation(request)
    page, headers = _page(request, list(v.account.trades.values()), _TRADE_STATES, "OPEN")
    return json_response({"trades": [v.trade(t) for t in page],
                          "lastTransactionID": v.account.last_transaction_id}, headers=headers)


async def open_trades(request: web.Request) -> web.Response:
    v = _valuation(request)
    return json_response({"trades": [v.trade(t) for t in reversed(v.account.open_trades())],
                          "lastTransactionID": v.account.last_transaction_id})


async def get_trade(request: web.Request) -> web.Response:
    v = _valuation(request)
    trade = v.account.find_trade(request.match_info["tradeSpecifier"])
    if trade is None:
        raise fail(404, "The trade ID specified does not exist", "NO_SUCH_TRADE")
    return json_response({"trade": v.trade(trade),
                          "lastTransactionID": v.account.last_transaction_id})


async def close_one_trade(request: web.Request) -> web.Response:
    acct = account(request)
    outcome = close_trade(acct, sim_state(request).market, batch(request, acct),
                          request.match_info["tradeSpecifier"], body(request))
    return answer(request, acct, outcome)


async def list_positions(request: web.Request) -> web.Response:
    v = _valuation(request)
    open_only = request.path.endswith("/openPositions")
    return json_response({"positions": v.positions(open_only),
                          "lastTransactionID": v.account.last_transaction_id})


async def get_position(request: web.Request) -> web.Response:
    v = _valuation(request)
    name = request.match_info["instrument"]
    if name not in INSTRUMENTS:
        raise fail(400, "Invalid value specified for 'instrument'")
    out: dict[str, Any] = {"position": v.position(name),
                           "lastTransactionID": v.account.last_transaction_id}
    return json_response(out)


async def close_one_position(request: web.Request) -> web.Response:
    acct = account(request)
    outcome = close_position(acct, sim_state(request).market, batch(request, acct),
                             request.match_info["instrument"], body(request))
    return answer(request, acct, outcome)


def add_routes(app: web.Application, a: str) -> None:
    r = app.router
    r.add_get(f"{a}/orders", list_orders)
    r.add_post(f"{a}/orders", create_order)
    r.add_get(f"{a}/pendingOrders", pending_orders)
    r.add_get(f"{a}/orders/{{orderSpecifier}}", get_order)
    r.add_put(f"{a}/orders/{{orderSpecifier}}", put_order)
    r.add_put(f"{a}/orders/{{orderSpecifier}}/cancel", cancel)
    r.add_put(f"{a}/orders/{{orderSpecifier}}/clientExtensions", order_extensions)
    r.add_get(f"{a}/trades", list_trades)
    r.add_get(f"{a}/openTrades", open_trades)
    r.add_get(f"{a}/trades/{{tradeSpecifier}}", get_trade)
    r.add_put(f"{a}/trades/{{tradeSpecifier}}/close", close_one_trade)
    r.add_put(f"{a}/trades/{{tradeSpecifier}}/clientExtensions", trade_extensions)
    r.add_put(f"{a}/trades/{{tradeSpecifier}}/orders", trade_orders)
    r.add_get(f"{a}/positions", list_positions)
    r.add_get(f"{a}/openPositions", list_positions)
    r.add_get(f"{a}/positions/{{instrument}}", get_position)
    r.add_put(f"{a}/positions/{{instrument}}/close", close_one_position)
