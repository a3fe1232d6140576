"""The keep-alive pool to OANDA, paced at `oanda.max_new_connections_per_s` new connections
(the fleet's when the rate limit is shared).

Waiting for a connection is not an attempt: the attempt's timeout starts once a connection is in
hand (reused, or a new one about to connect), so a burst after idle never turns into timeouts
that look like sent requests. While a request waits for a pacing slot it takes the first pooled
connection that another request releases instead, so a burst reuses what is open rather than
queueing behind the 2/s limit. A request that can get no connection before its bound is
refused as not sent (`NoConnection`) — never an upstream failure.
"""

from __future__ import annotations

import asyncio
import contextvars
import socket
import struct
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from sidecar.clock import Clock
from sidecar.errors import NoConnectionSlot


class NoConnection(Exception):
    """No connection could be had before the attempt's bound: nothing was sent."""


@dataclass(slots=True)
class AttemptTimer:
    """One attempt's clock: `bound` (monotonic) limits the wait for a connection; once one is
    in hand the asyncio timeout is moved to `start + timeout_s` (never past the caller's
    deadline)."""

    timeout: asyncio.Timeout
    bound: float
    timeout_s: float
    deadline: float | None
    connected: bool = False  # a connection slot is in hand: the attempt's timer runs
    established: bool = False  # the connection is up: from here on bytes may reach OANDA

    def start(self, now: float, loop_now: float) -> None:
        self.connected = True
        end = now + self.timeout_s
        if self.deadline is not None:
            end = min(end, self.deadline)
        self.timeout.reschedule(loop_now + (end - now))


# A new-connection slot is booked only when it is due within this long.
_SLOT_HORIZON_S = 0.05

CURRENT_ATTEMPT: contextvars.ContextVar[AttemptTimer | None] = contextvars.ContextVar(
    "oanda_sidecar_attempt", default=None)
# A rate-limit token is leave to send now, not whenever a connection turns up: a request that
# waited longer than this for one asks the limiter again (READMIT, set by the rate-limit
# policy) before it is sent. Without it, after connection resets the tokens granted over ten
# seconds of scarce connections were spent in one: 379 arrivals in a second, 272 upstream 429s
# (found by the soak).
STALE_TOKEN_S = 0.05
READMIT: contextvars.ContextVar[Callable[[], Awaitable[object]] | None] = \
    contextvars.ContextVar("oanda_sidecar_readmit", default=None)


def abortive_socket(addr_info: tuple[Any, ...]) -> socket.socket:
    """A socket whose close is a reset (SO_LINGER 0): the kernel drops what OANDA has not
    acknowledged instead of retransmitting it after the sidecar gave up. A write that timed out
    into a black hole must never reach OANDA once the route is back, after resolution has
    proven it absent and a resend went out (a duplicate order, found by the chaos run)."""
    family, kind, proto = addr_info[0], addr_info[1], addr_info[2]
    sock = socket.socket(family=family, type=kind, proto=proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return sock


class Pacer(Protocol):
    """New-connection slots (`sidecar.ratelimit.pacer.ConnectionPacer`, shared by the fleet
    when Redis is configured): returns when one may be opened, raises NoConnectionSlot when no
    slot comes before `deadline`."""

    async def acquire(self, deadline: float | None) -> None: ...


class PacedConnector(aiohttp.TCPConnector):
    """A TCPConnector whose new connections wait for the pacer, and whose waiting requests take
    released connections first."""

    def __init__(self, *, pacer: Pacer, clock: Clock, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pacer = pacer
        self._clock = clock
        self._slot_waiters: deque[asyncio.Future[None]] = deque()
        self.opened = 0
        self.waited = 0  # requests that had to wait for a connection
        self.readmitted = 0  # of those, sent only after a fresh rate-limit token

    async def connect(self, req: Any, traces: Any, timeout: Any) -> Any:  # noqa: ASYNC109
        attempt = CURRENT_ATTEMPT.get()
        readmit = READMIT.get()
        asked = self._clock.monotonic()
        while True:
            conn = await self._connection(req, traces, timeout, attempt)
            if readmit is None or self._clock.monotonic() - asked <= STALE_TOKEN_S:
                break
            # Waited too long: give the connection back (never held while queueing for a
            # token, which would starve the calls behind), ask the limiter again (once: the
            # fresh tokens come paced), and take whichever connection is free then. A
            # refusal: nothing was sent.
            conn.release()
            self.readmitted += 1
            await readmit()
            readmit = None
        self._started(attempt, established=True)  # the timer runs from here (if not yet)
        return conn

    async def _connection(self, req: Any, traces: Any, timeout: Any,  # noqa: ASYNC109
                          attempt: AttemptTimer | None) -> Any:
        """A pooled connection, or a new one when a pacing slot is due."""
        while True:
            conn = await self._get(req.connection_key, traces)
            if conn is not None:
                return conn
            wait = await self._try_slot()
            if wait == 0.0:
                break
            await self._wait(wait, attempt)
        self.opened += 1
        self._started(attempt, established=False)  # connecting is part of the attempt
        return await super().connect(req, traces, timeout)  # may wait for max_connections

    async def _try_slot(self) -> float:
        """0.0 when a new connection may be opened now; else how long until a slot is due.
        Only a slot that is (nearly) due is booked: a request that then finds a pooled
        connection released has spent nothing of the pace."""
        try:
            await self._pacer.acquire(self._clock.monotonic() + _SLOT_HORIZON_S)
        except NoConnectionSlot as refused:
            return max(_SLOT_HORIZON_S, refused.retry_after_s or _SLOT_HORIZON_S)
        return 0.0

    async def _wait(self, wait: float, attempt: AttemptTimer | None) -> None:
        """Until a slot is due or a pooled connection is released, within the attempt's bound."""
        if attempt is not None:
            left = attempt.bound - self._clock.monotonic()
            if left <= 0:
                raise NoConnection("no connection to OANDA became free in time")
            wait = min(wait, left)
        self.waited += 1
        released = asyncio.get_running_loop().create_future()
        self._slot_waiters.append(released)
        try:
            await asyncio.wait_for(asyncio.shield(released), wait)
        except TimeoutError:
            pass
        finally:
            if not released.done():
                released.cancel()
            if released in self._slot_waiters:
                self._slot_waiters.remove(released)

    def _started(self, attempt: AttemptTimer | None, *, established: bool) -> None:
        if attempt is None:
            return
        if not attempt.connected:
            attempt.start(self._clock.monotonic(), asyncio.get_running_loop().time())
        attempt.established = attempt.established or established

    def _release(self, key: Any, protocol: Any, *, should_close: bool = False) -> None:
        super()._release(key, protocol, should_close=should_close)
        while self._slot_waiters:  # wake the oldest waiter: a pooled connection may be free now
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break
