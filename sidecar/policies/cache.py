"""The cache fallback: successful reads are kept, and answer for OANDA when it cannot.

`ResponseCache` wraps aiocache 0.12 (memory by default, Redis optional) behind two calls that
never raise: a broken cache is a miss, published as `CacheFailed`, never a failed request.
`CacheFallbackPolicy` sits outside retry: it stores successful GETs of the cacheable templates,
answers from cache when a read still fails after retries (an upstream error, an open breaker, a
5xx or a 429 from OANDA), and, while the sidecar is degraded, answers fresh
entries first so that a struggling OANDA is spared. Never cached: non-GETs and error answers.

Keys hold the path, the sorted query, the `Accept-Datetime-Format` (it changes the body) and a
hash of the OANDA base URL and token, so no answer ever crosses tokens or environments.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

from sidecar.clock import Clock
from sidecar.config import DegradationConfig
from sidecar.degradation.controller import LevelView
from sidecar.errors import CircuitOpen, UpstreamError
from sidecar.events import CacheFailed, CacheServed, EventBus
from sidecar.pipeline import Call, Handler, Response
from sidecar.vocabulary import Level, classify

NAMESPACE = "oanda-sidecar:v1"
# Reference data changes rarely; everything else defaults to `cache_default_ttl_s`.
BUILTIN_TTLS = {"/v3/accounts/{accountID}/instruments": 3600.0}
# Not RateLimited: that is the caller going too fast, and it must keep seeing the backpressure.
_FALLBACK_ERRORS = (UpstreamError, CircuitOpen)
_FAILURE_PAUSE_S = 1.0  # after a backend failure, skip it this long (no request waits on it)
_MAX_PENDING_WRITES = 256


@dataclass(frozen=True, slots=True)
class CachedResponse:
    status: int
    body: bytes
    headers: dict[str, str]
    stored_at: float  # wall seconds: entries may be shared by processes through Redis


def encode_entry(entry: CachedResponse) -> bytes:
    head = json.dumps({"s": entry.status, "h": entry.headers, "t": entry.stored_at})
    return head.encode() + b"\n" + entry.body  # JSON escapes newlines: the first one splits


def decode_entry(raw: bytes) -> CachedResponse:
    head, _, body = raw.partition(b"\n")
    meta = json.loads(head)
    return CachedResponse(int(meta["s"]), body, dict(meta["h"]), float(meta["t"]))


def _size(key: str, value: CachedResponse | bytes) -> int:
    """What an entry costs: its key, body and headers (an estimate for the in-memory object)."""
    if isinstance(value, bytes):
        return len(key) + len(value)
    return len(key) + len(value.body) + sum(len(k) + len(v) for k, v in value.headers.items())


def cache_scope(base_url: str, token: str | None) -> str:
    """The part of every key that separates tokens (and upstreams) from each other."""
    return hashlib.sha256(f"{base_url}\0{token or ''}".encode()).hexdigest()[:16]


class ResponseCache:
    """get/put that never raise. Bounded to `max_entries` keys and `max_bytes` (keys, bodies and
    headers) written by this process; an entry over `max_entry_bytes` is never stored."""

    def __init__(self, backend: Any, clock: Clock, bus: EventBus, *, max_entries: int,
                 remote: bool, max_bytes: int = 64 << 20, max_entry_bytes: int = 1 << 20) -> None:
        self._backend = backend
        self._clock = clock
        self._bus = bus
        self._max = max_entries
        self._max_bytes = max_bytes
        self._max_entry = max_entry_bytes
        self._remote = remote  # encode entries to bytes, write in the background
        self._keys: OrderedDict[str, int] = OrderedDict()  # key -> bytes accounted
        self.bytes = 0
        self._skip_until = 0.0
        self._pending: set[asyncio.Task[None]] = set()

    @classmethod
    def from_config(cls, config: DegradationConfig, clock: Clock, bus: EventBus) -> ResponseCache:
        if config.cache_backend == "redis" and config.redis_url:
            backend = _redis_backend(config.redis_url, config.cache_timeout_s,
                                     config.redis_pool_size)
            return cls(backend, clock, bus, max_entries=config.cache_max_entries, remote=True,
                       max_bytes=config.cache_max_bytes,
                       max_entry_bytes=config.cache_max_entry_bytes)
        from aiocache import SimpleMemoryCache

        # No timeout: aiocache would wrap each in-memory call in asyncio.wait_for.
        return cls(SimpleMemoryCache(timeout=None), clock, bus,
                   max_entries=config.cache_max_entries, remote=False,
                   max_bytes=config.cache_max_bytes, max_entry_bytes=config.cache_max_entry_bytes)

    def __len__(self) -> int:
        return len(self._keys)

    async def get(self, key: str) -> CachedResponse | None:
        if self._clock.monotonic() < self._skip_until:
            return None
        try:
            value = await self._backend.get(key)
            if value is None:
                return None
            return decode_entry(value) if self._remote else value
        except Exception as exc:
            self._failed("get", exc)
            return None

    async def put(self, key: str, entry: CachedResponse, ttl_s: float) -> None:
        if self._clock.monotonic() < self._skip_until or _size(key, entry) > self._max_entry:
            return
        if not self._remote:
            await self._write(key, entry, ttl_s)
        elif len(self._pending) < _MAX_PENDING_WRITES:
            task = asyncio.ensure_future(self._write(key, encode_entry(entry), ttl_s))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        else:
            self._failed("set", RuntimeError("too many cache writes pending"))

    async def _write(self, key: str, value: Any, ttl_s: float) -> None:
        try:
            # In memory the age is checked on every read and the size is bounded here, so no
            # TTL: aiocache would arm (and re-arm) a loop timer per write. Redis needs it to
            # forget keys that no process reads again.
            await self._backend.set(key, value, ttl=float(ttl_s) if self._remote else None)
            keys = self._keys
            self.bytes += _size(key, value) - keys.pop(key, 0)
            keys[key] = _size(key, value)
            while len(keys) > self._max or (self.bytes > self._max_bytes and len(keys) > 1):
                oldest, size = keys.popitem(last=False)
                self.bytes -= size
                await self._backend.delete(oldest)
        except Exception as exc:
            self._failed("set", exc)

    def _failed(self, operation: str, exc: Exception) -> None:
        self._skip_until = self._clock.monotonic() + _FAILURE_PAUSE_S
        text = f"{type(exc).__name__}: {exc}"[:200]
        self._bus.publish(CacheFailed(at=self._clock.wall(), operation=operation, error=text))

    async def flush(self) -> None:
        """Wait for the background writes (tests, shutdown)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def close(self) -> None:
        await self.flush()
        try:
            await self._backend.close()
        except Exception as exc:
            self._failed("close", exc)


