"""Laws of the pure retry decision."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.config import RetryConfig
from sidecar.errors import (
    CircuitOpen,
    RateLimited,
    UpstreamConnectError,
    UpstreamConnectionLost,
    UpstreamError,
    UpstreamTimeout,
)
from sidecar.pipeline import WRITE_METHODS, Call, Response
from sidecar.policies.retry import GiveUp, Retry, decide
from sidecar.upstream.endpoints import resolve

NOW = 1000.0
PATHS = ["/v3/accounts", "/v3/accounts/1-2-3-4/orders", "/v3/accounts/1-2-3-4/orders/42"]


@st.composite
def configs(draw: st.DrawFn) -> RetryConfig:
    base = draw(st.floats(0, 60))
    return RetryConfig(max_attempts=draw(st.integers(1, 10)), base_delay_s=base,
                       max_delay_s=draw(st.floats(base, 600)),
                       jitter=draw(st.sampled_from(["full", "equal", "none"])))


retry_after = st.none() | st.floats(0, 10_000)
sent_errors = st.sampled_from([UpstreamTimeout, UpstreamConnectionLost, UpstreamError])
responses = st.builds(lambda status, body, ra: Response(status, body, retry_after_s=ra),
                      st.integers(100, 599),
                      st.sampled_from([b"{}", b'{"errorCode":"NO_SUCH_ORDER"}']), retry_after)
errors = st.builds(lambda kind, ra: kind("x", retry_after_s=ra),
                   st.sampled_from([UpstreamTimeout, UpstreamConnectionLost, UpstreamError,
                                    UpstreamConnectError, CircuitOpen, RateLimited]), retry_after)
deadlines = st.none() | st.floats(NOW - 5, NOW + 1000)


def call(method: str, path: str, deadline: float | None) -> Call:
    return Call(method, path, resolve(path), deadline=deadline)


@settings(max_examples=200)
@given(st.sampled_from(sorted(WRITE_METHODS)), st.sampled_from(PATHS), sent_errors, retry_after,
       st.integers(1, 10), configs(), deadlines, st.integers(0, 2**32))
def test_decide_never_retries_a_sent_write(
        method: str, path: str, error: type[UpstreamError], ra: float | None, attempt: int,
        config: RetryConfig, deadline: float | None, seed: int) -> None:
    outcome = error("sent", retry_after_s=ra)
    decision = decide(call(method, path, deadline), outcome, attempt, config,
                      random.Random(seed), NOW)
    assert decision == GiveUp("unsafe_write")


@settings(max_examples=200)
@given(st.sampled_from(sorted(WRITE_METHODS)), st.integers(500, 599), st.integers(1, 10),
       configs())
def test_decide_never_retries_a_write_answered_5xx(
        method: str, status: int, attempt: int, config: RetryConfig) -> None:
    outcome = Response(status, b"{}")
    decision = decide(call(method, PATHS[1], None), outcome, attempt, config,
                      random.Random(0), NOW)
    assert decision == GiveUp("unsafe_write")


@settings(max_examples=200)
@given(st.sampled_from(["GET", *sorted(WRITE_METHODS)]), st.sampled_from(PATHS),
       responses | errors, st.integers(1, 10), configs(), deadlines, st.integers(0, 2**32))
def test_every_retry_is_bounded_and_fits_the_deadline(
        method: str, path: str, outcome: Response | Exception, attempt: int,
        config: RetryConfig, deadline: float | None, seed: int) -> None:
    decision = decide(call(method, path, deadline), outcome, attempt, config,
                      random.Random(seed), NOW)
    if isinstance(decision, GiveUp):
        return
    assert isinstance(decision, Retry)
    assert attempt < config.max_attempts
    assert 0.0 <= decision.delay_s <= config.max_delay_s
    assert deadline is None or NOW + decision.delay_s <= deadline
    assert not isinstance(outcome, CircuitOpen | RateLimited)
    if isinstance(outcome, Response):
        assert outcome.status in {429, 502, 503, 504} or outcome.status == 404
        assert method == "GET" or outcome.status == 429
