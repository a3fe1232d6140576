"""The keep-alive pool to OANDA, paced at `oanda.max_new_connections_per_s` new connections.

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
from collections import deque
from dataclasses import dataclass
from typing import Any

import aiohttp

from sidecar.clock import Clock
from sidecar.ratelimit.bucket import TokenBucket


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


CURRENT_ATTEMPT: contextvars.ContextVar[AttemptTimer | None] = contextvars.ContextVar(
    "oanda_sidecar_attempt", default=None)


class PacedConnector(aiohttp.TCPConnector):
    """A TCPConnector whose new connections come from one token bucket (burst: one second's
    worth), and whose waiting requests take released connections first."""

    def __init__(self, *, rate: float, clock: Clock, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._clock = clock
        self._bucket = TokenBucket(rate, max(1.0, rate), clock.monotonic())
        self._slot_waiters: deque[asyncio.Future[None]] = deque()
        self.opened = 0
        self.waited = 0  # requests that had to wait for a connection

    async def connect(self, req: Any, traces: Any, timeout: Any) -> Any:  # noqa: ASYNC109
        attempt = CURRENT_ATTEMPT.get()
        while True:
            conn = await self._get(req.connection_key, traces)
            if conn is not None:
                self._started(attempt)
                if attempt is not None:
                    attempt.established = True
                return conn
            now = self._clock.monotonic()
            wait = self._bucket.time_until(1.0, now)
            if wait == 0.0:
                self._bucket.take(1.0, now)
                self.opened += 1
                self._started(attempt)
                conn = await super().connect(req, traces, timeout)
                if attempt is not None:
                    attempt.established = True
                return conn
            await self._wait(wait, attempt)

    def _started(self, attempt: AttemptTimer | None) -> None:
        if attempt is not None and not attempt.connected:
            attempt.start(self._clock.monotonic(), asyncio.get_running_loop().time())

    async def _wait(self, wait: float, attempt: AttemptTimer | None) -> None:
        """Until a pacing slot is due or a connection is released, within the bound."""
        if attempt is not None:
            left = attempt.bound - self._clock.monotonic()
            if left <= 0:
                raise NoConnection("no connection to OANDA became free in time")
            wait = min(wait, left)
        self.waited += 1
        waiter = asyncio.get_running_loop().create_future()
        self._slot_waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), wait)
        except TimeoutError:
            pass
        finally:
            if not waiter.done():
                waiter.cancel()
            if waiter in self._slot_waiters:
                self._slot_waiters.remove(waiter)

    def _release(self, key: Any, protocol: Any, *, should_close: bool = False) -> None:
        super()._release(key, protocol, should_close=should_close)
        while self._slot_waiters:  # wake the oldest waiter: a pooled connection may be free now
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break
