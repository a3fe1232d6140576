"""OANDA's `oandapyV20` through the REST listener: the same unary workflow, the same answers.

oandapyV20 has no base-URL option. Its hosts live in one module-level table,
`oandapyV20.oandapyV20.TRADING_ENVIRONMENTS` (`{"practice": {"api": ..., "stream": ...}, ...}`),
which `API(environment=NAME)` checks when it is built and reads again on every request. A bot
points it at the sidecar by adding an environment (here per test, with monkeypatch):

    from oandapyV20 import API
    from oandapyV20.oandapyV20 import TRADING_ENVIRONMENTS
    TRADING_ENVIRONMENTS["sidecar"] = {"api": "http://127.0.0.1:8081",
                                       "stream": "http://127.0.0.1:8081"}
    api = API(access_token="placeholder", environment="sidecar")

Determinism: two simulators with the same seed, each on a frozen clock at the same Tuesday
10:00 UTC, one talked to directly and one behind the sidecar. The bot's token is a placeholder;
only the sidecar's token (SIM_TOKEN) opens the simulator, so every answer through the listener
proves that the sidecar dropped the caller's Authorization and sent its own.

oandapyV20 is synchronous (requests): its calls run in a worker thread while the simulators and
the sidecar serve on this test's event loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from sidecar.app import App
from sidecar.clock import FakeClock
from sidecar.sim.calendar import MarketCalendar
from sidecar.sim.faults import Fault
from sidecar.sim.server import Simulator
from tests.conftest import SIM_TOKEN, require_tool
from tests.e2e.conftest import make_config
from tests.rest.conftest import BOT_TOKEN
from tests.sim.conftest import TUESDAY  # 2025-12-02T10:00:00Z: the market is open

try:  # a dev dependency (with `six`): skipped on a bare machine, required under CI
    from oandapyV20 import API, V20Error
    from oandapyV20.endpoints import (
        accounts,
        instruments,
        orders,
        positions,
        pricing,
        trades,
        transactions,
    )
    from oandapyV20.endpoints.apirequest import APIRequest
    from oandapyV20.oandapyV20 import TRADING_ENVIRONMENTS
except ImportError:
    API = None

SEED = 7
ORDER_ID, TRADE_ID = "bot-order-17", "bot-trade-17"
INSTRUMENTS = "EUR_USD,USD_JPY"
# Answers' fields that may differ by design between the two runs: the simulator's transactions
# carry the `requestID` of the call that made them, and request IDs count every request a server
# saw, so one request of the sidecar's own (a probe, a lookup) would shift them. (Today none is
# sent during this workflow and they match too.) Nothing else is left out: both simulators'
# clocks are frozen, so every `time` must match.
VOLATILE = frozenset({"requestID"})

Steps = list[tuple[str, Any]]


@pytest.fixture(autouse=True)
def _needs_oandapyv20() -> None:
    require_tool(API is not None, "oandapyV20 is not installed (a dev dependency, with six)")


def _simulator() -> Simulator:
    return Simulator(token=SIM_TOKEN, seed=SEED, calendar=MarketCalendar(),
                     clock=FakeClock(wall_start=TUESDAY, auto_advance=False))


@dataclass
class Twins:
    direct: Simulator
    proxied: Simulator  # the one behind the sidecar
    sidecar: App


@pytest.fixture
async def twins() -> AsyncIterator[Twins]:
    direct, proxied = _simulator(), _simulator()
    await direct.start()
    await proxied.start()
    # A breaker that stays open for the whole test once it opens (the e2e default is 0.5 s).
    app = App(make_config(proxied.url, breaker={"failure_threshold": 2,
                                                "recovery_timeout_s": 60}))
    await app.start()
    yield Twins(direct, proxied, app)
    await app.stop(0.5)
    await proxied.close()
    await direct.close()


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], str]:
    """Adds an oandapyV20 trading environment for `url` (REST and streams), for this test."""

    def add(name: str, url: str) -> str:
        monkeypatch.setitem(TRADING_ENVIRONMENTS, name, {"api": url, "stream": url})
        return name

    return add


def stable(value: Any) -> Any:
    """`value` without the VOLATILE fields, at any depth."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


