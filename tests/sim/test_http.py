"""HTTP-level behaviour: auth, routing errors, RequestID, the 120/s limit, read endpoints."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest

from sidecar.sim.server import Simulator, run_simulator
from tests.sim.conftest import Client

UNAUTHORIZED = {"errorMessage": "Insufficient authorization to perform request."}


async def test_401_without_or_with_a_wrong_token(sim: Simulator) -> None:
    url = f"{sim.url}/v3/accounts"
    async with aiohttp.ClientSession() as s:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "sim-token"}):
            async with s.get(url, headers=headers) as r:
                assert r.status == 401
                assert await r.json() == UNAUTHORIZED
        async with s.get(url, headers={"Authorization": "Bearer sim-token"}) as r:
            assert r.status == 200


async def test_404_405_and_unknown_account(client: Client) -> None:
    status, body, headers = await client.call("DELETE", "orders")
    assert status == 405 and "errorMessage" in body and "GET" in headers["Allow"]
    status, body, _ = await client.call("GET", "/v3/nothing/here")
    assert status == 404 and "errorMessage" in body
    status, body, _ = await client.call("GET", "orders/999")
    assert status == 404 and body["errorCode"] == "NO_SUCH_ORDER"
    status, body, _ = await client.call("GET", "trades/999")
    assert status == 404 and body["errorCode"] == "NO_SUCH_TRADE"
    status, body, _ = await client.call("GET", "transactions/999")
    assert status == 404 and body["errorCode"] == "NO_SUCH_TRANSACTION"
    status, body, _ = await client.call("GET", "/v3/accounts/101-004-1-999/summary")
    assert status == 400 and "accountID" in body["errorMessage"]


async def test_request_id_on_every_response(client: Client, sim: Simulator) -> None:
    from sidecar.sim.faults import Fault
    sim.faults.add(Fault(kind="status", status=502, body="html", match={"path": "*/pricing"}))
    calls: list[tuple[str, str, object]] = [
        ("GET", "summary", None), ("POST", "orders", {"order": {"type": "MARKET"}}),
        ("GET", "orders/1234", None), ("DELETE", "summary", None), ("GET", "pricing", None),
        ("GET", "/_sim/state", None)]
    ids = []
    for method, path, payload in calls:
        status, _, headers = await client.call(method, path, payload)
        assert headers["RequestID"].isdigit(), (method, path, status)
        ids.append(headers["RequestID"])
    async with aiohttp.ClientSession() as anonymous, anonymous.get(client.base) as r:
        assert r.status == 401 and r.headers["RequestID"].isdigit()
        ids.append(r.headers["RequestID"])
    assert len(set(ids)) == len(ids)
    # A transaction records the RequestID of the response that created it.
    filled = await client.market("1")
    _, tx, _ = await client.call("GET", f"transactions/{filled['lastTransactionID']}")
    assert tx["transaction"]["requestID"] == sim.requests[-2].request_id


async def test_the_121st_request_inside_one_second_is_429(client: Client, sim: Simulator) -> None:
    url = f"{sim.url}/v3/accounts"

    async def one() -> int:
        async with client.session.get(url) as r:
            await r.read()
            return r.status

    statuses = await asyncio.gather(*(one() for _ in range(130)))
    arrivals = [r.at for r in sim.requests]
    if arrivals[120] - arrivals[0] < 1.0:  # holds unless the machine stalls for a second
        assert sorted(statuses).count(200) == 120
        assert [r.status for r in sim.requests[:120]] == [200] * 120
        assert [r.status for r in sim.requests[120:]] == [429] * 10
    # Whatever the timing, the sim answered exactly by the sliding-window law.
    for i, rec in enumerate(sim.requests):
        in_window = sum(1 for t in arrivals[:i + 1] if t > rec.at - 1.0)
        assert rec.status == (200 if in_window <= 120 else 429)


async def test_the_limit_is_per_token() -> None:
    small = Simulator(token="a", rate_limit_per_s=3)
    await small.start()
    try:
        async with aiohttp.ClientSession() as s:
            async def get(token: str) -> int:
                async with s.get(f"{small.url}/v3/accounts",
                                 headers={"Authorization": f"Bearer {token}"}) as r:
                    return r.status
            # Another token's arrivals (wrong ones too) do not spend this token's window.
            assert [await get("b") for _ in range(3)] == [401] * 3
            assert [await get("a") for _ in range(4)] == [200, 200, 200, 429]
    finally:
        await small.close()


async def test_accept_datetime_format_unix(client: Client) -> None:
    _, rfc, _ = await client.call("GET", "summary")
    assert rfc["account"]["createdTime"].endswith("Z")
    _, unix, _ = await client.call("GET", "summary", headers={"Accept-Datetime-Format": "UNIX"})
    assert float(unix["account"]["createdTime"]) > 1e9


async def test_pricing_is_deterministic_per_seed_and_sane(client: Client) -> None:
    status, body, _ = await client.call("GET", "pricing?instruments=EUR_USD,USD_JPY")
    assert status == 200
    for price in body["prices"]:
        assert float(price["bids"][0]["price"]) < float(price["asks"][0]["price"])
    twin = Simulator(seed=7)
    other = Simulator(seed=8)
    t = 1_700_000_000.0
    assert twin.state.market.quote("EUR_USD", t) == client.sim.state.market.quote("EUR_USD", t)
    assert other.state.market.quote("EUR_USD", t) != twin.state.market.quote("EUR_USD", t)
    status, _, _ = await client.call("GET", "pricing?instruments=NOPE")
    assert status == 400


async def test_candles_count_granularity_and_limits(client: Client) -> None:
    status, body, _ = await client.call("GET", "/v3/instruments/EUR_USD/candles?granularity=M1")
    assert status == 200 and len(body["candles"]) == 500  # OANDA's default count
    assert body["candles"][-1]["complete"] is False and body["candles"][0]["complete"] is True
    status, body, _ = await client.call(
        "GET", "instruments/USD_JPY/candles?count=5000&granularity=S5&price=BAM")
    assert status == 200 and len(body["candles"]) == 5000
    c = body["candles"][0]
    assert float(c["bid"]["l"]) <= float(c["bid"]["o"]) <= float(c["bid"]["h"])
    assert float(c["bid"]["c"]) < float(c["ask"]["c"])
    for query in ("count=5001", "granularity=X1", "price=Q", "count=abc"):
        status, body, _ = await client.call("GET", f"/v3/instruments/EUR_USD/candles?{query}")
        assert status == 400 and "errorMessage" in body, query
    status, _, _ = await client.call("GET", "/v3/instruments/NOPE/candles")
    assert status == 400


async def test_changes_and_configuration(client: Client) -> None:
    _, summary, _ = await client.call("GET", "summary")
    since = summary["lastTransactionID"]
    body = await client.market("10")
    status, changes, _ = await client.call("GET", f"changes?sinceTransactionID={since}")
    assert status == 200
    assert [o["id"] for o in changes["changes"]["ordersFilled"]] == [
        body["orderCreateTransaction"]["id"]]
    assert len(changes["changes"]["transactions"]) == 2
    assert changes["lastTransactionID"] == body["lastTransactionID"]
    status, _, _ = await client.call("GET", "changes?sinceTransactionID=99999")
    assert status == 416
    status, conf, _ = await client.call("PATCH", "configuration", {"alias": "bot"})
    assert status == 200 and conf["clientConfigureTransaction"]["alias"] == "bot"
    status, bad, _ = await client.call("PATCH", "configuration", {"marginRate": "7"})
    assert status == 400 and bad["errorCode"] == "MARGIN_RATE_INVALID"
    _, summary, _ = await client.call("GET", "summary")
    assert summary["account"]["alias"] == "bot"


async def test_run_simulator_announces_its_url_and_serves_until_cancelled(
        capsys: pytest.CaptureFixture[str]) -> None:
    task = asyncio.ensure_future(run_simulator("127.0.0.1", 0, token="cli-token"))
    for _ in range(100):
        out = capsys.readouterr().out
        if out:
            break
        await asyncio.sleep(0.02)
    match = re.fullmatch(r"simulator listening on (http://127\.0\.0\.1:\d+)\n", out)
    assert match, out
    async with aiohttp.ClientSession() as s, s.get(
            f"{match[1]}/v3/accounts", headers={"Authorization": "Bearer cli-token"}) as r:
        assert r.status == 200
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_sim_command_names_a_bad_market_hours_flag() -> None:
    import subprocess

    from tests.e2e.helpers import clean_env, sidecar_cmd
    done = subprocess.run([*sidecar_cmd(), "sim", "--listen", "127.0.0.1:0",
                           "--market-hours", "someday"], env=clean_env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "--market-hours" in done.stderr and "someday" in done.stderr


def test_market_hours_spellings() -> None:
    from sidecar.sim.calendar import MarketCalendar
    assert MarketCalendar.parse("weekend").spec == MarketCalendar().spec == \
        "fri 21:00 -> sun 21:00"
    assert MarketCalendar.parse("always").spec == "always"
    assert MarketCalendar.parse("fri 22:00-sun 22:00").spec == "fri 22:00 -> sun 22:00"
    with pytest.raises(ValueError, match="weekday"):
        MarketCalendar.parse("noon-dusk")
