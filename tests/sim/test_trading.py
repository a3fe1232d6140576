"""The trading model through the v20 HTTP surface: orders, trades, positions, transactions."""

from __future__ import annotations

from decimal import Decimal

from tests.sim.conftest import Client


async def test_market_order_fills_at_once_and_opens_a_trade(client: Client) -> None:
    body = await client.market("100", clientExtensions={"id": "my-1"})
    create, fill = body["orderCreateTransaction"], body["orderFillTransaction"]
    assert create["type"] == "MARKET_ORDER" and fill["type"] == "ORDER_FILL"
    assert fill["orderID"] == create["id"] and fill["clientOrderID"] == "my-1"
    assert body["relatedTransactionIDs"] == [create["id"], fill["id"]]
    assert body["lastTransactionID"] == fill["id"]
    assert create["batchID"] == fill["batchID"] == create["id"]
    trade_id = fill["tradeOpened"]["tradeID"]
    assert trade_id == fill["id"]  # OANDA: a trade's ID is its opening fill's ID

    status, got, _ = await client.call("GET", "orders/@my-1")
    assert status == 200
    assert got["order"]["state"] == "FILLED"
    assert got["order"]["fillingTransactionID"] == fill["id"]
    assert got["order"]["tradeOpenedID"] == trade_id
    status, trade, _ = await client.call("GET", f"trades/{trade_id}")
    assert status == 200 and trade["trade"]["currentUnits"] == "100"
    assert trade["trade"]["price"] == fill["price"]


async def test_buy_fills_at_the_ask_and_sell_at_the_bid(client: Client) -> None:
    buy = (await client.market("10"))["orderFillTransaction"]
    sell = (await client.market("-10", instrument="USD_JPY"))["orderFillTransaction"]
    assert buy["price"] == buy["fullPrice"]["asks"][0]["price"]
    assert sell["price"] == sell["fullPrice"]["bids"][0]["price"]


async def test_opposite_order_reduces_then_closes_fifo(client: Client) -> None:
    first = (await client.market("100"))["orderFillTransaction"]["tradeOpened"]["tradeID"]
    second = (await client.market("50"))["orderFillTransaction"]["tradeOpened"]["tradeID"]
    fill = (await client.market("-120"))["orderFillTransaction"]
    assert [c["tradeID"] for c in fill["tradesClosed"]] == [first]
    assert fill["tradeReduced"] == {**fill["tradeReduced"], "tradeID": second, "units": "-20"}
    assert "tradeOpened" not in fill
    _, pos, _ = await client.call("GET", "positions/EUR_USD")
    assert pos["position"]["long"]["units"] == "30"
    assert pos["position"]["long"]["tradeIDs"] == [second]
    # Realised P/L of the fill = sum of its parts, booked into the balance.
    parts = [Decimal(c["realizedPL"]) for c in [*fill["tradesClosed"], fill["tradeReduced"]]]
    assert Decimal(fill["pl"]) == sum(parts)
    _, summary, _ = await client.call("GET", "summary")
    assert Decimal(summary["account"]["balance"]) == Decimal("100000") + Decimal(fill["pl"])


async def test_transaction_ids_increase_by_one_and_rejects_consume_one(client: Client) -> None:
    _, before, _ = await client.call("GET", "summary")
    last = int(before["lastTransactionID"])
    await client.market("10")
    status, reject, _ = await client.order(type="MARKET", instrument="EUR_USD", units="zero")
    assert status == 400
    await client.order(type="LIMIT", instrument="EUR_USD", units="10", price="1.00000")
    _, since, _ = await client.call("GET", f"transactions/sinceid?id={last}")
    ids = [int(t["id"]) for t in since["transactions"]]
    assert ids == list(range(last + 1, last + 5))
    assert [t["type"] for t in since["transactions"]] == [
        "MARKET_ORDER", "ORDER_FILL", "MARKET_ORDER_REJECT", "LIMIT_ORDER"]
    assert reject["lastTransactionID"] == str(last + 3)
    _, one, _ = await client.call("GET", f"transactions/{last + 3}")
    assert one["transaction"]["rejectReason"] == "UNITS_INVALID"


