"""The REST listener's promises (CONTRACT §9, docs/rest.md), each on the real sidecar and the
real simulator over loopback: what passes, what is replaced, and every sidecar decision as an
OANDA-shaped answer a bot's HTTP client reads."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from sidecar.app import App
from sidecar.sim.server import Simulator
from sidecar.vocabulary import Level
from tests.conftest import require_tool
from tests.e2e.conftest import TOKEN, SidecarFactory
from tests.e2e.helpers import add_fault
from tests.orders.conftest import orders_of
from tests.rest.conftest import BOT_TOKEN, ORDERS

try:
    import v20  # type: ignore[import-untyped]
except ImportError:  # a dev dependency: required under CI
    v20 = None


def market(cid: str | None = None, units: str = "100") -> dict[str, Any]:
    order: dict[str, Any] = {"type": "MARKET", "instrument": "EUR_USD", "units": units}
    if cid:
        order["clientExtensions"] = {"id": cid}
    return {"order": order}


async def call(http: aiohttp.ClientSession, method: str, path: str, **kwargs: Any
               ) -> tuple[int, Any, Any]:
    async with http.request(method, URL(path, encoded=True), **kwargs) as resp:
        text = await resp.text()
        return resp.status, json.loads(text) if text.startswith("{") else text, resp.headers


@dataclass(frozen=True)
class Seen:
    """One request as the upstream received it."""

    method: str
    raw_path: str
    query: dict[str, str]
    headers: Any
    body: bytes


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[str, list[Seen]]]:
    """An upstream that records every request and answers 200 with extra headers."""
    seen: list[Seen] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(Seen(request.method, request.raw_path, dict(request.query),
                         request.headers.copy(), await request.read()))
        return web.json_response({"ok": True}, headers={
            "RequestID": "42", "Link": '<https://x/y>; rel="next"', "Set-Cookie": "a=b",
            "X-Upstream-Secret": "s"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


async def test_the_bots_token_is_replaced_and_only_oandas_headers_pass(
        sidecar_factory: SidecarFactory, recorder: tuple[str, list[Seen]]) -> None:
    url, seen = recorder
    app = await sidecar_factory(oanda={"base_url": url})
    async with aiohttp.ClientSession(base_url=app.rest_url) as http:
        status, body, headers = await call(
            http, "GET", "/v3/accounts/101-004-1-001/summary",
            headers={"Authorization": f"Bearer {BOT_TOKEN}", "ClientRequestID": "bot-7",
                     "Accept-Datetime-Format": "UNIX", "X-Custom": "drop me",
                     "Cookie": "c=d", "OANDA-Agent": "v20-python/3.0.25.0"})
    assert (status, body) == (200, {"ok": True})
    [request] = seen
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["ClientRequestID"] == "bot-7"
    assert request.headers["Accept-Datetime-Format"] == "UNIX"
    assert not {"X-Custom", "Cookie", "OANDA-Agent"} & set(request.headers)
    assert all(BOT_TOKEN not in value for value in request.headers.values())
    assert headers["RequestID"] == "42" and headers["Link"] == '<https://x/y>; rel="next"'
    assert headers["X-Sidecar-Attempts"] == "1"
    assert "Set-Cookie" not in headers and "X-Upstream-Secret" not in headers


INVALID = [
    ("GET", "/v3/accounts/%2e%2e/summary", {}, "path"),
    ("GET", "/v2/accounts", {}, "path"),
    ("GET", "/v3/accounts/abc%00/summary", {}, "path"),
    ("GET", "/", {}, "path"),
    ("OPTIONS", "/v3/accounts", {}, "method"),
    ("GET", "/v3/accounts?instruments=A&instruments=B", {}, "query"),
    ("GET", "/v3/accounts?x=%ff", {}, "query"),
    ("GET", "/v3/accounts", {"data": b'{"a": 1}'}, "body"),
    ("POST", "/v3/accounts/101-004-1-001/orders", {"data": b"{not json"}, "body"),
    ("POST", "/v3/accounts/101-004-1-001/orders", {"data": b"[1, 2]"}, "body"),
    ("GET", "/v3/accounts", {"headers": {"ClientRequestID": "x" * 200}}, "headers"),
    ("GET", "/v3/accounts", {"headers": {"Accept-Datetime-Format": "EPOCH"}}, "headers"),
]


@pytest.mark.parametrize(("method", "path", "extra", "field"), INVALID)
async def test_an_invalid_request_is_400_invalid_request_and_reaches_nothing(
        http: aiohttp.ClientSession, sim: Simulator, method: str, path: str,
        extra: dict[str, Any], field: str) -> None:
    before = len(sim.requests)
    status, body, headers = await call(http, method, path, **extra)
    assert status == 400 and isinstance(body, dict), body
    assert body["errorCode"] == "INVALID_REQUEST" and body["field"] == field, body
    assert body["errorMessage"] and headers["Content-Type"].startswith("application/json")
    assert headers["X-Sidecar-Attempts"] == "0"
    assert len(sim.requests) == before


async def test_an_open_breaker_is_503_circuit_open_with_retry_after_as_v20_reads_it(
        sim: Simulator, sidecar_factory: SidecarFactory) -> None:
    require_tool(v20 is not None, "OANDA's v20 library is not installed (a dev dependency)")
    app = await sidecar_factory(breaker={"failure_threshold": 2, "recovery_timeout_s": 30},
                                retry={"max_attempts": 1})
    await add_fault(sim.url, kind="status", status=503)
    rest = urlparse(app.rest_url)
    ctx = v20.Context(rest.hostname, rest.port, ssl=False, token=BOT_TOKEN)
    answers = [await asyncio.to_thread(ctx.account.summary, sim.account_id) for _ in range(3)]
    assert [a.status for a in answers] == [503, 503, 503]
    assert "errorCode" not in answers[0].body  # OANDA's own 503 passed unchanged
    refused = answers[2]
    assert refused.body["errorCode"] == "CIRCUIT_OPEN" and refused.body["errorMessage"]
    assert 25 <= int(refused.headers["Retry-After"]) <= 30
    assert refused.headers["X-Sidecar-Attempts"] == "0"
    assert len(sim.requests) == 2  # the third went nowhere


async def test_an_order_whose_answer_was_lost_is_201_reconciled_and_exists_once(
        http: aiohttp.ClientSession, sim: Simulator) -> None:
    path = f"/v3/accounts/{sim.account_id}/orders"
    assert (await call(http, "POST", path, json=market(units="1")))[0] == 201
    await add_fault(sim.url, kind="drop_after_commit", match={"method": "POST"}, count=1)
    status, body, headers = await call(http, "POST", path, json=market("bot-lost-1"))
    assert status == 201, body
    assert headers["X-Sidecar-Reconciled"] == "true"
    assert headers["X-Sidecar-Client-Order-ID"] == "bot-lost-1"
    assert body["orderFillTransaction"]["clientOrderID"] == "bot-lost-1"
    assert len(orders_of(sim, "bot-lost-1")) == 1
    posts = [r for r in sim.requests if r.method == "POST"]
    assert len(posts) == 2  # the first order and the lost one: never resent


async def test_an_order_without_a_client_id_gets_the_sidecars_in_a_header(
        http: aiohttp.ClientSession, sim: Simulator) -> None:
    status, body, headers = await call(http, "POST", f"/v3/accounts/{sim.account_id}/orders",
                                       json=market())
    assert status == 201 and body["orderFillTransaction"]["clientOrderID"] == \
        headers["X-Sidecar-Client-Order-ID"]
    cid = headers["X-Sidecar-Client-Order-ID"]
    assert cid.startswith("osc-") and len(orders_of(sim, cid)) == 1
    assert "X-Sidecar-Reconciled" not in headers


async def test_an_undecided_order_is_504_outcome_unknown_naming_its_client_id(
        sim: Simulator, sidecar_factory: SidecarFactory) -> None:
    app = await sidecar_factory(orders={**ORDERS, "resolve_timeout_s": 0.5})
    async with aiohttp.ClientSession(base_url=app.rest_url) as http:
        path = f"/v3/accounts/{sim.account_id}/orders"
        assert (await call(http, "POST", path, json=market(units="1")))[0] == 201
        await add_fault(sim.url, kind="drop_after_commit", match={"method": "POST"}, count=1)
        await add_fault(sim.url, kind="outage", match={"method": "GET"})
        status, body, headers = await call(http, "POST", path, json=market("bot-dark-1"))
    assert status == 504, body
    assert body["errorCode"] == "OUTCOME_UNKNOWN" and body["clientOrderID"] == "bot-dark-1"
    assert body["sinceTransactionID"] and "GetOrderOutcome" in body["errorMessage"]
    assert headers["X-Sidecar-Client-Order-ID"] == "bot-dark-1"
    assert int(headers["X-Sidecar-Attempts"]) >= 1


async def test_read_only_refuses_a_new_order_with_503_and_serves_reads(
        listener: App, http: aiohttp.ClientSession, sim: Simulator) -> None:
    listener.parts.degradation.set_manual(Level.READ_ONLY, "maintenance")
    before = len(sim.requests)
    status, body, headers = await call(http, "POST", f"/v3/accounts/{sim.account_id}/orders",
                                       json=market("bot-ro-1"))
    assert (status, body["errorCode"]) == (503, "READ_ONLY")
    assert len(sim.requests) == before and not orders_of(sim, "bot-ro-1")
    status, _, headers = await call(http, "GET", f"/v3/accounts/{sim.account_id}/summary")
    assert status == 200 and headers["X-Sidecar-Degradation"] == "READ_ONLY"


async def test_a_rate_limited_call_is_429_with_retry_after(
        sim: Simulator, sidecar_factory: SidecarFactory) -> None:
    app = await sidecar_factory(rate_limit={"rate_per_s": 0.5, "burst": 1,
                                            "max_queue_wait_s": 0.05})
    async with aiohttp.ClientSession(base_url=app.rest_url) as http:
        path = f"/v3/accounts/{sim.account_id}/summary"
        first, second = [await call(http, "GET", path) for _ in range(2)]
    assert first[0] == 200
    assert (second[0], second[1]["errorCode"]) == (429, "RATE_LIMITED")
    assert 1 <= int(second[2]["Retry-After"]) <= 2
    assert len(sim.requests) == 1


async def test_a_cached_answer_says_so_with_its_age(
        http: aiohttp.ClientSession, sim: Simulator) -> None:
    path = f"/v3/accounts/{sim.account_id}/summary"
    fresh = await call(http, "GET", path)
    await add_fault(sim.url, kind="outage")
    await asyncio.sleep(1.05)
    status, body, headers = await call(http, "GET", path)
    assert (status, body) == (200, fresh[1])
    assert headers["X-Sidecar-From-Cache"] == "true" and int(headers["Age"]) >= 1


async def test_a_transaction_stream_resumes_from_the_since_header_without_a_gap(
        http: aiohttp.ClientSession, sim: Simulator) -> None:
    sim.streams.heartbeat_s = 0.3
    account = sim.state.accounts[sim.account_id]
    since = account.last_transaction_id
    for units in ("10", "-5", "3"):
        assert (await call(http, "POST", f"/v3/accounts/{sim.account_id}/orders",
                           json=market(units=units)))[0] == 201
    expected = [str(n) for n in range(int(since) + 1, int(account.last_transaction_id) + 1)]
    got: list[str] = []
    async with http.get(f"/v3/accounts/{sim.account_id}/transactions/stream",
                        headers={"X-Sidecar-Since-Transaction-ID": since}) as resp:
        assert resp.status == 200
        async with asyncio.timeout(10):
            while len(got) < len(expected):
                line = json.loads(await resp.content.readline())
                assert not line["type"].startswith("SIDECAR_")  # notices are gRPC-only
                if line["type"] != "HEARTBEAT":
                    got.append(line["id"])
    assert got == expected
