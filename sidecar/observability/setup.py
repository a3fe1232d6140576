"""Logging, metrics, tracing, activity and alerting, built as bus subscribers.

`build_observability` is called by the composition root (`sidecar.app.build`); it knows the bus,
the config and what it reads (the limiter's queue), never the App. What must be started and
stopped comes back as `services`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sidecar.alerting import Alerting
from sidecar.clock import Clock
from sidecar.config import Config
from sidecar.events import EventBus
from sidecar.lifecycle import Service
from sidecar.observability.activity import Activity
from sidecar.observability.logging import EventLogger, configure_logging
from sidecar.observability.metrics import Metrics
from sidecar.observability.runtime import RuntimeMonitor
from sidecar.observability.stream_spans import StreamSpans
from sidecar.observability.tracing import Tracing


@dataclass(frozen=True, slots=True)
class Observability:
    metrics: Metrics
    tracing: Tracing
    alerting: Alerting
    activity: Activity
    logger: EventLogger
    stream_spans: StreamSpans | None = None  # streams (issue 13): a span per upstream connection
    runtime: RuntimeMonitor | None = None  # event-loop lag probe (soak, issue 18)

    @property
    def services(self) -> tuple[Service, ...]:
        runtime = () if self.runtime is None else (self.runtime,)
        return (self.alerting, *runtime, _Stopping(self._shutdown_tracing))

    async def _shutdown_tracing(self) -> None:
        if self.stream_spans is not None:
            self.stream_spans.close()
        await self.tracing.shutdown()

    def status_extras(self) -> dict[str, Any]:
        """What /api/status shows beside the GetStatus answer."""
        return {"alerts": self.alerting.recent(), "activity": self.activity.snapshot()}


def build_observability(config: Config, bus: EventBus, clock: Clock, *, breakers: list[str],
                        queue_length: Callable[[], tuple[int, int]]) -> Observability:
    metrics = Metrics(bus, breakers=breakers, rate_per_s=config.rate_limit.rate_per_s)
    metrics.set_queue_length(queue_length)
    tracing = Tracing(config.telemetry, bus, upstream_url=config.oanda.base_url)
    alerting = Alerting(config.alerts, config.secrets, bus, clock, source=_source())
    spans = StreamSpans(tracing.tracer, bus) if tracing.tracer is not None else None
    return Observability(metrics, tracing, alerting, Activity(bus, clock), EventLogger(bus),
                         spans, RuntimeMonitor(clock, metrics.runtime))


def configure_process_logging(config: Config) -> None:
    """The process-wide log handler (JSON or console), with every secret masked. Called once by
    the commands that run a sidecar (`serve`, `demo`), not by tests that build several."""
    secrets = [s.get_secret_value() for s in (
        config.secrets.oanda_token, config.secrets.control_token,
        config.secrets.pagerduty_routing_key, config.secrets.slack_webhook_url) if s is not None]
    configure_logging(config.logging, secrets)


class _Stopping:
    """A service that only has something to do at stop."""

    def __init__(self, stop: Callable[[], Any]) -> None:
        self._stop = stop

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self._stop()


def _source() -> str:
    return os.environ.get("POD_NAME") or socket.gethostname()
