"""One error tree. Each class knows its gRPC status code and its ErrorInfo reason.

Transport exceptions become these in `sidecar.upstream.transport`; these become gRPC status in
`sidecar.server.interceptors`. Nothing else translates errors.
"""

from __future__ import annotations

import grpc


class SidecarError(Exception):
    """Base of every error the sidecar answers with."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason: str = "INTERNAL"

    def __init__(self, message: str, *, retry_after_s: float | None = None,
                 metadata: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s
        self.metadata = metadata or {}


class InvalidRequest(SidecarError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_REQUEST"

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message, metadata={"field": field} if field else None)
        self.field = field


class CircuitOpen(SidecarError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "CIRCUIT_OPEN"


class RateLimited(SidecarError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "RATE_LIMITED"


class ReadOnly(SidecarError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "READ_ONLY"


class DeadlineExceeded(SidecarError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"


class Unauthenticated(SidecarError):
    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class NotFound(SidecarError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"


class UpstreamError(SidecarError):
    """OANDA could not be reached or did not answer.

    `request_sent` tells whether any byte of the request may have reached OANDA: a write that was
    sent must never be retried blindly (the order may exist).
    """

    code = grpc.StatusCode.UNAVAILABLE
    reason = "UPSTREAM_UNAVAILABLE"
    request_sent = True
    kind = "error"

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message, retry_after_s=retry_after_s)


class UpstreamConnectError(UpstreamError):
    """No connection could be made: nothing was sent, so any method may be retried."""

    request_sent = False
    kind = "connect_error"


class UpstreamTimeout(UpstreamError):
    """The request was sent and no answer came within the attempt's timeout."""

    kind = "timeout"


class UpstreamConnectionLost(UpstreamError):
    """The connection broke after the request was (maybe) sent: reset, EOF, bad framing."""

    kind = "connection_lost"


class OutcomeUnknown(SidecarError):
    """A write was sent and its outcome is unknown: the caller must reconcile before resending."""

    code = grpc.StatusCode.UNAVAILABLE
    reason = "OUTCOME_UNKNOWN"


class ConfigError(Exception):
    """A bad configuration: the message names the key."""
