"""What PagerDuty and Slack receive for one alert: limits and escaping."""

from __future__ import annotations

from sidecar.alerting.aggregator import Alert
from sidecar.alerting.conditions import BOTH, Action
from sidecar.alerting.pagerduty import PagerDutyChannel
from sidecar.alerting.slack import SlackChannel


def alert(summary: str, last_error: str, action: Action = "trigger") -> Alert:
    return Alert("upstream_auth", "upstream_auth", action, "critical", summary,
                 BOTH, {"status": 401, "last_error": last_error, "request_id": None},
                 at=1.7e9, last_at=1.7e9 + 5, first_seen=1.7e9, count=3, occurrences=7)


def test_pagerduty_trigger_is_a_complete_events_v2_document() -> None:
    doc = PagerDutyChannel("http://x", "KEY", "pod-7").render(alert("x" * 2000, "boom"))
    assert doc["event_action"] == "trigger" and doc["routing_key"] == "KEY"
    payload = doc["payload"]
    assert len(payload["summary"]) == 1024  # the API's limit
    assert payload["timestamp"] == "2023-11-14T22:13:20.000+00:00"
    details = payload["custom_details"]
    assert (details["count"], details["occurrences"]) == (3, 7)
    assert details["last_seen"] == "2023-11-14T22:13:25.000+00:00"
    assert "request_id" not in details  # None values are left out


def test_pagerduty_resolve_carries_only_the_key() -> None:
    doc = PagerDutyChannel("http://x", "KEY", "pod-7").render(alert("s", "e", "resolve"))
    assert doc == {"routing_key": "KEY", "event_action": "resolve",
                   "dedup_key": "oanda-sidecar/pod-7/upstream_auth"}


def test_slack_escapes_what_mrkdwn_would_interpret() -> None:
    doc = SlackChannel("http://x", "pod-7").render(alert("a <b> & c", "<html>"))
    assert "a &lt;b&gt; &amp; c (x3)" in doc["text"]
    fields = [f["text"] for f in doc["blocks"][2]["fields"]]
    assert "*Last error*\n&lt;html&gt;" in fields
    assert doc["blocks"][0]["text"]["text"] == "CRITICAL: upstream_auth"