def _redis_backend(url: str, timeout_s: float, pool_size: int) -> Any:
    import redis.asyncio
    from aiocache import RedisCache
    from aiocache.serializers import BaseSerializer

    class _Raw(BaseSerializer):  # type: ignore[misc]
        DEFAULT_ENCODING = None  # bytes in, bytes out: entries carry binary bodies

        def dumps(self, value: Any) -> Any:
            return value

        def loads(self, value: Any) -> Any:
            return value

    parts = urlsplit(url)
    # redis-py 8's plain pool raises "Too many connections" at its limit; the blocking pool
    # waits (bounded by the timeout) instead.
    return RedisCache(
        serializer=_Raw(), endpoint=parts.hostname or "127.0.0.1", port=parts.port or 6379,
        db=int(parts.path.strip("/") or 0),
        password=unquote(parts.password) if parts.password else None,
        ssl=parts.scheme == "rediss", timeout=timeout_s, pool_max_size=pool_size,
        create_connection_timeout=timeout_s,
        connection_pool_class=redis.asyncio.BlockingConnectionPool,
        connection_pool_kwargs={"timeout": timeout_s, "socket_timeout": timeout_s})


class CacheFallbackPolicy:
    __slots__ = ("_bus", "_cache", "_clock", "_config", "_levels", "_scope", "_ttls")

    def __init__(self, cache: ResponseCache, levels: LevelView, config: DegradationConfig,
                 clock: Clock, bus: EventBus, scope: str) -> None:
        self._cache = cache
        self._levels = levels
        self._config = config
        self._clock = clock
        self._bus = bus
        self._scope = f"{NAMESPACE}:{scope}:"
        self._ttls: dict[str, float | None] = {}  # template -> TTL (None: not cached)

    def ttl_for(self, template: str) -> float | None:
        """Seconds an answer of `template` stays usable; None when it is never cached."""
        if template in self._ttls:
            return self._ttls[template]
        config = self._config
        ttl: float | None = None
        if any(fnmatch.fnmatchcase(template, glob) for glob in config.cache_templates):
            ttl = config.cache_ttls.get(template) or BUILTIN_TTLS.get(
                template, config.cache_default_ttl_s)
            if template.endswith("/pricing"):
                ttl = min(ttl, config.pricing_max_age_s)
        self._ttls[template] = ttl
        return ttl

    def key_for(self, call: Call) -> str:
        query = urlencode(sorted(call.query.items())) if call.query else ""
        fmt = call.headers.get("Accept-Datetime-Format", "") if call.headers else ""
        return f"{self._scope}{call.path}?{query}|{fmt}"

    async def handle(self, call: Call, next: Handler) -> Response:
        if call.method != "GET":
            return await next(call)
        ttl = self.ttl_for(call.endpoint.template)
        if ttl is None:
            return await next(call)
        key = self.key_for(call)
        looked = False
        if self._levels.level != Level.NONE:  # degraded: spare OANDA, answer fresh entries first
            looked = True
            hit = await self._fresh(key, ttl)
            if hit is not None:
                return self._serve(call, hit, 0)
        try:
            response = await next(call)
        except _FALLBACK_ERRORS as error:
            hit = None if looked else await self._fresh(key, ttl)
            if hit is None:
                raise
            return self._serve(call, hit, error.attempts)
        status = response.status
        if 200 <= status < 300:
            await self._cache.put(key, CachedResponse(
                status, response.body, response.headers, self._clock.wall()), ttl)
        elif classify(status).is_transient and not looked:
            hit = await self._fresh(key, ttl)
            if hit is not None:
                return self._serve(call, hit, response.attempts)
        return response

    async def _fresh(self, key: str, ttl: float) -> CachedResponse | None:
        entry = await self._cache.get(key)
        if entry is None or self._clock.wall() - entry.stored_at > ttl:
            return None
        return entry

    def _serve(self, call: Call, entry: CachedResponse, attempts: int) -> Response:
        age = max(0.0, self._clock.wall() - entry.stored_at)
        self._bus.publish(CacheServed(at=self._clock.wall(), endpoint=call.endpoint.template,
                                      age_s=age))
        return Response(status=entry.status, body=entry.body, headers=dict(entry.headers),
                        attempts=attempts, from_cache=True, cache_age_ms=int(age * 1000),
                        degradation=self._levels.level)
