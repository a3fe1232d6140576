"""Issue 2, end to end: the real sidecar proxies to the real simulator over loopback."""

from __future__ import annotations

import asyncio
import json
import subprocess

import grpc
import pytest

from sidecar.app import App
from sidecar.sim.server import Simulator
from tests.e2e.conftest import Stubs
from tests.e2e.helpers import add_fault, error_info, execute_request, grpcurl_path


async def _grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    proc = await asyncio.create_subprocess_exec(
        grpcurl_path(), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    return subprocess.CompletedProcess(args, proc.returncode or 0, out.decode(), err.decode())


async def test_grpcurl_lists_services_calls_execute_and_health(sidecar: App,
                                                               sim: Simulator) -> None:
    target = sidecar.grpc_target
    listed = await _grpcurl("-plaintext", target, "list")
    assert listed.returncode == 0, listed.stderr
    for service in ("oanda.sidecar.v1.ProxyService", "oanda.sidecar.v1.ControlService",
                    "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"):
        assert service in listed.stdout.split()

    executed = await _grpcurl("-plaintext", "-d", '{"method":"GET","path":"/v3/accounts"}',
                              target, "oanda.sidecar.v1.ProxyService/Execute")
    assert executed.returncode == 0, executed.stderr
    answer = json.loads(executed.stdout)
    assert answer["status"] == 200
    import base64

    body = json.loads(base64.b64decode(answer["body"]))
    assert body["accounts"][0]["id"] == sim.account_id
    assert answer["headers"]["RequestID"].isdigit()
    assert [r.path for r in sim.requests] == ["/v3/accounts"]

    health = await _grpcurl("-plaintext", "-d", "{}", target, "grpc.health.v1.Health/Check")
    assert health.returncode == 0, health.stderr
    assert json.loads(health.stdout)["status"] == "SERVING"


async def test_upstream_4xx_and_5xx_are_statuses_not_errors(stubs: Stubs, sim: Simulator) -> None:
    acct = sim.account_id
    missing = await stubs.proxy.Execute(execute_request("GET", f"/v3/accounts/{acct}/orders/99999"))
    assert missing.status == 404
    assert json.loads(missing.body)["errorCode"] == "NO_SUCH_ORDER"

    await add_fault(sim.url, kind="status", status=503, count=1,
                    match={"method": "PATCH", "path": "/v3/accounts/*/configuration"})
    failed = await stubs.proxy.Execute(execute_request(
        "PATCH", f"/v3/accounts/{acct}/configuration", body={"alias": "x"}))
    assert failed.status == 503 and failed.attempts == 1  # a sent write is never retried
    # (A 5xx to an order is resolved from OANDA's records instead: tests/orders.)

    order = {"order": {"type": "MARKET", "instrument": "EUR_USD", "units": "100"}}

    created = await stubs.proxy.Execute(
        execute_request("POST", f"/v3/accounts/{acct}/orders", body=order))
    assert created.status == 201
    assert "orderFillTransaction" in json.loads(created.body)
    assert created.headers["Location"]


INVALID = [
    ("method", dict(method="TRACE", path="/v3/accounts")),
    ("method lower case", dict(method="get", path="/v3/accounts")),
    ("empty method", dict(method="", path="/v3/accounts")),
    ("prefix", dict(method="GET", path="/v2/accounts")),
    ("relative", dict(method="GET", path="v3/accounts")),
    ("scheme", dict(method="GET", path="https://evil.example/v3/accounts")),
    ("host", dict(method="GET", path="//evil.example/v3/accounts")),
    ("dotdot", dict(method="GET", path="/v3/accounts/../../admin")),
    ("encoded dotdot", dict(method="GET", path="/v3/accounts/%2e%2e/admin")),
    ("mixed encoded dotdot", dict(method="GET", path="/v3/accounts/.%2E/x")),
    ("CRLF", dict(method="GET", path="/v3/accounts\r\nX-Evil: 1")),
    ("encoded LF", dict(method="GET", path="/v3/accounts%0aX")),
    ("NUL", dict(method="GET", path="/v3/acc\x00ounts")),
    ("too long", dict(method="GET", path="/v3/" + "a" * 2100)),
    ("query in path", dict(method="GET", path="/v3/accounts?x=1")),
    ("body too large", dict(method="POST", path="/v3/accounts/1/orders",
                            body=b'{"a":"' + b"x" * (1024 * 1024) + b'"}')),
    ("body not JSON", dict(method="POST", path="/v3/accounts/1/orders", body=b"{nope")),
    ("header not allowed", dict(method="GET", path="/v3/accounts", headers={"X-Debug": "1"})),
    ("authorization", dict(method="GET", path="/v3/accounts",
                           headers={"Authorization": "Bearer stolen"})),
    ("priority", dict(method="GET", path="/v3/accounts", priority=7)),
]


async def test_twenty_invalid_requests_are_refused_and_never_reach_upstream(
        stubs: Stubs, sim: Simulator) -> None:
    assert len(INVALID) == 20
    for name, fields in INVALID:
        body = fields.pop("body", b"")
        request = execute_request(body=body, **fields)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stubs.proxy.Execute(request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
        info, _ = error_info(caught.value)
        assert info.reason == "INVALID_REQUEST" and info.domain == "oanda-sidecar", name
        assert caught.value.details(), name
    assert sim.requests == []
