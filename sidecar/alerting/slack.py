"""Slack incoming webhook: the same alerts, for a person: `text` plus Block Kit blocks."""

from __future__ import annotations

from typing import Any

from sidecar.alerting.aggregator import Alert
from sidecar.alerting.pagerduty import custom_details

_ICON = {"critical": ":rotating_light:", "error": ":red_circle:", "warning": ":warning:",
         "info": ":information_source:"}
_HEADER_MAX = 150  # Slack's limit for a header block
_FIELD_MAX = 1900  # a section field may hold 2000 characters
# Most telling first: a section shows at most 10 fields, five of them are always there.
_SHOWN = ("breaker", "endpoint", "status", "last_error", "consecutive_failures", "reason",
          "to_state", "to_level", "method", "request_id", "from_state", "from_level")


class SlackChannel:
    name = "slack"

    def __init__(self, webhook_url: str, source: str) -> None:
        self.url = webhook_url
        self.source = source
        self.secrets: tuple[str, ...] = (webhook_url,)

    def render(self, alert: Alert) -> dict[str, Any]:
        resolved = alert.action == "resolve"
        icon = ":white_check_mark:" if resolved else _ICON.get(alert.severity, ":bell:")
        label = "RESOLVED" if resolved else alert.severity.upper()
        repeat = "" if alert.count == 1 else f" (x{alert.count})"
        text = f"{icon} [{label}] {_esc(alert.summary)}{repeat} — {_esc(self.source)}"
        details = custom_details(alert)
        fields = [("Condition", alert.condition), ("Source", self.source),
                  ("Occurrences", str(alert.occurrences)),
                  ("First seen", details["first_seen"]), ("Last seen", details["last_seen"])]
        fields += [(k.replace("_", " ").capitalize(), str(details[k]))
                   for k in _SHOWN if k in details]
        header = f"{label}: {alert.condition}"
        return {
            "text": text,
            "blocks": [
                {"type": "header",
                 "text": {"type": "plain_text", "text": header[:_HEADER_MAX], "emoji": True}},
                {"type": "section", "text": {"type": "mrkdwn", "text": text[:_FIELD_MAX]}},
                {"type": "section",
                 "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{_esc(v)}"[:_FIELD_MAX]}
                            for k, v in fields[:10]]},  # Slack allows 10 fields per section
            ],
        }



def _esc(text: str) -> str:
    """Slack's mrkdwn needs only these three escaped; an upstream error body may hold them."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
