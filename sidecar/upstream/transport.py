"""The terminal handler: one aiohttp session to OANDA.

This is the one place where aiohttp exceptions become domain errors (`sidecar.errors`). Each
attempt publishes an `AttemptFinished` event; nothing here retries.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from sidecar.clock import Clock
from sidecar.config import OandaConfig
from sidecar.errors import (
    DeadlineExceeded,
    UpstreamConnectError,
    UpstreamConnectionLost,
    UpstreamError,
    UpstreamTimeout,
)
from sidecar.events import AttemptFinished, EventBus
from sidecar.pipeline import Call, Response

# Upstream headers handed back to the caller unchanged.
RETURNED_HEADERS = ("RequestID", "Location", "Link", "Content-Type")


class PacedConnector(aiohttp.TCPConnector):
    """A keep-alive pool that opens at most `rate` new connections per second (OANDA's limit)."""

    def __init__(self, *, rate: float, clock: Clock, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._interval = 1.0 / rate
        self._burst = max(1.0, rate)
        self._clock = clock
        self._next_free = clock.monotonic() - self._burst * self._interval
        self.opened = 0

    async def _create_connection(self, req: Any, traces: Any, timeout: Any) -> Any:  # noqa: ASYNC109
        now = self._clock.monotonic()
        # A token bucket in its "virtual time" form: the burst is the slack behind `now`.
        start = max(self._next_free, now - self._burst * self._interval)
        self._next_free = start + self._interval
        if start > now:
            await self._clock.sleep(start - now)
        self.opened += 1
        return await super()._create_connection(req, traces, timeout)


class AiohttpTransport:
    """Sends one attempt to OANDA and returns its answer, whatever the status."""

    def __init__(self, config: OandaConfig, token: str | None, clock: Clock, bus: EventBus) -> None:
        self._config = config
        self._clock = clock
        self._bus = bus
        self._base = config.base_url
        self._headers = {"User-Agent": "oanda-sidecar"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._timeout = aiohttp.ClientTimeout(total=config.request_timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self.connector: PacedConnector | None = None

    async def start(self) -> None:
        self.connector = PacedConnector(
            rate=self._config.max_new_connections_per_s, clock=self._clock,
            limit=self._config.max_connections, keepalive_timeout=30.0)
        self._session = aiohttp.ClientSession(
            connector=self.connector, timeout=self._timeout, auto_decompress=True)
        # aiohttp silently resends idempotent methods (PUT, DELETE) on a stale keep-alive
        # connection. A PUT closes a position: every resend must be the retry policy's decision.
        self._session._retry_connection = False

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def __call__(self, call: Call) -> Response:
        assert self._session is not None, "transport not started"
        timeout = self._timeout
        deadline_bound = False
        if call.deadline is not None:
            remaining = call.deadline - self._clock.monotonic()
            if remaining <= 0:
                raise DeadlineExceeded("the caller's deadline passed before the attempt")
            if remaining < self._config.request_timeout_s:
                timeout = aiohttp.ClientTimeout(total=remaining)
                deadline_bound = True
        headers = self._headers
        if call.headers or call.body:
            headers = {**headers, **call.headers}
            if call.body:
                headers["Content-Type"] = "application/json"
        started = self._clock.monotonic()
        try:
            async with self._session.request(
                call.method, self._base + call.path, params=call.query or None,
                data=call.body or None, headers=headers, timeout=timeout,
                allow_redirects=False,
            ) as resp:
                body = await resp.read()
                status = resp.status
                raw = resp.headers
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            error = translate(exc)
            self._publish(call, started, None, error)
            if deadline_bound and isinstance(error, UpstreamTimeout) and not call.is_write:
                # The caller's deadline, not OANDA, ended this read. (A write that timed out
                # stays an UpstreamTimeout: its outcome is unknown whoever ran out of time.)
                raise DeadlineExceeded("the caller's deadline passed while waiting for OANDA",
                                       ) from exc
            raise error from exc
        returned = {name: raw[name] for name in RETURNED_HEADERS if name in raw}
        self._publish(call, started, status, None, returned.get("RequestID"))
        return Response(status=status, body=body, headers=returned, attempts=call.attempt,
                         retry_after_s=_retry_after(raw.get("Retry-After")))

    def _publish(self, call: Call, started: float, status: int | None,
                 error: UpstreamError | None, request_id: str | None = None) -> None:
        self._bus.publish(AttemptFinished(
            at=self._clock.wall(), method=call.method, endpoint=call.endpoint.template,
            attempt=call.attempt, duration_s=self._clock.monotonic() - started, status=status,
            error_type=error.kind if error else None, request_id=request_id,
            error_message=error.message if error else None))


def translate(exc: BaseException) -> UpstreamError:
    """aiohttp and socket exceptions → domain errors. Whether bytes may have left decides safety."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError):
        return UpstreamConnectError(f"cannot connect to OANDA: {_describe(exc)}")
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout("OANDA did not answer within the attempt's timeout")
    return UpstreamConnectionLost(f"connection to OANDA lost: {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP-date: OANDA documents none; ignore rather than guess
