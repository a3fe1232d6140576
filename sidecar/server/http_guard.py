"""A guard for the sidecar's own HTTP listeners (admin, and the REST listener): a connection cap,
and a deadline on each request's head so that slow or silent clients (slowloris) cannot hold
file descriptors — which the upstream connections need — for ever.

aiohttp closes a connection that never sends a byte after its keep-alive timeout, but once a
client has sent part of a request head it waits indefinitely. Here every connection must
complete a request head within `header_timeout_s` of connecting (and of finishing its previous
request), and beyond `max_connections` new connections are closed at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Guarded(asyncio.Protocol):
    """Delegates to aiohttp's RequestHandler; closes the transport when the head is late."""

    def __init__(self, guard: ConnectionGuard, inner: Any) -> None:
        self._guard, self._inner = guard, inner
        self.transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def arm(self) -> None:
        self.disarm()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._guard.header_timeout_s, self._late)

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _late(self) -> None:
        self._guard.timed_out += 1
        if self.transport is not None:
            self.transport.abort()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._guard.opened(self)
        self.arm()
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.disarm()
        self._guard.closed(self)
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        result: bool | None = self._inner.eof_received()
        return result

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class ServerLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server logger for our listeners: malformed HTTP (a bad request line, a bad
    header, a TLS hello) is counted and logged at debug — anyone who can connect could
    otherwise write an ERROR with a traceback per request. Real exceptions stay errors."""

    def __init__(self, guard: ConnectionGuard) -> None:
        super().__init__(logging.getLogger("sidecar.http"), {})
        self._guard = guard

    def exception(self, msg: object, *args: object, exc_info: Any = True,
                  **kwargs: Any) -> None:
        if not self._malformed(exc_info):
            self.logger.error(msg, *args, exc_info=exc_info, **kwargs)

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:
        if not self._malformed(kwargs.get("exc_info")):  # aiohttp logs a bad method here
            self.logger.debug(msg, *args, **kwargs)

    def _malformed(self, exc: Any) -> bool:
        if not isinstance(exc, HttpProcessingError):
            return False
        self._guard.malformed += 1
        self.logger.debug("malformed HTTP refused: %s", exc.message)
        return True


class _Refused(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class ConnectionGuard:
    def __init__(self, *, max_connections: int, header_timeout_s: float) -> None:
        self.max_connections = max_connections
        self.header_timeout_s = header_timeout_s
        self._open: dict[Any, _Guarded] = {}  # transport -> its guard
        self.refused = 0
        self.timed_out = 0
        self.malformed = 0
        self.server_log = ServerLog(self)
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def protocol_factory(self, inner: Callable[[], Any]) -> Callable[[], asyncio.Protocol]:
        def make() -> asyncio.Protocol:
            if len(self._open) >= self.max_connections:
                self.refused += 1
                return _Refused()
            return _Guarded(self, inner())
        return make

    def opened(self, guarded: _Guarded) -> None:
        self._open[guarded.transport] = guarded

    def closed(self, guarded: _Guarded) -> None:
        self._open.pop(guarded.transport, None)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """A head has arrived: no deadline while it is served; a fresh one for the next."""
        guarded = self._open.get(request.transport)
        if guarded is not None:
            guarded.disarm()
        try:
            return await handler(request)
        finally:
            if guarded is not None:
                guarded.arm()

    async def start(self, app: web.Application, host: str, port: int,
                    **runner_options: Any) -> int:
        """Serve `app` on host:port with this guard in front; the port it listens on."""
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     keepalive_timeout=self.header_timeout_s,
                                     logger=self.server_log, **runner_options)
        await self._runner.setup()
        assert self._runner.server is not None
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(self.protocol_factory(self._runner.server),
                                                  host, port, reuse_address=True)
        port_: int = self._listener.sockets[0].getsockname()[1]
        return port_

    async def stop(self) -> None:
        """No new connections; requests in flight finish (within the runner's
        shutdown_timeout), then the rest close."""
        if self._listener is not None:
            self._listener.close()
        if self._runner is not None:
            await self._runner.cleanup()
