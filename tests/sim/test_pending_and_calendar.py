"""Pending orders trigger as the price crosses them; GTD orders expire; the market closes at
weekends and in maintenance windows — all on a fake clock, never on today's weekday."""

from __future__ import annotations

from decimal import Decimal

from sidecar.clock import FakeClock
from sidecar.sim.calendar import MarketCalendar
from tests.sim.conftest import TUESDAY, Client

EUR = "EUR_USD"
SATURDAY = TUESDAY + 4 * 86400  # 10:00 UTC
FRIDAY_CLOSE = TUESDAY + 3 * 86400 + 11 * 3600  # 21:00 UTC


async def test_limit_buy_below_the_market_fills_when_the_price_falls_to_it(
        clocked: Client) -> None:
    await clocked.hold(EUR, bid="1.10000", ask="1.10010")
    status, body, _ = await clocked.order(type="LIMIT", instrument=EUR, units="100",
                                          price="1.09500", stopLossOnFill={"distance": "0.005"})
    assert status == 201 and "orderFillTransaction" not in body
    order_id = body["orderCreateTransaction"]["id"]
    await clocked.hold(EUR, bid="1.09500", ask="1.09510")  # the ask is still above it
    _, order, _ = await clocked.call("GET", f"orders/{order_id}")
    assert order["order"]["state"] == "PENDING"
    await clocked.hold(EUR, bid="1.09480", ask="1.09490")
    after = await clocked.transactions_since(body["lastTransactionID"])
    assert [(t["type"], t.get("reason")) for t in after] == [
        ("ORDER_FILL", "LIMIT_ORDER"), ("STOP_LOSS_ORDER", "ON_FILL")]
    fill = after[0]
    assert fill["orderID"] == order_id and fill["price"] == "1.09490"
    assert fill["tradeOpened"]["units"] == "100"
    assert Decimal(after[1]["price"]) == Decimal("1.09490") - Decimal("0.005")
    _, order, _ = await clocked.call("GET", f"orders/{order_id}")
    assert order["order"]["state"] == "FILLED"
    assert order["order"]["tradeOpenedID"] == fill["id"]


async def test_stop_triggers_and_reduces_like_a_market_order(clocked: Client) -> None:
    await clocked.hold(EUR, bid="1.10000", ask="1.10010")
    trade_id = (await clocked.market("100"))["orderFillTransaction"]["tradeOpened"]["tradeID"]
    status, body, _ = await clocked.order(type="STOP", instrument=EUR, units="-40",
                                          price="1.09000")
    assert status == 201
    await clocked.hold(EUR, bid="1.08950", ask="1.08960")
    fill = (await clocked.transactions_since(body["lastTransactionID"]))[0]
    assert fill["reason"] == "STOP_ORDER" and fill["price"] == "1.08950"
    assert fill["tradeReduced"]["tradeID"] == trade_id and fill["tradeReduced"]["units"] == "-40"
    assert Decimal(fill["pl"]) == (Decimal("1.08950") - Decimal("1.10010")) * 40


async def test_a_marketable_limit_fills_in_its_own_answer(clocked: Client) -> None:
    await clocked.hold(EUR, bid="1.10000", ask="1.10010")
    status, body, _ = await clocked.order(type="LIMIT", instrument=EUR, units="10",
                                          price="1.20000")
    assert status == 201 and body["orderFillTransaction"]["reason"] == "LIMIT_ORDER"
    assert body["orderFillTransaction"]["price"] == "1.10010"


async def test_market_if_touched_triggers_from_either_side(clocked: Client) -> None:
    await clocked.hold(EUR, bid="1.10000", ask="1.10010")
    _, above, _ = await clocked.order(type="MARKET_IF_TOUCHED", instrument=EUR, units="5",
                                      price="1.11000")
    assert above["orderCreateTransaction"]["type"] == "MARKET_IF_TOUCHED_ORDER"
    await clocked.hold(EUR, bid="1.11000", ask="1.11010")
    _, order, _ = await clocked.call("GET", f"orders/{above['orderCreateTransaction']['id']}")
    assert order["order"]["state"] == "FILLED"
    assert order["order"]["initialMarketPrice"] == "1.10010"


