"""Retry: a few attempts with exponential backoff and jitter, within a retry budget and the
caller's deadline, and never a blind resend of a write that may have reached OANDA.

`decide` is the whole rule as a pure function returning a value, `Retry(delay_s, reason)` or
`GiveUp(reason)`. `RetryPolicy` runs it around `next`, spends the budget, sleeps on the injected
clock and publishes RetryScheduled / RetryGivenUp. It sits outside the breaker and the limiter:
their CircuitOpen and RateLimited are final here, so an open breaker stops retrying at once.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
from dataclasses import dataclass

from sidecar.backoff import backoff_delay
from sidecar.clock import Clock
from sidecar.config import RetryConfig
from sidecar.errors import OutcomeUnknown, SidecarError, UpstreamError
from sidecar.events import EventBus, RetryGivenUp, RetryScheduled
from sidecar.pipeline import Call, Handler, Response
from sidecar.policies.retry_budget import RetryBudget
from sidecar.vocabulary import GiveUpReason, classify

EXHAUSTED = GiveUpReason.EXHAUSTED
BUDGET = GiveUpReason.BUDGET
DEADLINE = GiveUpReason.DEADLINE
UNSAFE_WRITE = GiveUpReason.UNSAFE_WRITE
NOT_RETRYABLE = GiveUpReason.NOT_RETRYABLE
RETRY_AFTER = GiveUpReason.RETRY_AFTER

# A retry is worth it only if an attempt still fits before the deadline after the wait.
MIN_ATTEMPT_S = 0.1
# OANDA can answer NO_SUCH_ORDER for 0.25-0.5 s after creating an order (read-after-write lag).
NO_SUCH_ORDER_DELAY_S = 0.5
ORDER_TEMPLATE = "/v3/accounts/{accountID}/orders/{orderSpecifier}"

# Statuses worth retrying on a read. 500 is not among them: OANDA's own fault, likely to repeat.
_READ_RETRY_STATUS = {429: "status_429", 502: "status_502", 503: "status_503",
                      504: "status_504"}


@dataclass(frozen=True, slots=True)
class Retry:
    delay_s: float
    reason: str  # what failed: "status_503", "timeout", "connect_error", ...


@dataclass(frozen=True, slots=True)
class GiveUp:
    reason: GiveUpReason


Decision = Retry | GiveUp
Outcome = Response | Exception


def decide(call: Call, outcome: Outcome, attempt: int, config: RetryConfig,
           rng: random.Random, now: float, *, min_attempt_s: float = MIN_ATTEMPT_S) -> Decision:
    """Whether to try `call` again after `attempt` (1-based) ended with `outcome`.

    `now` is on the clock's monotonic scale, like `call.deadline`. The retry budget is not part
    of this: the policy asks it only after `decide` says Retry.
    """
    why = _retry_reason(call, outcome, attempt)
    if isinstance(why, GiveUp):
        return why
    if attempt >= config.max_attempts:
        return GiveUp(EXHAUSTED)
    delay = _delay(outcome, why, attempt, config, rng)
    if isinstance(delay, GiveUp):
        return delay
    if call.deadline is not None and now + delay + min_attempt_s > call.deadline:
        return GiveUp(DEADLINE)
    return Retry(delay, why)


def _retry_reason(call: Call, outcome: Outcome, attempt: int) -> str | GiveUp:
    if isinstance(outcome, Response):
        status = outcome.status
        if status == 429:  # refused before processing: safe for any method
            return "status_429"
        if status >= 500 and call.is_write:  # it may have been processed: return it as it came
            return GiveUp(UNSAFE_WRITE)
        if not call.is_write and status in _READ_RETRY_STATUS:
            return _READ_RETRY_STATUS[status]
        if attempt == 1 and _is_order_lag(call, outcome):
            return "no_such_order"
        return GiveUp(NOT_RETRYABLE)
    if isinstance(outcome, UpstreamError):
        if call.is_write and outcome.request_sent:
            return GiveUp(UNSAFE_WRITE)
        return outcome.kind
    return GiveUp(NOT_RETRYABLE)  # CircuitOpen, RateLimited, DeadlineExceeded, bugs


def _is_order_lag(call: Call, response: Response) -> bool:
    if response.status != 404 or call.method != "GET":
        return False
    if call.endpoint.template != ORDER_TEMPLATE or b"NO_SUCH_ORDER" not in response.body:
        return False
    try:
        body = json.loads(response.body)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("errorCode") == "NO_SUCH_ORDER"


def _delay(outcome: Outcome, why: str, attempt: int, config: RetryConfig,
           rng: random.Random) -> float | GiveUp:
    # A server-given wait is a floor, not a hint: retrying sooner would only earn the same
    # answer. Longer than max_delay_s means "not now": give up and let the caller see it.
    retry_after = outcome.retry_after_s if isinstance(outcome, Response | SidecarError) else None
    if retry_after is not None:
        return GiveUp(RETRY_AFTER) if retry_after > config.max_delay_s else max(0.0, retry_after)
    if why == "no_such_order":
        return min(NO_SUCH_ORDER_DELAY_S, config.max_delay_s)
    return backoff_delay(attempt, config.base_delay_s, config.max_delay_s, config.jitter, rng)


def _is_failure(outcome: Outcome) -> bool:
    status = outcome.status if isinstance(outcome, Response) else None
    return classify(status).is_transient


def _unknown_outcome(call: Call, error: UpstreamError, attempts: int) -> OutcomeUnknown:
    return OutcomeUnknown(
        f"{call.method} {call.endpoint.template} was sent (attempt {attempts}) and no answer "
        f"came ({error.kind}: {error.message}); it may have taken effect. Do not resend blindly: "
        "reconcile first - look it up by its clientExtensions id (GET "
        "/v3/accounts/{accountID}/orders/@<clientID> or trades/@<clientID>) and in GET "
        "/v3/accounts/{accountID}/transactions/sinceid?id=<last known transaction ID>; resend "
        "with the same client id only if it is absent.")


def _numbered(response: Response, attempts: int) -> Response:
    """The answer, saying how many attempts it took (a copy only when that differs)."""
    if response.attempts == attempts:
        return response
    return dataclasses.replace(response, attempts=attempts)


class RetryPolicy:
    """Retries reads on 429/502/503/504, timeouts and connection errors; any method on 429 and
    on a connect error (nothing was sent); a sent write never (OutcomeUnknown instead)."""

    __slots__ = ("_budget", "_bus", "_clock", "_config", "_rng")

    def __init__(self, config: RetryConfig, clock: Clock, bus: EventBus,
                 rng: random.Random | None = None) -> None:
        self._config = config
        self._clock = clock
        self._bus = bus
        self._rng = rng if rng is not None else random.Random(os.urandom(32))
        self._budget = RetryBudget(config.budget_ratio, config.budget_min_concurrent,
                                   config.budget_window_s, clock)

    @property
    def budget(self) -> RetryBudget:
        """Shared with the order desk: its resends of an order proven absent spend it too."""
        return self._budget

    async def handle(self, call: Call, next: Handler) -> Response:
        self._budget.record_request()
        attempt = 1
        while True:
            try:
                response = await next(call)
            except Exception as exc:
                outcome: Outcome = exc
            else:
                if response.status < 400:  # the common case: no decision to make
                    return _numbered(response, attempt)
                outcome = response
            decision = decide(call, outcome, attempt, self._config, self._rng,
                              self._clock.monotonic())
            if isinstance(decision, Retry) and not self._budget.try_acquire():
                decision = GiveUp(BUDGET)
            if isinstance(decision, GiveUp):
                return self._give_up(call, outcome, attempt, decision.reason)
            self._bus.publish(RetryScheduled(self._clock.wall(), call.method,
                                             call.endpoint.template, attempt,
                                             decision.delay_s, decision.reason))
            await self._clock.sleep(decision.delay_s)
            attempt += 1
            call = dataclasses.replace(call, attempt=attempt)  # each resend its own record

    def _give_up(self, call: Call, outcome: Outcome, attempts: int,
                 reason: GiveUpReason) -> Response:
        """Return the last answer or raise the last error (OutcomeUnknown for a sent write)."""
        if attempts > 1 or _is_failure(outcome):
            self._bus.publish(RetryGivenUp(self._clock.wall(), call.method,
                                           call.endpoint.template, attempts, reason))
        if isinstance(outcome, Response):
            return _numbered(outcome, attempts)
        if isinstance(outcome, UpstreamError) and reason == UNSAFE_WRITE:
            unknown = _unknown_outcome(call, outcome, attempts)
            unknown.attempts = attempts
            raise unknown from outcome
        if isinstance(outcome, SidecarError):
            # Refused by the breaker or the limiter (or the deadline before a send): the last
            # attempt never went upstream, so it is not counted.
            outcome.attempts = attempts if isinstance(outcome, UpstreamError) else attempts - 1
        raise outcome
