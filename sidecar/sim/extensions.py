"""PUT /orders/{spec}/clientExtensions and PUT /trades/{spec}/clientExtensions.

The fields given replace those fields of the current extensions (`id`, `tag`, `comment`); the
others stay. Orders must be pending and trades open; a client ID already carried by another
pending order (open trade) is refused, as on OANDA.
"""

from __future__ import annotations

from typing import Any

from sidecar.sim.engine import Outcome, Reject, rejected
from sidecar.sim.state import Account, Batch
from sidecar.sim.validate import extensions

_ORDER_REJECT = "orderClientExtensionsModifyRejectTransaction"
_TRADE_REJECT = "tradeClientExtensionsModifyRejectTransaction"


def _merged(old: dict[str, str] | None, new: dict[str, str] | None) -> dict[str, str] | None:
    return None if new is None else {**(old or {}), **new}


def modify_order(account: Account, batch: Batch, spec: str, body: Any) -> Outcome:
    order = account.find_order(spec)
    body = body if isinstance(body, dict) else {}
    base: dict[str, Any] = {"type": "ORDER_CLIENT_EXTENSIONS_MODIFY_REJECT"}
    base["clientOrderID" if spec.startswith("@") else "orderID"] = spec.lstrip("@")
    if order is None or order.state != "PENDING":
        return rejected(404, batch, {_ORDER_REJECT: {**base, "rejectReason": "ORDER_DOESNT_EXIST"}},
                        "ORDER_DOESNT_EXIST")
    base["orderID"] = order.id
    try:
        ext = extensions(body, "clientExtensions", "CLIENT_ORDER_ID_INVALID")
        trade_ext = extensions(body, "tradeClientExtensions", "CLIENT_TRADE_ID_INVALID")
        if ext is None and trade_ext is None:
            raise Reject("CLIENT_EXTENSIONS_DATA_MISSING")
        if trade_ext is not None and order.dependent:
            raise Reject("TRADE_ON_FILL_CLIENT_EXTENSIONS_NOT_SUPPORTED")
        if ext and "id" in ext:
            other = account.find_order("@" + ext["id"])
            if other is not None and other is not order and other.state == "PENDING":
                raise Reject("CLIENT_ORDER_ID_ALREADY_EXISTS")
    except Reject as r:
        return rejected(400, batch, {_ORDER_REJECT: {**base, "rejectReason": r.reason}}, r.reason)
    tx: dict[str, Any] = {"type": "ORDER_CLIENT_EXTENSIONS_MODIFY", "orderID": order.id}
    if ext is not None:
        old = order.client_id
        order.client_extensions = _merged(order.client_extensions, ext)
        account.set_order_client_id(order, old)
        tx["clientExtensionsModify"] = ext
    if trade_ext is not None:
        order.trade_client_extensions = _merged(order.trade_client_extensions, trade_ext)
        tx["tradeClientExtensionsModify"] = trade_ext
    if order.client_id:
        tx["clientOrderID"] = order.client_id
    return Outcome(200, {"orderClientExtensionsModifyTransaction": batch.add(tx),
                         **batch.tail()})


def modify_trade(account: Account, batch: Batch, spec: str, body: Any) -> Outcome:
    trade = account.find_trade(spec)
    body = body if isinstance(body, dict) else {}
    base: dict[str, Any] = {"type": "TRADE_CLIENT_EXTENSIONS_MODIFY_REJECT"}
    base["clientTradeID" if spec.startswith("@") else "tradeID"] = spec.lstrip("@")
    if trade is None or trade.state != "OPEN":
        return rejected(404, batch, {_TRADE_REJECT: {**base, "rejectReason": "TRADE_DOESNT_EXIST"}},
                        "TRADE_DOESNT_EXIST")
    base["tradeID"] = trade.id
    try:
        ext = extensions(body, "clientExtensions", "CLIENT_TRADE_ID_INVALID")
        if ext is None:
            raise Reject("CLIENT_EXTENSIONS_DATA_MISSING")
        if "id" in ext:
            other = account.find_trade("@" + ext["id"])
            if other is not None and other is not trade and other.state == "OPEN":
                raise Reject("CLIENT_TRADE_ID_ALREADY_EXISTS")
    except Reject as r:
        return rejected(400, batch, {_TRADE_REJECT: {**base, "rejectReason": r.reason}}, r.reason)
    old = trade.client_id
    trade.client_extensions = _merged(trade.client_extensions, ext)
    account.set_trade_client_id(trade, old)
    for order_id in trade.dependents.values():
        account.orders[order_id].client_trade_id = trade.client_id
    tx: dict[str, Any] = {"type": "TRADE_CLIENT_EXTENSIONS_MODIFY", "tradeID": trade.id,
                          "tradeClientExtensionsModify": ext}
    if trade.client_id:
        tx["clientTradeID"] = trade.client_id
    return Outcome(200, {"tradeClientExtensionsModifyTransaction": batch.add(tx),
                         **batch.tail()})
