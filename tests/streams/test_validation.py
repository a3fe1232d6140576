"""Invalid paths, accounts, instruments and fields are INVALID_ARGUMENT before anything
connects (the simulator sees no request)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from sidecar._gen.oanda.sidecar.v1 import proxy_pb2
from sidecar.app import App
from sidecar.sim.server import Simulator
from tests.e2e.helpers import error_info

ACCOUNT = "101-004-1435156-001"
CASES = [
    ("/v3/accounts", {}, "", "path"),
    (f"/v3/accounts/{ACCOUNT}/pricing", {"instruments": "EUR_USD"}, "", "path"),
    (f"/v3/accounts/{ACCOUNT}/orders/stream", {}, "", "path"),
    ("/v3/accounts/not-an-account/transactions/stream", {}, "", "path"),
    ("/v3/accounts/../transactions/stream", {}, "", "path"),
    (f"/v3/accounts/{ACCOUNT}/pricing/stream", {}, "", "query"),
    (f"/v3/accounts/{ACCOUNT}/pricing/stream", {"instruments": "eurusd"}, "", "query"),
    (f"/v3/accounts/{ACCOUNT}/pricing/stream", {"instruments": "EUR_USD\r\nX"}, "", "query"),
    (f"/v3/accounts/{ACCOUNT}/pricing/stream", {"instruments": "EUR_USD", "x": "1"}, "",
     "query"),
    (f"/v3/accounts/{ACCOUNT}/pricing/stream", {"instruments": "EUR_USD",
                                                "snapshot": "yes"}, "", "query"),
    (f"/v3/accounts/{ACCOUNT}/pricing/stream", {"instruments": "EUR_USD"}, "5",
     "since_transaction_id"),
    (f"/v3/accounts/{ACCOUNT}/transactions/stream", {}, "12a", "since_transaction_id"),
    (f"/v3/accounts/{ACCOUNT}/transactions/stream", {"instruments": "EUR_USD"}, "", "query"),
]


@pytest.mark.parametrize(("path", "query", "since", "field"), CASES)
async def test_invalid_stream_requests(sim: Simulator, proxy: Any, stream_sidecar: App,
                                       path: str, query: dict[str, str], since: str,
                                       field: str) -> None:
    before = len(sim.requests)
    call = proxy.Stream(proxy_pb2.StreamRequest(path=path, query=query,
                                                since_transaction_id=since))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call:
            pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info, _ = error_info(caught.value)
    assert info.reason == "INVALID_REQUEST" and info.metadata["field"] == field
    assert len(sim.requests) == before  # nothing was sent upstream
    assert sim.streams.opened == {}
    assert stream_sidecar.parts.board.snapshot().streams == []


async def test_an_account_oanda_does_not_know_ends_the_stream(
        sim: Simulator, proxy: Any, stream_sidecar: App) -> None:
    call = proxy.Stream(proxy_pb2.StreamRequest(
        path="/v3/accounts/101-004-1435156-999/transactions/stream"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call:
            pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "HTTP 400" in (caught.value.details() or "")


async def test_grpcurl_streams_prices_through_reflection(sim: Simulator,
                                                         stream_sidecar: App) -> None:
    import asyncio
    import json as _json

    from tests.e2e.helpers import grpcurl_path

    request = _json.dumps({"path": f"/v3/accounts/{sim.account_id}/pricing/stream",
                           "query": {"instruments": "EUR_USD"}})
    proc = await asyncio.create_subprocess_exec(
        grpcurl_path(), "-plaintext", "-max-time", "2", "-d", request,
        stream_sidecar.grpc_target, "oanda.sidecar.v1.ProxyService/Stream",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    text = out.decode()
    assert '"type": "PRICE"' in text and '"type": "SIDECAR_CONNECTED"' in text