async def test_pending_order_lifecycle_with_client_id(client: Client) -> None:
    status, created, headers = await client.order(
        type="LIMIT", instrument="EUR_USD", units="10", price="1.00000",
        clientExtensions={"id": "lim-1"})
    assert status == 201 and "orderFillTransaction" not in created
    order_id = created["orderCreateTransaction"]["id"]
    assert headers["Location"].endswith(f"/v3/accounts/{client.sim.account_id}/orders/{order_id}")
    _, pending, _ = await client.call("GET", "pendingOrders")
    assert [o["id"] for o in pending["orders"]] == [order_id]

    status, dup, _ = await client.order(type="LIMIT", instrument="EUR_USD", units="5",
                                        price="1.00000", clientExtensions={"id": "lim-1"})
    assert status == 400
    assert dup["orderRejectTransaction"]["rejectReason"] == "CLIENT_ORDER_ID_ALREADY_EXISTS"
    assert dup["errorCode"] == "CLIENT_ORDER_ID_ALREADY_EXISTS"

    status, cancelled, _ = await client.call("PUT", "orders/@lim-1/cancel")
    assert status == 200
    assert cancelled["orderCancelTransaction"]["orderID"] == order_id
    status, got, _ = await client.call("GET", "orders/@lim-1")
    assert got["order"]["state"] == "CANCELLED"
    assert got["order"]["cancellingTransactionID"] == cancelled["lastTransactionID"]
    status, again, _ = await client.call("PUT", f"orders/{order_id}/cancel")
    assert status == 404 and again["errorCode"] == "ORDER_DOESNT_EXIST"
    # Once the first is no longer pending, its client ID may be used again.
    status, _, _ = await client.order(type="LIMIT", instrument="EUR_USD", units="5",
                                      price="1.00000", clientExtensions={"id": "lim-1"})
    assert status == 201


async def test_market_client_ids_are_not_protected(client: Client) -> None:
    await client.market("1", clientExtensions={"id": "same"})
    second = await client.market("1", clientExtensions={"id": "same"})
    _, got, _ = await client.call("GET", "orders/@same")
    assert got["order"]["id"] == second["orderCreateTransaction"]["id"]


async def test_replace_cancels_and_links_both_orders(client: Client) -> None:
    _, created, _ = await client.order(type="STOP", instrument="EUR_USD", units="10",
                                       price="1.50000")
    old = created["orderCreateTransaction"]["id"]
    status, replaced, headers = await client.call(
        "PUT", f"orders/{old}",
        {"order": {"type": "STOP", "instrument": "EUR_USD", "units": "20", "price": "1.60000"}})
    assert status == 201
    new = replaced["orderCreateTransaction"]["id"]
    assert replaced["orderCancelTransaction"]["replacedByOrderID"] == new
    assert replaced["orderCreateTransaction"]["replacesOrderID"] == old
    assert headers["Location"].endswith(f"/orders/{new}")
    _, pending, _ = await client.call("GET", "pendingOrders")
    assert [o["id"] for o in pending["orders"]] == [new]


async def test_order_rejects_name_the_reason(client: Client) -> None:
    cases = [({"instrument": "NOPE_XXX", "units": "1"}, "INSTRUMENT_UNKNOWN"),
             ({"units": "1"}, "INSTRUMENT_MISSING"),
             ({"instrument": "EUR_USD"}, "UNITS_MISSING"),
             ({"instrument": "EUR_USD", "units": "0"}, "UNITS_INVALID"),
             ({"instrument": "EUR_USD", "units": "1.5"}, "UNITS_PRECISION_EXCEEDED"),
             ({"instrument": "EUR_USD", "units": "1", "timeInForce": "GTC"},
              "TIME_IN_FORCE_INVALID")]
    for fields, reason in cases:
        status, body, _ = await client.order(type="MARKET", **fields)
        assert status == 400, fields
        assert body["orderRejectTransaction"]["rejectReason"] == reason
        assert body["errorCode"] == reason and body["errorMessage"]
        assert body["relatedTransactionIDs"] == [body["lastTransactionID"]]
    status, body, _ = await client.call("POST", "orders", {"nothing": True})
    assert status == 400 and "errorMessage" in body
    status, body, _ = await client.call("POST", "orders", data=b"{not json")
    assert status == 400 and "errorMessage" in body


