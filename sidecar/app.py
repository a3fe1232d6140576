"""The composition root: config → pipeline → servers. Drains on SIGTERM.

This is the only module that knows every part; each part knows only its own config section, the
clock and the event bus.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

import sidecar
from sidecar._gen.oanda.sidecar.v1 import control_pb2, control_pb2_grpc, proxy_pb2, proxy_pb2_grpc
from sidecar.clock import Clock, SystemClock
from sidecar.config import Config
from sidecar.errors import ConfigError
from sidecar.events import EventBus
from sidecar.pipeline import Handler, Policy, compose
from sidecar.policies.breaker import BreakerPolicy, BreakerRegistry
from sidecar.policies.cache import CacheFallbackPolicy, ResponseCache, cache_scope
from sidecar.policies.deadline import DeadlinePolicy
from sidecar.policies.degradation import DegradationController
from sidecar.policies.ratelimit import RateLimiter
from sidecar.policies.readonly import ReadOnlyGate
from sidecar.policies.recovery import RecoveryProbe
from sidecar.policies.retry import RetryPolicy
from sidecar.policies.validation import RequestValidator
from sidecar.server.admin import AdminServer
from sidecar.server.auth import ControlTokenGuard
from sidecar.server.control import ControlServicer
from sidecar.server.interceptors import intercept
from sidecar.server.proxy import ProxyServicer
from sidecar.status import StatusBoard
from sidecar.upstream.endpoints import PatternSet
from sidecar.upstream.health import UpstreamHealthTracker
from sidecar.upstream.transport import AiohttpTransport

_log = logging.getLogger("sidecar.app")
SERVICE_NAMES = (
    proxy_pb2.DESCRIPTOR.services_by_name["ProxyService"].full_name,
    control_pb2.DESCRIPTOR.services_by_name["ControlService"].full_name,
)


@dataclass
class Parts:
    """Everything the composition root built, for the servers, tests and benchmarks."""

    bus: EventBus
    board: StatusBoard
    transport: AiohttpTransport
    breakers: BreakerRegistry
    limiter: RateLimiter
    policies: list[Policy]
    handler: Handler
    extras: dict[str, Any] = field(default_factory=dict)


def build_pipeline(config: Config, clock: Clock, bus: EventBus) -> Parts:
    """Policies outermost first: validation → deadline → read-only gate → cache fallback →
    retry → breaker → limiter → transport."""
    board = StatusBoard(bus)
    token = config.secrets.oanda_token.get_secret_value() if config.secrets.oanda_token else None
    transport = AiohttpTransport(config.oanda, token, clock, bus)
    breakers = BreakerRegistry(config.breaker, clock, bus)
    limiter = RateLimiter(config.rate_limit, clock, bus)
    degradation = DegradationController(config.degradation, clock, bus)
    cache = ResponseCache.from_config(config.degradation, clock, bus)
    policies: list[Policy] = [
        RequestValidator(),
        DeadlinePolicy(clock),
        ReadOnlyGate(degradation),
        CacheFallbackPolicy(cache, degradation, config.degradation, clock, bus,
                            cache_scope(config.oanda.base_url, token)),
        RetryPolicy(config.retry, clock, bus),
        BreakerPolicy(breakers, "rest"),
        limiter,
    ]
    board.breakers = breakers
    board.limiter = limiter
    board.upstream = UpstreamHealthTracker(bus, clock, config.oanda.base_url)
    board.degradation = degradation
    # The recovery probe skips retry and cache but obeys the breaker and the limiter.
    probe = RecoveryProbe(degradation, compose([BreakerPolicy(breakers, "rest"), limiter],
                                               transport),
                          clock, config.degradation, config.oanda.request_timeout_s)
    return Parts(bus, board, transport, breakers, limiter, policies, compose(policies, transport),
                 extras={"degradation": degradation, "cache": cache, "probe": probe})


class App:
    """The daemon: the gRPC server (proxy, control, health, reflection) and the admin server."""

    def __init__(self, config: Config, *, clock: Clock | None = None,
                 bus: EventBus | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.bus = bus or EventBus()
        self.parts = build_pipeline(config, self.clock, self.bus)
        self.health = health_aio.HealthServicer()
        self.admin = AdminServer(self.parts.board)
        self.grpc_server: grpc.aio.Server | None = None
        self.grpc_port = 0
        self.admin_port = 0
        # Hooks for optional parts (alerting, tracing): awaited after start / before stop.
        self.on_start: list[Callable[[], Awaitable[None]]] = []
        self.on_stop: list[Callable[[], Awaitable[None]]] = []
        probe, cache = self.parts.extras["probe"], self.parts.extras["cache"]
        self.on_start.append(probe.start)
        self.on_stop.extend((probe.stop, cache.close))

    @property
    def grpc_target(self) -> str:
        host = self.config.server.grpc_listen.rpartition(":")[0]
        return f"{host}:{self.grpc_port}"

    @property
    def admin_url(self) -> str:
        host = self.config.server.admin_listen.rpartition(":")[0]
        return f"http://{host}:{self.admin_port}"

    async def start(self) -> None:
        await self.parts.transport.start()
        control_token = self.config.secrets.control_token
        guard = (ControlTokenGuard(control_token.get_secret_value(), self.bus, self.clock)
                 if control_token is not None else None)
        tracing = self.parts.extras.get("tracing")
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        proxy = ProxyServicer(self.parts.handler, self.clock, self.bus,
                              PatternSet(self.config.rate_limit.critical),
                              tracer=tracing if getattr(tracing, "enabled", False) else None)
        proxy_pb2_grpc.add_ProxyServiceServicer_to_server(  # type: ignore[no-untyped-call]
            intercept(proxy, proxy_pb2_grpc.ProxyServiceServicer, SERVICE_NAMES[0]), server)
        control = ControlServicer(self.parts.board, self.bus, self.clock)
        control_pb2_grpc.add_ControlServiceServicer_to_server(  # type: ignore[no-untyped-call]
            intercept(control, control_pb2_grpc.ControlServiceServicer, SERVICE_NAMES[1], guard),
            server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME), server)
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
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        for hook in self.on_start:
            await hook()
        self.parts.board.ready = True
        self.parts.board.notify()

    async def stop(self, grace_s: float | None = None) -> None:
        """Drain: not ready, NOT_SERVING, let in-flight calls finish within the grace period."""
        grace = self.config.server.drain_grace_s if grace_s is None else grace_s
        self.parts.board.ready = False
        self.admin.draining = True
        await self.health.enter_graceful_shutdown()
        if self.grpc_server is not None:
            await self.grpc_server.stop(grace)
        await self.admin.stop()
        await self.parts.transport.close()
        for hook in self.on_stop:
            await hook()

    def ready_line(self) -> str:
        return (f"oanda-sidecar {sidecar.__version__} ready: grpc {self.grpc_target}, "
                f"admin {self.admin_url}, upstream {self.config.oanda.base_url}")
