"""The shared names: levels, states, reasons, outcomes — and one rule for "did OANDA fail?".

Every module that publishes or reads one of these names imports it from here. They are StrEnums,
so they compare equal to (and serialise as) their lower-case values: events, logs, metrics
labels and the JSON status all carry the same spelling, and renaming a state is one edit.
"""

from __future__ import annotations

import enum


class Level(enum.StrEnum):
    """The degradation level."""

    NONE = "none"
    CACHED_DATA = "cached_data"
    READ_ONLY = "read_only"


# Not a level: what `SetDegradation` is told to hand control back to the events.
AUTOMATIC = "automatic"
LEVEL_RANK = {level: rank for rank, level in enumerate(Level)}


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"
    DISABLED = "disabled"


class Override(enum.StrEnum):
    """An operator's breaker override, as the Control API spells it."""

    NONE = "none"
    FORCED_OPEN = "forced_open"
    DISABLED = "disabled"


class TransitionReason(enum.StrEnum):
    """Why a breaker changed state (BreakerTransition.reason)."""

    FAILURE_THRESHOLD = "failure_threshold"
    RECOVERY_TIMEOUT = "recovery_timeout"
    RISK_REDUCING_CALL = "risk_reducing_call"
    PROBE_SUCCEEDED = "probe_succeeded"
    PROBE_FAILED = "probe_failed"
    MANUAL_RESET = "manual_reset"
    OVERRIDE_CLEARED = "override_cleared"
    OVERRIDE_FORCED_OPEN = "override_forced_open"
    OVERRIDE_DISABLED = "override_disabled"


# Transitions an operator made, after which the degradation controller trusts OANDA again.
OPERATOR_CLOSED = frozenset({TransitionReason.MANUAL_RESET, TransitionReason.OVERRIDE_CLEARED})


class GiveUpReason(enum.StrEnum):
    """Why retry stopped (RetryGivenUp.reason)."""

    EXHAUSTED = "exhausted"
    BUDGET = "budget"
    DEADLINE = "deadline"
    UNSAFE_WRITE = "unsafe_write"
    NOT_RETRYABLE = "not_retryable"
    RETRY_AFTER = "retry_after"  # OANDA asked for a longer wait than max_delay_s


# Give-ups that mean "this read failed after retries" (not a caller error, not a decision).
READ_FAILED_REASONS = frozenset({GiveUpReason.EXHAUSTED, GiveUpReason.BUDGET,
                                 GiveUpReason.RETRY_AFTER, GiveUpReason.DEADLINE})


class ErrorKind(enum.StrEnum):
    """How an attempt failed without an answer (UpstreamError.kind, AttemptFinished.error_type)."""

    CONNECT_ERROR = "connect_error"  # nothing was sent
    TIMEOUT = "timeout"
    CONNECTION_LOST = "connection_lost"


NO_CONNECTION = frozenset({ErrorKind.CONNECT_ERROR, ErrorKind.CONNECTION_LOST})


class Outcome(enum.StrEnum):
    """How a call ended for its caller (ExecuteFinished.outcome, the `outcome` metric label).

    An answer from OANDA is `ok`, `http_4xx` or `http_5xx`; a sidecar decision is its error
    reason in lower case (`circuit_open`, `rate_limited`, ... see `sidecar.errors`)."""

    OK = "ok"
    HTTP_4XX = "http_4xx"
    HTTP_5XX = "http_5xx"

    @classmethod
    def of_status(cls, status: int) -> Outcome:
        if status < 400:
            return cls.OK
        return cls.HTTP_4XX if status < 500 else cls.HTTP_5XX


class OrderOutcome(enum.StrEnum):
    """What became of an order write (sidecar.orders; OrderResolved.outcome, GetOrderOutcome)."""

    PENDING = "pending"  # sent, still resolving
    PLACED = "placed"  # it took effect
    NOT_PLACED = "not_placed"  # proven never to have taken effect, or rejected
    NOT_SEEN = "not_seen"  # no order of that client ID went through this sidecar
    UNKNOWN = "unknown"  # the caller was answered OUTCOME_UNKNOWN; resolution goes on


class UpstreamHealth(enum.StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    DOWN = "down"


class Lane(enum.StrEnum):
    NORMAL = "normal"
    CRITICAL = "critical"


class Verdict(enum.StrEnum):
    """What one upstream attempt says about OANDA: the one classification of an outcome."""

    ANSWERED = "answered"  # 2xx/3xx, or a 4xx answer such as a rejected order
    THROTTLED = "throttled"  # 429: refused before processing
    AUTH_FAILED = "auth_failed"  # 401/403: token revoked or account blocked
    SERVER_ERROR = "server_error"  # 5xx
    NO_ANSWER = "no_answer"  # no connection, a timeout, a connection lost

    @property
    def is_failure(self) -> bool:
        """An outage sign: the breaker counts it, the probe is not satisfied by it, the health
        view and the degradation controller count it. Other 4xx are answers, not outages, and
        so is a 429: it means "slow down" (the limiter's adaptive rate answers it, and it is
        alerted on), not "OANDA is down" — a 429 storm must not halt trading."""
        return self is not Verdict.ANSWERED and self is not Verdict.THROTTLED

    @property
    def is_transient(self) -> bool:
        """Worth another try or a cached answer: it may well be different in a moment."""
        return self in _TRANSIENT


_TRANSIENT = frozenset({Verdict.THROTTLED, Verdict.SERVER_ERROR, Verdict.NO_ANSWER})
_AUTH = frozenset({401, 403})


def classify(status: int | None) -> Verdict:
    """The verdict on an attempt that got `status` (None: no answer at all)."""
    if status is None:
        return Verdict.NO_ANSWER
    if status >= 500:
        return Verdict.SERVER_ERROR
    if status == 429:
        return Verdict.THROTTLED
    if status in _AUTH:
        return Verdict.AUTH_FAILED
    return Verdict.ANSWERED
