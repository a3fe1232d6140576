"""The composition root: config → parts (typed, named) → servers. Drains on SIGTERM.

`build()` is the only function that knows every part; each part knows only its own config
section, the clock and the event bus. `App` serves what `build()` made: `serve` and `demo` (and
the end-to-end tests) construct an App and nothing else.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

import sidecar
from sidecar._gen.oanda.sidecar.v1 import control_pb2, proxy_pb2
from sidecar.clock import Clock, SystemClock
from sidecar.config import Config
from sidecar.degradation import DegradationController, RecoveryProbe
from sidecar.errors import ConfigError
from sidecar.events import EventBus
from sidecar.holds import HoldStore
from sidecar.lifecycle import Service
from sidecar.observability.decisions import DecisionLog
from sidecar.observability.setup import Observability, build_observability
from sidecar.orders import OrderDesk, build_desk
from sidecar.pipeline import Handler, Policy, compose
from sidecar.policies.breaker import BreakerPolicy, BreakerRegistry
from sidecar.policies.cache import CacheFallbackPolicy, ResponseCache, cache_scope
from sidecar.policies.deadline import DeadlinePolicy
from sidecar.policies.exactly_once import ExactlyOncePolicy
from sidecar.policies.ratelimit import RateLimitPolicy
from sidecar.policies.readonly import ReadOnlyGate
from sidecar.policies.retry import RetryPolicy
from sidecar.policies.validation import RequestValidator
from sidecar.ratelimit import RateLimit, build_rate_limit
from sidecar.server.admin import AdminServer
from sidecar.server.auth import ControlTokenGuard
from sidecar.server.control import ControlServicer
from sidecar.server.front import Front
from sidecar.server.interceptors import register
from sidecar.server.proxy import ProxyServicer
from sidecar.server.rest import RestListener
from sidecar.server.stream import StreamServicer
from sidecar.status import StatusBoard
from sidecar.streams.service import Streams
from sidecar.upstream.endpoints import PatternSet
from sidecar.upstream.health import UpstreamHealthTracker
from sidecar.upstream.transport import AiohttpTransport

_log = logging.getLogger("sidecar.app")
# Calls still in flight this long before the drain grace ends are answered by the sidecar
# (a write as OUTCOME_UNKNOWN), not cancelled bare by gRPC.
_CUT_OFF_MARGIN_S = 0.5
SERVICE_NAMES = (
    proxy_pb2.DESCRIPTOR.services_by_name["ProxyService"].full_name,
    control_pb2.DESCRIPTOR.services_by_name["ControlService"].full_name,
)


@dataclass(frozen=True, slots=True)
class Parts:
    """Everything the composition root built, by name, for the servers, tests and benchmarks."""

    config: Config
    clock: Clock
    bus: EventBus
    transport: AiohttpTransport
    breakers: BreakerRegistry
    limiter: RateLimitPolicy
    rate_limit: RateLimit
    degradation: DegradationController
    cache: ResponseCache
    probe: RecoveryProbe
    upstream: UpstreamHealthTracker
    holds: HoldStore
    board: StatusBoard
    observability: Observability
    policies: tuple[Policy, ...]
    handler: Handler
    orders: OrderDesk  # exactly-once orders (sidecar/orders, docs/orders.md)
    streams: Streams  # streams (issue 13)

    @property
    def services(self) -> tuple[Service, ...]:
        """Started in this order after the servers listen; stopped in reverse."""
        return (self.probe, *self.observability.services, _Closing(self.cache),
                self.rate_limit, self.orders)  # stopped in reverse: orders before the limiter


def build(config: Config, clock: Clock, bus: EventBus) -> Parts:
    """Policies outermost first: validation → deadline → read-only gate → cache fallback →
    exactly-once orders → retry → breaker → limiter → transport."""
    token = config.secrets.oanda_token.get_secret_value() if config.secrets.oanda_token else None
    breakers = BreakerRegistry(config.breaker, clock, bus, names=("rest", "stream"))
    rate_limit = build_rate_limit(config.rate_limit, config.oanda, token, clock, bus)
    transport = AiohttpTransport(config.oanda, token, clock, bus, pacer=rate_limit.pacer)
    limiter = RateLimitPolicy(rate_limit.limiter)
    degradation = DegradationController(config.degradation, clock, bus)
    cache = ResponseCache.from_config(config.degradation, clock, bus)
    rest_breaker = BreakerPolicy(breakers, "rest")
    retry = RetryPolicy(config.retry, clock, bus)
    # Exactly-once orders: lookups through the breaker and the limiter only (never the cache).
    orders = build_desk(config, clock, bus, compose([rest_breaker, limiter], transport),
                        budget=retry.budget, scope=cache_scope(config.oanda.base_url, token))
    policies: tuple[Policy, ...] = (
        RequestValidator(PatternSet(config.rate_limit.critical)),
        DeadlinePolicy(clock),
        ReadOnlyGate(degradation),
        CacheFallbackPolicy(cache, degradation, config.degradation, clock, bus,
                            cache_scope(config.oanda.base_url, token)),
        ExactlyOncePolicy(orders),
        retry,
        rest_breaker,
        limiter,
    )
    # The recovery probe skips retry and cache but obeys the breaker and the limiter.
    probe = RecoveryProbe(degradation, compose([rest_breaker, limiter], transport), clock,
                          config.degradation, config.oanda.request_timeout_s)
    upstream = UpstreamHealthTracker(bus, clock, config.oanda.base_url)
    holds = HoldStore(config.server.state_dir, bus, breakers, degradation)
    board = StatusBoard(bus, breakers=breakers, limiter=limiter, degradation=degradation,
                        upstream=upstream, decisions=DecisionLog(bus), holds_kept=holds.kept)
    streams = Streams.build(config, clock, bus, transport, breakers.get("stream"), policies, board)
    observability = build_observability(
        config, bus, clock, breakers=[s.name for s in breakers.snapshots()],
        queue_length=lambda: _queue_length(limiter))
    return Parts(config, clock, bus, transport, breakers, limiter, rate_limit, degradation, cache,
                 probe, upstream, holds, board, observability, policies, streams.rest, orders,
                 streams)


def _queue_length(limiter: RateLimitPolicy) -> tuple[int, int]:
    snap = limiter.snapshot()
    return snap.queued_normal, snap.queued_critical


class _Closing:
    """The cache only needs closing (its Redis pool, its pending writes)."""

    def __init__(self, cache: ResponseCache) -> None:
        self._cache = cache

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self._cache.close()


class App:
    """The daemon: the gRPC server (proxy, control, health, reflection), the admin server and
    the OANDA REST listener."""

    def __init__(self, config: Config, *, clock: Clock | None = None,
                 bus: EventBus | None = None) -> None:
        self.config = config
        self.parts = build(config, clock or SystemClock(), bus or EventBus())
        self.clock, self.bus = self.parts.clock, self.parts.bus
        self.health = health_aio.HealthServicer()
        server = config.server
        self.admin = AdminServer(self.parts.board, self.parts.observability.metrics.render,
                                 self.parts.observability.status_extras,
                                 max_connections=server.http_max_connections,
                                 header_timeout_s=server.http_header_timeout_s)
        tracing = self.parts.observability.tracing
        # Execute and the REST listener: one front, one pipeline, one drain cut-off.
        self.front = Front(self.parts.handler, self.clock, self.bus,
                           tracer=tracing if tracing.enabled else None)
        self.rest = (RestListener(self.front, self.parts.streams.delivery, server)
                     if server.rest_listen else None)
        self.grpc_server: grpc.aio.Server | None = None
        self.grpc_port = 0
        self.admin_port = 0
        self.rest_port = 0

    @property
    def grpc_target(self) -> str:
        host = self.config.server.grpc_listen.rpartition(":")[0]
        return f"{host}:{self.grpc_port}"

    @property
    def admin_url(self) -> str:
        host = self.config.server.admin_listen.rpartition(":")[0]
        return f"http://{host}:{self.admin_port}"

    @property
    def rest_url(self) -> str | None:
        """The REST listener's base URL (None: `server.rest_listen` is empty)."""
        if self.rest is None:
            return None
        host = self.config.server.rest_listen.rpartition(":")[0]
        return f"http://{host}:{self.rest_port}"

    def _grpc_server(self) -> grpc.aio.Server:
        parts = self.parts
        control_token = self.config.secrets.control_token
        guard = (ControlTokenGuard(control_token.get_secret_value(), self.bus, self.clock)
                 if control_token is not None else None)
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        proxy = ProxyServicer(self.front)
        proxy.Stream = StreamServicer(parts.streams.delivery).Stream  # type: ignore[method-assign]
        register(server, proxy, proxy_pb2.DESCRIPTOR.services_by_name["ProxyService"])
        control = ControlServicer(parts.board, parts.breakers, parts.degradation, self.bus,
                                  self.clock, max_watchers=self.config.server.max_status_watchers,
                                  orders=parts.orders)
        register(server, control, control_pb2.DESCRIPTOR.services_by_name["ControlService"],
                 guard)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME), server)
        return server

    async def start(self) -> None:
        self.parts.holds.restore()  # before serving: a crash never lifts a maintenance hold
        await self.parts.transport.start()
        server = self._grpc_server()
        try:
            self.grpc_port = server.add_insecure_port(self.config.server.grpc_listen)
        except RuntimeError as exc:
            raise ConfigError(f"server.grpc_listen: cannot listen on "
                              f"{self.config.server.grpc_listen}: {exc}") from None
        await server.start()
        self.grpc_server = server
        host, _, port = self.config.server.admin_listen.rpartition(":")
        try:
            self.admin_port = await self.admin.start(host, int(port))
        except OSError as exc:
            await server.stop(None)
            raise ConfigError(f"server.admin_listen: cannot listen on "
                              f"{self.config.server.admin_listen}: {exc.strerror}") from None
        await self._start_rest()
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        for service in self.parts.services:
            await service.start()
        if reason := self.parts.observability.tracing.off_reason:
            _log.info(reason)
        self.parts.board.ready = True
        self.parts.board.notify()

    async def stop(self, grace_s: float | None = None) -> None:
        """Drain: not ready, NOT_SERVING, let in-flight calls finish within the grace period."""
        grace = self.config.server.drain_grace_s if grace_s is None else grace_s
        self.parts.board.ready = False
        self.admin.draining = True
        await self.health.enter_graceful_shutdown()
        await self.parts.streams.close()  # streams (issue 13): subscribers end, then resume
        cut_off = asyncio.get_running_loop().call_later(
            max(0.0, grace - min(_CUT_OFF_MARGIN_S, grace / 4)), self._cut_off)
        await asyncio.gather(*([self.grpc_server.stop(grace)] if self.grpc_server else []),
                             *([self.rest.stop()] if self.rest else []))
        cut_off.cancel()
        await self.admin.stop()
        await self.parts.orders.stop()  # background resolutions end before the transport
        await self.parts.transport.close()
        for service in reversed(self.parts.services):  # each may never have started
            await service.stop()

    async def _start_rest(self) -> None:
        if self.rest is None:
            return
        host, _, port = self.config.server.rest_listen.rpartition(":")
        try:
            self.rest_port = await self.rest.start(
                host, int(port), shutdown_timeout_s=self.config.server.drain_grace_s)
        except OSError as exc:
            await self.admin.stop()
            if self.grpc_server is not None:
                await self.grpc_server.stop(None)
            raise ConfigError(f"server.rest_listen: cannot listen on "
                              f"{self.config.server.rest_listen}: {exc.strerror}") from None

    def _cut_off(self) -> None:
        if n := self.front.cut_off():
            _log.warning("drain grace ending: %d call(s) still in flight answered now "
                         "(writes as OUTCOME_UNKNOWN)", n)

    def ready_line(self) -> str:
        rest = f", rest {self.rest_url}" if self.rest_url else ""
        return (f"oanda-sidecar {sidecar.__version__} ready: grpc {self.grpc_target}, "
                f"admin {self.admin_url}{rest}, upstream {self.config.oanda.base_url}")
