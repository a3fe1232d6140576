"""Orders on fill, and the market closing trades through them: take profit, stop loss,
trailing stop, guaranteed stop, on a fake clock with prices held through the fault API."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.sim.conftest import Client

EUR = "EUR_USD"


async def _open_with(client: Client, units: str, **on_fill: Any) -> dict[str, Any]:
    body = await client.market(units, **on_fill)
    assert "orderFillTransaction" in body, body
    return body


async def _trade(client: Client, trade_id: str) -> dict[str, Any]:
    status, body, _ = await client.call("GET", f"trades/{trade_id}")
    assert status == 200
    return dict(body["trade"])


async def _balance(client: Client) -> Decimal:
    _, summary, _ = await client.call("GET", "summary")
    return Decimal(summary["account"]["balance"])


async def test_market_order_with_sl_and_tp_then_the_stop_closes_it(clocked: Client) -> None:
    await clocked.hold(EUR, bid="1.10000", ask="1.10010")
    body = await _open_with(clocked, "1000", stopLossOnFill={"price": "1.09500"},
                            takeProfitOnFill={"price": "1.11000", "clientExtensions": {"id": "tp"}})
    fill = body["orderFillTransaction"]
    trade_id = fill["tradeOpened"]["tradeID"]
    txs = await clocked.transactions_since(int(body["orderCreateTransaction"]["id"]) - 1)
    assert [t["type"] for t in txs] == ["MARKET_ORDER", "ORDER_FILL", "TAKE_PROFIT_ORDER",
                                        "STOP_LOSS_ORDER"]
    tp_tx, sl_tx = txs[2], txs[3]
    assert tp_tx["reason"] == sl_tx["reason"] == "ON_FILL"
    assert tp_tx["tradeID"] == sl_tx["tradeID"] == trade_id
    assert tp_tx["orderFillTransactionID"] == fill["id"] and tp_tx["price"] == "1.11000"
    assert body["relatedTransactionIDs"] == [t["id"] for t in txs]
    trade = await _trade(clocked, trade_id)
    assert trade["takeProfitOrder"]["id"] == tp_tx["id"]
    assert trade["stopLossOrder"] == {**trade["stopLossOrder"], "id": sl_tx["id"],
                                      "state": "PENDING", "price": "1.09500"}
    _, pending, _ = await clocked.call("GET", "pendingOrders")
    assert {o["id"] for o in pending["orders"]} == {tp_tx["id"], sl_tx["id"]}
    _, details, _ = await clocked.call("GET", "")
    summary = details["account"]["trades"][0]
    assert (summary["takeProfitOrderID"], summary["stopLossOrderID"]) == (tp_tx["id"],
                                                                          sl_tx["id"])
    balance = await _balance(clocked)

    await clocked.hold(EUR, bid="1.09600", ask="1.09610")  # above the stop: nothing
    assert (await _trade(clocked, trade_id))["state"] == "OPEN"
    await clocked.hold(EUR, bid="1.09400", ask="1.09410")  # through it
    closed = await _trade(clocked, trade_id)
    assert closed["state"] == "CLOSED"
    after = await clocked.transactions_since(sl_tx["id"])
    assert [(t["type"], t.get("reason")) for t in after] == [
        ("ORDER_FILL", "STOP_LOSS_ORDER"), ("ORDER_CANCEL", "LINKED_TRADE_CLOSED")]
    stop_fill, tp_cancel = after
    assert stop_fill["orderID"] == sl_tx["id"] and tp_cancel["orderID"] == tp_tx["id"]
    assert stop_fill["price"] == "1.09400"  # a stop fills at the market: slippage included
    assert stop_fill["tradesClosed"][0]["units"] == "-1000"
    pl = Decimal(stop_fill["pl"])
    assert pl == Decimal("-6.1000")  # (1.09400 - 1.10010) * 1000
    assert Decimal(closed["realizedPL"]) == pl
    assert await _balance(clocked) == balance + pl
    assert stop_fill["accountBalance"] == str(balance + pl)
    _, sl, _ = await clocked.call("GET", f"orders/{sl_tx['id']}")
    assert sl["order"]["state"] == "FILLED" and sl["order"]["tradeClosedIDs"] == [trade_id]
    _, tp, _ = await clocked.call("GET", "orders/@tp")
    assert tp["order"]["state"] == "CANCELLED"


async def test_take_profit_closes_a_short_at_its_price_or_better(clocked: Client) -> None:
    await clocked.hold(EUR, mid="1.20000")
    body = await _open_with(clocked, "-500", takeProfitOnFill={"price": "1.19000"},
                            stopLossOnFill={"distance": "0.01000"})
    trade_id = body["orderFillTransaction"]["tradeOpened"]["tradeID"]
    entry = Decimal(body["orderFillTransaction"]["price"])
    trade = await _trade(clocked, trade_id)
    assert Decimal(trade["stopLossOrder"]["price"]) == entry + Decimal("0.01000")
    await clocked.hold(EUR, bid="1.18990", ask="1.18998")
    after = await clocked.transactions_since(body["lastTransactionID"])
    assert [(t["type"], t.get("reason")) for t in after] == [
        ("ORDER_FILL", "TAKE_PROFIT_ORDER"), ("ORDER_CANCEL", "LINKED_TRADE_CLOSED")]
    assert after[0]["price"] == "1.18998"  # the ask, better than 1.19000
    assert Decimal(after[0]["pl"]) == (entry - Decimal("1.18998")) * 500
    assert (await _trade(clocked, trade_id))["state"] == "CLOSED"


async def test_trailing_stop_follows_the_price_then_closes(clocked: Client) -> None:
    await clocked.hold(EUR, bid="1.10000", ask="1.10010")
    body = await _open_with(clocked, "100", trailingStopLossOnFill={"distance": "0.00200"})
    trade_id = body["orderFillTransaction"]["tradeOpened"]["tradeID"]

    async def value() -> str:
        return str((await _trade(clocked, trade_id))["trailingStopLossOrder"][
            "trailingStopValue"])

    assert await value() == "1.09800"
    await clocked.hold(EUR, bid="1.10500", ask="1.10510")
    assert await value() == "1.10300"  # trailed up with the bid
    await clocked.hold(EUR, bid="1.10400", ask="1.10410")
    assert await value() == "1.10300"  # never back down
    await clocked.hold(EUR, bid="1.10290", ask="1.10300")
    after = await clocked.transactions_since(body["lastTransactionID"])
    assert [(t["type"], t.get("reason")) for t in after] == [
        ("ORDER_FILL", "TRAILING_STOP_LOSS_ORDER")]
    assert after[0]["price"] == "1.10290"
    assert Decimal(after[0]["pl"]) == (Decimal("1.10290") - Decimal("1.10010")) * 100


async def test_guaranteed_stop_fills_at_its_price_through_a_gap(clocked: Client) -> None:
    await clocked.hold(EUR, bid="1.10000", ask="1.10010")
    body = await _open_with(clocked, "1000", stopLossOnFill={"price": "1.09000",
                                                             "guaranteed": True})
    await clocked.hold(EUR, bid="1.05000", ask="1.05010")  # gaps far below the stop
    fill = (await clocked.transactions_since(body["lastTransactionID"]))[0]
    assert fill["reason"] == "STOP_LOSS_ORDER" and fill["price"] == "1.09000"
    assert Decimal(fill["guaranteedExecutionFee"]) == Decimal("0.1000")  # 1 pip * 1000


async def test_guaranteed_stop_is_refused_where_the_account_disallows_it(client: Client) -> None:
    status, body, _ = await client.order(type="MARKET", instrument=EUR, units="10",
                                         stopLossOnFill={"distance": "0.01", "guaranteed": True})
    assert status == 400
    assert body["errorCode"] == "STOP_LOSS_ON_FILL_GUARANTEED_NOT_ALLOWED"
    status, _, _ = await client.call("PUT", f"/_sim/accounts/{client.sim.account_id}",
                                     {"guaranteedStopLossOrderMode": "ALLOWED"})
    assert status == 200
    status, body, _ = await client.order(
        type="MARKET", instrument=EUR, units="10",
        guaranteedStopLossOnFill={"distance": "0.01000"})
    assert status == 201
    trade = await _trade(client, body["orderFillTransaction"]["tradeOpened"]["tradeID"])
    assert trade["stopLossOrder"]["guaranteed"] is True


async def test_on_fill_rejects_name_the_reason(clocked: Client) -> None:
    await clocked.hold(EUR, mid="1.10000")
    cases = [({"takeProfitOnFill": {}}, "TAKE_PROFIT_ON_FILL_PRICE_MISSING"),
             ({"stopLossOnFill": {"price": "1.0", "distance": "0.1"}},
              "STOP_LOSS_ON_FILL_PRICE_AND_DISTANCE_BOTH_SPECIFIED"),
             ({"stopLossOnFill": {"timeInForce": "GTD"}},
              "STOP_LOSS_ON_FILL_PRICE_AND_DISTANCE_BOTH_MISSING"),
             ({"takeProfitOnFill": {"price": "1.2", "timeInForce": "GTD"}},
              "TAKE_PROFIT_ON_FILL_GTD_TIMESTAMP_MISSING"),
             ({"trailingStopLossOnFill": {"distance": "0.00001"}},
              "TRAILING_STOP_LOSS_ON_FILL_PRICE_DISTANCE_MINIMUM_NOT_MET")]
    for fields, reason in cases:
        status, body, _ = await clocked.order(type="MARKET", instrument=EUR, units="1", **fields)
        assert (status, body["errorCode"]) == (400, reason), fields
    # A take profit that would lose at once cancels the order, as OANDA does.
    body = await clocked.market("1", takeProfitOnFill={"price": "1.09000"})
    assert body["orderCancelTransaction"]["reason"] == "TAKE_PROFIT_ON_FILL_LOSS"
    # A misspelt field is refused, never ignored.
    status, body, _ = await clocked.order(type="MARKET", instrument=EUR, units="1",
                                          stopLossOnfill={"price": "1.0"})
    assert status == 400 and "stopLossOnfill" in body["errorMessage"]


async def test_put_trade_orders_creates_replaces_and_cancels(clocked: Client) -> None:
    await clocked.hold(EUR, mid="1.10000")
    body = await _open_with(clocked, "100", tradeClientExtensions={"id": "my-trade"})
    trade_id = body["orderFillTransaction"]["tradeOpened"]["tradeID"]
    status, set_, _ = await clocked.call("PUT", "trades/@my-trade/orders", {
        "takeProfit": {"price": "1.20000"}, "stopLoss": {"distance": "0.00500"}})
    assert status == 200, set_
    tp = set_["takeProfitOrderTransaction"]
    assert tp["reason"] == "CLIENT_ORDER" and tp["clientTradeID"] == "my-trade"
    sl_id = set_["stopLossOrderTransaction"]["id"]
    status, again, _ = await clocked.call("PUT", f"trades/{trade_id}/orders", {
        "stopLoss": {"price": "1.09000"}, "takeProfit": None})
    assert status == 200, again
    assert again["stopLossOrderCancelTransaction"]["orderID"] == sl_id
    assert again["stopLossOrderCancelTransaction"]["reason"] == "CLIENT_REQUEST_REPLACED"
    new_sl = again["stopLossOrderTransaction"]
    assert new_sl["reason"] == "REPLACEMENT" and new_sl["replacesOrderID"] == sl_id
    assert again["takeProfitOrderCancelTransaction"]["reason"] == "CLIENT_REQUEST"
    trade = await _trade(clocked, trade_id)
    assert "takeProfitOrder" not in trade and trade["stopLossOrder"]["id"] == new_sl["id"]
    # One bad detail rejects the whole request, and changes nothing.
    status, bad, _ = await clocked.call("PUT", f"trades/{trade_id}/orders", {
        "takeProfit": {"price": "1.30000"}, "stopLoss": {}})
    assert status == 400 and "stopLossOrderRejectTransaction" in bad
    assert "takeProfitOrder" not in await _trade(clocked, trade_id)
    # A stop already through the market fills at once.
    status, now, _ = await clocked.call("PUT", f"trades/{trade_id}/orders",
                                        {"stopLoss": {"price": "1.10500"}})
    assert status == 200 and now["stopLossOrderFillTransaction"]["reason"] == "STOP_LOSS_ORDER"
    assert (await _trade(clocked, trade_id))["state"] == "CLOSED"
    status, _, _ = await clocked.call("PUT", f"trades/{trade_id}/orders", {"stopLoss": None})
    assert status == 404


async def test_dependent_orders_replace_and_cancel_through_the_order_endpoints(
        clocked: Client) -> None:
    await clocked.hold(EUR, mid="1.10000")
    body = await _open_with(clocked, "100", takeProfitOnFill={"price": "1.20000"})
    trade_id = body["orderFillTransaction"]["tradeOpened"]["tradeID"]
    tp_id = (await _trade(clocked, trade_id))["takeProfitOrder"]["id"]
    status, replaced, _ = await clocked.call("PUT", f"orders/{tp_id}", {"order": {
        "type": "TAKE_PROFIT", "tradeID": trade_id, "price": "1.15000"}})
    assert status == 201, replaced
    new_id = replaced["orderCreateTransaction"]["id"]
    assert (await _trade(clocked, trade_id))["takeProfitOrder"]["price"] == "1.15000"
    status, wrong, _ = await clocked.call("PUT", f"orders/{new_id}", {"order": {
        "type": "STOP_LOSS", "tradeID": trade_id, "price": "1.05000"}})
    assert status == 400 and wrong["errorCode"] == "REPLACING_ORDER_INVALID"
    status, _, _ = await clocked.call("PUT", f"orders/{new_id}/cancel")
    assert status == 200
    assert "takeProfitOrder" not in await _trade(clocked, trade_id)
    # Created directly, with a tradeID; a second one of a kind is refused.
    status, sl, _ = await clocked.order(type="STOP_LOSS", tradeID=trade_id, price="1.05000")
    assert status == 201 and sl["orderCreateTransaction"]["type"] == "STOP_LOSS_ORDER"
    status, dup, _ = await clocked.order(type="STOP_LOSS", tradeID=trade_id, price="1.06000")
    assert status == 400 and dup["errorCode"] == "STOP_LOSS_ORDER_ALREADY_EXISTS"
    status, none, _ = await clocked.order(type="TAKE_PROFIT", tradeID="999", price="1.2")
    assert status == 400 and none["errorCode"] == "TRADE_DOESNT_EXIST"
    # Closing the trade cancels what is linked to it.
    status, _, _ = await clocked.call("PUT", f"trades/{trade_id}/close")
    assert status == 200
    _, sl_now, _ = await clocked.call("GET", f"orders/{sl['orderCreateTransaction']['id']}")
    assert sl_now["order"]["state"] == "CANCELLED"


async def test_an_expired_take_profit_leaves_its_trade(clocked: Client, fake_clock: Any) -> None:
    await clocked.hold(EUR, mid="1.10000")
    body = await _open_with(clocked, "10", takeProfitOnFill={
        "price": "1.20000", "timeInForce": "GTD", "gtdTime": "2025-12-02T11:00:00Z"})
    trade_id = body["orderFillTransaction"]["tradeOpened"]["tradeID"]
    assert (await _trade(clocked, trade_id))["takeProfitOrder"]["gtdTime"].startswith(
        "2025-12-02T11:00:00")
    fake_clock.advance(3601)
    assert "takeProfitOrder" not in await _trade(clocked, trade_id)
    status, _, _ = await clocked.order(type="TAKE_PROFIT", tradeID=trade_id, price="1.20000")
    assert status == 201  # a new one may be set


async def test_trailing_distance_limits_follow_the_instrument(client: Client) -> None:
    _, instruments, _ = await client.call("GET", "instruments?instruments=EUR_USD,USD_JPY")
    eur, jpy = instruments["instruments"]
    assert (eur["minimumTrailingStopDistance"], jpy["minimumTrailingStopDistance"]) == (
        "0.00050", "0.050")
    status, body, _ = await client.order(type="MARKET", instrument="USD_JPY", units="1",
                                         trailingStopLossOnFill={"distance": "0.040"})
    assert status == 400
    assert body["errorCode"] == "TRAILING_STOP_LOSS_ON_FILL_PRICE_DISTANCE_MINIMUM_NOT_MET"
    status, _, _ = await client.order(type="MARKET", instrument="USD_JPY", units="1",
                                      trailingStopLossOnFill={"distance": "0.050"})
    assert status == 201
