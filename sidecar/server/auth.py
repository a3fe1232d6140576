"""The control token: ControlService RPCs need `authorization: Bearer <token>` when one is set.

Only `/oanda.sidecar.v1.ControlService/` is guarded; Execute, health and reflection are not.
The comparison is constant-time (`hmac.compare_digest`) and neither the expected nor the
presented token is ever logged: a refusal is published as a ControlAction naming the peer and
the method only.

This interceptor must come before the ErrorInterceptor in the server's list: that one caches a
handler per method, so anything after it would run once per method, not once per call.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from sidecar.clock import Clock
from sidecar.errors import Unauthenticated
from sidecar.events import ControlAction, EventBus
from sidecar.server.interceptors import abort_with

CONTROL_PREFIX = "/oanda.sidecar.v1.ControlService/"
_BEARER = b"bearer "


class ControlAuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, token: str, bus: EventBus, clock: Clock) -> None:
        self._token = token.encode()
        self._bus = bus
        self._clock = clock

    def authorized(self, metadata: Any) -> bool:
        """True when `metadata` carries the configured bearer token (constant-time check)."""
        presented = b""
        for key, value in metadata or ():
            if key == "authorization":
                raw = value if isinstance(value, bytes) else str(value).encode()
                if raw[:len(_BEARER)].lower() == _BEARER:
                    presented = raw[len(_BEARER):].strip()
                break
        return hmac.compare_digest(presented, self._token)

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method: str = details.method
        if handler is None or not method.startswith(CONTROL_PREFIX):
            return handler
        if self.authorized(details.invocation_metadata):
            return handler
        if handler.unary_stream is not None:
            return handler._replace(unary_stream=self._refuse_stream(method))
        return handler._replace(unary_unary=self._refuse_unary(method))

    def _error(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> Unauthenticated:
        self._bus.publish(ControlAction(at=self._clock.wall(), action=f"denied {method}",
                                        peer=context.peer() or "unknown",
                                        before={"reason": "missing or wrong control token"}))
        return Unauthenticated("this Control RPC needs metadata 'authorization: Bearer <token>' "
                               "with the sidecar's control token (server.control_token_file)")

    def _refuse_unary(self, method: str) -> Callable[..., Awaitable[Any]]:
        async def refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            await abort_with(context, self._error(method, context))
        return refuse

    def _refuse_stream(self, method: str) -> Callable[..., AsyncIterator[Any]]:
        async def refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            await abort_with(context, self._error(method, context))
            yield  # pragma: no cover - abort raises; this makes the function a generator
        return refuse
