"""One error tree. Each class knows its gRPC status code and its ErrorInfo reason.

Transport exceptions become these in `sidecar.upstream.transport`; these become gRPC status in
`sidecar.server.interceptors` and OANDA-shaped HTTP answers in `sidecar.server.rest_errors`.
Nothing else translates errors.

The docstring of each class that sets its own `reason` is written for the caller — when the
error happens and what to do about it — and is the text of the error table in docs/api.md
(`python scripts/apidoc.py`); notes for maintainers are comments.
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
    """An unexpected error inside the sidecar (a bug; it is logged with its traceback).

    A read may be sent again. A write may have reached OANDA: look it up (by its client ID, or
    in the transactions since the last ID you know) before sending it again.
    """

    # The base of every error the sidecar answers with. `attempts` is how many attempts went
    # upstream before this error ended the call (set by the retry policy; 0: nothing was sent).

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason: str = "INTERNAL"
    # The status the REST listener answers with (CONTRACT §9): gRPC codes and HTTP statuses
    # side by side, so both fronts translate from this one table.
    http_status: int = 500

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
    """The request was refused before anything was sent: a bad method, path, query, header,
    body or field value. `ErrorInfo.metadata["field"]` names the field when there is one.

    Fix the request; sending it unchanged gets the same answer.
    """

    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_REQUEST"
    http_status = 400

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message, metadata={"field": field} if field else None)
        self.field = field


class CircuitOpen(SidecarError):
    """The circuit breaker is open (OANDA failed repeatedly) or an operator forced it open;
    nothing was sent. `RetryInfo` is the time until the breaker lets its next probe through.

    Wait at least that long before sending again; do not retry in a loop. Closes and cancels
    are still attempted (as the breaker's probe), so risk can be reduced while it is open.
    """

    code = grpc.StatusCode.UNAVAILABLE
    reason = "CIRCUIT_OPEN"
    http_status = 503


class RateLimited(SidecarError):
    """No rate-limit token (or no new connection to OANDA) within `rate_limit.max_queue_wait_s`;
    nothing was sent. `RetryInfo` says when a token is expected.

    Send again after that wait, and slow down: the sidecar protects the account's OANDA limit
    for every caller of this pod. Risk-reducing calls ride the critical lane and wait instead.
    """

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "RATE_LIMITED"
    http_status = 429


class SidecarOverloaded(SidecarError):
    """The sidecar itself is out of a resource (file descriptors): nothing was sent, and it is
    no sign of an OANDA outage. `RetryInfo` suggests a wait.

    Send again after that wait. If it persists, the pod needs a higher open-files limit or fewer
    connections (`oanda.max_connections`, callers): tell the people who run it.
    """

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "SIDECAR_OVERLOADED"
    http_status = 503


class NoConnectionSlot(RateLimited):
    """No new-connection slot (OANDA's connections per second) before the deadline: the request
    was not sent, and this is the sidecar pacing itself, never an upstream failure."""

    request_sent = False


class SlowConsumer(SidecarError):
    """A stream subscriber fell too far behind; it resumes from its last transaction ID."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "SLOW_CONSUMER"
    http_status = 503


class ReadOnly(SidecarError):
    """A write while the sidecar is READ_ONLY (OANDA is unreachable or the breaker is open, or
    an operator set it); nothing was sent. Closing trades and positions and cancelling orders
    are not refused.

    Do not queue the write to resend blindly later: decide again once `GetStatus` (or
    `WatchStatus`) shows the level back at NONE; reads still work, possibly from the cache.
    """

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "READ_ONLY"
    http_status = 503


class DeadlineExceeded(SidecarError):
    """The caller's gRPC deadline passed before an answer (waiting for a token, a connection,
    a backoff or OANDA). The message says whether anything had been sent.

    A read may be sent again with a longer deadline. A write that was already sent may have
    taken effect: reconcile it before resending.
    """

    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"
    http_status = 504


class Unauthenticated(SidecarError):
    """A Control RPC without a valid `authorization: Bearer <token>` while
    `server.control_token_file` is set. Execute never needs it.

    Send the control token (`oanda-sidecar ctl --token-file FILE`); do not retry without it.
    """

    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"
    http_status = 401


class NotFound(SidecarError):
    """A Control RPC named something that does not exist, such as an unknown breaker; the
    message lists the known names. Fix the name.
    """

    code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"
    http_status = 404


class UpstreamError(SidecarError):
    """OANDA could not be reached or did not answer a read, after the retries the policy
    allows, and no cached answer could stand in. A write gets this only when nothing was sent.

    Safe to send again after a pause; watch `GetStatus.upstream` and the degradation level.
    """

    # `request_sent` tells whether any byte of the request may have reached OANDA: a write
    # that was sent must never be retried blindly (the order may exist).

    code = grpc.StatusCode.UNAVAILABLE
    reason = "UPSTREAM_UNAVAILABLE"
    http_status = 502
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
    """A write was sent and no answer came (timeout or connection lost): it may have taken
    effect. gRPC UNKNOWN, not UNAVAILABLE, so that no generic retry policy resends it.

    Do not resend blindly. Reconcile first: look the order or trade up by its client ID
    (`GET .../orders/@<clientID>`) and in `GET .../transactions/sinceid`; resend with the same
    client ID only if it is absent. The message says how.
    """

    code = grpc.StatusCode.UNKNOWN
    reason = "OUTCOME_UNKNOWN"
    http_status = 504


class ConfigError(Exception):
    """A bad configuration: the message names the key."""
