"""Client extensions of orders and trades, the `type` filter on transaction lists, and OANDA's
boolean spelling tolerance."""

from __future__ import annotations

from tests.sim.conftest import Client


async def test_order_client_extensions_modify(client: Client) -> None:
    _, created, _ = await client.order(type="LIMIT", instrument="EUR_USD", units="10",
                                       price="1.00000", clientExtensions={"id": "a", "tag": "t"})
    order_id = created["orderCreateTransaction"]["id"]
    status, body, _ = await client.call("PUT", "orders/@a/clientExtensions", {
        "clientExtensions": {"id": "b", "comment": "moved"},
        "tradeClientExtensions": {"id": "trade-b"}})
    assert status == 200, body
    tx = body["orderClientExtensionsModifyTransaction"]
    assert tx["type"] == "ORDER_CLIENT_EXTENSIONS_MODIFY" and tx["orderID"] == order_id
    assert tx["clientExtensionsModify"] == {"id": "b", "comment": "moved"}
    assert body["relatedTransactionIDs"] == [tx["id"]] == [body["lastTransactionID"]]
    _, got, _ = await client.call("GET", "orders/@b")
    assert got["order"]["clientExtensions"] == {"id": "b", "tag": "t", "comment": "moved"}
    assert got["order"]["tradeClientExtensions"] == {"id": "trade-b"}
    assert (await client.call("GET", "orders/@a"))[0] == 404
    status, missing, _ = await client.call("PUT", f"orders/{order_id}/clientExtensions", {})
    assert status == 400 and missing["errorCode"] == "CLIENT_EXTENSIONS_DATA_MISSING"
    assert "orderClientExtensionsModifyRejectTransaction" in missing
    _, other, _ = await client.order(type="LIMIT", instrument="EUR_USD", units="1",
                                     price="1.00000")
    status, dup, _ = await client.call(
        "PUT", f"orders/{other['orderCreateTransaction']['id']}/clientExtensions",
        {"clientExtensions": {"id": "b"}})
    assert status == 400 and dup["errorCode"] == "CLIENT_ORDER_ID_ALREADY_EXISTS"
    status, gone, _ = await client.call("PUT", "orders/777/clientExtensions",
                                        {"clientExtensions": {"tag": "x"}})
    assert status == 404 and gone["errorCode"] == "ORDER_DOESNT_EXIST"


async def test_trade_client_extensions_modify(client: Client) -> None:
    fill = (await client.market("10", takeProfitOnFill={"price": "9.00000"}))[
        "orderFillTransaction"]
    trade_id = fill["tradeOpened"]["tradeID"]
    status, body, _ = await client.call("PUT", f"trades/{trade_id}/clientExtensions",
                                        {"clientExtensions": {"id": "mine", "tag": "x"}})
    assert status == 200, body
    tx = body["tradeClientExtensionsModifyTransaction"]
    assert (tx["tradeID"], tx["clientTradeID"]) == (trade_id, "mine")
    _, trade, _ = await client.call("GET", "trades/@mine")
    assert trade["trade"]["clientExtensions"] == {"id": "mine", "tag": "x"}
    assert trade["trade"]["takeProfitOrder"]["clientTradeID"] == "mine"
    status, bad, _ = await client.call("PUT", "trades/@mine/clientExtensions",
                                       {"clientExtensions": {"id": 5}})
    assert status == 400 and bad["errorCode"] == "CLIENT_TRADE_ID_INVALID"
    await client.call("PUT", "trades/@mine/close")
    status, closed, _ = await client.call("PUT", f"trades/{trade_id}/clientExtensions",
                                          {"clientExtensions": {"tag": "y"}})
    assert status == 404 and closed["errorCode"] == "TRADE_DOESNT_EXIST"


