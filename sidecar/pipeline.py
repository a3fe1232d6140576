"""The request path: a Call flows through policies to the transport and a Response comes back.

Every policy has one method, `handle(call, next)`, and passes the call on by awaiting `next`.
`compose(policies, transport)` chains them, outermost first.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sidecar.upstream.endpoints import UNRESOLVED, Endpoint
from sidecar.vocabulary import Level

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(slots=True)
class Call:
    """One OANDA call as it travels the pipeline.

    A front (the gRPC servicer) fills in what the caller sent; the validator, the outermost
    policy, refuses what is invalid and completes the rest: the canonical header names, the
    `endpoint` the path belongs to, `risk_reducing` (a close or cancel, the `rate_limit.critical`
    patterns: it passes the read-only gate and goes out as an early probe through an open
    breaker) and `critical` (the limiter's lane: that, or the caller's `prioritised` flag).
    Nothing after the validator changes a call: the retry policy hands each resend a copy with
    its own `attempt` (1-based).

    `deadline` is on the clock's monotonic scale (None: no caller deadline).
    """

    method: str
    path: str
    endpoint: Endpoint = UNRESOLVED
    query: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    critical: bool = False
    risk_reducing: bool = False
    deadline: float | None = None
    attempt: int = 1
    prioritised: bool = False  # the caller asked for PRIORITY_CRITICAL

    @property
    def is_write(self) -> bool:
        return self.method in WRITE_METHODS


@dataclass(slots=True)
class Response:
    """An upstream answer (any status), or a cached one."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    attempts: int = 1
    from_cache: bool = False
    cache_age_ms: int = 0
    degradation: Level = Level.NONE
    # Seconds OANDA asked us to wait (Retry-After), when it said so.
    retry_after_s: float | None = None
    # Orders (sidecar.orders): the order's client ID, and whether the answer was built from
    # OANDA's records after an unknown outcome rather than received.
    client_order_id: str = ""
    reconciled: bool = False


Handler = Callable[[Call], Awaitable[Response]]


class Policy(Protocol):
    """One resilience policy. It may answer itself, raise a SidecarError, or call `next`."""

    async def handle(self, call: Call, next: Handler) -> Response: ...


def compose(policies: Sequence[Policy], transport: Handler) -> Handler:
    """Chain `policies` (outermost first) in front of `transport`."""
    handler = transport
    for policy in reversed(policies):
        handler = _bind(policy, handler)
    return handler


def _bind(policy: Policy, nxt: Handler) -> Handler:
    # A partial, not a wrapper coroutine: calling it creates the policy's coroutine directly,
    # one frame per policy per call instead of two.
    return functools.partial(policy.handle, next=nxt)
