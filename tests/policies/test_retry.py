"""RetryPolicy through its public interface, on FakeClock with a scripted transport."""

from __future__ import annotations

import asyncio
import random

import pytest

from sidecar.clock import FakeClock
from sidecar.config import RetryConfig
from sidecar.errors import (
    CircuitOpen,
    OutcomeUnknown,
    RateLimited,
    UpstreamConnectError,
    UpstreamConnectionLost,
    UpstreamError,
    UpstreamTimeout,
)
from sidecar.events import RetryGivenUp, RetryScheduled
from sidecar.pipeline import Call, Response
from sidecar.policies.retry import RetryPolicy
from sidecar.upstream.endpoints import resolve
from tests.conftest import RecordingBus

Outcome = int | Response | Exception
ACCOUNTS = "/v3/accounts"
ORDERS = "/v3/accounts/101-004-1435156-001/orders"
ORDER = "/v3/accounts/101-004-1435156-001/orders/@my-client-id"
NO_SUCH_ORDER = b'{"errorCode": "NO_SUCH_ORDER", "errorMessage": "The Order does not exist"}'


class Script:
    """A transport answering with the given outcomes in turn (the last one repeats)."""

    def __init__(self, clock: FakeClock, *outcomes: Outcome) -> None:
        self.clock = clock
        self.outcomes = list(outcomes)
        self.seen: list[tuple[int, float]] = []  # (call.attempt, time) per attempt

    async def __call__(self, call: Call) -> Response:
        self.seen.append((call.attempt, self.clock.monotonic()))
        out = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(out, Exception):
            raise out
        return Response(out, b"{}") if isinstance(out, int) else out


def make_call(method: str = "GET", path: str = ACCOUNTS, deadline: float | None = None) -> Call:
    return Call(method, path, resolve(path), deadline=deadline)


def policy(clock: FakeClock, bus: RecordingBus, **overrides: object) -> RetryPolicy:
    return RetryPolicy(RetryConfig.model_validate(overrides), clock, bus, random.Random(42))


async def test_get_503_503_200_succeeds_on_the_third_attempt(
        clock: FakeClock, bus: RecordingBus) -> None:
    script = Script(clock, 503, 503, 200)
    response = await policy(clock, bus).handle(make_call(), script)
    assert response.status == 200
    assert response.attempts == 3
    assert [attempt for attempt, _ in script.seen] == [1, 2, 3]
    assert len(clock.sleeps) == 2
    assert 0.0 <= clock.sleeps[0] <= 1.0  # base 1 s, full jitter
    assert 0.0 <= clock.sleeps[1] <= 2.0
    scheduled = bus.of(RetryScheduled)
    assert [(e.attempt, e.reason, e.endpoint) for e in scheduled] == [
        (1, "status_503", ACCOUNTS), (2, "status_503", ACCOUNTS)]
    assert [e.delay_s for e in scheduled] == clock.sleeps
    assert bus.of(RetryGivenUp) == []


async def test_first_try_success_is_untouched(clock: FakeClock, bus: RecordingBus) -> None:
    script = Script(clock, 200)
    response = await policy(clock, bus).handle(make_call(), script)
    assert (response.status, response.attempts, clock.sleeps, bus.events) == (200, 1, [], [])


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
@pytest.mark.parametrize("error", [UpstreamTimeout, UpstreamConnectionLost])
async def test_a_sent_write_is_never_retried(
        clock: FakeClock, bus: RecordingBus, method: str, error: type[UpstreamError]) -> None:
    script = Script(clock, error("no answer"), 201)
    with pytest.raises(OutcomeUnknown) as info:
        await policy(clock, bus).handle(make_call(method, ORDERS), script)
    assert len(script.seen) == 1
    assert clock.sleeps == []
    assert info.value.reason == "OUTCOME_UNKNOWN"
    assert "clientExtensions" in info.value.message and "sinceid" in info.value.message
    assert isinstance(info.value.__cause__, error)
    assert [(e.attempts, e.reason) for e in bus.of(RetryGivenUp)] == [(1, "unsafe_write")]


async def test_a_write_that_failed_to_connect_is_retried(
        clock: FakeClock, bus: RecordingBus) -> None:
    script = Script(clock, UpstreamConnectError("refused"), 201)
    response = await policy(clock, bus).handle(make_call("POST", ORDERS), script)
    assert (response.status, response.attempts, len(script.seen)) == (201, 2, 2)
    assert [e.reason for e in bus.of(RetryScheduled)] == ["connect_error"]