async def test_gtd_order_expires_at_its_time(clocked: Client, fake_clock: FakeClock) -> None:
    await clocked.hold(EUR, bid="1.10000", ask="1.10010")
    gtd = "2025-12-02T10:00:30.000000000Z"
    status, body, _ = await clocked.order(type="LIMIT", instrument=EUR, units="10",
                                          price="1.00000", timeInForce="GTD", gtdTime=gtd)
    assert status == 201
    order_id = body["orderCreateTransaction"]["id"]
    assert body["orderCreateTransaction"]["gtdTime"] == gtd
    fake_clock.advance(29)
    _, order, _ = await clocked.call("GET", f"orders/{order_id}")
    assert order["order"]["state"] == "PENDING"
    fake_clock.advance(2)
    _, order, _ = await clocked.call("GET", f"orders/{order_id}")
    assert order["order"]["state"] == "CANCELLED"
    cancel = (await clocked.transactions_since(body["lastTransactionID"]))[0]
    assert cancel["type"] == "ORDER_CANCEL" and cancel["reason"] == "TIME_IN_FORCE_EXPIRED"
    assert cancel["time"] == gtd
    status, past, _ = await clocked.order(type="LIMIT", instrument=EUR, units="10",
                                          price="1.00000", timeInForce="GTD", gtdTime=gtd)
    assert status == 400 and past["errorCode"] == "TIME_IN_FORCE_GTD_TIMESTAMP_IN_PAST"


async def test_formula_prices_trigger_without_holds(clocked: Client,
                                                    fake_clock: FakeClock) -> None:
    """Between two requests every tick is checked: an order near the market fills as the
    seeded price wanders through it."""
    _, priced, _ = await clocked.call("GET", f"pricing?instruments={EUR}")
    ask = Decimal(priced["prices"][0]["asks"][0]["price"])
    status, body, _ = await clocked.order(type="LIMIT", instrument=EUR, units="1",
                                          price=str(ask - Decimal("0.00020")))
    assert status == 201 and "orderFillTransaction" not in body
    for _ in range(600):
        fake_clock.advance(60)
        _, order, _ = await clocked.call("GET", f"orders/{body['orderCreateTransaction']['id']}")
        if order["order"]["state"] == "FILLED":
            break
    assert order["order"]["state"] == "FILLED"
    fill = (await clocked.transactions_since(body["lastTransactionID"]))[0]
    assert Decimal(fill["price"]) <= ask - Decimal("0.00020")


async def test_weekend_prices_untradeable_and_orders_market_halted(
        clocked: Client, fake_clock: FakeClock) -> None:
    await clocked.hold(EUR, bid="1.10000", ask="1.10010")
    _, pending, _ = await clocked.order(type="LIMIT", instrument=EUR, units="10",
                                        price="0.90000")
    await clocked.call("DELETE", "/_sim/prices")
    _, before, _ = await clocked.call("GET", f"pricing?instruments={EUR}")
    fake_clock.advance(FRIDAY_CLOSE - TUESDAY - 0.25)  # the last tick
    _, last, _ = await clocked.call("GET", f"pricing?instruments={EUR}")
    assert last["prices"][0]["tradeable"] is True and before["prices"][0]["tradeable"] is True
    fake_clock.advance(SATURDAY - FRIDAY_CLOSE + 0.25)
    _, closed, _ = await clocked.call("GET", f"pricing?instruments={EUR}")
    price = closed["prices"][0]
    assert price["tradeable"] is False and price["status"] == "non-tradeable"
    assert price["bids"] == last["prices"][0]["bids"]  # frozen at the close
    body = await clocked.market("10")
    assert body["orderCancelTransaction"]["reason"] == "MARKET_HALTED"
    assert "orderFillTransaction" not in body
    status, limit, _ = await clocked.order(type="LIMIT", instrument=EUR, units="10",
                                           price="2.00000")
    assert status == 201 and "orderFillTransaction" not in limit  # waits for the open
    _, order, _ = await clocked.call("GET", f"orders/{pending['orderCreateTransaction']['id']}")
    assert order["order"]["state"] == "PENDING"
    _, calendar, _ = await clocked.call("GET", "/_sim/calendar")
    assert calendar["open"] is False and calendar["nextChange"].startswith("2025-12-07T21:00")
    fake_clock.advance(2 * 86400)  # Monday 10:00
    _, monday, _ = await clocked.call("GET", f"pricing?instruments={EUR}")
    assert monday["prices"][0]["tradeable"] is True
    _, filled, _ = await clocked.call("GET", f"orders/{limit['orderCreateTransaction']['id']}")
    assert filled["order"]["state"] == "FILLED"  # at the first tick after the open