async def test_transaction_type_filter_on_pages_ranges_and_since(client: Client) -> None:
    await client.market("10")
    await client.market("-10")
    await client.order(type="LIMIT", instrument="EUR_USD", units="1", price="1.00000")
    _, pages, _ = await client.call("GET", "transactions?type=ORDER_FILL&pageSize=1")
    assert pages["count"] == 2 and pages["type"] == ["ORDER_FILL"]
    assert len(pages["pages"]) == 2 and "type=ORDER_FILL" in pages["pages"][0]
    page = pages["pages"][1].replace(client.sim.url, "")
    _, one, _ = await client.call("GET", page)
    assert [t["type"] for t in one["transactions"]] == ["ORDER_FILL"]
    _, ranged, _ = await client.call("GET", "transactions/idrange?from=1&to=99&type=ORDER_FILL,"
                                            "LIMIT_ORDER")
    assert [t["type"] for t in ranged["transactions"]] == ["ORDER_FILL", "ORDER_FILL",
                                                           "LIMIT_ORDER"]
    _, since, _ = await client.call("GET", "transactions/sinceid?id=0&type=FUNDING,ADMIN")
    assert [t["type"] for t in since["transactions"]] == ["CREATE", "TRANSFER_FUNDS"]
    _, orders, _ = await client.call("GET", "transactions/sinceid?id=0&type=ORDER")
    assert len(orders["transactions"]) == 5
    status, bad, _ = await client.call("GET", "transactions?type=NOPE")
    assert status == 400 and "type" in bad["errorMessage"]
    _, none, _ = await client.call("GET", "transactions?from=2030-01-01T00:00:00Z")
    assert none["count"] == 0 and none["pages"] == []


async def test_booleans_as_v20_spells_them(client: Client) -> None:
    for spelling in ("true", "True"):
        _, body, _ = await client.call(
            "GET", f"pricing?instruments=EUR_USD&includeHomeConversions={spelling}")
        assert "homeConversions" in body, spelling
    for spelling in ("false", "False"):
        _, body, _ = await client.call(
            "GET", f"pricing?instruments=EUR_USD&includeHomeConversions={spelling}")
        assert "homeConversions" not in body, spelling
    status, body, _ = await client.call(
        "GET", "pricing?instruments=EUR_USD&includeHomeConversions=yes")
    assert status == 400 and "includeHomeConversions" in body["errorMessage"]
    status, _, _ = await client.call("GET",
                                     "pricing?instruments=EUR_USD&includeUnitsAvailable=True")
    assert status == 400  # refused, not ignored


async def test_pricing_since_only_returns_newer_prices(client: Client) -> None:
    _, now, _ = await client.call("GET", "pricing?instruments=EUR_USD")
    stamp = now["prices"][0]["time"]
    _, later, _ = await client.call("GET", f"pricing?instruments=EUR_USD&since={stamp}")
    assert all(p["time"] > stamp for p in later["prices"])
    _, old, _ = await client.call("GET", "pricing?instruments=EUR_USD&since=2000-01-01T00:00:00Z")
    assert len(old["prices"]) == 1


async def test_close_bodies_take_what_oanda_takes_and_refuse_the_rest(client: Client) -> None:
    trade_id = (await client.market("10"))["orderFillTransaction"]["tradeOpened"]["tradeID"]
    status, body, _ = await client.call("PUT", f"trades/{trade_id}/close", {"unit": "5"})
    assert status == 400 and "'unit'" in body["errorMessage"]
    status, body, _ = await client.call("PUT", "positions/EUR_USD/close", {
        "longUnits": "ALL", "longClientExtensions": {"id": "closer", "tag": "eod"}})
    assert status == 200
    assert body["longOrderCreateTransaction"]["clientExtensions"] == {"id": "closer",
                                                                      "tag": "eod"}
    assert body["longOrderFillTransaction"]["clientOrderID"] == "closer"
    _, got, _ = await client.call("GET", "orders/@closer")
    assert got["order"]["longPositionCloseout"]["units"] == "ALL"
    status, body, _ = await client.call("PUT", "positions/EUR_USD/close",
                                        {"longUnits": "ALL", "shortUnit": "ALL"})
    assert status == 400 and "'shortUnit'" in body["errorMessage"]
    status, body, _ = await client.call("PATCH", "configuration", {"alias": "a", "hedging": True})
    assert status == 400 and "'hedging'" in body["errorMessage"]
