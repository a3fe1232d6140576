"""PagerDuty Events API v2: one event per alert, keyed by a stable `dedup_key` per condition."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sidecar.alerting.aggregator import Alert

COMPONENT = "oanda-sidecar"
_SUMMARY_MAX = 1024  # PagerDuty truncates longer summaries; we cut first and say so


def dedup_key(source: str, condition: str) -> str:
    return f"oanda-sidecar/{source}/{condition}"


def iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds")


class PagerDutyChannel:
    """Renders alerts as Events API v2 documents and says which answers to retry."""

    name = "pagerduty"

    def __init__(self, events_url: str, routing_key: str, source: str) -> None:
        self.url = events_url
        self.source = source
        self._routing_key = routing_key
        self.secrets: tuple[str, ...] = (routing_key,)

    def render(self, alert: Alert) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "routing_key": self._routing_key,
            "event_action": alert.action,
            "dedup_key": dedup_key(self.source, alert.condition),
        }
        if alert.action == "resolve":
            return doc  # PagerDuty needs only the key to resolve; a payload would be ignored
        summary = alert.summary if alert.count == 1 else f"{alert.summary} (x{alert.count})"
        if len(summary) > _SUMMARY_MAX:
            summary = summary[: _SUMMARY_MAX - 1] + "…"
        doc["client"] = COMPONENT
        doc["payload"] = {
            "summary": summary,
            "source": self.source,
            "severity": alert.severity,
            "component": COMPONENT,
            "group": alert.kind,
            "class": alert.kind,
            "timestamp": iso(alert.at),
            "custom_details": custom_details(alert),
        }
        return doc



def custom_details(alert: Alert) -> dict[str, Any]:
    details = {k: v for k, v in alert.details.items() if v is not None}
    details.update(condition=alert.condition, count=alert.count, occurrences=alert.occurrences,
                   first_seen=iso(alert.first_seen), last_seen=iso(alert.last_at))
    return details
