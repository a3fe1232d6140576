"""Alerting end to end against local PagerDuty and Slack receivers (real time, short windows)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from sidecar.alerting import Alerting
from sidecar.clock import SystemClock
from sidecar.events import Event, EventBus
from tests.alerting.helpers import (
    ROUTING_KEY,
    SOURCE,
    attempt,
    breaker,
    degradation,
    make_alerting,
)
from tests.alerting.receivers import PagerDutyReceiver, SlackReceiver

WINDOW = 0.1


@pytest.fixture
async def alerting(pd: PagerDutyReceiver, slack: SlackReceiver,
                   bus: EventBus) -> AsyncIterator[Alerting]:
    a = make_alerting(pd, slack, bus, SystemClock(), window_s=WINDOW)
    await a.start()
    yield a
    await a.stop()


CASES = [
    ("breaker_open:rest", "critical", [breaker("closed", "open")],
     [breaker("open", "half_open"), breaker("half_open", "closed")]),
    ("upstream_auth", "critical", [attempt(401)], [attempt(200)]),
    ("upstream_auth", "critical", [attempt(403)], [attempt(204)]),
    ("degradation_read_only", "critical", [degradation("none", "read_only")],
     [degradation("read_only", "none")]),
    ("upstream_throttled", "warning", [attempt(429)], []),  # resolves after the quiet period
]


@pytest.mark.parametrize(("condition", "severity", "raise_", "clear"), CASES,
                         ids=[c[0] + str(i) for i, c in enumerate(CASES)])
async def test_each_condition_triggers_and_resolves_with_one_dedup_key(
        alerting: Alerting, pd: PagerDutyReceiver, slack: SlackReceiver, bus: EventBus,
        condition: str, severity: str, raise_: list[Event], clear: list[Event]) -> None:
    for ev in raise_:
        bus.publish(ev)
    [trigger] = await pd.wait_accepted(1)
    for ev in clear:
        bus.publish(ev)
    _, resolve = await pd.wait_accepted(2)

    key = f"oanda-sidecar/{SOURCE}/{condition}"
    assert trigger.body["dedup_key"] == resolve.body["dedup_key"] == key
    assert trigger.body["routing_key"] == resolve.body["routing_key"] == ROUTING_KEY
    assert (trigger.body["event_action"], resolve.body["event_action"]) == ("trigger", "resolve")
    payload = trigger.body["payload"]
    assert payload["severity"] == severity
    assert payload["source"] == SOURCE and payload["component"] == "oanda-sidecar"
    assert payload["summary"]
    details = payload["custom_details"]
    assert details["count"] == 1 and details["occurrences"] == 1
    assert {"first_seen", "last_seen", "condition"} <= details.keys()

    texts = [r.body["text"] for r in await slack.wait_accepted(2)]
    assert "[" + severity.upper() + "]" in texts[0] and "[RESOLVED]" in texts[1]
    header = slack.accepted[0].body["blocks"][0]
    assert header["type"] == "header" and condition in header["text"]["text"]
    await asyncio.sleep(2 * WINDOW)
    assert len(pd.requests) == 2 and len(slack.requests) == 2  # nothing more


async def test_payload_carries_the_context_of_the_failure(
        alerting: Alerting, pd: PagerDutyReceiver, slack: SlackReceiver, bus: EventBus) -> None:
    bus.publish(attempt(401))
    [got] = await pd.wait_accepted(1)
    details = got.body["payload"]["custom_details"]
    assert details["endpoint"] == "/v3/accounts/{accountID}/orders"
    assert details["status"] == 401 and details["request_id"] == "req-1"
    assert "Insufficient authorization" in details["last_error"]
    bus.publish(breaker("closed", "open", name="pricing"))
    [_, got] = await pd.wait_accepted(2)
    details = got.body["payload"]["custom_details"]
    assert details["breaker"] == "pricing" and details["consecutive_failures"] == 5
    assert details["last_error"] == "status_503"
    fields = str((await slack.wait_accepted(2))[1].body["blocks"][2]["fields"])
    assert "pricing" in fields and "status_503" in fields


async def test_fifty_auth_failures_in_a_window_become_one_alert_with_a_count(
        alerting: Alerting, pd: PagerDutyReceiver, slack: SlackReceiver, bus: EventBus) -> None:
    for _ in range(50):
        bus.publish(attempt(401))
    [got] = await pd.wait_accepted(1)
    assert got.body["payload"]["custom_details"]["count"] == 50
    assert "(x50)" in got.body["payload"]["summary"]
    [msg] = await slack.wait_accepted(1)
    assert "(x50)" in msg.body["text"]
    await asyncio.sleep(2 * WINDOW)
    assert len(pd.requests) == 1 and len(slack.requests) == 1
    assert alerting.recent()[0]["count"] == 50 and alerting.recent()[0]["delivered"]


async def test_repeats_after_the_first_send_are_reported_with_the_resolve(
        pd: PagerDutyReceiver, slack: SlackReceiver, bus: EventBus) -> None:
    alerting = make_alerting(pd, slack, bus, SystemClock(), window_s=0.5)
    await alerting.start()
    try:
        bus.publish(attempt(401))
        await pd.wait_accepted(1)
        for _ in range(9):
            bus.publish(attempt(403))
        await asyncio.sleep(0.05)
        assert len(pd.requests) == 1  # folded, not sent
        assert alerting.recent()[0]["count"] == 10
        bus.publish(attempt(200))  # held until the window ends
        _, resolved = await slack.wait_accepted(2)
        fields = [f["text"] for f in resolved.body["blocks"][2]["fields"]]
        assert "*Occurrences*\n10" in fields
        assert "[RESOLVED]" in resolved.body["text"]
        pd_trigger, pd_resolve = await pd.wait_accepted(2)
        assert pd_resolve.body["event_action"] == "resolve"
        assert pd_resolve.at - pd_trigger.at >= 0.4  # held to the end of the trigger's window
    finally:
        await alerting.stop()
