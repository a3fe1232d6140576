"""Hostile and malformed HTTP at the REST listener: every one gets a clear 4xx (or a closed
connection), nothing reaches OANDA, and nothing lasting is left in the sidecar — the listener
serves a normal request afterwards with no connection left open."""

from __future__ import annotations

import asyncio
import json

import pytest

from sidecar.app import App
from sidecar.sim.server import Simulator
from tests.e2e.conftest import SidecarFactory

HEAD_TIMEOUT_S = 0.5


@pytest.fixture
async def guarded(sidecar_factory: SidecarFactory) -> App:
    app: App = await sidecar_factory(server={"http_header_timeout_s": HEAD_TIMEOUT_S,
                                             "http_max_connections": 20})
    return app


async def exchange(app: App, raw: bytes, *, within_s: float = 5.0) -> bytes:
    """Send raw bytes, read until the sidecar closes (or answers and closes)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", app.rest_port)
    writer.write(raw)
    try:
        async with asyncio.timeout(within_s):
            return await reader.read()
    finally:
        writer.close()


def status_and_json(answer: bytes) -> tuple[int, dict[str, str]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"chunked" in head.lower():  # one chunk: size line, data
        body = body.split(b"\r\n", 2)[1]
    return status, json.loads(body) if body.startswith(b"{") else {}


async def still_serves(app: App, sim: Simulator) -> None:
    answer = await exchange(app, (f"GET /v3/accounts/{sim.account_id}/summary HTTP/1.1\r\n"
                                  "Host: x\r\nConnection: close\r\n\r\n").encode())
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    await asyncio.sleep(0.05)
    assert app.rest is not None and app.rest.guard.open_connections == 0


async def test_a_declared_body_over_one_mib_is_413_unread(guarded: App, sim: Simulator) -> None:
    before = len(sim.requests)
    head = (f"POST /v3/accounts/{sim.account_id}/orders HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n").encode()
    answer = await exchange(guarded, head + b"{" * 1000)
    status, body = status_and_json(answer)
    assert (status, body["errorCode"], body["field"]) == (413, "INVALID_REQUEST", "body")
    assert len(sim.requests) == before
    await still_serves(guarded, sim)


async def test_a_chunked_body_over_one_mib_is_413(guarded: App, sim: Simulator) -> None:
    before = len(sim.requests)
    chunk = b"x" * 65536
    raw = (f"POST /v3/accounts/{sim.account_id}/orders HTTP/1.1\r\nHost: x\r\n"
           "Transfer-Encoding: chunked\r\n\r\n").encode()
    raw += b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(20)) + b"0\r\n\r\n"
    status, body = status_and_json(await exchange(guarded, raw))
    assert (status, body["errorCode"]) == (413, "INVALID_REQUEST")
    assert len(sim.requests) == before
    await still_serves(guarded, sim)


async def test_a_body_that_never_arrives_is_408_and_closed(guarded: App, sim: Simulator) -> None:
    before = len(sim.requests)
    raw = (f"POST /v3/accounts/{sim.account_id}/orders HTTP/1.1\r\nHost: x\r\n"
           "Content-Length: 100\r\n\r\n{\"order\":").encode()
    status, body = status_and_json(await exchange(guarded, raw))
    assert (status, body["errorCode"]) == (408, "INVALID_REQUEST")
    assert len(sim.requests) == before
    await still_serves(guarded, sim)


@pytest.mark.parametrize("raw", [
    b"BREW /v3/accounts HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /v3/accounts HTTP/9.9\r\nHost: x\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,  # a TLS ClientHello
    b"GET /v3/accounts HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"GET /v3/acc\x00ounts HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /v3/accounts HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n",
])
async def test_malformed_http_is_a_4xx_and_costs_nothing(guarded: App, sim: Simulator,
                                                          raw: bytes) -> None:
    before = len(sim.requests)
    assert guarded.rest is not None
    malformed = guarded.rest.guard.malformed
    answer = await exchange(guarded, raw)
    assert answer == b"" or answer.startswith((b"HTTP/1.0 4", b"HTTP/1.1 4")), answer[:100]
    assert len(sim.requests) == before
    assert guarded.rest.guard.malformed == malformed + 1  # counted, logged at debug only
    await still_serves(guarded, sim)


async def test_slow_heads_are_closed_and_connections_capped(guarded: App, sim: Simulator) -> None:
    assert guarded.rest is not None
    guard = guarded.rest.guard
    slow = [await asyncio.open_connection("127.0.0.1", guarded.rest_port) for _ in range(30)]
    for _, writer in slow:
        writer.write(b"GET /v3/accounts HTTP/1.1\r\nHost: x\r\n")  # a head that never ends
    await asyncio.sleep(0.1)
    assert guard.open_connections <= 20 and guard.refused >= 10
    await asyncio.sleep(HEAD_TIMEOUT_S + 1.0)
    assert guard.open_connections == 0 and guard.timed_out >= 20
    for _, writer in slow:
        writer.close()
    await still_serves(guarded, sim)


async def test_stream_requests_are_checked_before_anything_connects(
        guarded: App, sim: Simulator) -> None:
    base = f"/v3/accounts/{sim.account_id}"
    cases = [f"POST {base}/pricing/stream?instruments=EUR_USD",
             f"GET {base}/pricing/stream",
             f"GET {base}/pricing/stream?instruments=EUR/USD",
             f"GET {base}/pricing/stream?instruments=EUR_USD&snapshot=maybe",
             f"GET {base}/transactions/stream?x=1",
             "GET /v3/accounts/nope/transactions/stream"]
    for line in cases:
        answer = await exchange(guarded, f"{line} HTTP/1.1\r\nHost: x\r\n"
                                         "Connection: close\r\n\r\n".encode())
        status, body = status_and_json(answer)
        assert (status, body.get("errorCode")) == (400, "INVALID_REQUEST"), (line, answer)
    answer = await exchange(guarded, f"GET {base}/transactions/stream HTTP/1.1\r\nHost: x\r\n"
                                     "Accept-Datetime-Format: UNIX\r\n\r\n".encode())
    assert status_and_json(answer)[0] == 400
    assert not guarded.parts.streams.snapshots()  # no upstream stream was opened
    assert not sim.requests
