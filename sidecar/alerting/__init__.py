"""Alerting: PagerDuty Events API v2 and Slack incoming webhooks, fed by bus events.

See `conditions` (which events raise and clear which alert), `aggregator` (windows, counts,
flap damping), `dispatcher` (bounded queues, retries) and `service.Alerting` (the wiring).
"""

from sidecar.alerting.service import Alerting

__all__ = ["Alerting"]