async def test_price_bound_violation_is_a_201_with_a_cancel(client: Client) -> None:
    body = await client.market("10", priceBound="0.50000")
    assert body["orderCancelTransaction"]["reason"] == "BOUNDS_VIOLATION"
    assert "orderFillTransaction" not in body
    _, trades, _ = await client.call("GET", "openTrades")
    assert trades["trades"] == []


async def test_trade_close_partial_then_all(client: Client) -> None:
    trade_id = (await client.market("-100", tradeClientExtensions={"id": "t-1"}))[
        "orderFillTransaction"]["tradeOpened"]["tradeID"]
    status, part, _ = await client.call("PUT", "trades/@t-1/close", {"units": "40"})
    assert status == 200
    assert part["orderCreateTransaction"]["tradeClose"]["tradeID"] == trade_id
    assert part["orderFillTransaction"]["tradeReduced"]["units"] == "40"
    status, too_many, _ = await client.call("PUT", f"trades/{trade_id}/close", {"units": "61"})
    assert status == 400
    assert too_many["errorCode"] == "CLOSE_TRADE_UNITS_EXCEED_TRADE_SIZE"
    status, rest, _ = await client.call("PUT", f"trades/{trade_id}/close")
    assert status == 200
    assert rest["orderFillTransaction"]["tradesClosed"][0]["units"] == "60"
    _, trade, _ = await client.call("GET", f"trades/{trade_id}")
    assert trade["trade"]["state"] == "CLOSED" and trade["trade"]["currentUnits"] == "0"
    status, gone, _ = await client.call("PUT", f"trades/{trade_id}/close")
    assert status == 404 and gone["orderRejectTransaction"]["rejectReason"] == \
        "TRADE_DOESNT_EXIST"


async def test_position_close_both_sides_rules(client: Client) -> None:
    await client.market("30", instrument="GBP_USD")
    await client.market("20", instrument="GBP_USD")
    status, none, _ = await client.call("PUT", "positions/GBP_USD/close", {"shortUnits": "ALL"})
    assert status == 400 and none["errorCode"] == "CLOSEOUT_POSITION_DOESNT_EXIST"
    assert "shortOrderRejectTransaction" in none
    status, big, _ = await client.call("PUT", "positions/GBP_USD/close", {"longUnits": "51"})
    assert status == 400 and big["errorCode"] == "CLOSEOUT_POSITION_UNITS_EXCEED_POSITION_SIZE"
    status, closed, headers = await client.call("PUT", "positions/GBP_USD/close",
                                                {"longUnits": "ALL"})
    assert status == 200 and "Location" in headers
    assert closed["longOrderFillTransaction"]["units"] == "-50"
    assert len(closed["longOrderFillTransaction"]["tradesClosed"]) == 2
    _, open_positions, _ = await client.call("GET", "openPositions")
    assert open_positions["positions"] == []
    _, positions, _ = await client.call("GET", "positions")
    assert [p["instrument"] for p in positions["positions"]] == ["GBP_USD"]


async def test_lists_paginate_newest_first_with_link(client: Client) -> None:
    for _ in range(5):
        await client.market("1")
    _, first, headers = await client.call("GET", "orders?state=ALL&count=2")
    ids = [int(o["id"]) for o in first["orders"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == 2
    link = headers["Link"]
    assert link.endswith('>; rel="next"')
    status, second, _ = await client.call("GET", link[1:link.index(">")].replace(
        client.sim.url, ""))
    assert status == 200 and int(second["orders"][0]["id"]) < ids[-1]
    _, trades, headers = await client.call("GET", "trades?count=500")
    assert len(trades["trades"]) == 5 and "Link" not in headers