async def test_a_write_answered_503_is_returned_as_it_came(
        clock: FakeClock, bus: RecordingBus) -> None:
    answer = Response(503, b'{"errorMessage":"Timeout waiting for response."}')
    script = Script(clock, answer, 201)
    response = await policy(clock, bus).handle(make_call("POST", ORDERS), script)
    assert response is answer and response.attempts == 1
    assert len(script.seen) == 1 and clock.sleeps == []
    assert [e.reason for e in bus.of(RetryGivenUp)] == ["unsafe_write"]


async def test_a_write_refused_with_429_is_retried(clock: FakeClock, bus: RecordingBus) -> None:
    script = Script(clock, 429, 201)
    response = await policy(clock, bus).handle(make_call("POST", ORDERS), script)
    assert (response.status, response.attempts, len(clock.sleeps)) == (201, 2, 1)


async def test_a_write_that_connects_then_times_out_is_outcome_unknown(
        clock: FakeClock, bus: RecordingBus) -> None:
    script = Script(clock, UpstreamConnectError("refused"), UpstreamTimeout("slow"))
    with pytest.raises(OutcomeUnknown, match="attempt 2"):
        await policy(clock, bus).handle(make_call("POST", ORDERS), script)
    assert len(script.seen) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 416, 500])
async def test_other_answers_are_not_retried(
        clock: FakeClock, bus: RecordingBus, status: int) -> None:
    script = Script(clock, status, 200)
    response = await policy(clock, bus).handle(make_call(), script)
    assert (response.status, response.attempts, len(script.seen), clock.sleeps) == (
        status, 1, 1, [])
    assert bus.of(RetryScheduled) == []


@pytest.mark.parametrize("error", [CircuitOpen("open", retry_after_s=5.0),
                                   RateLimited("no token", retry_after_s=0.5),
                                   RuntimeError("bug")])
async def test_breaker_limiter_and_bugs_propagate_at_once(
        clock: FakeClock, bus: RecordingBus, error: Exception) -> None:
    script = Script(clock, error, 200)
    with pytest.raises(type(error)) as info:
        await policy(clock, bus).handle(make_call(), script)
    assert info.value is error
    assert len(script.seen) == 1 and clock.sleeps == []


async def test_an_open_breaker_stops_retrying_at_once(
        clock: FakeClock, bus: RecordingBus) -> None:
    script = Script(clock, 503, CircuitOpen("open"), 200)
    with pytest.raises(CircuitOpen):
        await policy(clock, bus).handle(make_call(), script)
    assert len(script.seen) == 2 and len(clock.sleeps) == 1
    assert [(e.attempts, e.reason) for e in bus.of(RetryGivenUp)] == [(2, "not_retryable")]


@pytest.mark.parametrize("error", [UpstreamTimeout, UpstreamConnectionLost, UpstreamConnectError])
async def test_reads_are_retried_on_upstream_errors_then_the_last_one_is_raised(
        clock: FakeClock, bus: RecordingBus, error: type[UpstreamError]) -> None:
    script = Script(clock, error("one"), error("two"), error("three"))
    with pytest.raises(error) as info:
        await policy(clock, bus).handle(make_call(), script)
    assert info.value.describe() == "three (after 3 attempts)"
    assert info.value.reason == "UPSTREAM_UNAVAILABLE"
    assert [a for a, _ in script.seen] == [1, 2, 3]
    assert [(e.attempts, e.reason) for e in bus.of(RetryGivenUp)] == [(3, "exhausted")]


async def test_exhausted_answers_are_returned_with_their_attempt_count(
        clock: FakeClock, bus: RecordingBus) -> None:
    response = await policy(clock, bus, max_attempts=4).handle(make_call(), Script(clock, 502))
    assert (response.status, response.attempts, len(clock.sleeps)) == (502, 4, 3)
    assert [e.reason for e in bus.of(RetryGivenUp)] == ["exhausted"]


async def test_one_attempt_means_no_retry(clock: FakeClock, bus: RecordingBus) -> None:
    response = await policy(clock, bus, max_attempts=1).handle(make_call(), Script(clock, 503))
    assert (response.status, response.attempts, clock.sleeps) == (503, 1, [])


async def test_a_wait_that_would_cross_the_deadline_gives_up_with_the_last_answer(
        clock: FakeClock, bus: RecordingBus) -> None:
    deadline = clock.monotonic() + 2.5
    script = Script(clock, Response(503, b"first"), Response(503, b"second"), 200)
    p = policy(clock, bus, jitter="none")  # waits 1 s, then would wait 2 s
    response = await p.handle(make_call(deadline=deadline), script)
    assert (response.body, response.attempts) == (b"second", 2)
    assert clock.sleeps == [1.0]
    assert clock.monotonic() <= deadline
    assert [(e.attempts, e.reason) for e in bus.of(RetryGivenUp)] == [(2, "deadline")]


