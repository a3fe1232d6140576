"""One error tree. Each class knows its gRPC status code and its ErrorInfo reason.

Transport exceptions become these in `sidecar.upstream.transport`; these become gRPC status in
`sidecar.server.interceptors`. Nothing else translates errors.
"""

from __future__ import annotations

import grpc

from sidecar.vocabulary import ErrorKind

QUOTE_LIMIT = 64


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """Caller input as an error message may quote it: repr'd and cut to `limit` characters, so a
    1 MiB header name never becomes a 1 MiB message, log line or status page."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


class SidecarError(Exception):
    """Base of every error the sidecar answers with.

    `attempts` is how many attempts went upstream before this error ended the call (set by the
    retry policy; 0 when nothing was sent).
    """

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason: str = "INTERNAL"

    def __init__(self, message: str, *, retry_after_s: float | None = None,
                 metadata: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s
        self.metadata = metadata or {}
        self.attempts = 0

    def describe(self) -> str:
        """The message as the caller reads it, with the attempt count when there were several."""
        if self.attempts > 1:
            return f"{self.message} (after {self.attempts} attempts)"
        return self.message


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


class SidecarOverloaded(SidecarError):
    """The sidecar itself is out of a resource (file descriptors): nothing was sent, and it is
    no sign of an OANDA outage."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "SIDECAR_OVERLOADED"


class NoConnectionSlot(RateLimited):
    """No new-connection slot (OANDA's connections per second) before the deadline: the request
    was not sent, and this is the sidecar pacing itself, never an upstream failure."""

    request_sent = False


class SlowConsumer(SidecarError):
    """A stream subscriber fell too far behind; it resumes from its last transaction ID."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "SLOW_CONSUMER"


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
    kind: ErrorKind = ErrorKind.CONNECTION_LOST

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message, retry_after_s=retry_after_s)


class UpstreamConnectError(UpstreamError):
    """No connection could be made: nothing was sent, so any method may be retried."""

    request_sent = False
    kind = ErrorKind.CONNECT_ERROR


class UpstreamTimeout(UpstreamError):
    """The request was sent and no answer came within the attempt's timeout."""

    kind = ErrorKind.TIMEOUT


class UpstreamConnectionLost(UpstreamError):
    """The connection broke after the request was (maybe) sent: reset, EOF, bad framing."""

    kind = ErrorKind.CONNECTION_LOST


class OutcomeUnknown(SidecarError):
    """A write was sent and its outcome is unknown: the caller must reconcile before resending.

    gRPC UNKNOWN, not UNAVAILABLE: every generic retry-on-UNAVAILABLE client would resend it."""

    code = grpc.StatusCode.UNKNOWN
    reason = "OUTCOME_UNKNOWN"


class ConfigError(Exception):
    """A bad configuration: the message names the key."""
