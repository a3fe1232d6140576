"""The simulator's main answers validate against OANDA's v20 OpenAPI response schemas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import require_tool
from tests.sim.conftest import Client
from tests.sim.oanda_spec import OandaSpec

SPEC_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "oanda-v20-openapi"
A = "/accounts/{accountID}"


@pytest.fixture(scope="module")
def spec() -> OandaSpec:
    require_tool((SPEC_DIR / "v20.openapi3.json").is_file(), f"OANDA spec not found at {SPEC_DIR}")
    return OandaSpec(SPEC_DIR)


async def _check(spec: OandaSpec, client: Client, method: str, template: str, path: str,
                 status: int, body: Any = None) -> Any:
    got, data, _ = await client.call(method, path, body)
    assert got == status, data
    assert spec.errors(method, template, status, data) == []
    return data


async def test_account_endpoints(spec: OandaSpec, client: Client) -> None:
    await client.market("100")
    await client.order(type="LIMIT", instrument="EUR_USD", units="5", price="1.00000")
    await _check(spec, client, "GET", "/accounts", "/v3/accounts", 200)
    await _check(spec, client, "GET", A, "", 200)
    await _check(spec, client, "GET", f"{A}/summary", "summary", 200)
    await _check(spec, client, "GET", f"{A}/instruments", "instruments", 200)
    await _check(spec, client, "GET", f"{A}/changes", "changes?sinceTransactionID=1", 200)
    await _check(spec, client, "PATCH", f"{A}/configuration", "configuration", 200,
                 {"alias": "x", "marginRate": "0.05"})
    await _check(spec, client, "PATCH", f"{A}/configuration", "configuration", 400,
                 {"marginRate": "-1"})


async def test_market_data(spec: OandaSpec, client: Client) -> None:
    await _check(spec, client, "GET", f"{A}/pricing",
                 "pricing?instruments=EUR_USD,USD_JPY,XAU_USD&includeHomeConversions=true", 200)
    await _check(spec, client, "GET", "/instruments/{instrument}/candles",
                 "/v3/instruments/EUR_USD/candles?count=10&price=BAM&granularity=H1", 200)
    await _check(spec, client, "GET", f"{A}/instruments/{{instrument}}/candles",
                 "instruments/SPX500_USD/candles?count=3", 200)


async def test_orders(spec: OandaSpec, client: Client) -> None:
    await _check(spec, client, "POST", f"{A}/orders", "orders", 201, {"order": {
        "type": "MARKET", "instrument": "EUR_USD", "units": "10",
        "clientExtensions": {"id": "c-1", "tag": "t"}, "tradeClientExtensions": {"id": "tr-1"}}})
    pending = await _check(spec, client, "POST", f"{A}/orders", "orders", 201, {"order": {
        "type": "LIMIT", "instrument": "EUR_USD", "units": "-10", "price": "1.90000"}})
    order_id = pending["orderCreateTransaction"]["id"]
    await _check(spec, client, "GET", f"{A}/orders/{{orderSpecifier}}", "orders/@c-1", 200)
    await _check(spec, client, "GET", f"{A}/orders", "orders?state=ALL", 200)
    await _check(spec, client, "GET", f"{A}/pendingOrders", "pendingOrders", 200)
    await _check(spec, client, "PUT", f"{A}/orders/{{orderSpecifier}}", f"orders/{order_id}",
                 201, {"order": {"type": "LIMIT", "instrument": "EUR_USD", "units": "-5",
                                 "price": "1.80000"}})
    _, pending_now, _ = await client.call("GET", "pendingOrders")
    new_id = pending_now["orders"][0]["id"]
    await _check(spec, client, "PUT", f"{A}/orders/{{orderSpecifier}}/cancel",
                 f"orders/{new_id}/cancel", 200)
    await _check(spec, client, "PUT", f"{A}/orders/{{orderSpecifier}}/cancel",
                 f"orders/{new_id}/cancel", 404)
    await _check(spec, client, "POST", f"{A}/orders", "orders", 400, {"order": {
        "type": "MARKET", "instrument": "NOPE_XXX", "units": "1"}})
    await _check(spec, client, "POST", f"{A}/orders", "orders", 400, {"order": {
        "type": "STOP", "instrument": "EUR_USD", "units": "1"}})
    await _check(spec, client, "GET", f"{A}/orders/{{orderSpecifier}}", "orders/424242", 404)


async def test_trades_positions_transactions(spec: OandaSpec, client: Client) -> None:
    fill = (await client.market("100"))["orderFillTransaction"]
    await client.market("-30")
    trade_id = fill["tradeOpened"]["tradeID"]
    await _check(spec, client, "GET", f"{A}/trades", "trades?state=ALL", 200)
    await _check(spec, client, "GET", f"{A}/openTrades", "openTrades", 200)
    await _check(spec, client, "GET", f"{A}/trades/{{tradeSpecifier}}", f"trades/{trade_id}", 200)
    await _check(spec, client, "PUT", f"{A}/trades/{{tradeSpecifier}}/close",
                 f"trades/{trade_id}/close", 200, {"units": "20"})
    await _check(spec, client, "PUT", f"{A}/trades/{{tradeSpecifier}}/close",
                 "trades/999/close", 404)
    await client.market("-5", instrument="USD_JPY")
    await _check(spec, client, "GET", f"{A}/positions", "positions", 200)
    await _check(spec, client, "GET", f"{A}/openPositions", "openPositions", 200)
    await _check(spec, client, "GET", f"{A}/positions/{{instrument}}", "positions/EUR_USD", 200)
    await _check(spec, client, "PUT", f"{A}/positions/{{instrument}}/close",
                 "positions/EUR_USD/close", 200, {"longUnits": "ALL"})
    await _check(spec, client, "PUT", f"{A}/positions/{{instrument}}/close",
                 "positions/USD_JPY/close", 400, {"longUnits": "ALL"})
    await _check(spec, client, "PUT", f"{A}/positions/{{instrument}}/close",
                 "positions/USD_JPY/close", 200, {"shortUnits": "2"})
    await _check(spec, client, "GET", f"{A}/changes", "changes?sinceTransactionID=2", 200)
    data = await _check(spec, client, "GET", f"{A}/transactions/sinceid",
                        "transactions/sinceid?id=0", 200)
    assert {t["type"] for t in data["transactions"]} >= {
        "CREATE", "TRANSFER_FUNDS", "MARKET_ORDER", "ORDER_FILL", "MARKET_ORDER_REJECT"}
    await _check(spec, client, "GET", f"{A}/transactions/{{transactionID}}", "transactions/3",
                 200)
    await _check(spec, client, "GET", f"{A}/transactions", "transactions?pageSize=5", 200)
    await _check(spec, client, "GET", f"{A}/transactions/idrange",
                 "transactions/idrange?from=2&to=6", 200)


async def test_401(spec: OandaSpec, client: Client) -> None:
    async with aiohttp.ClientSession() as anonymous, anonymous.get(client.base) as r:
        assert r.status == 401
        assert spec.errors("GET", A, 401, await r.json()) == []


def test_the_strict_schemas_catch_a_misspelt_field(spec: OandaSpec) -> None:
    good = {"transaction": {"id": "1", "type": "ORDER_FILL", "units": "1"},
            "lastTransactionID": "1"}
    bad = {"transaction": {"id": "1", "type": "ORDER_FILL", "unitz": "1"},
           "lastTransactionID": "1"}
    unknown = {"transaction": {"id": "1", "type": "NOT_A_TYPE"}, "lastTransactionID": "1"}
    template = f"{A}/transactions/{{transactionID}}"
    assert spec.errors("GET", template, 200, good) == []
    assert spec.errors("GET", template, 200, bad)
    assert spec.errors("GET", template, 200, unknown)
    order = f"{A}/orders/{{orderSpecifier}}"
    assert spec.errors("GET", order, 200, {"order": {"id": "1", "type": "LIMIT", "price": "1"}}) \
        == []
    assert spec.errors("GET", order, 200, {"order": {"id": "1", "type": "LIMIT", "bogus": "1"}})
    assert spec.errors("GET", order, 200, {"order": {"id": "1", "type": "LIMIT", "units": 5}})


async def test_dependent_orders_and_extensions(spec: OandaSpec, client: Client) -> None:
    body = await client.market("100", takeProfitOnFill={"price": "9.00000"},
                               stopLossOnFill={"distance": "0.01000"},
                               trailingStopLossOnFill={"distance": "0.00500"},
                               tradeClientExtensions={"id": "t-9"})
    trade_id = body["orderFillTransaction"]["tradeOpened"]["tradeID"]
    await _check(spec, client, "GET", f"{A}/trades/{{tradeSpecifier}}", f"trades/{trade_id}", 200)
    await _check(spec, client, "GET", f"{A}/orders", "orders?state=ALL", 200)
    await _check(spec, client, "GET", A, "", 200)
    await _check(spec, client, "GET", f"{A}/changes", "changes?sinceTransactionID=2", 200)
    await _check(spec, client, "GET", f"{A}/transactions/sinceid",
                 "transactions/sinceid?id=0", 200)
    t = f"{A}/trades/{{tradeSpecifier}}/orders"
    await _check(spec, client, "PUT", t, f"trades/{trade_id}/orders", 200,
                 {"takeProfit": {"price": "8.00000"}, "stopLoss": None})
    await _check(spec, client, "PUT", t, f"trades/{trade_id}/orders", 200,
                 {"stopLoss": {"price": "9.50000"}})  # through the market: fills at once
    await _check(spec, client, "PUT", t, "trades/999/orders", 404, {"stopLoss": None})
    second = await client.market("10")
    other = second["orderFillTransaction"]["tradeOpened"]["tradeID"]
    await _check(spec, client, "PUT", t, f"trades/{other}/orders", 400, {"takeProfit": {}})
    e = f"{A}/trades/{{tradeSpecifier}}/clientExtensions"
    await _check(spec, client, "PUT", e, f"trades/{other}/clientExtensions", 200,
                 {"clientExtensions": {"id": "x"}})
    await _check(spec, client, "PUT", e, f"trades/{other}/clientExtensions", 400, {})
    await _check(spec, client, "PUT", e, "trades/999/clientExtensions", 404,
                 {"clientExtensions": {"id": "y"}})
    _, pending, _ = await client.order(type="STOP", instrument="EUR_USD", units="1",
                                       price="9.00000", timeInForce="GTD",
                                       gtdTime="2100-01-01T00:00:00Z")
    order_id = pending["orderCreateTransaction"]["id"]
    o = f"{A}/orders/{{orderSpecifier}}/clientExtensions"
    await _check(spec, client, "PUT", o, f"orders/{order_id}/clientExtensions", 200,
                 {"clientExtensions": {"tag": "a"}, "tradeClientExtensions": {"id": "b"}})
    await _check(spec, client, "PUT", o, f"orders/{order_id}/clientExtensions", 400, {})
    await _check(spec, client, "PUT", o, "orders/999/clientExtensions", 404,
                 {"clientExtensions": {"tag": "a"}})
    await _check(spec, client, "POST", f"{A}/orders", "orders", 201, {"order": {
        "type": "TAKE_PROFIT", "tradeID": other, "price": "9.00000"}})
    await _check(spec, client, "POST", f"{A}/orders", "orders", 201, {"order": {
        "type": "LIMIT", "instrument": "EUR_USD", "units": "5", "price": "9.00000"}})
    await _check(spec, client, "GET", f"{A}/transactions", "transactions?type=ORDER", 200)


async def test_weekend_and_latest_candles(spec: OandaSpec, client: Client) -> None:
    await client.call("PUT", "/_sim/calendar", {"mode": "closed"})
    await _check(spec, client, "GET", f"{A}/pricing", "pricing?instruments=EUR_USD", 200)
    await _check(spec, client, "POST", f"{A}/orders", "orders", 201, {"order": {
        "type": "MARKET", "instrument": "EUR_USD", "units": "1"}})
    await _check(spec, client, "GET", f"{A}/candles/latest",
                 "candles/latest?candleSpecifications=EUR_USD:S10:BM,USD_JPY:D:A", 200)
