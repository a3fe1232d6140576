"""Exactly-once orders: client IDs, the last transaction ID per account, resolution of unknown
outcomes from OANDA's records, and the client IDs remembered in memory and Redis.

See docs/orders.md for what a strategy sees. `build_desk` is what the composition root calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sidecar.clock import Clock
from sidecar.events import EventBus
from sidecar.orders.desk import OrderDesk
from sidecar.orders.records import OrderBook, OrderRecord, RedisStore, RemoteStore
from sidecar.pipeline import Handler
from sidecar.policies.retry_budget import RetryBudget

if TYPE_CHECKING:  # sidecar.config includes sidecar.orders.config: no import cycle at run time
    from sidecar.config import Config

__all__ = ["OrderBook", "OrderDesk", "OrderRecord", "build_desk"]


def build_desk(config: Config, clock: Clock, bus: EventBus, inner: Handler, *,
               budget: RetryBudget | None, scope: str) -> OrderDesk:
    """The desk, its lookups through `inner` (breaker and limiter: never retry or the cache).

    Client IDs are kept in Redis too when the degradation cache is there (`scope` separates
    tokens and upstreams, as the cache's keys do).
    """
    remote: RemoteStore | None = None
    degradation = config.degradation
    if degradation.cache_backend == "redis" and degradation.redis_url:
        remote = RedisStore(degradation.redis_url, degradation.cache_timeout_s)
    book = OrderBook(clock, bus, max_records=config.orders.max_remembered,
                     remember_s=config.orders.remember_s, remote=remote, scope=scope)
    return OrderDesk(config.orders, inner, clock, bus, book,
                     max_attempts=config.retry.max_attempts,
                     request_timeout_s=config.oanda.request_timeout_s, budget=budget)
