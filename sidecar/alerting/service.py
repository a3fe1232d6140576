"""`Alerting`: subscribes to the bus, turns events into alerts, hands them to the channels.

event -> ConditionTracker (trigger/resolve signals) -> Aggregator (fold/hold) -> Dispatcher per
channel (bounded queue, worker, retries). The bus handler only does dictionary work and
`put_nowait`; all I/O happens in the workers. One timer task on the injected clock releases what
falls due by time alone: the 429 quiet period and held resolves.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import Callable
from typing import Any

import aiohttp

from sidecar.alerting.aggregator import Aggregator, Alert
from sidecar.alerting.conditions import PAGERDUTY, SLACK, ConditionTracker, Signal
from sidecar.alerting.dispatcher import Dispatcher
from sidecar.alerting.pagerduty import PagerDutyChannel
from sidecar.alerting.slack import SlackChannel
from sidecar.clock import Clock
from sidecar.config import AlertsConfig, Secrets
from sidecar.events import (
    AlertSent,
    AttemptFinished,
    BreakerTransition,
    DegradationChanged,
    Event,
    EventBus,
    StreamChanged,
)

RECENT_MAX = 50


# Dispatcher results → AlertSent.result ("ok", "failed" after retries, "dropped": queue full).
_VERDICTS = {"sent": "ok", "failed": "failed", "dropped": "dropped"}


class Alerting:
    """PagerDuty and Slack alerts from bus events. A channel is off without its secret."""

    def __init__(self, config: AlertsConfig, secrets: Secrets, bus: EventBus, clock: Clock, *,
                 source: str, session: aiohttp.ClientSession | None = None,
                 on_result: Callable[[str, str], None] | None = None,
                 backoff_base_s: float = 1.0, backoff_max_s: float = 30.0) -> None:
        self._clock = clock
        self._bus = bus
        self._on_result = on_result
        self._tracker = ConditionTracker(quiet_s=config.aggregation_window_s,
                                         quiet_in_closure=config.quiet_during_weekly_closure,
                                         stream_down_s=config.stream_down_s)
        self._aggregator = Aggregator(config.aggregation_window_s)
        self._recent: deque[Alert] = deque(maxlen=RECENT_MAX)
        self._session, self._own_session = session, session is None
        self._dispatchers: dict[str, Dispatcher] = {}
        for channel in self._channels(config, secrets, source):
            self._dispatchers[channel.name] = Dispatcher(
                channel, clock, queue_size=config.queue_size,
                max_attempts=config.max_delivery_attempts, timeout_s=config.delivery_timeout_s,
                backoff_base_s=backoff_base_s, backoff_max_s=backoff_max_s,
                on_result=self._delivered)
        self._deadline = math.inf  # earliest monotonic time something falls due
        self._wake = asyncio.Event()
        self._timer: asyncio.Task[None] | None = None
        self._unsubscribe = [bus.subscribe(AttemptFinished, self._on_event),
                             bus.subscribe(BreakerTransition, self._on_event),
                             bus.subscribe(DegradationChanged, self._on_event),
                             bus.subscribe(StreamChanged, self._on_stream)]

    def _delivered(self, channel: str, result: str) -> None:
        """A dispatcher's verdict on one delivery: published as AlertSent (metrics and the
        `alert.sent` / `alert.failed` log line subscribe); a retry is not yet a verdict."""
        if self._on_result is not None:
            self._on_result(channel, result)
        if result in _VERDICTS:
            self._bus.publish(AlertSent(at=self._clock.wall(), channel=channel,
                                        result=_VERDICTS[result]))

    @staticmethod
    def _channels(config: AlertsConfig, secrets: Secrets,
                  source: str) -> list[PagerDutyChannel | SlackChannel]:
        out: list[PagerDutyChannel | SlackChannel] = []
        if secrets.pagerduty_routing_key is not None:
            out.append(PagerDutyChannel(config.pagerduty.events_url,
                                        secrets.pagerduty_routing_key.get_secret_value(), source))
        if secrets.slack_webhook_url is not None:
            out.append(SlackChannel(secrets.slack_webhook_url.get_secret_value(), source))
        return out

    @property
    def channels(self) -> tuple[str, ...]:
        """The enabled channels, e.g. ("pagerduty", "slack")."""
        return tuple(self._dispatchers)

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        for dispatcher in self._dispatchers.values():
            dispatcher.start(self._session)
        self._timer = asyncio.get_running_loop().create_task(self._run_timer(),
                                                             name="alerting-timer")

    async def stop(self, timeout_s: float = 2.0) -> None:
        """Stop listening, send held resolves, drain the queues for up to `timeout_s`, then
        cancel; anything still undelivered is logged at ERROR."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
            self._timer = None
        # Flap damping no longer matters once we are going away: clear what we know is clear.
        for alert in self._aggregator.due(math.inf):
            self._emit(alert)
        drains = [d.drain() for d in self._dispatchers.values()]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*drains), timeout_s)
        for dispatcher in self._dispatchers.values():
            await dispatcher.cancel()
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def recent(self) -> list[dict[str, Any]]:
        """The last alerts, newest first: condition, action, severity, summary, count (repeats
        folded in, still growing inside the window), at (wall), delivered, channels."""
        return [alert.as_dict() for alert in reversed(self._recent)]

    # -- the bus side: quick, never blocks ---------------------------------------------------

    def _on_event(self, event: Event) -> None:
        now = self._clock.monotonic()
        if now >= self._deadline:  # lazily, in case the timer has not run yet
            self._fire_due(now)
        signals = self._tracker.observe(event, now)
        if signals:
            for signal in signals:
                self._offer(signal, now)
            self._rearm()

    def _on_stream(self, event: StreamChanged) -> None:
        # A stream going down arms a deadline without a signal yet: the timer must know.
        self._on_event(event)
        self._rearm()

    def _offer(self, signal: Signal, now: float) -> None:
        alert = self._aggregator.offer(signal, now)
        if alert is not None:
            self._emit(alert)

    def _emit(self, alert: Alert) -> None:
        self._recent.append(alert)
        for name in (PAGERDUTY, SLACK):
            dispatcher = self._dispatchers.get(name)
            if dispatcher is not None and name in alert.channels:
                dispatcher.enqueue(alert)

    def _fire_due(self, now: float) -> None:
        for signal in self._tracker.due(now, self._clock.wall()):
            self._offer(signal, now)
        for alert in self._aggregator.due(now):
            self._emit(alert)
        self._rearm()

    def _rearm(self) -> None:
        candidates = (self._tracker.next_deadline(), self._aggregator.next_deadline())
        deadline = min((d for d in candidates if d is not None), default=math.inf)
        if deadline < self._deadline:
            self._wake.set()  # the timer sleeps towards a later time: let it look again
        self._deadline = deadline

    # -- the timer ----------------------------------------------------------------------------

    async def _run_timer(self) -> None:
        while True:
            self._wake.clear()
            delay = self._deadline - self._clock.monotonic()
            if delay == math.inf:
                await self._wake.wait()
            elif delay > 0:
                await self._sleep_or_wake(delay)
            else:
                self._fire_due(self._clock.monotonic())

    async def _sleep_or_wake(self, delay: float) -> None:
        sleeper = asyncio.ensure_future(self._clock.sleep(delay))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()
