"""The OANDA REST listener (`server.rest_listen`, CONTRACT §9, docs/rest.md).

OANDA's v20 REST over plain HTTP/1.1, so that a bot written for OANDA's `v20` library or
`oandapyV20` changes only its host and port. Every `/v3/...` call runs through the same
`Front.run` as Execute (the same pipeline, span, metrics and log line, `front="rest"`); the two
stream paths are served from the stream hub (sidecar.server.rest_stream). The connection guard
of the admin listener applies: a deadline on each request head, a connection cap, and a body
that must arrive within the same deadline.
"""

from __future__ import annotations

import asyncio
import re

from aiohttp import web

from sidecar.config import ServerConfig
from sidecar.errors import InvalidRequest, SidecarError
from sidecar.pipeline import Call
from sidecar.server.front import REST, Front
from sidecar.server.http_guard import ConnectionGuard
from sidecar.server.rest_errors import error_response
from sidecar.server.rest_stream import serve_stream
from sidecar.server.rest_wire import (
    BodyTooLarge,
    answer,
    body_of,
    fill,
    headers_of,
    path_of,
    query_of,
)
from sidecar.streams.delivery import Delivery

_STREAM = re.compile(r"/v3/accounts/[^/]+/(?:pricing|transactions)/stream")
_TRACE_HEADERS = ("traceparent", "tracestate")


class BodyLate(InvalidRequest):
    """The body did not arrive within the head deadline: 408, the connection closed."""

    http_status = 408


class RestListener:
    def __init__(self, front: Front, delivery: Delivery, config: ServerConfig) -> None:
        self._front = front
        self._delivery = delivery
        self._deadline_s = config.rest_deadline_s or None
        self.guard = ConnectionGuard(max_connections=config.http_max_connections,
                                     header_timeout_s=config.http_header_timeout_s)
        self.port = 0
        # The body is read here, under its own limit: aiohttp's must never answer first.
        self.app = web.Application(middlewares=[self.guard.middleware],
                                   client_max_size=2**62)
        # Every path, even one whose decoding holds a newline: the validator judges it.
        self.app.router.add_route("*", r"/{tail:[\s\S]*}", self._handle)

    async def start(self, host: str, port: int, *, shutdown_timeout_s: float) -> int:
        # handler_cancellation: a caller who disconnects ends its call, as a cancelled Execute
        # does (aiohttp's default would send a queued order after the bot gave up on it).
        self.port = await self.guard.start(self.app, host, port,
                                           shutdown_timeout=shutdown_timeout_s,
                                           handler_cancellation=True)
        return self.port

    async def stop(self) -> None:
        """No new connections; calls in flight finish (the drain cut-off answers the last)."""
        await self.guard.stop()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = path_of(request)
        if _STREAM.fullmatch(path):
            return await serve_stream(request, path, self._delivery)
        front = self._front
        call = Call(method=request.method, path=path,
                    deadline=None if self._deadline_s is None
                    else front.monotonic() + self._deadline_s)
        try:
            parts = (query_of(request), headers_of(request.headers),
                     await self._body(request))
        except InvalidRequest as refused:
            problem: InvalidRequest | None = refused
            parts = ({}, {}, b"")
        else:
            problem = None
        try:
            response = await front.run(call, lambda c: _fill(c, problem, *parts), front=REST,
                                       trace_metadata=_trace(request))
        except SidecarError as error:
            return _closing(error_response(error), isinstance(error, (BodyTooLarge, BodyLate)))
        except Exception as exc:  # a bug: INTERNAL, logged with its traceback
            return error_response(exc)
        return answer(response)

    async def _body(self, request: web.Request) -> bytes:
        try:
            async with asyncio.timeout(self.guard.header_timeout_s):
                return await body_of(request)
        except TimeoutError:
            raise BodyLate(f"the body did not arrive within {self.guard.header_timeout_s:g} s",
                           field="body") from None


def _fill(call: Call, problem: InvalidRequest | None, query: dict[str, str],
          headers: dict[str, str], body: bytes) -> None:
    if problem is not None:
        raise problem
    fill(call, query, headers, body)


def _trace(request: web.Request) -> list[tuple[str, str]] | None:
    found = [(name, value) for name in _TRACE_HEADERS
             if (value := request.headers.get(name)) is not None]
    return found or None


def _closing(response: web.Response, close: bool) -> web.Response:
    if close:
        response.force_close()
    return response
