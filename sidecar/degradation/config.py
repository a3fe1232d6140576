"""The `degradation` configuration section (here, beside its users; sidecar.config includes it)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sidecar.upstream.endpoints import TEMPLATES

# Read endpoints whose successful answers the degradation cache keeps (CONTRACT §2, issue 4).
DEFAULT_CACHE_TEMPLATES: tuple[str, ...] = (
    "/v3/accounts",
    "/v3/accounts/{accountID}",
    "/v3/accounts/{accountID}/summary",
    "/v3/accounts/{accountID}/instruments",
    "/v3/accounts/{accountID}/pricing",
    "/v3/accounts/{accountID}/positions",
    "/v3/accounts/{accountID}/openPositions",
    "/v3/accounts/{accountID}/positions/{instrument}",
    "/v3/accounts/{accountID}/trades",
    "/v3/accounts/{accountID}/openTrades",
    "/v3/accounts/{accountID}/trades/{tradeSpecifier}",
    "/v3/accounts/{accountID}/orders",
    "/v3/accounts/{accountID}/pendingOrders",
    "/v3/accounts/{accountID}/orders/{orderSpecifier}",
    "/v3/accounts/{accountID}/instruments/{instrument}/candles",
    "/v3/instruments/{instrument}/candles",
)

class DegradationConfig(BaseModel):
    """The `degradation` section: the levels, the response cache, the recovery probe."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    cache_backend: Literal["memory", "redis"] = "memory"
    redis_url: str | None = None
    cache_max_entries: int = Field(10_000, ge=1, le=10_000_000)
    # The byte budget of what this process keeps (memory) or writes (Redis), bodies and keys.
    cache_max_bytes: int = Field(64 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024 * 1024)
    # An answer larger than this is never cached.
    cache_max_entry_bytes: int = Field(1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    cache_default_ttl_s: float = Field(300.0, gt=0, le=86_400)
    pricing_max_age_s: float = Field(5.0, gt=0, le=3600)
    cache_ttls: dict[str, float] = Field(default_factory=dict)
    # Path templates whose successful GETs are cached (globs allowed).
    cache_templates: tuple[str, ...] = DEFAULT_CACHE_TEMPLATES
    # Longest a Redis operation may take; a slower cache counts as failed, never the request.
    cache_timeout_s: float = Field(0.25, gt=0, le=10)
    redis_pool_size: int = Field(16, ge=1, le=1024)
    probe_interval_s: float = Field(5.0, gt=0, le=3600)
    probe_path: str = "/v3/accounts"
    recovery_successes: int = Field(3, ge=1, le=100)
    # CACHED_DATA once this many reads failed after retries within failed_read_window_s and
    # they are at least half of the reads that finished in that window.
    enter_failed_reads: int = Field(2, ge=1, le=1000)
    failed_read_window_s: float = Field(30.0, gt=0, le=3600)
    # A degraded level re-entered within this long after a recovery doubles the probe
    # successes the next recovery needs (up to 8x): an intermittent OANDA does not flap.
    flap_window_s: float = Field(300.0, ge=0, le=86_400)
    # Attempts in a row that could not connect (or lost the connection): READ_ONLY.
    outage_connection_failures: int = Field(3, ge=1, le=1000)

    @model_validator(mode="after")
    def _redis(self) -> DegradationConfig:
        if self.cache_backend == "redis" and not self.redis_url:
            raise ValueError("redis_url is required when cache_backend is redis")
        if self.redis_url is not None and not self.redis_url.startswith(
                ("redis://", "rediss://")):
            raise ValueError("redis_url must start with redis:// or rediss://")
        if not self.probe_path.startswith("/v3/"):
            raise ValueError("probe_path must start with /v3/")
        unknown = sorted(t for t in self.cache_ttls if t not in TEMPLATES)
        if unknown:
            raise ValueError(f"cache_ttls: {unknown[0]!r} is not an OANDA v20 path template")
        if any(ttl <= 0 for ttl in self.cache_ttls.values()):
            raise ValueError("cache_ttls: every TTL must be above 0 seconds")
        return self
