"""Building the limiter the way the app does, for tests."""

from __future__ import annotations

from sidecar.clock import Clock
from sidecar.config import OandaConfig, RateLimitConfig
from sidecar.events import EventBus
from sidecar.policies.ratelimit import RateLimitPolicy
from sidecar.ratelimit import build_rate_limit


def local_policy(config: RateLimitConfig, clock: Clock, bus: EventBus) -> RateLimitPolicy:
    """The rate-limit policy over this process's buckets (no shared backend)."""
    return RateLimitPolicy(build_rate_limit(config, OandaConfig(), None, clock, bus).limiter)
