"""Receiver outages, undeliverable alerts, the timer on a fake clock, and cost per event."""

from __future__ import annotations

import asyncio
import logging
import statistics
import time

import pytest

from sidecar.clock import FakeClock, SystemClock
from sidecar.events import EventBus
from tests.alerting.helpers import ROUTING_KEY, attempt, breaker, make_alerting
from tests.alerting.receivers import PagerDutyReceiver, SlackReceiver


async def test_an_outage_of_the_receivers_yields_one_trigger_and_one_resolve(
        pd: PagerDutyReceiver, slack: SlackReceiver, bus: EventBus) -> None:
    results: list[str] = []
    alerting = make_alerting(pd, slack, bus, SystemClock(), window_s=0.5,
                             on_result=lambda ch, r: results.append(f"{ch}:{r}"))
    pd.answer([500, 429, 502, 503])
    slack.answer([500, 429, 500])
    await alerting.start()
    try:
        for _ in range(5):  # five consecutive failures open the breaker
            bus.publish(attempt(503))
        bus.publish(breaker("closed", "open"))
        [trigger] = await pd.wait_accepted(1)
        await slack.wait_accepted(1)
        assert [r.status for r in pd.requests] == [500, 429, 502, 503, 202]
        bus.publish(breaker("open", "half_open"))
        bus.publish(breaker("half_open", "open"))  # a failed probe: the same alert again
        await asyncio.sleep(0.15)
        bus.publish(breaker("open", "half_open"))
        bus.publish(breaker("half_open", "closed"))
        _, resolve = await pd.wait_accepted(2)
        await asyncio.sleep(0.6)
    finally:
        await alerting.stop()
    assert [r.body["event_action"] for r in pd.accepted] == ["trigger", "resolve"]
    assert trigger.body["dedup_key"] == resolve.body["dedup_key"]
    assert "[RESOLVED]" in slack.accepted[-1].body["text"] and len(slack.accepted) == 2
    assert results.count("pagerduty:retried") == 4 and results.count("slack:retried") == 3
    assert results.count("pagerduty:sent") == 2 and results.count("slack:sent") == 2


async def test_an_undeliverable_alert_is_logged_with_its_content_and_no_secret(
        pd: PagerDutyReceiver, slack: SlackReceiver, bus: EventBus,
        caplog: pytest.LogCaptureFixture) -> None:
    results: list[str] = []
    alerting = make_alerting(pd, slack, bus, SystemClock(), attempts=3,
                             on_result=lambda ch, r: results.append(f"{ch}:{r}"))
    pd.answer([500] * 3)
    slack.answer([503] * 3)
    await alerting.start()
    with caplog.at_level(logging.ERROR, logger="sidecar.alerting"):
        bus.publish(attempt(401))
        await pd.wait_until(lambda r: len(r.requests) == 3)
        await slack.wait_until(lambda r: len(r.requests) == 3)
        await asyncio.sleep(0.05)
        await alerting.stop()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    text = caplog.text + " ".join(str(vars(r)) for r in errors)
    for needle in ("upstream_auth", "critical", "OANDA answered 401", "HTTP 500 after 3",
                   "HTTP 503 after 3", "/v3/accounts/{accountID}/orders"):
        assert needle in text
    assert ROUTING_KEY not in text and slack.url not in text and slack.path not in text
    assert sorted(results) == ["pagerduty:failed"] + ["pagerduty:retried"] * 2 + [
        "slack:failed"] + ["slack:retried"] * 2
    assert alerting.recent()[0]["channels"] == {"pagerduty": "failed", "slack": "failed"}


async def test_throttling_resolves_on_the_timer_after_a_quiet_window(
        pd: PagerDutyReceiver, slack: SlackReceiver, bus: EventBus) -> None:
    clock = FakeClock(auto_advance=False)
    alerting = make_alerting(pd, slack, bus, clock, window_s=60)
    await alerting.start()
    try:
        bus.publish(attempt(429))
        await pd.wait_accepted(1)
        clock.advance(30)
        bus.publish(attempt(429))  # folded; restarts the quiet period
        clock.advance(59)
        await asyncio.sleep(0.05)
        assert len(pd.requests) == 1
        clock.advance(1)  # 60 s without a 429
        [_, resolved] = await pd.wait_accepted(2)
        assert resolved.body["event_action"] == "resolve"
        assert resolved.body["dedup_key"].endswith("/upstream_throttled")
    finally:
        await alerting.stop()