def workflow(api: API) -> Steps:
    """A bot's unary workflow, each step's parsed answer kept (oandapyV20 raises on >= 400 and
    on a status other than the endpoint's expected one, e.g. 201 for an order)."""
    steps: Steps = []

    def do(name: str, request: APIRequest) -> Any:
        steps.append((name, api.request(request)))
        return steps[-1][1]

    account = do("accounts list", accounts.AccountList())["accounts"][0]["id"]
    do("account details", accounts.AccountDetails(account))
    before = do("summary", accounts.AccountSummary(account))["lastTransactionID"]
    do("instruments", accounts.AccountInstruments(account, params={"instruments": INSTRUMENTS}))
    do("pricing", pricing.PricingInfo(account, params={"instruments": INSTRUMENTS}))
    do("candles", instruments.InstrumentsCandles(
        "EUR_USD", params={"granularity": "M5", "count": 12, "price": "MBA"}))
    do("market order", orders.OrderCreate(account, data={"order": {
        "type": "MARKET", "instrument": "EUR_USD", "units": "1000",
        "clientExtensions": {"id": ORDER_ID, "tag": "workflow", "comment": "oandapyV20"},
        "tradeClientExtensions": {"id": TRADE_ID, "tag": "workflow"}}}))
    do("order by @clientID", orders.OrderDetails(account, orderID=f"@{ORDER_ID}"))
    do("trades list", trades.TradesList(account, params={"instrument": "EUR_USD"}))
    do("open positions", positions.OpenPositions(account))
    do("trade close by @clientID", trades.TradeClose(account, tradeID=f"@{TRADE_ID}",
                                                     data={"units": "ALL"}))
    do("positions", positions.PositionList(account))
    do("position details", positions.PositionDetails(account, instrument="EUR_USD"))
    do("transactions since ID", transactions.TransactionsSinceID(account,
                                                                 params={"id": before}))
    return steps


@pytest.mark.parametrize("datetime_format", ["RFC3339", "UNIX"])
async def test_oandapyv20_gets_the_simulators_own_answers_through_the_listener(
        twins: Twins, environment: Callable[[str, str], str], datetime_format: str) -> None:
    assert twins.sidecar.rest_url is not None
    direct_env = environment("direct", twins.direct.url)
    sidecar_env = environment("sidecar", twins.sidecar.rest_url)
    # A header of OANDA's REST that the listener passes (the bot sets it once, on the API).
    headers = {"Accept-Datetime-Format": datetime_format}

    direct = await asyncio.to_thread(workflow, API(access_token=SIM_TOKEN,
                                                   environment=direct_env, headers=headers))
    proxied = await asyncio.to_thread(workflow, API(access_token=BOT_TOKEN,
                                                    environment=sidecar_env, headers=headers))

    assert [name for name, _ in proxied] == [name for name, _ in direct]
    for (name, want), (_, got) in zip(direct, proxied, strict=True):
        assert stable(got) == stable(want), name
    answers = dict(direct)
    # The workflow did what it says (so that the comparison compared something).
    assert answers["order by @clientID"]["order"]["clientExtensions"]["id"] == ORDER_ID
    opened = answers["trades list"]["trades"]
    assert [t["clientExtensions"]["id"] for t in opened] == [TRADE_ID]
    assert answers["trade close by @clientID"]["orderFillTransaction"]["tradesClosed"]
    assert {t["type"] for t in answers["transactions since ID"]["transactions"]} >= {
        "MARKET_ORDER", "ORDER_FILL"}
    assert len(answers["candles"]["candles"]) == 12
    fill_time = answers["market order"]["orderFillTransaction"]["time"]
    assert fill_time == ("1764669600.000000000" if datetime_format == "UNIX"
                         else "2025-12-02T10:00:00.000000000Z")
    # One order and one close reached the simulator behind the sidecar: nothing was resent, and
    # the placeholder token never opened anything (no request was refused as unauthorised).
    proxied_writes = [r for r in twins.proxied.requests if r.method != "GET"]
    assert [(r.method, r.status) for r in proxied_writes] == [("POST", 201), ("PUT", 200)]
    assert all(r.status != 401 for r in twins.proxied.requests)


async def test_the_bots_placeholder_token_alone_opens_nothing(
        twins: Twins, environment: Callable[[str, str], str]) -> None:
    """The control: the same placeholder straight to the simulator is refused, so the
    listener's answers above came with the sidecar's token."""
    api = API(access_token=BOT_TOKEN, environment=environment("direct", twins.direct.url))
    with pytest.raises(V20Error) as refused:
        await asyncio.to_thread(api.request, accounts.AccountList())
    assert refused.value.code == 401


