"""The buckets behind the rate-limit policy (`sidecar.policies.ratelimit`).

    bucket   TokenBucket and AdaptiveRate: the one token bucket of the tree, pure arithmetic
    lanes    normal and critical, and the critical share while normal calls wait
    gates    where tokens come from: the Gate protocol and this process's LocalGate
    gcra     the Lua script: GCRA for the fleet, one round trip per decision
    backend  the Redis client, its health, fallback and return (events)
    shared   SharedGate: the fleet's bucket with a local fallback
    queue    FIFO queues per lane and endpoint limit, the expiry heap, the waker
    limiter  Limiter: wait budgets, AIMD, the status snapshot
    pacer    ConnectionPacer: new connections per second, local or fleet-wide

`build_rate_limit` wires them from the config.
"""

from __future__ import annotations

from dataclasses import dataclass

from sidecar.clock import Clock
from sidecar.config import OandaConfig, RateLimitConfig
from sidecar.events import EventBus
from sidecar.ratelimit.backend import BACKEND, SharedBackend, key_hash
from sidecar.ratelimit.gates import Gate, LocalGate
from sidecar.ratelimit.limiter import Limiter
from sidecar.ratelimit.pacer import ConnectionPacer
from sidecar.ratelimit.shared import SharedGate
from sidecar.ratelimit.snapshot import SharedSnapshot

__all__ = ["ConnectionPacer", "Limiter", "RateLimit", "build_rate_limit"]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The limiter, the connection pacer, and the Redis backend they share (if any)."""

    limiter: Limiter
    pacer: ConnectionPacer
    backend: SharedBackend | None

    async def start(self) -> None:
        return None  # the Redis client connects on first use

    async def stop(self) -> None:
        self.limiter.close()
        if self.backend is not None:
            await self.backend.close()

    async def close(self) -> None:
        await self.stop()


def build_rate_limit(config: RateLimitConfig, oanda: OandaConfig, token: str | None,
                     clock: Clock, bus: EventBus) -> RateLimit:
    now = clock.monotonic()
    shared = config.shared
    if shared.redis_url is None:
        gate: Gate = LocalGate(config.rate_per_s, config.burst,
                               [(e.rate_per_s, e.burst) for e in config.endpoints], now)
        limiter = Limiter(config, clock, bus, gate)
        return RateLimit(limiter, ConnectionPacer(oanda.max_new_connections_per_s, clock), None)
    backend = SharedBackend(shared, key_hash(oanda.base_url, token, shared.key), clock, bus)

    def status() -> SharedSnapshot:
        return SharedSnapshot(BACKEND, backend.healthy, backend.key_hash, backend.errors,
                              backend.since)

    limiter = Limiter(config, clock, bus, SharedGate(config, backend, now), shared=status)
    pacer = ConnectionPacer(oanda.max_new_connections_per_s, clock, backend=backend,
                            fallback_share=min(1.0, shared.fallback_rate_per_s
                                               / config.rate_per_s))
    return RateLimit(limiter, pacer, backend)
