"""The v20 handlers for accounts, pricing, candles and transactions, and the route table."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aiohttp import web

from sidecar.sim import candles, trading_routes, transactions
from sidecar.sim.closeouts import configure
from sidecar.sim.formats import Timestamp, parse_time
from sidecar.sim.market import INSTRUMENTS
from sidecar.sim.views import Valuation
from sidecar.sim.wire import (
    account,
    answer,
    batch,
    body,
    fail,
    flag,
    int_param,
    json_response,
    now,
)
from sidecar.sim.wire import state as sim_state

_FACTOR = Decimal("1e-8")


async def accounts(request: web.Request) -> web.Response:
    ids = sim_state(request).accounts
    return json_response({"accounts": [{"id": i, "tags": []} for i in ids]})


def _valuation(request: web.Request) -> Valuation:
    return Valuation(account(request), sim_state(request).market, now(request))


async def account_details(request: web.Request) -> web.Response:
    v = _valuation(request)
    return json_response({"account": v.full(),
                          "lastTransactionID": v.account.last_transaction_id})


async def account_summary(request: web.Request) -> web.Response:
    v = _valuation(request)
    return json_response({"account": v.summary(),
                          "lastTransactionID": v.account.last_transaction_id})


def _instrument_list(request: web.Request, required: bool) -> list[str]:
    text = request.query.get("instruments", "")
    if not text:
        if required:
            raise fail(400, "Invalid value specified for 'instruments'")
        return list(INSTRUMENTS)
    names = text.split(",")
    if any(n not in INSTRUMENTS for n in names):
        raise fail(400, "Invalid value specified for 'instruments'")
    return names


async def account_instruments(request: web.Request) -> web.Response:
    acct = account(request)
    names = _instrument_list(request, required=False)
    return json_response({"instruments": [INSTRUMENTS[n].as_json() for n in names],
                          "lastTransactionID": acct.last_transaction_id})


async def account_configuration(request: web.Request) -> web.Response:
    acct = account(request)
    return answer(request, acct, configure(acct, batch(request, acct), body(request)))


async def account_changes(request: web.Request) -> web.Response:
    v = _valuation(request)
    since = int_param(request, "sinceTransactionID")
    if since > int(v.account.last_transaction_id):
        raise fail(416, "sinceTransactionID is newer than the Account's last Transaction")
    return json_response({"changes": v.changes(since), "state": v.changes_state(),
                          "lastTransactionID": v.account.last_transaction_id})


async def pricing(request: web.Request) -> web.Response:
    """Prices now; `since`: only those that changed after it (a price's time is its tick)."""
    account(request)
    market, t = sim_state(request).market, now(request)
    names = _instrument_list(request, required=True)
    if flag(request, "includeUnitsAvailable", False):
        raise fail(400, "includeUnitsAvailable (deprecated by OANDA) is not supported by the "
                        "simulator")
    prices = [market.price_json(n, t) for n in names]
    if "since" in request.query:
        try:
            since = parse_time(request.query["since"])
        except ValueError:
            raise fail(400, "Invalid value specified for 'since'") from None
        prices = [p for p in prices if p["time"].t > since]
    out: dict[str, Any] = {"prices": prices, "time": Timestamp(t)}
    if flag(request, "includeHomeConversions", False):
        currencies = sorted({c for n in names for c in n.split("_")})
        out["homeConversions"] = [
            {"currency": c, "accountGain": f, "accountLoss": f, "positionValue": f}
            for c in currencies for f in [market.to_home(c, t).quantize(_FACTOR)]]
    return json_response(out)


def add_routes(app: web.Application) -> None:
    a = "/v3/accounts/{accountID}"
    app.router.add_get("/v3/accounts", accounts)
    app.router.add_get(a, account_details)
    app.router.add_get(f"{a}/summary", account_summary)
    app.router.add_get(f"{a}/instruments", account_instruments)
    app.router.add_patch(f"{a}/configuration", account_configuration)
    app.router.add_get(f"{a}/changes", account_changes)
    app.router.add_get(f"{a}/pricing", pricing)
    candles.add_routes(app, a)
    transactions.add_routes(app, a)
    trading_routes.add_routes(app, a)