async def test_a_deadline_give_up_on_an_error_raises_the_last_error(
        clock: FakeClock, bus: RecordingBus) -> None:
    deadline = clock.monotonic() + 0.5  # not even the first 1 s wait fits
    script = Script(clock, UpstreamTimeout("slow"), 200)
    with pytest.raises(UpstreamTimeout):
        await policy(clock, bus, jitter="none").handle(make_call(deadline=deadline), script)
    assert clock.sleeps == [] and len(script.seen) == 1


async def test_retry_after_is_honoured(clock: FakeClock, bus: RecordingBus) -> None:
    script = Script(clock, Response(429, b"{}", retry_after_s=3.0), 200)
    response = await policy(clock, bus).handle(make_call("POST", ORDERS), script)
    assert (response.status, clock.sleeps) == (200, [3.0])
    assert script.seen[1][1] - script.seen[0][1] == 3.0


async def test_retry_after_longer_than_max_delay_gives_up_with_the_answer(
        clock: FakeClock, bus: RecordingBus) -> None:
    script = Script(clock, Response(503, b"{}", retry_after_s=3600.0), 200)
    response = await policy(clock, bus).handle(make_call(), script)
    assert (response.status, response.retry_after_s, clock.sleeps) == (503, 3600.0, [])
    assert [e.reason for e in bus.of(RetryGivenUp)] == ["retry_after"]


async def test_retry_after_past_the_deadline_gives_up(clock: FakeClock, bus: RecordingBus) -> None:
    script = Script(clock, Response(429, b"{}", retry_after_s=3.0), 200)
    call = make_call(deadline=clock.monotonic() + 2.0)
    response = await policy(clock, bus).handle(call, script)
    assert (response.status, clock.sleeps) == (429, [])
    assert [e.reason for e in bus.of(RetryGivenUp)] == ["deadline"]


async def test_no_such_order_right_after_a_create_gets_one_short_retry(
        clock: FakeClock, bus: RecordingBus) -> None:
    script = Script(clock, Response(404, NO_SUCH_ORDER), 200)
    response = await policy(clock, bus).handle(make_call(path=ORDER), script)
    assert (response.status, response.attempts, clock.sleeps) == (200, 2, [0.5])
    assert [e.reason for e in bus.of(RetryScheduled)] == ["no_such_order"]


async def test_no_such_order_is_retried_only_once(clock: FakeClock, bus: RecordingBus) -> None:
    script = Script(clock, Response(404, NO_SUCH_ORDER))
    response = await policy(clock, bus).handle(make_call(path=ORDER), script)
    assert (response.status, response.attempts, clock.sleeps) == (404, 2, [0.5])


@pytest.mark.parametrize(("path", "body"), [
    (ORDERS, NO_SUCH_ORDER),  # not the single-order endpoint
    (ORDER, b'{"errorCode": "NO_SUCH_TRADE"}'),
    (ORDER, b"NO_SUCH_ORDER but not JSON"),
])
async def test_other_404s_are_not_retried(
        clock: FakeClock, bus: RecordingBus, path: str, body: bytes) -> None:
    script = Script(clock, Response(404, body), 200)
    response = await policy(clock, bus).handle(make_call(path=path), script)
    assert (response.status, len(script.seen)) == (404, 1)


async def _run_concurrent_failures(clock: FakeClock, bus: RecordingBus, n: int) -> int:
    """Send `n` concurrent GETs that always get 503; return how many retries reached OANDA."""
    script = Script(clock, 503)
    p = policy(clock, bus, base_delay_s=0.1, max_delay_s=0.5)
    task = asyncio.gather(*(p.handle(make_call(), script) for _ in range(n)))
    for _ in range(60):  # 3 s of fake time, well inside the 10 s budget window
        await asyncio.sleep(0)
        clock.advance(0.05)
    for response in await task:
        assert response.status == 503
    return len(script.seen) - n


async def test_budget_keeps_retries_within_a_fifth_of_traffic(bus: RecordingBus) -> None:
    clock = FakeClock(auto_advance=False)
    retries = await _run_concurrent_failures(clock, bus, 100)
    assert 3 <= retries <= max(3, 0.2 * 100)
    assert len(bus.of(RetryScheduled)) == retries
    assert any(e.reason == "budget" for e in bus.of(RetryGivenUp))


async def test_budget_floor_allows_a_few_retries_at_low_traffic(bus: RecordingBus) -> None:
    clock = FakeClock(auto_advance=False)
    assert await _run_concurrent_failures(clock, bus, 5) == 3


async def test_default_random_source_is_used_when_none_is_given(
        clock: FakeClock, bus: RecordingBus) -> None:
    p = RetryPolicy(RetryConfig(), clock, bus)
    response = await p.handle(make_call(), Script(clock, 503, 200))
    assert response.attempts == 2 and 0.0 <= clock.sleeps[0] <= 1.0
