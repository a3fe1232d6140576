"""The transaction endpoints: one, pages by time, an ID range, everything since an ID — each
list filtered by `type` (transaction types or OANDA's groups ORDER, FUNDING, ADMIN)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from sidecar.sim.formats import Timestamp, parse_time
from sidecar.sim.wire import account, fail, int_param, json_response, now

MAX_TRANSACTIONS = 1000
_ADMIN = {"CREATE", "CLOSE", "REOPEN", "CLIENT_CONFIGURE", "CLIENT_CONFIGURE_REJECT",
          "MARGIN_CALL_ENTER", "MARGIN_CALL_EXTEND", "MARGIN_CALL_EXIT", "RESET_RESETTABLE_PL",
          "DELAYED_TRADE_CLOSURE"}
_FUNDING = {"TRANSFER_FUNDS", "TRANSFER_FUNDS_REJECT", "DAILY_FINANCING"}
_ORDER = {f"{kind}_ORDER{suffix}" for kind in (
    "MARKET", "LIMIT", "STOP", "MARKET_IF_TOUCHED", "TAKE_PROFIT", "STOP_LOSS",
    "TRAILING_STOP_LOSS", "ONE_CANCELS_ALL") for suffix in ("", "_REJECT")} | {
    "FIXED_PRICE_ORDER", "ONE_CANCELS_ALL_ORDER_TRIGGERED", "ORDER_FILL", "ORDER_CANCEL",
    "ORDER_CANCEL_REJECT", "ORDER_CLIENT_EXTENSIONS_MODIFY",
    "ORDER_CLIENT_EXTENSIONS_MODIFY_REJECT", "TRADE_CLIENT_EXTENSIONS_MODIFY",
    "TRADE_CLIENT_EXTENSIONS_MODIFY_REJECT"}
GROUPS = {"ORDER": _ORDER, "FUNDING": _FUNDING, "ADMIN": _ADMIN}
TYPES = _ADMIN | _FUNDING | _ORDER

Filter = Callable[[dict[str, Any]], bool]


def type_filter(request: web.Request) -> tuple[list[str], Filter | None]:
    """The `type` parameter (comma separated) as a predicate; 400 for an unknown name."""
    text = request.query.get("type", "")
    if not text:
        return [], None
    names = text.split(",")
    wanted: set[str] = set()
    for name in names:
        if name in GROUPS:
            wanted |= GROUPS[name]
        elif name in TYPES:
            wanted.add(name)
        else:
            raise fail(400, "Invalid value specified for 'type'")
    return names, lambda tx: tx["type"] in wanted


def _time(request: web.Request, name: str, default: float) -> float:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        return parse_time(text)
    except ValueError:
        raise fail(400, f"Invalid value specified for '{name}'") from None


async def transaction(request: web.Request) -> web.Response:
    acct = account(request)
    tx_id = int(request.match_info["transactionID"])
    if not 1 <= tx_id <= len(acct.transactions):
        raise fail(404, "The Transaction specified does not exist", "NO_SUCH_TRANSACTION")
    return json_response({"transaction": acct.transactions[tx_id - 1],
                          "lastTransactionID": acct.last_transaction_id})


async def transactions_since(request: web.Request) -> web.Response:
    """After `id`, oldest first, at most 1000 (matching `type` when given)."""
    acct = account(request)
    since = int_param(request, "id")
    _, keep = type_filter(request)
    txs = acct.transactions[since:]
    if keep is not None:
        txs = [tx for tx in txs if keep(tx)]
    return json_response({"transactions": txs[:MAX_TRANSACTIONS],
                          "lastTransactionID": acct.last_transaction_id})


async def transactions_range(request: web.Request) -> web.Response:
    acct = account(request)
    first, last = int_param(request, "from"), int_param(request, "to")
    _, keep = type_filter(request)
    # At most 1000 transactions: a filtered range may span more IDs than it returns.
    if first < 1 or last < first or (keep is None and last - first >= MAX_TRANSACTIONS):
        raise fail(400, "Invalid transaction ID range")
    txs = acct.transactions[first - 1:last]
    if keep is not None:
        txs = [tx for tx in txs if keep(tx)][:MAX_TRANSACTIONS]
    return json_response({"transactions": txs, "lastTransactionID": acct.last_transaction_id})


async def transaction_pages(request: web.Request) -> web.Response:
    """Pages (idrange URLs of at most `pageSize` matching transactions) between two times."""
    acct = account(request)
    size = int_param(request, "pageSize", 100, MAX_TRANSACTIONS) or 100
    start = _time(request, "from", acct.created_time)
    end = _time(request, "to", now(request))
    names, keep = type_filter(request)
    ids = [int(tx["id"]) for tx in acct.transactions if start <= tx["time"].t <= end
           and (keep is None or keep(tx))]
    base = request.url.origin().with_path(f"/v3/accounts/{acct.id}/transactions/idrange")
    extra = {"type": ",".join(names)} if names else {}
    pages = [str(base.with_query({"from": str(chunk[0]), "to": str(chunk[-1]), **extra}))
             for chunk in (ids[i:i + size] for i in range(0, len(ids), size))]
    out: dict[str, Any] = {"from": Timestamp(start), "to": Timestamp(end), "pageSize": size,
                           "count": len(ids), "pages": pages,
                           "lastTransactionID": acct.last_transaction_id}
    if names:
        out["type"] = names
    return json_response(out)


def add_routes(app: web.Application, a: str) -> None:
    app.router.add_get(f"{a}/transactions", transaction_pages)
    app.router.add_get(f"{a}/transactions/sinceid", transactions_since)
    app.router.add_get(f"{a}/transactions/idrange", transactions_range)
    app.router.add_get(f"{a}/transactions/{{transactionID:[0-9]+}}", transaction)
