"""Delivery: retries with backoff on the injected clock, what is not retried, the full queue."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.alerting.aggregator import Alert
from sidecar.alerting.conditions import BOTH
from sidecar.alerting.dispatcher import Dispatcher
from sidecar.alerting.pagerduty import PagerDutyChannel
from sidecar.alerting.slack import SlackChannel
from sidecar.backoff import backoff_ceiling, honour_retry_after
from sidecar.clock import FakeClock
from tests.alerting.receivers import PagerDutyReceiver, SlackReceiver

ROUTING_KEY = "R0UT1NGKEYabcdef0123456789abcdef"


def backoff_delay(attempt: int, base: float, cap: float,
                  retry_after: float | None = None) -> float:
    """The wait the dispatcher takes between deliveries (no jitter: one sender per receiver)."""
    return honour_retry_after(backoff_ceiling(attempt, base, cap), retry_after, cap)


@settings(max_examples=200)
@given(st.integers(1, 200), st.floats(0, 10), st.floats(0, 100),
       st.none() | st.floats(0, 1000))
def test_backoff_doubles_is_capped_and_honours_retry_after(
        attempt: int, base: float, cap: float, retry_after: float | None) -> None:
    d = backoff_delay(attempt, base, cap, retry_after)
    assert 0 <= d <= cap
    assert d >= min(cap, base * 2.0 ** (attempt - 1))
    if retry_after is not None:
        assert d >= min(cap, retry_after)
    assert backoff_delay(attempt + 1, base, cap) >= backoff_delay(attempt, base, cap)


def alert(condition: str = "upstream_auth") -> Alert:
    return Alert(condition, condition, "trigger", "critical", "OANDA answered 401", BOTH,
                 {"status": 401}, at=1.7e9, last_at=1.7e9, first_seen=1.7e9)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def make(channel: PagerDutyChannel | SlackChannel, clock: FakeClock, results: list[str],
         queue_size: int = 10, attempts: int = 4) -> Dispatcher:
    return Dispatcher(channel, clock, queue_size=queue_size, max_attempts=attempts,
                      timeout_s=1.0, backoff_base_s=0.5, backoff_max_s=30.0,
                      on_result=lambda ch, r: results.append(f"{ch}:{r}"))


async def test_pagerduty_5xx_and_429_are_retried_with_backoff(
        pd: PagerDutyReceiver, session: aiohttp.ClientSession, clock: FakeClock) -> None:
    results: list[str] = []
    d = make(PagerDutyChannel(pd.url, ROUTING_KEY, "pod-1"), clock, results)
    pd.answer([500, 429, 503])
    d.start(session)
    a = alert()
    d.enqueue(a)
    await d.drain()
    await d.cancel()
    assert [r.status for r in pd.requests] == [500, 429, 503, 202]
    assert clock.sleeps == [0.5, 1.0, 2.0]
    assert results == ["pagerduty:retried"] * 3 + ["pagerduty:sent"]
    assert a.status == {"pagerduty": "sent"}
    assert len({r.body["dedup_key"] for r in pd.requests}) == 1


async def test_pagerduty_400_is_not_retried_and_is_logged(
        pd: PagerDutyReceiver, session: aiohttp.ClientSession, clock: FakeClock,
        caplog: pytest.LogCaptureFixture) -> None:
    results: list[str] = []
    d = make(PagerDutyChannel(pd.url, ROUTING_KEY, "pod-1"), clock, results)
    pd.answer([400])
    d.start(session)
    d.enqueue(alert())
    with caplog.at_level(logging.ERROR, logger="sidecar.alerting"):
        await d.drain()
    await d.cancel()
    assert len(pd.requests) == 1 and clock.sleeps == []
    assert results == ["pagerduty:failed"]
    assert "HTTP 400 after 1 attempt" in caplog.text
    assert ROUTING_KEY not in caplog.text


async def test_slack_retry_after_is_honoured_and_attempts_are_bounded(
        slack: SlackReceiver, session: aiohttp.ClientSession, clock: FakeClock) -> None:
    results: list[str] = []
    d = make(SlackChannel(slack.url, "pod-1"), clock, results, attempts=3)
    slack.answer([429, 500, 500, 500])
    d.start(session)
    d.enqueue(alert())
    await d.drain()
    await d.cancel()
    assert len(slack.requests) == 3  # max_delivery_attempts, then given up
    assert clock.sleeps == [0.5, 1.0]  # Retry-After: 0 does not shorten our own backoff
    assert results == ["slack:retried", "slack:retried", "slack:failed"]


async def test_connection_errors_are_retried(
        session: aiohttp.ClientSession, clock: FakeClock) -> None:
    pd = PagerDutyReceiver()
    await pd.start()
    url = pd.url
    await pd.close()  # nobody listens there any more
    results: list[str] = []
    d = make(PagerDutyChannel(url, ROUTING_KEY, "pod-1"), clock, results, attempts=2)
    d.start(session)
    d.enqueue(alert())
    await d.drain()
    await d.cancel()
    assert results == ["pagerduty:retried", "pagerduty:failed"]


async def test_a_full_queue_drops_the_oldest_and_never_blocks(
        clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    results: list[str] = []
    d = make(PagerDutyChannel("http://127.0.0.1:9/unused", ROUTING_KEY, "pod-1"), clock,
             results, queue_size=2)
    alerts = [alert(f"breaker_open:b{i}") for i in range(5)]
    with caplog.at_level(logging.ERROR, logger="sidecar.alerting"):
        for a in alerts:
            d.enqueue(a)  # no worker: nothing drains
    assert results == ["pagerduty:dropped"] * 3
    assert [a.status["pagerduty"] for a in alerts] == ["dropped"] * 3 + ["queued"] * 2
    assert "breaker_open:b0" in caplog.text and "queue full" in caplog.text
    await d.cancel()  # what is left is logged as undelivered
    assert results == ["pagerduty:dropped"] * 5


async def test_a_receiver_that_does_not_answer_in_time_is_retried(
        pd: PagerDutyReceiver, session: aiohttp.ClientSession, clock: FakeClock,
        caplog: pytest.LogCaptureFixture) -> None:
    results: list[str] = []
    d = Dispatcher(PagerDutyChannel(pd.url, ROUTING_KEY, "pod-1"), clock, queue_size=10,
                   max_attempts=2, timeout_s=0.05, backoff_base_s=0.5, backoff_max_s=30.0,
                   on_result=lambda ch, r: results.append(r))
    pd.hang_s = 0.2
    d.start(session)
    with caplog.at_level(logging.ERROR, logger="sidecar.alerting"):
        d.enqueue(alert())
        await d.drain()
    await d.cancel()
    assert results == ["retried", "failed"]
    assert "timeout after 2 attempts" in caplog.text
