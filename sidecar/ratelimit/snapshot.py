"""What the limiter shows in GetStatus, `/api/status` and `ctl status`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EndpointLimitSnapshot:
    pattern: str
    rate_per_s: float
    burst: float
    tokens: float  # -1: not known here (the shared bucket holds it)


@dataclass(frozen=True, slots=True)
class SharedSnapshot:
    backend: str  # "redis"
    healthy: bool  # False: each pod limits itself to fallback_rate_per_s
    key_hash: str  # names the shared key; never the token
    errors_total: int
    since: float  # wall time of the last change of `healthy`


@dataclass(frozen=True, slots=True)
class RateLimitSnapshot:
    rate_per_s: float
    configured_rate_per_s: float
    burst: float
    tokens: float
    queued_normal: int
    queued_critical: int
    rejected_total: int
    admitted_total: int
    endpoints: tuple[EndpointLimitSnapshot, ...]
    shared: SharedSnapshot | None = None
