"""The control token: ControlService RPCs need `authorization: Bearer <token>` when one is set.

A guard for `sidecar.server.interceptors.intercept`, applied to the ControlService only, so
Execute, health and reflection never pay for it. The comparison is constant-time
(`hmac.compare_digest`) and neither the expected nor the presented token is ever logged: a
refusal is published as a ControlAction naming the peer only.

The header is `Bearer <token>`: the scheme in any case (RFC 7235 makes it case-insensitive),
then exactly one space and the token, nothing around it — a double or trailing space is a
different credential, not a typo to forgive.
"""

from __future__ import annotations

import hmac
from typing import Any

import grpc

from sidecar.clock import Clock
from sidecar.errors import Unauthenticated
from sidecar.events import ControlAction, EventBus

_BEARER = b"bearer "


class ControlTokenGuard:
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
                    presented = raw[len(_BEARER):]
                break
        return hmac.compare_digest(presented, self._token)

    def __call__(self, context: grpc.aio.ServicerContext[Any, Any], method: str) -> None:
        if self.authorized(context.invocation_metadata()):
            return
        self._bus.publish(ControlAction(at=self._clock.wall(), action=f"denied {method}",
                                        peer=context.peer() or "unknown",
                                        before={"reason": "missing or wrong control token"}))
        raise Unauthenticated("this Control RPC needs metadata 'authorization: Bearer <token>' "
                              "with the sidecar's control token (server.control_token_file)")