def _sent(sim: Simulator) -> list[Any]:
    """The requests that reached `sim`, the sidecar's recovery probe (GET /v3/accounts every
    5 s while degraded) aside."""
    return [r for r in sim.requests if r.path != "/v3/accounts"]


def _sidecar_error(error: V20Error) -> dict[str, Any]:
    """V20Error.msg is the body: the sidecar's decisions are OANDA-shaped JSON."""
    body = json.loads(error.msg)
    assert isinstance(body, dict) and isinstance(body.get("errorMessage"), str), body
    return body


async def test_an_invalid_path_is_a_v20error_that_reaches_nothing(
        twins: Twins, environment: Callable[[str, str], str]) -> None:
    api = API(access_token=BOT_TOKEN,
              environment=environment("sidecar", str(twins.sidecar.rest_url)))
    with pytest.raises(V20Error) as refused:
        # An account ID of "%2e%2e": an escaped "..", which would climb out of the account.
        await asyncio.to_thread(api.request, accounts.AccountSummary("%2e%2e"))
    assert refused.value.code == 400
    assert _sidecar_error(refused.value)["errorCode"] == "INVALID_REQUEST"
    assert not [r for r in twins.proxied.requests if "summary" in r.path]


async def test_an_open_breaker_is_a_v20error_and_nothing_more_is_sent(
        twins: Twins, environment: Callable[[str, str], str]) -> None:
    api = API(access_token=BOT_TOKEN,
              environment=environment("sidecar", str(twins.sidecar.rest_url)))
    account = twins.proxied.account_id
    twins.proxied.faults.add(Fault(kind="outage"))  # OANDA answers 503 to everything
    with pytest.raises(V20Error) as first:
        # Two failed attempts open the breaker (threshold 2): the third is never sent.
        await asyncio.to_thread(api.request, accounts.AccountSummary(account))
    assert first.value.code == 503
    assert _sidecar_error(first.value)["errorCode"] == "CIRCUIT_OPEN"
    assert len(_sent(twins.proxied)) == 2
    with pytest.raises(V20Error) as read:
        # A read never answered before (so no cached answer): refused at once, not sent.
        await asyncio.to_thread(api.request, accounts.AccountDetails(account))
    assert read.value.code == 503
    assert _sidecar_error(read.value)["errorCode"] == "CIRCUIT_OPEN"
    order = orders.OrderCreate(account, data={"order": {
        "type": "MARKET", "instrument": "EUR_USD", "units": "100",
        "clientExtensions": {"id": "bot-order-breaker"}}})
    with pytest.raises(V20Error) as write:
        # The open breaker made the sidecar read-only: a new order is refused before the breaker.
        await asyncio.to_thread(api.request, order)
    assert write.value.code == 503
    assert _sidecar_error(write.value)["errorCode"] == "READ_ONLY"
    assert len(_sent(twins.proxied)) == 2  # nothing after the two failed attempts


async def test_an_order_whose_bot_gave_up_while_it_queued_is_never_sent(
        environment: Callable[[str, str], str]) -> None:
    """oandapyV20's `request_params={"timeout": ...}`: the bot stops waiting (and closes its
    connection) while its order waits for a rate-limit token. The call ends with the caller, as
    a cancelled Execute does: it must not reach OANDA later, behind the bot's back."""
    sim = _simulator()
    await sim.start()
    app = App(make_config(sim.url, rate_limit={"rate_per_s": 1, "burst": 1}))
    await app.start()
    try:
        name = environment("sidecar", str(app.rest_url))
        patient = API(access_token=BOT_TOKEN, environment=name)
        hasty = API(access_token=BOT_TOKEN, environment=name, request_params={"timeout": 0.3})
        account = sim.account_id
        await asyncio.to_thread(patient.request, accounts.AccountSummary(account))  # the token
        order = orders.OrderCreate(account, data={"order": {
            "type": "MARKET", "instrument": "EUR_USD", "units": "100",
            "clientExtensions": {"id": "bot-order-gave-up"}}})
        with pytest.raises(requests.Timeout):
            await asyncio.to_thread(hasty.request, order)  # queued ~1 s for the next token
        await asyncio.sleep(1.5)  # past the moment the next token came
        assert not [r for r in sim.requests if r.method == "POST"]
    finally:
        await app.stop(0.5)
        await sim.close()
