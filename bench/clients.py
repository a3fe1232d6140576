"""The load generator's clients: plain HTTP (direct, Envoy, the sidecar's REST listener) and gRPC
Execute (bare proxy, sidecar).

Each call returns an outcome string, the same vocabulary for every subject:
`ok`, `http_4xx`, `http_429`, `http_5xx`, `rate_limited` (the proxy refused: the sidecar's
RATE_LIMITED, Envoy's local 429), `circuit_open` (the proxy failed fast: CIRCUIT_OPEN, Envoy's
"no healthy upstream"), `cached` (the sidecar's degradation answered from its cache),
`outcome_unknown`, `timeout`, `conn_error`, `grpc_<reason>` or `rest_<reason>` (another decision
of the sidecar's REST listener, by its OANDA-shaped `errorCode`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Protocol

import aiohttp
import grpc
from google.rpc import error_details_pb2, status_pb2

from sidecar._gen.oanda.sidecar.v1 import proxy_pb2, proxy_pb2_grpc

GET_PATH = "/v3/accounts"
TIMEOUT_S = 10.0


def http_outcome(status: int, body: bytes) -> str:
    if status < 400:
        return "ok"
    if status == 429:
        return "rate_limited" if body.startswith(b"local_rate_limited") else "http_429"
    if status == 503 and body.startswith(b"no healthy upstream"):
        return "circuit_open"
    return "http_5xx" if status >= 500 else "http_4xx"


# The REST listener's own decisions (CONTRACT §9) that the bench counts by name; any other
# errorCode of the sidecar's becomes `rest_<reason>`.
_REST_REASONS = {"RATE_LIMITED": "rate_limited", "CIRCUIT_OPEN": "circuit_open",
                 "OUTCOME_UNKNOWN": "outcome_unknown", "DEADLINE_EXCEEDED": "timeout"}
_SIDECAR_CODES = {*_REST_REASONS, "INVALID_REQUEST", "READ_ONLY", "UPSTREAM_UNAVAILABLE",
                  "SIDECAR_OVERLOADED", "INTERNAL"}


def rest_outcome(status: int, headers: Mapping[str, str], body: bytes) -> str:
    """An answer of the sidecar's REST listener: OANDA's (passed unchanged) or the sidecar's."""
    if headers.get("X-Sidecar-From-Cache") == "true":
        return "cached"
    if status >= 400 and body.startswith(b"{") and "RequestID" not in headers:
        try:
            code = json.loads(body).get("errorCode")
        except ValueError:
            code = None
        if code in _SIDECAR_CODES:
            return _REST_REASONS.get(code, f"rest_{str(code).lower()}")
    return http_outcome(status, body)


def grpc_outcome(err: grpc.aio.AioRpcError) -> str:
    if err.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
        return "timeout"
    raw = dict(err.trailing_metadata() or ()).get("grpc-status-details-bin")
    if isinstance(raw, bytes):
        for detail in status_pb2.Status.FromString(raw).details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason.lower()
                return reason if reason in ("rate_limited", "circuit_open",
                                            "outcome_unknown") else f"grpc_{reason}"
    return f"grpc_{err.code().name.lower()}"


class Client(Protocol):
    async def get(self) -> str: ...

    async def order(self, path: str, body: bytes, request_id: str) -> str: ...

    async def close(self) -> None: ...


class HttpClient:
    """aiohttp to an HTTP endpoint (the upstream itself or Envoy)."""

    @staticmethod
    def outcome(status: int, headers: Mapping[str, str], body: bytes) -> str:
        return http_outcome(status, body)

    def __init__(self, base_url: str, token: str | None) -> None:
        self._url = base_url + GET_PATH
        self._base = base_url
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256),
            timeout=aiohttp.ClientTimeout(total=TIMEOUT_S))

    async def _send(self, method: str, url: str, body: bytes | None,
                    headers: dict[str, str]) -> str:
        try:
            async with self._session.request(method, url, data=body, headers=headers) as resp:
                return self.outcome(resp.status, resp.headers, await resp.read())
        except TimeoutError:
            return "timeout"
        except (aiohttp.ClientError, OSError):
            return "conn_error"

    async def get(self) -> str:
        return await self._send("GET", self._url, None, self._headers)

    async def order(self, path: str, body: bytes, request_id: str) -> str:
        headers = {**self._headers, "Content-Type": "application/json",
                   "ClientRequestID": request_id}
        return await self._send("POST", self._base + path, body, headers)

    async def close(self) -> None:
        await self._session.close()


class RestClient(HttpClient):
    """The same aiohttp client, at the sidecar's REST listener, as an OANDA bot would be: it
    sends its own placeholder token, which the sidecar drops and replaces with the real one."""

    outcome = staticmethod(rest_outcome)


class GrpcClient:
    """One channel (one HTTP/2 connection, as trading code would hold) to ProxyService."""

    def __init__(self, target: str) -> None:
        self._channel = grpc.aio.insecure_channel(target)
        stub = proxy_pb2_grpc.ProxyServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._execute = stub.Execute
        self._get = proxy_pb2.ExecuteRequest(method="GET", path=GET_PATH)

    async def _send(self, request: proxy_pb2.ExecuteRequest) -> str:
        try:
            answer = await self._execute(request, timeout=TIMEOUT_S)
        except grpc.aio.AioRpcError as err:
            return grpc_outcome(err)
        if answer.from_cache:
            return "cached"
        return http_outcome(answer.status, answer.body)

    async def get(self) -> str:
        return await self._send(self._get)

    async def order(self, path: str, body: bytes, request_id: str) -> str:
        return await self._send(proxy_pb2.ExecuteRequest(
            method="POST", path=path, body=body, headers={"ClientRequestID": request_id}))

    async def close(self) -> None:
        await self._channel.close()
