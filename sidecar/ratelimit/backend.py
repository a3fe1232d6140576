"""The Redis side of the shared rate limit: one client, the GCRA script, and whether Redis can be
trusted right now.

Any failure of a decision (slower than `timeout_s`, refused connection, a restarted server's
broken connection, any Redis error) marks the backend unhealthy at once: the gates then decide
locally at `fallback_rate_per_s`, so no request waits for or fails because of Redis. A probe task
tries Redis every `probe_interval_s`; the first answer makes it healthy again. For a short hold
after that, decisions ask the script to create a missing key (Redis lost its data) empty and in
the future, so pods still in fallback stop before the shared bucket admits anything.
Each change is a `SharedLimitChanged` event; each failed call a `SharedLimitFailed`.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from sidecar.clock import Clock
from sidecar.config import SharedRateLimitConfig
from sidecar.events import EventBus, SharedLimitChanged, SharedLimitFailed
from sidecar.ratelimit.gcra import CHARGE_SCRIPT, SCRIPT

BACKEND = "redis"
# Whatever the client raises means "Redis could not decide": besides RedisError and OSError,
# uvloop raises RuntimeError on a transport closed under a connect. Never a request's failure.
_FAILURES = (Exception,)


class SharedUnavailable(Exception):
    """Redis could not decide; the caller decides locally instead."""


def key_hash(base_url: str, token: str | None, key: str | None = None) -> str:
    """The shared key's name: the configured key, else a hash of base URL and token (the
    token never leaves the process, not even as a Redis key)."""
    material = key if key is not None else f"{base_url}\n{token or ''}"
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RedisTimeoutError | TimeoutError):
        return "timeout"
    if isinstance(exc, RedisConnectionError | OSError):
        return "connection_error"
    return "error"  # RedisError and anything else the client raised


class SharedBackend:
    def __init__(self, config: SharedRateLimitConfig, key_hash: str, clock: Clock,
                 bus: EventBus) -> None:
        assert config.redis_url is not None
        self.key_hash = key_hash
        self._tag = f"osc:rl:{{{key_hash}}}"  # the hash tag: every key in one Cluster slot
        self._config = config
        self._clock = clock
        self._bus = bus
        self.healthy = True
        self.generation = 0  # counts changes of `healthy`
        self.errors = 0
        self.since = clock.wall()
        self._hold_s = 2 * config.probe_interval_s + config.timeout_s
        self._rejoined_at = -float("inf")
        self._probe: asyncio.Task[None] | None = None
        self._slow = False  # the last fallback was for a slow answer (connections still fine)
        pool = aioredis.BlockingConnectionPool.from_url(
            config.redis_url, max_connections=config.pool_size, timeout=config.timeout_s,
            socket_timeout=config.timeout_s, socket_connect_timeout=config.timeout_s,
            retry=Retry(NoBackoff(), 0))  # a failure must show at once, never be retried
        self._client = aioredis.Redis(connection_pool=pool)
        self._script = self._client.register_script(SCRIPT)
        self._charge = self._client.register_script(CHARGE_SCRIPT)
        self._pending: dict[str, list[float]] = {}  # key -> [count, T, tau, reserve]

    def key(self, name: str) -> str:
        return f"{self._tag}:{name}"

    async def decide(self, keys: Sequence[str], lane: int, horizon_us: float,
                     params: Sequence[float], now_us: int = 0) -> tuple[int, int, int]:
        """Run the script (see `sidecar.ratelimit.gcra`); raises SharedUnavailable."""
        if not self.healthy:
            raise SharedUnavailable("the shared rate limit is in fallback")
        held = self._clock.monotonic() - self._rejoined_at < self._hold_s
        hold_us = self._hold_s * 1e6 if held else 0
        try:
            wait, blocker, ahead = await self._script(
                keys=list(keys), args=[lane, repr(horizon_us), repr(hold_us), now_us,
                                       *(repr(p) for p in params)])
        except _FAILURES as exc:
            self._failed("decide", exc)
            raise SharedUnavailable(_reason(exc)) from exc
        return int(wait), int(blocker), int(ahead)

    def charge(self, key: str, interval_us: float, tau_us: float, reserve_us: float,
               cap: float) -> None:
        """Note one admission made locally while in fallback, to charge to `key` on return.
        Only the last `cap` count: older ones no longer share a window with anything."""
        if self.healthy:
            return  # decided locally before the probe's answer: the probe charged what it had
        pending = self._pending.setdefault(key, [0.0, interval_us, tau_us, reserve_us])
        pending[0] = min(cap, pending[0] + 1)

    async def _charge_pending(self) -> None:
        for key, (count, interval_us, tau_us, reserve_us) in list(self._pending.items()):
            await self._charge(keys=[key], args=[repr(count), repr(interval_us), repr(tau_us),
                                                 repr(self._hold_s * 1e6), repr(reserve_us)])
            del self._pending[key]

    async def _probe_script(self) -> None:
        """What a decision needs, not a PING: the script runs and its write succeeds."""
        await self._charge(keys=[self.key("global")], args=["0", "1", "0", "0", "0"])

    def _failed(self, operation: str, exc: BaseException) -> None:
        self.errors += 1
        reason = _reason(exc)
        self._bus.publish(SharedLimitFailed(self._clock.wall(), operation, reason))
        if self.healthy:
            self._slow = reason == "timeout"
            self._set(False, reason, f"{type(exc).__name__}: {exc}"[:200])
            self._probe = asyncio.get_running_loop().create_task(self._probe_until_healthy())

    def _set(self, healthy: bool, reason: str, error: str | None = None) -> None:
        self.healthy = healthy  # state first, then publish
        self.generation += 1
        self.since = self._clock.wall()
        self._bus.publish(SharedLimitChanged(self._clock.wall(), BACKEND, healthy,
                                             self.key_hash, reason, error))

    async def _probe_until_healthy(self) -> None:
        if not self._slow:
            # Every pooled connection may be dead (a restarted server): drop them all, or each
            # would fail once before the pool reconnects.
            await self._client.connection_pool.disconnect()
        while True:
            # At once first: after one slow answer Redis usually answers the next call, and
            # the sooner the charge lands, the less the pods still sharing can over-admit.
            try:
                await (self._charge_pending() if self._pending else self._probe_script())
            except _FAILURES as exc:
                self.errors += 1
                self._bus.publish(SharedLimitFailed(self._clock.wall(), "probe", _reason(exc)))
                await self._clock.sleep(self._config.probe_interval_s)
                continue
            self._rejoined_at = self._clock.monotonic()
            self._probe = None
            self._set(True, "recovered")
            return

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)
        await self._client.aclose()