async def test_market_switches_closed_and_open_at_once(clocked: Client) -> None:
    trade_id = (await clocked.market("5"))["orderFillTransaction"]["tradeOpened"]["tradeID"]
    status, cal, _ = await clocked.call("PUT", "/_sim/calendar", {"mode": "closed"})
    assert status == 200 and cal["open"] is False and cal["mode"] == "closed"
    assert (await clocked.market("1"))["orderCancelTransaction"]["reason"] == "MARKET_HALTED"
    status, close, _ = await clocked.call("PUT", f"trades/{trade_id}/close")
    assert status == 200 and close["orderCancelTransaction"]["reason"] == "MARKET_HALTED"
    status, pos, _ = await clocked.call("PUT", "positions/EUR_USD/close", {"longUnits": "ALL"})
    assert status == 200 and pos["longOrderCancelTransaction"]["reason"] == "MARKET_HALTED"
    _, trade, _ = await clocked.call("GET", f"trades/{trade_id}")
    assert trade["trade"]["state"] == "OPEN"
    await clocked.call("PUT", "/_sim/calendar", {"mode": "auto"})
    assert "orderFillTransaction" in await clocked.market("1")
    status, bad, _ = await clocked.call("PUT", "/_sim/calendar", {"mode": "weekend"})
    assert status == 400 and "mode" in bad["errorMessage"]


async def test_maintenance_window_answers_oanda_s_503(clocked: Client,
                                                      fake_clock: FakeClock) -> None:
    status, window, _ = await clocked.call("POST", "/_sim/maintenance", {"duration_s": 60})
    assert status == 200 and window["from"] < window["to"]
    async with clocked.session.get(f"{clocked.base}/summary") as r:
        assert r.status == 503 and r.headers["RequestID"].isdigit()
        assert await r.text() == '{"errorMessage":"Timeout waiting for response."}'
    fake_clock.advance(61)
    assert (await clocked.call("GET", "summary"))[0] == 200
    status, _, _ = await clocked.call("POST", "/_sim/maintenance", {
        "from": "2025-12-02T10:05:00Z", "to": "2025-12-02T10:06:00Z"})
    assert status == 200
    fake_clock.advance(240)
    assert (await clocked.call("GET", "summary"))[0] == 503
    fake_clock.advance(60)
    assert (await clocked.call("GET", "summary"))[0] == 200


def test_the_calendar_on_its_own() -> None:
    cal = MarketCalendar()
    assert cal.is_open(FRIDAY_CLOSE - 0.001) and not cal.is_open(FRIDAY_CLOSE)
    sunday_open = FRIDAY_CLOSE + 2 * 86400
    assert not cal.is_open(sunday_open - 0.001) and cal.is_open(sunday_open)
    assert cal.closed_since(SATURDAY) == FRIDAY_CLOSE
    assert cal.next_change(SATURDAY) == sunday_open
    assert cal.next_change(TUESDAY) == FRIDAY_CLOSE
    assert MarketCalendar.always_open().is_open(SATURDAY)
    custom = MarketCalendar("sat 00:00", "sat 06:00")
    assert custom.is_open(SATURDAY) and not custom.is_open(SATURDAY - 6 * 3600)
    cal.force("open", SATURDAY)
    assert cal.is_open(SATURDAY)


def test_good_for_day_ends_at_17_new_york() -> None:
    from sidecar.sim.validate import end_of_trading_day
    assert end_of_trading_day(TUESDAY) == TUESDAY + 12 * 3600  # 22:00 UTC in winter
    assert end_of_trading_day(TUESDAY + 13 * 3600) == TUESDAY + 36 * 3600
    july = 1_752_400_800.0  # 2025-07-13T10:00:00Z
    assert end_of_trading_day(july) == july + 11 * 3600  # 21:00 UTC in summer


async def test_gfd_order_expires_at_the_end_of_the_trading_day(
        clocked: Client, fake_clock: FakeClock) -> None:
    status, body, _ = await clocked.order(type="LIMIT", instrument=EUR, units="1",
                                          price="0.50000", timeInForce="GFD")
    assert status == 201 and "gtdTime" not in body["orderCreateTransaction"]
    fake_clock.advance(12 * 3600 + 1)
    cancel = (await clocked.transactions_since(body["lastTransactionID"]))[0]
    assert cancel["reason"] == "TIME_IN_FORCE_EXPIRED"
    assert cancel["time"] == "2025-12-02T22:00:00.000000000Z"
