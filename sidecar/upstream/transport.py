"""The terminal handler: one aiohttp session to OANDA.

This is the one place where aiohttp exceptions become domain errors (`sidecar.errors`). Each
attempt publishes an `AttemptFinished` event; nothing here retries. The path is sent exactly as
the validator accepted it (yarl is told it is already encoded, so it never re-normalises it),
and the attempt's timeout starts when a connection is in hand (`sidecar.upstream.pool`).
"""

from __future__ import annotations

import asyncio
import errno

import aiohttp
from yarl import URL

from sidecar.backoff import parse_retry_after
from sidecar.clock import Clock
from sidecar.config import OandaConfig
from sidecar.errors import (
    DeadlineExceeded,
    RateLimited,
    SidecarOverloaded,
    UpstreamConnectError,
    UpstreamConnectionLost,
    UpstreamError,
    UpstreamTimeout,
)
from sidecar.events import AttemptFinished, EventBus
from sidecar.pipeline import Call, Response
from sidecar.ratelimit.pacer import ConnectionPacer
from sidecar.upstream.pool import (
    CURRENT_ATTEMPT,
    AttemptTimer,
    NoConnection,
    PacedConnector,
    Pacer,
    abortive_socket,
)

# Upstream headers handed back to the caller unchanged.
RETURNED_HEADERS = ("RequestID", "Location", "Link", "Content-Type")
# How long a TCP (and TLS) connect may take, within the attempt.
CONNECT_TIMEOUT_S = 5.0


class AiohttpTransport:
    """Sends one attempt to OANDA and returns its answer, whatever the status."""

    def __init__(self, config: OandaConfig, token: str | None, clock: Clock, bus: EventBus,
                 pacer: Pacer | None = None) -> None:
        self._config = config
        self._clock = clock
        self._bus = bus
        # New connections wait for this pacer (the fleet's, when the rate limit is shared).
        self._pacer = pacer or ConnectionPacer(config.max_new_connections_per_s, clock)
        self._base = config.base_url
        self._headers = {"User-Agent": "oanda-sidecar"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        # No aiohttp total: the attempt's own timer (AttemptTimer) starts at the connection.
        self._timeout = aiohttp.ClientTimeout(total=None, connect=None,
                                              sock_connect=CONNECT_TIMEOUT_S)
        self._session: aiohttp.ClientSession | None = None
        self.connector: PacedConnector | None = None

    async def start(self) -> None:
        self.connector = PacedConnector(
            pacer=self._pacer, clock=self._clock,
            limit=self._config.max_connections, keepalive_timeout=30.0,
            socket_factory=abortive_socket)
        self._session = aiohttp.ClientSession(
            connector=self.connector, timeout=self._timeout, auto_decompress=True)
        # aiohttp silently resends idempotent methods (PUT, DELETE) on a stale keep-alive
        # connection. A PUT closes a position: every resend must be the retry policy's decision.
        self._session._retry_connection = False

    @property
    def session(self) -> aiohttp.ClientSession:
        """The keep-alive session (streams open their connections through it, so they share
        the new-connections budget)."""
        assert self._session is not None, "transport not started"
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _headers_for(self, call: Call) -> dict[str, str]:
        headers = self._headers
        if call.headers or call.is_write:
            headers = {**headers, **call.headers}
            if call.is_write:  # an empty PUT too: never aiohttp's application/octet-stream
                headers["Content-Type"] = "application/json"
        return headers

    def _timer(self, call: Call) -> tuple[AttemptTimer, bool]:
        now = self._clock.monotonic()
        limit = self._config.request_timeout_s
        deadline_bound = call.deadline is not None and call.deadline - now < limit
        if call.deadline is not None and call.deadline <= now:
            raise DeadlineExceeded("the caller's deadline passed before the attempt")
        # Waiting for a connection may last as long as an attempt, never past the deadline.
        bound = min(now + limit, call.deadline) if call.deadline is not None else now + limit
        loop_end = asyncio.get_running_loop().time() + (bound - now)
        return AttemptTimer(asyncio.timeout_at(loop_end), bound, limit, call.deadline), \
            deadline_bound

    async def __call__(self, call: Call) -> Response:
        assert self._session is not None, "transport not started"
        timer, deadline_bound = self._timer(call)
        started = self._clock.monotonic()
        token = CURRENT_ATTEMPT.set(timer)
        try:
            async with timer.timeout, self._session.request(
                call.method, URL(self._base + call.path, encoded=True),
                params=call.query or None, data=call.body or None,
                headers=self._headers_for(call), allow_redirects=False,
            ) as resp:
                body = await resp.read()
                status = resp.status
                raw = resp.headers
        except NoConnection:
            raise self._not_connected(deadline_bound) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            if not timer.connected:  # the wait for a connection ran out: nothing was sent
                raise self._not_connected(deadline_bound) from None
            if not timer.established and isinstance(exc, TimeoutError):
                exc = aiohttp.ConnectionTimeoutError("connecting to OANDA timed out")
            raise self._failed(call, started, exc, deadline_bound) from exc
        finally:
            CURRENT_ATTEMPT.reset(token)
        returned = {name: raw[name] for name in RETURNED_HEADERS if name in raw}
        self._publish(call, started, status, None, returned.get("RequestID"))
        return Response(status=status, body=body, headers=returned, attempts=call.attempt,
                        retry_after_s=parse_retry_after(raw.get("Retry-After")))

    def _not_connected(self, deadline_bound: bool) -> Exception:
        """No connection in time: the sidecar's own limit, not OANDA's failure."""
        if deadline_bound:
            return DeadlineExceeded("the caller's deadline passed while waiting for a "
                                    "connection to OANDA (nothing was sent)")
        return RateLimited("no connection to OANDA could be had in time (OANDA allows "
                           f"{self._config.max_new_connections_per_s:g} new connections/s); "
                           "nothing was sent", retry_after_s=1.0)

    def _failed(self, call: Call, started: float, exc: BaseException,
                deadline_bound: bool) -> Exception:
        if _out_of_descriptors(exc):  # the sidecar's own trouble: never an OANDA outage
            return SidecarOverloaded("the sidecar has no free file descriptors to reach OANDA; "
                                     "nothing was sent", retry_after_s=1.0)
        error = translate(exc)
        self._publish(call, started, None, error)
        if deadline_bound and isinstance(error, UpstreamTimeout) and not call.is_write:
            # The caller's deadline, not OANDA, ended this read. (A write that timed out
            # stays an UpstreamTimeout: its outcome is unknown whoever ran out of time.)
            return DeadlineExceeded("the caller's deadline passed while waiting for OANDA")
        return error

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


def _out_of_descriptors(exc: BaseException) -> bool:
    cause = getattr(exc, "os_error", exc)
    return isinstance(cause, OSError) and cause.errno in (errno.EMFILE, errno.ENFILE)


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__

