"""Candle parameters as OANDA reads them: alignment, includeFirst, smooth, the latest candles."""

from __future__ import annotations

from tests.sim.conftest import Client


async def test_daily_and_weekly_candles_align_on_17_new_york(clocked: Client) -> None:
    _, daily, _ = await clocked.call("GET", "/v3/instruments/EUR_USD/candles?granularity=D&count=3")
    assert all(c["time"].endswith("T22:00:00.000000000Z") for c in daily["candles"])  # EST
    _, utc, _ = await clocked.call("GET", "/v3/instruments/EUR_USD/candles?granularity=D&count=2"
                                          "&dailyAlignment=0&alignmentTimezone=UTC")
    assert all(c["time"].endswith("T00:00:00.000000000Z") for c in utc["candles"])
    _, h4, _ = await clocked.call("GET", "/v3/instruments/EUR_USD/candles?granularity=H4&count=6")
    assert {c["time"][11:13] for c in h4["candles"]} == {"22", "02", "06", "10", "14", "18"}
    _, weekly, _ = await clocked.call("GET",
                                      "/v3/instruments/EUR_USD/candles?granularity=W&count=2")
    assert [c["time"][:10] for c in weekly["candles"]] == ["2025-11-21", "2025-11-28"]  # Fridays
    _, monday, _ = await clocked.call("GET", "/v3/instruments/EUR_USD/candles?granularity=W&"
                                             "count=1&weeklyAlignment=Monday")
    assert monday["candles"][0]["time"].startswith("2025-12-01T22:00")
    for bad in ("dailyAlignment=24", "alignmentTimezone=Mars/Olympus", "weeklyAlignment=Fri",
                "smooth=yes", "includeFirst=1"):
        status, body, _ = await clocked.call("GET", f"/v3/instruments/EUR_USD/candles?{bad}")
        assert status == 400 and bad.split("=")[0] in body["errorMessage"], bad


async def test_include_first_and_smooth(clocked: Client) -> None:
    base = "/v3/instruments/EUR_USD/candles?granularity=M1&from=2025-12-02T09:00:00Z&count=3"
    _, first, _ = await clocked.call("GET", base)
    _, after, _ = await clocked.call("GET", base + "&includeFirst=False")
    assert first["candles"][0]["time"].startswith("2025-12-02T09:00:00")
    assert after["candles"][0]["time"] == first["candles"][1]["time"]
    _, smooth, _ = await clocked.call("GET", base + "&smooth=True")
    assert smooth["candles"][1]["mid"]["o"] == first["candles"][0]["mid"]["c"]


async def test_latest_candles(clocked: Client) -> None:
    status, body, _ = await clocked.call(
        "GET", "candles/latest?candleSpecifications=EUR_USD:M1:BM,USD_JPY:H1:A")
    assert status == 200
    eur, jpy = body["latestCandles"]
    assert (eur["instrument"], eur["granularity"]) == ("EUR_USD", "M1")
    assert [c["complete"] for c in eur["candles"]] == [True, False]
    assert set(eur["candles"][0]) >= {"bid", "mid"} and "ask" in jpy["candles"][0]
    status, _, _ = await clocked.call("GET", "candles/latest?candleSpecifications=EUR_USD:X1:M")
    assert status == 400