async def test_a_quick_resolve_waits_for_the_window_then_goes_out(
        pd: PagerDutyReceiver, slack: SlackReceiver, bus: EventBus) -> None:
    clock = FakeClock(auto_advance=False)
    alerting = make_alerting(pd, slack, bus, clock, window_s=60)
    await alerting.start()
    try:
        bus.publish(breaker("closed", "open"))
        clock.advance(5)
        bus.publish(breaker("half_open", "closed"))
        await pd.wait_accepted(1)
        await asyncio.sleep(0.05)
        assert [r["action"] for r in alerting.recent()] == ["trigger"]
        clock.advance(55)
        [_, resolved] = await pd.wait_accepted(2)
        assert resolved.body["event_action"] == "resolve"
    finally:
        await alerting.stop()


async def test_stop_sends_a_held_resolve_rather_than_leaving_the_incident_open(
        pd: PagerDutyReceiver, slack: SlackReceiver, bus: EventBus) -> None:
    alerting = make_alerting(pd, slack, bus, FakeClock(auto_advance=False), window_s=60)
    await alerting.start()
    bus.publish(attempt(401))
    bus.publish(attempt(200))
    await alerting.stop()
    assert [r.body["event_action"] for r in pd.accepted] == ["trigger", "resolve"]


async def test_publishing_is_cheap_and_delivery_is_quick(
        pd: PagerDutyReceiver, slack: SlackReceiver, bus: EventBus) -> None:
    plain = EventBus()  # the RecordingBus fixture would add its own cost
    alerting = make_alerting(pd, slack, plain, SystemClock(), window_s=0.05)
    await alerting.start()
    try:
        # Delivery latency at no load: event published -> PagerDuty receiver has it.
        latencies = []
        for i in range(20):
            t0 = time.monotonic()
            plain.publish(breaker("closed", "open", name=f"b{i}"))
            [*_, got] = await pd.wait_accepted(i + 1)
            latencies.append(got.at - t0)
        await slack.wait_accepted(20)
        # 10,000 events: 98% successful attempts, 1% 401, 1% 429 (folded inside the window).
        events = [attempt(401 if i % 100 == 0 else 429 if i % 100 == 50 else 200)
                  for i in range(10_000)]
        t0 = time.perf_counter()
        for ev in events:
            plain.publish(ev)
        per_event_us = (time.perf_counter() - t0) / len(events) * 1e6
    finally:
        await alerting.stop()
    median_ms = statistics.median(latencies) * 1e3
    print(f"\npublish: {per_event_us:.2f} us/event; delivery latency median "
          f"{median_ms:.2f} ms, max {max(latencies) * 1e3:.2f} ms")
    assert per_event_us < 100  # generous: a shared 2-core machine
    assert median_ms < 100


async def test_each_delivery_verdict_is_published_for_metrics_and_logs(
        pd: PagerDutyReceiver, slack: SlackReceiver) -> None:
    """Before, AlertSent had subscribers (metrics, the alert.sent log line) but no publisher."""
    from sidecar.events import AlertSent, AttemptFinished

    plain = EventBus()
    sent: list[AlertSent] = []
    plain.subscribe(AlertSent, sent.append)
    alerting = make_alerting(pd, slack, plain, SystemClock(), window_s=0.05)
    await alerting.start()
    try:
        plain.publish(AttemptFinished(at=1.7e9, method="GET", endpoint="/v3/accounts",
                                      attempt=1, duration_s=0.01, status=401, error_type=None))
        for _ in range(100):
            if len(sent) >= 2:
                break
            await asyncio.sleep(0.02)
    finally:
        await alerting.stop()
    assert sorted((e.channel, e.result) for e in sent)[:2] == [("pagerduty", "ok"),
                                                              ("slack", "ok")]
