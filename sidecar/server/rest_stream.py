"""The REST listener's two stream paths, served from the stream hub as OANDA sends them.

One JSON object per line, chunked, so `v20`'s and `oandapyV20`'s own stream parsers read it.
The sidecar's own notices (SIDECAR_RECONNECTING / SIDECAR_CONNECTED) are not sent: a bot written
for OANDA does not know them; what it gets is OANDA's lines, every transaction exactly once and
in order across the sidecar's reconnects. A decision made before the first line (an invalid
request, a shutting-down sidecar, an error OANDA answered) is an OANDA-shaped error status; one
made after it ends the response without its last chunk, which HTTP clients report as a broken
stream (`v20`: V20ConnectionError) — never as a clean end that looks like OANDA closing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from sidecar.errors import InvalidRequest, SidecarError
from sidecar.server.rest_errors import error_response
from sidecar.server.rest_wire import SINCE, query_of
from sidecar.streams.delivery import Delivery
from sidecar.streams.messages import NOTICES, StreamMessage
from sidecar.streams.request import parse_request

_log = logging.getLogger("sidecar.rest")
# How long the first line may take before the 200 goes out without it (the transaction stream's
# first line can be a heartbeat five seconds away): errors before it get their own status.
FIRST_LINE_WAIT_S = 1.0


def subscription_error(request: web.Request) -> InvalidRequest | None:
    if request.method != "GET":
        return InvalidRequest(f"method {request.method[:16]!r} is not allowed on a stream; "
                              "streams are GET", field="method")
    fmt = request.headers.get("Accept-Datetime-Format")
    if fmt is not None and fmt != "RFC3339":
        return InvalidRequest("streams are sent with RFC3339 times (Accept-Datetime-Format "
                              "UNIX is not offered on a shared stream)", field="headers")
    return None


async def serve_stream(request: web.Request, path: str, delivery: Delivery) -> web.StreamResponse:
    try:
        if (refused := subscription_error(request)) is not None:
            raise refused
        sub = parse_request(path, query_of(request), request.headers.get(SINCE, ""))
    except InvalidRequest as error:
        return error_response(error)
    messages = delivery.messages(sub)
    try:
        return await _pump(request, _lines(messages))
    finally:
        await messages.aclose()


async def _lines(messages: AsyncIterator[StreamMessage]) -> AsyncIterator[bytes]:
    async for message in messages:
        if message.type not in NOTICES:
            yield message.line + b"\n"


async def _pump(request: web.Request, lines: AsyncIterator[bytes]) -> web.StreamResponse:
    it = aiter(lines)
    first = asyncio.ensure_future(anext(it, None))
    try:
        await asyncio.wait({first}, timeout=FIRST_LINE_WAIT_S)
        if first.done() and (error := first.exception()) is not None:
            return error_response(error)
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            line = await first
            while line is not None:
                await response.write(line)
                line = await anext(it, None)
        except SidecarError as error:
            _log.info("REST stream ended by the sidecar: %s (%s)", error.reason,
                      error.describe())
            _abort(request)
            return response
        except (ConnectionError, OSError):
            return response  # the bot went away
        await response.write_eof()
        return response
    finally:
        if not first.done():
            first.cancel()
            with contextlib.suppress(BaseException):
                await first
        await lines.aclose()  # type: ignore[attr-defined]


def _abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()
