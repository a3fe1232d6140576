"""Attach logging, metrics, tracing and alerting to an App. All of them are event subscribers."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from sidecar.alerting import Alerting
from sidecar.clock import SystemClock
from sidecar.observability.activity import Activity
from sidecar.observability.logging import EventLogger, configure_logging
from sidecar.observability.metrics import Metrics
from sidecar.observability.tracing import Tracing

if TYPE_CHECKING:
    from sidecar.app import App


def install_observability(app: App, *, configure_logs: bool = True) -> None:
    config = app.config
    secrets = [s.get_secret_value() for s in (
        config.secrets.oanda_token, config.secrets.control_token,
        config.secrets.pagerduty_routing_key, config.secrets.slack_webhook_url) if s is not None]
    if configure_logs:
        configure_logging(config.logging, secrets)
    EventLogger(app.bus)
    metrics = Metrics(app.bus, breakers=[s.name for s in app.parts.breakers.snapshots()],
                      rate_per_s=config.rate_limit.rate_per_s)
    limiter = app.parts.limiter
    metrics.set_queue_length(lambda: _queue(limiter))
    app.admin.set_metrics(metrics.render)
    tracing = Tracing(config.telemetry, app.bus, upstream_url=config.oanda.base_url)
    app.parts.extras["tracing"] = tracing
    alerting = Alerting(config.alerts, config.secrets, app.bus, SystemClock(),
                        source=_source(), on_result=metrics.alert_sent)
    app.parts.extras["alerting"] = alerting
    app.parts.extras["metrics"] = metrics
    app.on_start.append(alerting.start)
    app.on_stop.append(alerting.stop)
    app.on_stop.append(tracing.shutdown)
    app.admin.add_extra_status(lambda: {"alerts": alerting.recent()})
    activity = Activity(app.bus, app.clock)
    app.parts.extras["activity"] = activity
    app.admin.add_extra_status(lambda: {"activity": activity.snapshot()})


def _queue(limiter: object) -> tuple[int, int]:
    snap = limiter.snapshot()  # type: ignore[attr-defined]
    return snap.queued_normal, snap.queued_critical


def _source() -> str:
    import os

    return os.environ.get("POD_NAME") or socket.gethostname()
