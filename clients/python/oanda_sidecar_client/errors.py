"""Typed exceptions, built from the `google.rpc.Status` details the sidecar sends.

Every gRPC error of the sidecar carries an `ErrorInfo` (domain "oanda-sidecar", a `reason`) and,
where a wait helps, a `RetryInfo`. `error_from_rpc` turns any failed call (sync or aio) into the
matching class below. Upstream HTTP 4xx/5xx are never exceptions: they are results with `status`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

DOMAIN = "oanda-sidecar"
DETAILS_KEY = "grpc-status-details-bin"

__all__ = [
    "CircuitOpen",
    "DeadlineExceeded",
    "InvalidRequest",
    "NotFound",
    "OutcomeUnknown",
    "RateLimited",
    "ReadOnly",
    "SidecarError",
    "Unauthenticated",
    "UpstreamUnavailable",
    "error_from_parts",
    "error_from_rpc",
]


class SidecarError(Exception):
    """Any failed sidecar call.

    `code` is the gRPC status code; `reason` the ErrorInfo reason (the gRPC code's name when the
    error carried no details, e.g. the sidecar was unreachable); `retry_after` the server's
    suggested wait in seconds, or None; `metadata` the ErrorInfo metadata (e.g. {"field": "path"}).
    """

    def __init__(self, code: grpc.StatusCode, reason: str, message: str,
                 retry_after: float | None = None,
                 metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(code, reason, message, retry_after, metadata)
        self.code = code
        self.reason = reason
        self.message = message
        self.retry_after = retry_after
        self.metadata: dict[str, str] = dict(metadata) if metadata else {}

    def __str__(self) -> str:
        wait = f" (retry after {self.retry_after:.3f}s)" if self.retry_after is not None else ""
        return f"{self.reason}: {self.message}{wait}"

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(code={self.code.name}, reason={self.reason!r}, "
                f"message={self.message!r}, retry_after={self.retry_after!r}, "
                f"metadata={self.metadata!r})")


class InvalidRequest(SidecarError):
    """The request was refused before anything was sent; `metadata["field"]` names the field."""

    @property
    def field(self) -> str:
        return self.metadata.get("field", "")


class CircuitOpen(SidecarError):
    """The circuit breaker is open (or forced open); `retry_after` is the time to the next probe."""


class RateLimited(SidecarError):
    """No rate-limit token in time; nothing was sent. `retry_after` says when to try again."""


class ReadOnly(SidecarError):
    """A write while the sidecar is READ_ONLY; nothing was sent."""


class UpstreamUnavailable(SidecarError):
    """OANDA was unreachable after retries and nothing cached could answer.

    For an order, `metadata["outcome"] == "not_placed"` says OANDA's records prove it never took
    effect (and the sidecar had no resend left): send it again with the same client ID.
    """


class OutcomeUnknown(SidecarError):
    """An order (or other write) was sent, its answer was lost, and OANDA's records could not
    tell within your deadline whether it took effect. gRPC code UNKNOWN: generic retry policies
    leave it alone. The sidecar keeps resolving it: poll `order_outcome(e.client_order_id)`.
    Never send it again under a new client ID."""

    @property
    def client_order_id(self) -> str:
        return self.metadata.get("client_order_id", "")

    @property
    def account_id(self) -> str:
        return self.metadata.get("account_id", "")

    @property
    def since_transaction_id(self) -> str:
        """The last transaction before the send: its transactions, if any, come after it."""
        return self.metadata.get("since_transaction_id", "")


class DeadlineExceeded(SidecarError):
    """The call's deadline passed. For a write, the outcome may be unknown too."""


class Unauthenticated(SidecarError):
    """A Control RPC without a valid token."""


class SlowConsumer(SidecarError):
    """A stream subscriber fell too far behind; `transactions()` resumes by itself."""


class NotFound(SidecarError):
    """A Control RPC named something that does not exist (e.g. an unknown breaker)."""


_BY_REASON: dict[str, type[SidecarError]] = {
    "INVALID_REQUEST": InvalidRequest,
    "CIRCUIT_OPEN": CircuitOpen,
    "RATE_LIMITED": RateLimited,
    "READ_ONLY": ReadOnly,
    "UPSTREAM_UNAVAILABLE": UpstreamUnavailable,
    "OUTCOME_UNKNOWN": OutcomeUnknown,
    "DEADLINE_EXCEEDED": DeadlineExceeded,
    "UNAUTHENTICATED": Unauthenticated,
    "NOT_FOUND": NotFound,
    "SLOW_CONSUMER": SlowConsumer,
}
# Without details only these codes mean the same thing whoever produced them (a client-side
# deadline, an auth proxy); anything else stays a plain SidecarError with its code.
_BY_CODE: dict[grpc.StatusCode, type[SidecarError]] = {
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
}


def error_from_rpc(error: Any) -> SidecarError:
    """The typed exception for a failed call: a `grpc.RpcError` (sync) or `grpc.aio.AioRpcError`.

    Both expose `code()`, `details()` and `trailing_metadata()`.
    """
    code = error.code()
    if not isinstance(code, grpc.StatusCode):
        code = grpc.StatusCode.UNKNOWN
    return error_from_parts(code, error.details() or "", error.trailing_metadata())


def error_from_parts(code: grpc.StatusCode, message: str,
                     trailing_metadata: Iterable[tuple[str, str | bytes]] | None
                     ) -> SidecarError:
    """The typed exception for a gRPC code, its message and the trailing metadata."""
    reason = code.name
    retry_after: float | None = None
    metadata: dict[str, str] = {}
    cls = _BY_CODE.get(code, SidecarError)
    status = _status_of(trailing_metadata)
    if status is not None:
        message = status.message or message
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason or reason
                metadata = dict(info.metadata)
                if info.domain == DOMAIN:
                    cls = _BY_REASON.get(info.reason, SidecarError)
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                detail.Unpack(retry)
                retry_after = retry.retry_delay.ToNanoseconds() / 1e9
    return cls(code, reason, message, retry_after, metadata)


def _status_of(trailing_metadata: Iterable[tuple[str, str | bytes]] | None
               ) -> status_pb2.Status | None:
    for key, value in trailing_metadata or ():
        if key == DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status()
            try:
                status.ParseFromString(value)
            except Exception:  # a garbled detail must not hide the original error
                return None
            return status
    return None
